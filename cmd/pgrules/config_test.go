package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pgrules/pgrules/providers/openai"
)

// parse builds the run command's flags from args and loads the config
// layers as `pgrules run` does.
func parse(t *testing.T, args []string, file string) (*Config, error) {
	t.Helper()
	cmd := newRunCmd()
	cmd.Flags().SetNormalizeFunc(snakeToKebab)
	if err := cmd.Flags().Parse(args); err != nil {
		t.Fatal(err)
	}
	explicit := file != ""
	if !explicit {
		file = filepath.Join(t.TempDir(), "pgrules.yaml") // absent: no file layer
	}
	cfg, _, err := loadConfig(cmd.Flags(), file, explicit)
	return cfg, err
}

func TestConfigLayers(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "pgrules.yaml")
	os.WriteFile(file, []byte("out_dir: from-file\nconcurrency: 3\nrpm: 60\nproviders:\n  openrouter:\n    models: [a, b]\n"), 0o644)

	cfg, err := parse(t, nil, file)
	if err != nil {
		t.Fatal(err)
	}
	// A path the file sets is relative to the file; the defaults it does
	// not set stay as they are, looked up where pgrules runs.
	if cfg.OutDir != filepath.Join(dir, "from-file") || cfg.Rules != "gates.yaml" || cfg.Concurrency != 3 || cfg.GatingMode != "lenient" {
		t.Errorf("file layer: %+v", cfg)
	}

	t.Setenv("PGRULES_OUT_DIR", "from-env")
	t.Setenv("PGRULES_CACHE__PATH", "/tmp/c.db")
	cfg, err = parse(t, nil, file)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.OutDir != "from-env" || cfg.Cache.Path != "/tmp/c.db" || cfg.Concurrency != 3 {
		t.Errorf("env layer: out_dir %q cache %q concurrency %d", cfg.OutDir, cfg.Cache.Path, cfg.Concurrency)
	}

	cfg, err = parse(t, []string{"--out_dir", "from-flag", "--dry_run", "--no-cache", "--gating-mode", "strict"}, file)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.OutDir != "from-flag" || cfg.Provider != "dryrun" || !cfg.Cache.Disabled || cfg.GatingMode != "strict" || cfg.Concurrency != 3 {
		t.Errorf("flag layer: %+v", cfg)
	}

	cfg, err = parse(t, []string{"--provider", "openrouter", "--model", "x,y"}, file)
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Providers["openrouter"]["models"]; len(got.([]string)) != 2 {
		t.Errorf("--model did not override providers.openrouter.models: %v", got)
	}
}

func TestConfigRejectsUnknownKeys(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "pgrules.yaml")
	os.WriteFile(file, []byte("concurency: 3\n"), 0o644)
	_, err := parse(t, nil, file)
	if err == nil || !strings.Contains(err.Error(), "concurency") || !strings.Contains(err.Error(), file) {
		t.Errorf("err = %v, want the misspelled key and the file", err)
	}
	_, err = parse(t, nil, filepath.Join(dir, "missing.yaml"))
	if err == nil || !strings.Contains(err.Error(), "missing.yaml") {
		t.Errorf("explicit missing config: err = %v", err)
	}
}

func TestRedactedConfigHidesSecrets(t *testing.T) {
	cmd := newRunCmd()
	dir := t.TempDir()
	file := filepath.Join(dir, "pgrules.yaml")
	os.WriteFile(file, []byte("providers:\n  openrouter:\n    api_key: sk-or-v1-abcdefghijklmnopqrstuvwxyz\n    api_key_env: OPENROUTER_API_KEY\n"), 0o644)
	_, k, err := loadConfig(cmd.Flags(), file, true)
	if err != nil {
		t.Fatal(err)
	}
	got := string(redactedJSON(k))
	if strings.Contains(got, "sk-or-v1") || !strings.Contains(got, "[redacted]") || !strings.Contains(got, "OPENROUTER_API_KEY") {
		t.Errorf("redacted config = %s", got)
	}
}

func TestExampleConfigLoads(t *testing.T) {
	cfg, err := parse(t, nil, "../../pgrules.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Provider != "openrouter" || cfg.Concurrency != 8 || len(cfg.Providers) != 3 {
		t.Errorf("example config: %+v", cfg)
	}
}

// Environment values are typed as the file types them, so a provider gets
// a list, a number and an object, not three strings.
func TestEnvValuesAreTypedLikeTheFile(t *testing.T) {
	t.Setenv("PGRULES_PROVIDERS__LOCAL__MODELS", "a,b")
	t.Setenv("PGRULES_PROVIDERS__LOCAL__GENERATION__MAX_TOKENS", "4096")
	t.Setenv("PGRULES_PROVIDERS__LOCAL__RESPONSE_FORMAT", `{"type":"json_object"}`)
	t.Setenv("PGRULES_OUT_DIR", "0123") // a string setting keeps its text
	t.Setenv("PGRULES_RPM", "60")
	cfg, err := parse(t, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	local := cfg.Providers["local"]
	gen, _ := local["generation"].(map[string]any)
	rf, _ := local["response_format"].(map[string]any)
	if local["models"] != "a,b" || gen["max_tokens"] != 4096 || rf["type"] != "json_object" || cfg.OutDir != "0123" || cfg.RPM != 60 {
		t.Fatalf("typed env: %#v out_dir %q rpm %v", local, cfg.OutDir, cfg.RPM)
	}
	// And the plugin accepts what it is handed.
	raw, _ := json.Marshal(local)
	c := openai.New(openai.Defaults{Name: "local", BaseURL: "http://127.0.0.1:1/v1"})
	conf, err := c.Configure(context.Background(), raw)
	if err != nil || strings.Join(conf.Models, ",") != "a,b" || !strings.Contains(string(conf.IdentityJSON), `"max_tokens":4096`) || !strings.Contains(string(conf.IdentityJSON), `"response_format":{"type":"json_object"}`) {
		t.Errorf("the local plugin with env-typed settings: %v %s", err, conf.IdentityJSON)
	}
}

func TestErrorsNameTheirSource(t *testing.T) {
	t.Setenv("PGRULES_MAX_RETRY_WAIT", "-1s")
	_, err := parse(t, nil, "")
	if err == nil || !strings.HasPrefix(err.Error(), "environment variable PGRULES_MAX_RETRY_WAIT: max_retry_wait: must be more than 0") || strings.Contains(err.Error(), "pgrules.yaml") {
		t.Errorf("err = %v", err)
	}
	t.Setenv("PGRULES_MAX_RETRY_WAIT", "")
	_, err = parse(t, []string{"--concurrency", "0"}, "")
	if err == nil || !strings.HasPrefix(err.Error(), "flag --concurrency: concurrency: must be at least 1") {
		t.Errorf("err = %v", err)
	}
}
