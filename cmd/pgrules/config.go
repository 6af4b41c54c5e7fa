package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
	kyaml "github.com/knadh/koanf/parsers/yaml"
	"github.com/knadh/koanf/providers/env/v2"
	"github.com/knadh/koanf/providers/file"
	"github.com/knadh/koanf/providers/posflag"
	"github.com/knadh/koanf/v2"
	"github.com/spf13/pflag"
	"go.yaml.in/yaml/v3"
)

// Config is everything `pgrules run` can be told, from defaults <
// pgrules.yaml < PGRULES_* environment < flags.
type Config struct {
	Plan       string `koanf:"plan"`
	Drafts     string `koanf:"drafts"`
	Critiques  string `koanf:"critiques"`
	OutDir     string `koanf:"out_dir"`
	GatingMode string `koanf:"gating_mode"`
	Resume     bool   `koanf:"resume"`
	Limit      int    `koanf:"limit"`

	Provider  string `koanf:"provider"`
	PluginDir string `koanf:"plugin_dir"`
	Rules     string `koanf:"rules"`
	Template  string `koanf:"template"`
	System    string `koanf:"system"`

	Concurrency int     `koanf:"concurrency"`
	RPM         float64 `koanf:"rpm"`
	TPM         float64 `koanf:"tpm"`
	MaxRetries  int     `koanf:"max_retries"`
	FatalAfter  int     `koanf:"fatal_after"`
	// MaxRetryWait caps any single wait, Retry-After included.
	MaxRetryWait time.Duration `koanf:"max_retry_wait"`

	Health HealthConfig `koanf:"health"`

	Cache   CacheConfig `koanf:"cache"`
	Refresh bool        `koanf:"refresh"`

	LogLevel  string `koanf:"log_level"`
	LogFormat string `koanf:"log_format"`

	// Providers holds each backend's own settings, handed to its plugin's
	// Configure as JSON (models, base_url, generation, routing, mix ...).
	Providers map[string]map[string]any `koanf:"providers"`
	// Plugins pins plugin binaries by sha256.
	Plugins map[string]PluginConfig `koanf:"plugins"`
}

// HealthConfig decides when a run may replace the committed outputs.
type HealthConfig struct {
	MaxTeacherFailureRate float64 `koanf:"max_teacher_failure_rate"`
	// AllowUnhealthy commits an unhealthy run anyway.
	AllowUnhealthy bool `koanf:"allow_unhealthy"`
}

// CacheConfig says where teacher answers are kept.
type CacheConfig struct {
	Path     string `koanf:"path"`
	Disabled bool   `koanf:"disabled"`
}

// PluginConfig pins one plugin binary.
type PluginConfig struct {
	SHA256 string `koanf:"sha256"`
}

// flagKeys maps kebab-case flag names to config keys where they differ by
// more than dashes.
var flagKeys = map[string]string{
	"no-cache":                 "cache.disabled",
	"cache-path":               "cache.path",
	"max-teacher-failure-rate": "health.max_teacher_failure_rate",
	"allow-unhealthy":          "health.allow_unhealthy",
}

// flags that are not settings.
var notSettings = map[string]bool{"help": true, "config": true, "dry-run": true, "model": true}

// snakeToKebab lets the original pipeline's --out_dir, --gating_mode,
// --dry_run spellings work unchanged.
func snakeToKebab(_ *pflag.FlagSet, name string) pflag.NormalizedName {
	return pflag.NormalizedName(strings.ReplaceAll(name, "_", "-"))
}

