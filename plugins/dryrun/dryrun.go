package main

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/pgrules/pgrules/providers"
)

const (
	name    = "dryrun"
	version = "1.0.0"
	model   = "dryrun-v1"
	// suggestedConcurrency: see Configure.
	suggestedConcurrency = 128
)

// Outcomes the mix can pick, each exercising one path through the rules.
var outcomes = []string{"valid", "fenced", "missing_verification", "overconfident", "invalid_json", "schema_invalid", "error"}

type config struct {
	Mix  map[string]float64 `json:"mix"`
	Seed string             `json:"seed"`
	// FromDraft answers with the draft itself where the outcome allows
	// (valid: as it is; fenced: in a code fence; invalid_json: cut short),
	// so answers have the size and vocabulary of real ones: what the
	// benchmark uses, and a way to gate existing drafts for free.
	FromDraft bool `json:"from_draft"`
}

var defaultMix = map[string]float64{
	"valid": 60, "fenced": 10, "missing_verification": 8, "overconfident": 8,
	"invalid_json": 5, "schema_invalid": 5, "error": 4,
}

var log = providers.PluginLogger()

type dryrun struct {
	cfg   config
	cum   []float64 // cumulative weights in outcomes order
	total float64
}

func (d *dryrun) Describe(context.Context) (providers.Info, error) {
	return providers.Info{Name: name, Version: version, ProtocolVersion: providers.ProtocolVersion, Description: "deterministic offline teacher for trying pgrules"}, nil
}

func (d *dryrun) Configure(_ context.Context, raw []byte) (providers.Configured, error) {
	cfg := config{}
	if err := providers.DecodeConfig(raw, &cfg); err != nil {
		return providers.Configured{}, err
	}
	if len(cfg.Mix) == 0 {
		cfg.Mix = defaultMix
	}
	known := map[string]bool{}
	for _, o := range outcomes {
		known[o] = true
	}
	var keys []string
	for k, w := range cfg.Mix {
		if !known[k] {
			msg := fmt.Sprintf("unknown outcome (known: %s)", strings.Join(outcomes, ", "))
			if s := providers.Suggest(k, outcomes); s != "" {
				msg = fmt.Sprintf("unknown outcome; did you mean %s? (known: %s)", s, strings.Join(outcomes, ", "))
			}
			return providers.Configured{}, &providers.ConfigError{Path: "mix." + k, Msg: msg}
		}
		if w < 0 {
			return providers.Configured{}, &providers.ConfigError{Path: "mix." + k, Msg: fmt.Sprintf("weight %v is negative", w)}
		}
		keys = append(keys, k)
	}
	sort.Strings(keys)
	d.cfg, d.cum, d.total = cfg, nil, 0
	for _, o := range outcomes {
		d.total += cfg.Mix[o]
		d.cum = append(d.cum, d.total)
	}
	if d.total == 0 {
		return providers.Configured{}, &providers.ConfigError{Path: "mix", Msg: "all weights are zero"}
	}
	// The mix and seed decide every answer: they are the cache identity.
	identity, _ := json.Marshal(struct {
		Model     string             `json:"model"`
		Mix       map[string]float64 `json:"mix"`
		Seed      string             `json:"seed"`
		FromDraft bool               `json:"from_draft,omitempty"`
	}{model, cfg.Mix, cfg.Seed, cfg.FromDraft})
	// Logged on stderr as go-plugin JSON; the host relays it into its log.
	log.Info("configured", "outcomes", len(keys), "seed", cfg.Seed)
	// dryrun answers from the id (and the draft, with from_draft), never
	// from the prompt: the host need not send it. It answers on this
	// machine with no rate limit, so many calls in flight suit it: on two
	// cores 128 ran a 100k first run 20-30 % faster than 16 (README,
	// Benchmarks).
	return providers.Configured{IdentityJSON: identity, Models: []string{model}, AnswersDependOnID: true, NoPrompt: true, WantsDraft: cfg.FromDraft,
		SuggestedConcurrency: suggestedConcurrency}, nil
}

// pick maps (seed, id) to an outcome and a variant number. Hashing the id
// keeps answers stable across runs, orders and concurrency.
func (d *dryrun) pick(id string) (string, uint64) {
	sum := sha256.Sum256([]byte(d.cfg.Seed + "\x00" + id))
	x := binary.BigEndian.Uint64(sum[:8])
	variant := binary.BigEndian.Uint64(sum[8:16])
	r := float64(x%1_000_000) / 1_000_000 * d.total
	for i, c := range d.cum {
		if r < c {
			return outcomes[i], variant
		}
	}
	return outcomes[len(outcomes)-1], variant
}

// Outcome reports which outcome an id gets; tests use it to know what to
// expect.
func (d *dryrun) Outcome(id string) string {
	o, _ := d.pick(id)
	return o
}

func (d *dryrun) Generate(_ context.Context, req providers.Request) (providers.Response, error) {
	if d.cum == nil {
		if _, err := d.Configure(context.Background(), nil); err != nil {
			return providers.Response{}, err
		}
	}
	outcome, variant := d.pick(req.ID)
	if outcome == "error" {
		return providers.Response{}, &providers.Error{Kind: providers.KindFailed, Code: "dryrun_error", Message: "dryrun: simulated teacher failure for " + req.ID,
			Attempts: []providers.Attempt{{Model: model, Code: "dryrun_error", Error: "simulated failure"}}}
	}
	var text string
	switch {
	case d.cfg.FromDraft && req.Draft != "" && outcome == "valid":
		text = req.Draft
	case d.cfg.FromDraft && req.Draft != "" && outcome == "fenced":
		text = "Here is the refined answer:\n```json\n" + req.Draft + "\n```\n"
	case d.cfg.FromDraft && req.Draft != "" && outcome == "invalid_json":
		text = req.Draft[:len(req.Draft)*2/3]
	default:
		text = answer(req.PayloadType, outcome, variant)
	}
	sum := sha256.Sum256([]byte(req.ID))
	promptTokens := (int64(len(req.System)) + req.PromptBytes) / 4
	completion := int64(len(text)) / 4
	return providers.Response{
		Text: text, Provider: name, SelectedModel: model, ChosenModel: model,
		AttemptedModels: []string{model}, RequestID: fmt.Sprintf("dryrun-%x", sum[:6]),
		Usage:        &providers.Usage{PromptTokens: promptTokens, CompletionTokens: completion, TotalTokens: promptTokens + completion},
		FinishReason: "stop",
		// Simulated, never slept: a teacher-like spread (0.4–3.4 s) fixed by
		// the id, so outputs stay byte-for-byte reproducible and the
		// latency stats and histogram have something real-shaped to show.
		LatencySeconds: math.Round(400+3000*float64(binary.BigEndian.Uint16(sum[6:8]))/65535) / 1000,
	}, nil
}
