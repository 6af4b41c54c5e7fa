package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
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
	cfg, _, err := loadConfig(cmd.Flags(), file, file != "")
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
	if cfg.OutDir != "from-file" || cfg.Concurrency != 3 || cfg.GatingMode != "lenient" {
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