// loadConfig merges the layers. configPath "" means ./pgrules.yaml if it
// exists; a path given explicitly must exist.
func loadConfig(fs *pflag.FlagSet, configPath string, explicit bool) (*Config, *koanf.Koanf, error) {
	k := koanf.New(".")
	if configPath != "" {
		if _, err := os.Stat(configPath); err == nil {
			if err := k.Load(file.Provider(configPath), kyaml.Parser()); err != nil {
				return nil, nil, fmt.Errorf("%s: %w (fix the YAML, or pass --config with another file)", configPath, err)
			}
		} else if explicit {
			return nil, nil, fmt.Errorf("config file %s: %w", configPath, errors.Unwrap(err))
		}
	}
	var unknownEnv []string
	err := k.Load(env.Provider(".", env.Opt{
		Prefix: "PGRULES_",
		TransformFunc: func(key, v string) (string, any) {
			if v == "" || strings.HasPrefix(key, "PGRULES_TEST_") {
				// An empty variable is an unset one; PGRULES_TEST_* are fault
				// injection hooks of the test suite, not settings.
				return "", nil
			}
			name := strings.ToLower(strings.TrimPrefix(key, "PGRULES_"))
			name = strings.ReplaceAll(name, "__", ".")
			if !knownKey(name) {
				unknownEnv = append(unknownEnv, key)
				return "", nil
			}
			return name, v
		},
	}), nil)
	if err != nil {
		return nil, nil, err
	}
	err = k.Load(posflag.ProviderWithFlag(fs, ".", k, func(f *pflag.Flag) (string, any) {
		if notSettings[f.Name] {
			return "", nil
		}
		key := flagKeys[f.Name]
		if key == "" {
			key = strings.ReplaceAll(f.Name, "-", "_")
		}
		return key, posflag.FlagVal(fs, f)
	}), nil)
	if err != nil {
		return nil, nil, err
	}
	if f := fs.Lookup("dry-run"); f != nil && f.Changed && f.Value.String() == "true" {
		_ = k.Set("provider", "dryrun")
	}
	if models, err := fs.GetStringSlice("model"); err == nil && len(models) > 0 {
		_ = k.Set("providers."+k.String("provider")+".models", models)
	}

	var cfg Config
	err = k.UnmarshalWithConf("", &cfg, koanf.UnmarshalConf{DecoderConfig: &mapstructure.DecoderConfig{
		DecodeHook: mapstructure.ComposeDecodeHookFunc(
			mapstructure.StringToTimeDurationHookFunc(),
			mapstructure.StringToSliceHookFunc(",")),
		WeaklyTypedInput: true,
		ErrorUnused:      true,
		Result:           &cfg,
		TagName:          "koanf",
	}})
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %s (see `pgrules run --help` or pgrules.example.yaml for the settings)", locateKeyError(configPath, err), cleanDecodeError(err))
	}
	if len(unknownEnv) > 0 {
		sort.Strings(unknownEnv)
		return nil, nil, fmt.Errorf("environment: unknown setting %s (PGRULES_ variables name settings, e.g. PGRULES_OUT_DIR, PGRULES_CACHE__PATH)", strings.Join(unknownEnv, ", "))
	}
	return &cfg, k, nil
}

var invalidKeysRE = regexp.MustCompile(`'([^']*)' has invalid keys: ([^\n]+)`)

// locateKeyError turns the decoder's "has invalid keys" into file:line:col
// of the first unknown key in the config file; koanf itself keeps no
// positions.
func locateKeyError(path string, err error) string {
	if path == "" {
		return "config"
	}
	m := invalidKeysRE.FindStringSubmatch(err.Error())
	data, rerr := os.ReadFile(path)
	if m == nil || rerr != nil {
		return path
	}
	var root yaml.Node
	if yaml.Unmarshal(data, &root) != nil || len(root.Content) == 0 {
		return path
	}
	n := root.Content[0]
	if m[1] != "" {
		for _, part := range strings.Split(m[1], ".") {
			if n = mapValue(n, part); n == nil {
				return path
			}
		}
	}
	bad := strings.TrimSpace(strings.Split(m[2], ",")[0])
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == bad {
			return fmt.Sprintf("%s:%d:%d", path, n.Content[i].Line, n.Content[i].Column)
		}
	}
	return path
}

func mapValue(n *yaml.Node, key string) *yaml.Node {
	if n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

// knownKey accepts top-level settings and anything below providers/plugins/
// cache, whose contents are checked by the decoder or the plugin.
func knownKey(name string) bool {
	top := strings.SplitN(name, ".", 2)[0]
	switch top {
	case "providers", "plugins", "cache", "health":
		return true
	}
	for _, f := range topLevelKeys {
		if f == top {
			return true
		}
	}
	return false
}

// topLevelKeys are Config's scalar settings, for telling a misspelled
// PGRULES_ variable from one that belongs to pgrules.
var topLevelKeys = []string{"plan", "drafts", "critiques", "out_dir", "gating_mode", "resume", "limit", "provider", "plugin_dir", "rules", "template", "system", "concurrency", "rpm", "tpm", "max_retries", "fatal_after", "max_retry_wait", "refresh", "log_level", "log_format"}

func cleanDecodeError(err error) string {
	s := err.Error()
	s = strings.ReplaceAll(s, "decoding failed due to the following error(s):\n\n", "")
	s = strings.ReplaceAll(s, "'' has invalid keys:", "unknown setting(s):")
	s = invalidKeysRE.ReplaceAllString(s, "unknown setting(s) under $1: $2")
	return strings.TrimSpace(s)
}

// redactedJSON renders the effective config for the manifest with anything
// that looks like a secret replaced. Keys come from the environment, but a
// user may still paste one into pgrules.yaml.
func redactedJSON(k *koanf.Koanf) json.RawMessage {
	b, err := json.Marshal(redact(k.Raw()))
	if err != nil {
		return json.RawMessage("{}")
	}
	return b
}

func redact(v any) any {
	switch t := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(t))
		for key, val := range t {
			if isSecretKey(key) {
				out[key] = "[redacted]"
				continue
			}
			out[key] = redact(val)
		}
		return out
	case []any:
		out := make([]any, len(t))
		for i, val := range t {
			out[i] = redact(val)
		}
		return out
	}
	return v
}

func isSecretKey(key string) bool {
	k := strings.ToLower(key)
	if strings.HasSuffix(k, "_env") {
		// api_key_env names a variable; it is not the secret itself.
		return false
	}
	for _, s := range []string{"key", "token", "secret", "password", "authorization", "bearer"} {
		if strings.Contains(k, s) {
			return true
		}
	}
	return false
}
