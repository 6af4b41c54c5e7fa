package main

import (
	"context"
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/pgrules/pgrules/providers"
)

func TestConfigureChecksTheSettings(t *testing.T) {
	p := &provider{}
	c, err := p.Configure(context.Background(), []byte(`{"model": "m1", "prefix": "x-"}`))
	if err != nil || c.Models[0] != "m1" || !strings.Contains(string(c.IdentityJSON), `"prefix":"x-"`) {
		t.Fatalf("Configure = %+v, %v", c, err)
	}
	var ce *providers.ConfigError
	if _, err := p.Configure(context.Background(), []byte(`{"modle": "m1"}`)); !errors.As(err, &ce) || ce.Path != "modle" {
		t.Errorf("a misspelt key: %v, want a ConfigError at modle", err)
	}
	if _, err := p.Configure(context.Background(), []byte(`{"model": " "}`)); !errors.As(err, &ce) || ce.Path != "model" {
		t.Errorf("an empty model: %v, want a ConfigError at model", err)
	}
}

func TestGenerateEchoesTheDraft(t *testing.T) {
	p := &provider{}
	if _, err := p.Configure(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	r, err := p.Generate(context.Background(), providers.Request{ID: "s1", Draft: `{"summary": "x"}`})
	if err != nil || r.Text != `{"summary": "x"}` || r.ChosenModel != "draft-echo" {
		t.Errorf("Generate = %+v, %v", r, err)
	}
	var pe *providers.Error
	if _, err := p.Generate(context.Background(), providers.Request{ID: "s2"}); !errors.As(err, &pe) || pe.Kind != providers.KindFailed || pe.Code != "empty_draft" {
		t.Errorf("no draft: %v, want a KindFailed empty_draft", err)
	}
}

// The plugin as pgrules runs it: built, started as a subprocess through
// go-plugin (handshake, mutual TLS, gRPC), configured, asked, stopped.
func TestAsASubprocess(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, providers.BinaryPrefix+name)
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	c, err := providers.Start(context.Background(), providers.HostOptions{Name: name, Dirs: []string{dir}, Logger: zerolog.Nop(), ConfigJSON: []byte(`{"prefix": ""}`)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.Info().Name != name || c.Info().ProtocolVersion != providers.ProtocolVersion {
		t.Errorf("Describe = %+v", c.Info())
	}
	r, err := c.Generate(context.Background(), providers.Request{ID: "s1", Draft: `{"summary": "x"}`})
	if err != nil || r.Text != `{"summary": "x"}` {
		t.Fatalf("Generate = %+v, %v", r, err)
	}
	// The plugin reports no latency: the host measured the call.
	if r.LatencySeconds <= 0 {
		t.Errorf("latency_s = %v, want the host's measurement", r.LatencySeconds)
	}
	var pe *providers.Error
	if _, err := c.Generate(context.Background(), providers.Request{ID: "s2"}); !errors.As(err, &pe) || pe.Code != "empty_draft" {
		t.Errorf("no draft through gRPC: %v, want empty_draft", err)
	}
}
