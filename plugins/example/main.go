// Command pgrules-provider-example is the template for a teacher plugin
// (`pgrules plugin new NAME` copies it). It is also useful as it stands:
// it answers with the draft itself, so `pgrules run --provider example`
// gates the drafts as they are, for free.
//
// A plugin is a program that calls providers.Serve with a
// providers.Provider. pgrules starts it as a subprocess, talks gRPC to it
// over mutual TLS and stops it at the end of the run; the contract is in
// providers/README.md.
package main

import (
	"context"
	"encoding/json"
	"strings"

	"github.com/pgrules/pgrules/providers"
)

// name is what users pass to --provider; the binary must be named
// pgrules-provider-<name>.
const name = "example"

const version = "0.1.0"

// config is this provider's section of pgrules.yaml (providers.<name>).
// providers.DecodeConfig rejects unknown keys and wrong types with the
// path, and pgrules reports them at the file:line:col of the setting.
type config struct {
	// Model names the answers' model in the records.
	Model string `json:"model"`
	// Prefix is put before every answer: an example of a setting that
	// changes answers, so it belongs in the cache identity.
	Prefix string `json:"prefix"`
}

type provider struct {
	cfg config
}

// log goes to stderr as JSON; pgrules relays each line into its own log.
var log = providers.PluginLogger()

func (p *provider) Describe(context.Context) (providers.Info, error) {
	return providers.Info{Name: name, Version: version, ProtocolVersion: providers.ProtocolVersion,
		Description: "template teacher: answers with the draft"}, nil
}

func (p *provider) Configure(_ context.Context, raw []byte) (providers.Configured, error) {
	cfg := config{Model: "draft-echo"}
	if err := providers.DecodeConfig(raw, &cfg); err != nil {
		return providers.Configured{}, err
	}
	if strings.TrimSpace(cfg.Model) == "" {
		return providers.Configured{}, &providers.ConfigError{Path: "model", Msg: "must not be empty"}
	}
	p.cfg = cfg
	// Everything that changes an answer, and nothing else (no keys, no
	// timeouts): pgrules' response cache keys on it.
	identity, err := json.Marshal(cfg)
	if err != nil {
		return providers.Configured{}, err
	}
	log.Info("configured", "model", cfg.Model)
	// This teacher reads the draft, not the rendered prompt: the host then
	// sends the one and not the other. A real teacher leaves both false
	// and reads req.System and req.Prompt.
	return providers.Configured{IdentityJSON: identity, Models: []string{cfg.Model}, NoPrompt: true, WantsDraft: true}, nil
}

func (p *provider) Generate(ctx context.Context, req providers.Request) (providers.Response, error) {
	if err := ctx.Err(); err != nil {
		// Cancelled by the host (Ctrl-C, run stopping): retryable, so a
		// rerun asks again.
		return providers.Response{}, &providers.Error{Kind: providers.KindRetryable, Code: "cancelled", Message: err.Error()}
	}
	if strings.TrimSpace(req.Draft) == "" {
		// A failure of this one sample: it is rejected teacher_error with
		// this code, the run goes on.
		return providers.Response{}, &providers.Error{Kind: providers.KindFailed, Code: "empty_draft", Message: "sample " + req.ID + " has no draft to echo",
			Attempts: []providers.Attempt{{Model: p.cfg.Model, Code: "empty_draft"}}}
	}
	// LatencySeconds is left 0: the host then measures the call itself.
	// Usage is nil: no tokens were counted (unknown is not zero).
	return providers.Response{
		Text:     p.cfg.Prefix + req.Draft,
		Provider: name, SelectedModel: p.cfg.Model, ChosenModel: p.cfg.Model, AttemptedModels: []string{p.cfg.Model},
		FinishReason: "stop",
	}, nil
}

func main() {
	providers.Serve(&provider{})
}
