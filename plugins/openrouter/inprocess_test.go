package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/pgrules/pgrules/providers"
	"github.com/pgrules/pgrules/providers/openai"
)

// BenchmarkInProcess is the same call as BenchmarkPluginRoundTrip without
// the plugin boundary.
func BenchmarkInProcess(b *testing.B) {
	f := newFake(b, 0, 0)
	b.Setenv("OPENROUTER_API_KEY", "k")
	c := openai.New(openai.Defaults{Name: "openrouter", APIKeyEnv: "OPENROUTER_API_KEY"})
	cfg, _ := json.Marshal(map[string]any{"base_url": f.URL + "/v1", "models": []string{"m"}})
	if _, err := c.Configure(context.Background(), cfg); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := range b.N {
		if _, err := c.Generate(context.Background(), providers.Request{ID: fmt.Sprint(i), Prompt: strings.Repeat("x", 4000)}); err != nil {
			b.Fatal(err)
		}
	}
}
