package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	kyaml "github.com/knadh/koanf/parsers/yaml"
	"github.com/knadh/koanf/providers/env/v2"
	"github.com/knadh/koanf/providers/file"
	"github.com/knadh/koanf/v2"
	"github.com/spf13/pflag"
	"go.yaml.in/yaml/v3"

	"github.com/pgrules/pgrules/engine"
	"github.com/pgrules/pgrules/internal/suggest"
	"github.com/pgrules/pgrules/providers"
)

// Config is everything pgrules can be told, from defaults < pgrules.yaml <
// PGRULES_* environment < flags. Every subcommand reads the same layers.
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
	// RPMTotal and TPMTotal are limits for all shards together: each shard
	// of N takes 1/N of them.
	RPMTotal float64 `koanf:"rpm_total"`
	TPMTotal float64 `koanf:"tpm_total"`
	// Shard is "K/N" or "auto/N" (K from $JOB_COMPLETION_INDEX).
	Shard      string `koanf:"shard"`
	MaxRetries int    `koanf:"max_retries"`
	FatalAfter int    `koanf:"fatal_after"`
	// MaxCalls stops a run before it asks about more samples (0: no cap).
	MaxCalls int `koanf:"max_calls"`
	// MaxRetryWait caps any single wait, Retry-After included.
	MaxRetryWait time.Duration `koanf:"max_retry_wait"`
	// CallTimeout bounds one teacher call, plugin included (0: none).
	CallTimeout time.Duration `koanf:"call_timeout"`

	Health HealthConfig `koanf:"health"`

	Cache   CacheConfig `koanf:"cache"`
	Refresh bool        `koanf:"refresh"`
	// Offline answers from the cache only: no plugin, no call.
	Offline bool `koanf:"offline"`

	// Report writes <out_dir>/report.html after a committed run.
	Report bool `koanf:"report"`

	LogLevel  string `koanf:"log_level"`
	LogFormat string `koanf:"log_format"`

	// Providers holds each backend's own settings, handed to its plugin's
	// Configure as JSON (models, base_url, generation, routing, mix ...);
	// the plugin checks them.
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

// builtinProviders are the backends that ship with pgrules; a providers:
// section may also name any plugin found on the search path.
var builtinProviders = []string{"dryrun", "local", "openrouter"}

// flagKeys maps kebab-case flag names to config keys where they differ by
// more than dashes.
var flagKeys = map[string]string{
	"no-cache":                 "cache.disabled",
	"cache-path":               "cache.path",
	"max-teacher-failure-rate": "health.max_teacher_failure_rate",
	"allow-unhealthy":          "health.allow_unhealthy",
}

// snakeToKebab lets the original pipeline's --out_dir, --gating_mode,
// --dry_run spellings work unchanged.
func snakeToKebab(_ *pflag.FlagSet, name string) pflag.NormalizedName {
	return pflag.NormalizedName(strings.ReplaceAll(name, "_", "-"))
}

// flagKey is the config key a flag sets, or "" when it is not a setting.
func flagKey(name string) string {
	key := flagKeys[name]
	if key == "" {
		key = strings.ReplaceAll(name, "-", "_")
	}
	if _, ok := configSchema.lookup(key); !ok {
		return ""
	}
	return key
}

// loaded is a merged config and where each of its values came from.
type loaded struct {
	cfg     *Config
	k       *koanf.Koanf
	origins map[string]string
	file    string
}

// origin says where key (or the nearest enclosing key) was set, for
// messages: "pgrules.yaml:4:3", "environment variable PGRULES_RPM",
// "flag --rpm", or "default".
func (l *loaded) origin(key string) string {
	for k := key; k != ""; {
		if o, ok := l.origins[k]; ok {
			return o
		}
		i := strings.LastIndexAny(k, ".")
		if i < 0 {
			break
		}
		k = k[:i]
	}
	return "default"
}

// ConfigError is a bad setting, with where it was set.
type ConfigError struct {
	Origin string
	Key    string
	Msg    string
}

func (e *ConfigError) Error() string {
	if e.Origin == "default" {
		// Nothing set it: "default:" in front would read as a place.
		if e.Key == "" {
			return e.Msg
		}
		return e.Key + ": " + e.Msg
	}
	if e.Key == "" {
		return e.Origin + ": " + e.Msg
	}
	return fmt.Sprintf("%s: %s: %s", e.Origin, e.Key, e.Msg)
}

// unsetHint says where a setting that nothing set can be given (origin
// "default").
func unsetHint(key string) string {
	hint := fmt.Sprintf("set %s in pgrules.yaml, or PGRULES_%s", key, strings.ToUpper(strings.ReplaceAll(key, ".", "__")))
	if strings.HasPrefix(key, "providers.") && strings.HasSuffix(key, ".models") {
		hint = "pass --model, or " + hint
	}
	return "nothing sets it: " + hint
}

// configErrors joins every problem so a user fixes them in one pass.
type configErrors []*ConfigError

func (es configErrors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// loadConfig merges the layers for the command whose flags are fs.
// configPath "" means ./pgrules.yaml if it exists; a path given explicitly
// must exist. Every value is checked against the schema (unknown keys at
// every level, types, ranges) and each problem names where it was set.
func loadConfig(fs *pflag.FlagSet, configPath string, explicit bool) (*Config, *koanf.Koanf, error) {
	l, err := load(fs, configPath, explicit)
	if err != nil {
		return nil, nil, err
	}
	return l.cfg, l.k, nil
}

// pathKeys are the settings that name files or directories.
var pathKeys = []string{"plan", "drafts", "critiques", "out_dir", "rules", "template", "system", "plugin_dir", "cache.path"}

// relativeToFile makes the relative paths a config file sets relative to
// the file's directory, as docker-compose and kubeconfig do: `--config
// ../proj/pgrules.yaml` run from elsewhere used to look for
// ../proj/pgrules.yaml's plan.jsonl in the working directory. Paths given
// by flags and PGRULES_* variables stay relative to the working directory;
// with ./pgrules.yaml both are the same.
func relativeToFile(k *koanf.Koanf, configPath string, origins map[string]string) {
	dir := filepath.Dir(configPath)
	if dir == "." {
		return
	}
	for _, key := range pathKeys {
		if _, fromFile := origins[key]; !fromFile {
			continue // a default: gates.yaml, prompts/… are looked up where pgrules runs
		}
		if v, ok := k.Get(key).(string); ok && v != "" && !filepath.IsAbs(v) {
			_ = k.Set(key, filepath.Join(dir, v))
		}
	}
}

func load(fs *pflag.FlagSet, configPath string, explicit bool) (*loaded, error) {
	if configPath == "" {
		configPath = "pgrules.yaml"
	}
	k := koanf.New(".")
	l := &loaded{k: k, origins: map[string]string{}}
	for key, v := range defaults() {
		_ = k.Set(key, v)
	}

	if _, err := os.Stat(configPath); err == nil {
		data, err := os.ReadFile(configPath)
		if err != nil {
			return nil, &ConfigError{Origin: configPath, Msg: err.Error()}
		}
		var root yaml.Node
		if err := yaml.Unmarshal(data, &root); err != nil {
			return nil, &ConfigError{Origin: configPath, Msg: yamlMessage(err) + " (fix the YAML, or pass --config with another file)"}
		}
		if err := k.Load(file.Provider(configPath), kyaml.Parser()); err != nil {
			return nil, &ConfigError{Origin: configPath, Msg: err.Error()}
		}
		l.file = configPath
		recordPositions(&root, configPath, l.origins)
		relativeToFile(k, configPath, l.origins)
	} else if explicit {
		return nil, &ConfigError{Origin: "--config " + configPath, Msg: "no such file"}
	}

	var errs configErrors
	err := k.Load(env.Provider(".", env.Opt{
		Prefix: "PGRULES_",
		TransformFunc: func(name, v string) (string, any) {
			if v == "" || strings.HasPrefix(name, "PGRULES_TEST_") || notSettings[name] != "" {
				// An empty variable is an unset one; PGRULES_TEST_* are fault
				// injection hooks of the test suite, not settings; the others
				// belong to programs around pgrules.
				return "", nil
			}
			key := strings.ReplaceAll(strings.ToLower(strings.TrimPrefix(name, "PGRULES_")), "__", ".")
			origin := "environment variable " + name
			if msg, ok := configSchema.check(key); !ok {
				errs = append(errs, &ConfigError{Origin: origin, Msg: msg + envHint(key)})
				return "", nil
			}
			l.origins[key] = origin
			return key, envValue(key, v)
		},
	}), nil)
	if err != nil {
		return nil, err
	}

	// Flags last, and only those the user set: an unset flag's default must
	// not hide the file or the environment.
	fs.Visit(func(f *pflag.Flag) {
		key := flagKey(f.Name)
		if key == "" {
			return
		}
		_ = k.Set(key, flagValue(fs, f))
		l.origins[key] = "flag --" + f.Name
	})
	if f := fs.Lookup("dry-run"); f != nil && f.Changed && f.Value.String() == "true" {
		_ = k.Set("provider", "dryrun")
		l.origins["provider"] = "flag --dry-run"
	}
	if f := fs.Lookup("model"); f != nil && f.Changed {
		models, _ := fs.GetStringSlice("model")
		key := "providers." + k.String("provider") + ".models"
		_ = k.Set(key, models)
		l.origins[key] = "flag --model"
	}

	var cfg Config
	errs = append(errs, decode(l, k.Raw(), &cfg)...)
	if len(errs) == 0 {
		errs = append(errs, validate(l, &cfg)...)
	}
	if len(errs) > 0 {
		return nil, errs
	}
	l.cfg = &cfg
	return l, nil
}

// maxConcurrency bounds the calls in flight at once.
const maxConcurrency = 1024

// defaults are the values of settings nobody set: the run command's flag
// defaults, so every subcommand sees the same ones.
func defaults() map[string]any {
	out := map[string]any{}
	fs := newRunCmd().Flags()
	fs.VisitAll(func(f *pflag.Flag) {
		if key := flagKey(f.Name); key != "" {
			out[key] = flagValue(fs, f)
		}
	})
	return out
}

// flagValue is a flag's typed value.
func flagValue(fs *pflag.FlagSet, f *pflag.Flag) any {
	switch f.Value.Type() {
	case "int":
		v, _ := fs.GetInt(f.Name)
		return v
	case "float64":
		v, _ := fs.GetFloat64(f.Name)
		return v
	case "bool":
		v, _ := fs.GetBool(f.Name)
		return v
	case "duration":
		v, _ := fs.GetDuration(f.Name)
		return v
	case "stringSlice":
		v, _ := fs.GetStringSlice(f.Name)
		return v
	}
	return f.Value.String()
}

// envValue types an environment value as the file would: a string setting
// keeps the text as it is; anything else (numbers, booleans, lists such as
// [a, b], objects such as {"type": "json_object"}) is read as YAML.
func envValue(key, v string) any {
	if f, ok := configSchema.lookup(key); ok && f.kind == kindString {
		return v
	}
	var out any
	if err := yaml.Unmarshal([]byte(v), &out); err != nil || out == nil {
		return v
	}
	return out
}

// notSettings are the PGRULES_ variables that programs around pgrules
// read, and pgrules passes over: without this, following the Python
// template's advice to set PGRULES_PYTHON made every run fail as if it
// were a misspelt setting. Any other PGRULES_ name must be a setting.
var notSettings = map[string]string{
	"PGRULES_PYTHON":   "the Python interpreter of the Python template plugin",
	"PGRULES_CHROMIUM": "the browser the test suite drives",
	"PGRULES_NODE_DIR": "where the test suite's Node packages are",
}

func envHint(key string) string {
	if s := configSchema.suggest(key); s != "" {
		return fmt.Sprintf("; did you mean PGRULES_%s?", strings.ToUpper(strings.ReplaceAll(s, ".", "__")))
	}
	return " (PGRULES_ variables name settings: PGRULES_OUT_DIR, PGRULES_CACHE__PATH, PGRULES_PROVIDERS__LOCAL__MODELS ...)"
}

// recordPositions notes file:line:col of every key of the config file.
func recordPositions(root *yaml.Node, path string, origins map[string]string) {
	if root == nil || len(root.Content) == 0 {
		return
	}
	var walk func(n *yaml.Node, prefix string)
	walk = func(n *yaml.Node, prefix string) {
		if n.Kind != yaml.MappingNode {
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			key := n.Content[i].Value
			if prefix != "" {
				key = prefix + "." + key
			}
			origins[key] = fmt.Sprintf("%s:%d:%d", path, n.Content[i].Line, n.Content[i].Column)
			walk(n.Content[i+1], key)
		}
	}
	walk(root.Content[0], "")
}

func yamlMessage(err error) string {
	return strings.TrimPrefix(err.Error(), "yaml: ")
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
	case time.Duration:
		return t.String()
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

// ---- the schema: Config's fields, walked by reflection ----

type fieldKind int

const (
	kindString fieldKind = iota
	kindInt
	kindFloat
	kindBool
	kindDuration
	kindStrings
	kindSection  // a struct: known keys
	kindNamedMap // map of name → value (providers, plugins)
)

type field struct {
	key    string
	kind   fieldKind
	index  []int
	fields map[string]*field // kindSection
	elem   *field            // kindNamedMap: the value of each name (nil: opaque)
	typ    reflect.Type
}

type schema struct{ root *field }

var configSchema = schema{root: schemaOf(reflect.TypeOf(Config{}), "")}

func schemaOf(t reflect.Type, key string) *field {
	f := &field{key: key, typ: t}
	switch {
	case t == reflect.TypeOf(time.Duration(0)):
		f.kind = kindDuration
	case t.Kind() == reflect.Struct:
		f.kind = kindSection
		f.fields = map[string]*field{}
		for i := 0; i < t.NumField(); i++ {
			sf := t.Field(i)
			name := sf.Tag.Get("koanf")
			if name == "" {
				continue
			}
			child := schemaOf(sf.Type, name)
			child.index = sf.Index
			f.fields[name] = child
		}
	case t.Kind() == reflect.Map:
		f.kind = kindNamedMap
		if t.Elem().Kind() == reflect.Struct {
			f.elem = schemaOf(t.Elem(), "")
		}
	case t.Kind() == reflect.Slice:
		f.kind = kindStrings
	case t.Kind() == reflect.Bool:
		f.kind = kindBool
	case t.Kind() == reflect.Int:
		f.kind = kindInt
	case t.Kind() == reflect.Float64:
		f.kind = kindFloat
	default:
		f.kind = kindString
	}
	return f
}

// lookup finds the field of a dotted key; keys inside an opaque section
// (a provider's settings) are found as that section.
func (s schema) lookup(key string) (*field, bool) {
	f := s.root
	parts := strings.Split(key, ".")
	for i := 0; i < len(parts); i++ {
		switch f.kind {
		case kindSection:
			c, ok := f.fields[parts[i]]
			if !ok {
				return nil, false
			}
			f = c
		case kindNamedMap:
			if f.elem == nil {
				return f, true // opaque: checked by the plugin
			}
			f = f.elem
		default:
			return nil, false
		}
	}
	return f, true
}

// check says why key is not a setting, with a suggestion.
func (s schema) check(key string) (string, bool) {
	if _, ok := s.lookup(key); ok {
		return "", true
	}
	return fmt.Sprintf("unknown setting %q", key), false
}

func (s schema) suggest(key string) string {
	var all []string
	var walk func(f *field, prefix string)
	walk = func(f *field, prefix string) {
		for name, c := range f.fields {
			k := name
			if prefix != "" {
				k = prefix + "." + name
			}
			all = append(all, k)
			if c.kind == kindSection {
				walk(c, k)
			}
		}
	}
	walk(s.root, "")
	return suggest.Closest(key, all)
}

// decode checks raw against the schema and fills cfg. It reports every
// unknown key (with a suggestion and the keys known at that level) and
// every value of the wrong type (with the type wanted), never Go internals.
func decode(l *loaded, raw map[string]any, cfg *Config) configErrors {
	var errs configErrors
	bad := func(key, format string, args ...any) {
		errs = append(errs, &ConfigError{Origin: l.origin(key), Key: key, Msg: fmt.Sprintf(format, args...)})
	}
	var section func(f *field, v map[string]any, dst reflect.Value, prefix string)
	var value func(f *field, v any, dst reflect.Value, key string)
	section = func(f *field, m map[string]any, dst reflect.Value, prefix string) {
		for _, name := range sortedKeys(m) {
			key := join(prefix, name)
			c, ok := f.fields[name]
			if !ok {
				known := sortedKeys(f.fields)
				msg := "unknown setting"
				if s := suggest.Closest(name, known); s != "" {
					msg += fmt.Sprintf("; did you mean %s?", s)
				}
				where := "at the top level"
				if prefix != "" {
					where = "under " + prefix
				}
				bad(key, "%s (known %s: %s)", msg, where, strings.Join(known, ", "))
				continue
			}
			value(c, m[name], dst.FieldByIndex(c.index), key)
		}
	}
	value = func(f *field, v any, dst reflect.Value, key string) {
		switch f.kind {
		case kindSection:
			if v == nil {
				return
			}
			m, ok := v.(map[string]any)
			if !ok {
				bad(key, "expected a section of settings, got %s", describe(v))
				return
			}
			section(f, m, dst, key)
		case kindNamedMap:
			if v == nil {
				return // an empty section: only comments under it
			}
			m, ok := v.(map[string]any)
			if !ok {
				bad(key, "expected a map of names, got %s", describe(v))
				return
			}
			if key == "providers" || key == "plugins" {
				known := knownProviders(l)
				for _, name := range sortedKeys(m) {
					if !contains(known, name) {
						msg := "unknown provider"
						if s := suggest.Closest(name, known); s != "" {
							msg += fmt.Sprintf("; did you mean %s?", s)
						}
						bad(join(key, name), "%s (known: %s; a plugin pgrules-provider-<name> on the search path counts too)", msg, strings.Join(known, ", "))
					}
				}
			}
			out := reflect.MakeMapWithSize(f.typ, len(m))
			for _, name := range sortedKeys(m) {
				ev := reflect.New(f.typ.Elem()).Elem()
				if f.elem != nil {
					value(f.elem, m[name], ev, join(key, name))
				} else if sub, ok := m[name].(map[string]any); ok {
					ev.Set(reflect.ValueOf(sub))
				} else if m[name] != nil {
					bad(join(key, name), "expected a section of settings, got %s", describe(m[name]))
					continue
				}
				out.SetMapIndex(reflect.ValueOf(name), ev)
			}
			dst.Set(out)
		default:
			conv, err := convert(f.kind, v)
			if err != nil {
				bad(key, "%v", err)
				return
			}
			dst.Set(reflect.ValueOf(conv).Convert(dst.Type()))
		}
	}
	section(configSchema.root, raw, reflect.ValueOf(cfg).Elem(), "")
	return errs
}

// convert turns a YAML, environment or flag value into the field's type.
func convert(kind fieldKind, v any) (any, error) {
	switch kind {
	case kindString:
		switch t := v.(type) {
		case string:
			return t, nil
		case int, int64, uint64, float64, bool:
			return fmt.Sprint(t), nil
		case nil:
			return "", nil
		}
		return nil, fmt.Errorf("expected a string, got %s", describe(v))
	case kindInt:
		switch t := v.(type) {
		case int:
			return t, nil
		case int64:
			return int(t), nil
		case uint64:
			return int(t), nil
		case float64:
			if t == math.Trunc(t) {
				return int(t), nil
			}
		case string:
			if n, err := strconv.Atoi(strings.TrimSpace(t)); err == nil {
				return n, nil
			}
		}
		return nil, fmt.Errorf("expected a whole number, got %s", describe(v))
	case kindFloat:
		switch t := v.(type) {
		case int:
			return float64(t), nil
		case int64:
			return float64(t), nil
		case uint64:
			return float64(t), nil
		case float64:
			return t, nil
		case string:
			if n, err := strconv.ParseFloat(strings.TrimSpace(t), 64); err == nil {
				return n, nil
			}
		}
		return nil, fmt.Errorf("expected a number, got %s", describe(v))
	case kindBool:
		switch t := v.(type) {
		case bool:
			return t, nil
		case string:
			if b, err := strconv.ParseBool(strings.TrimSpace(t)); err == nil {
				return b, nil
			}
		}
		return nil, fmt.Errorf("expected true or false, got %s", describe(v))
	case kindDuration:
		switch t := v.(type) {
		case time.Duration:
			return t, nil
		case string:
			if d, err := time.ParseDuration(strings.TrimSpace(t)); err == nil {
				return d, nil
			}
		case int:
			return time.Duration(t) * time.Second, nil
		case float64:
			return time.Duration(t * float64(time.Second)), nil
		}
		return nil, fmt.Errorf("expected a duration such as 60s or 2m, got %s", describe(v))
	case kindStrings:
		switch t := v.(type) {
		case []string:
			return t, nil
		case string:
			var out []string
			for _, s := range strings.Split(t, ",") {
				if s = strings.TrimSpace(s); s != "" {
					out = append(out, s)
				}
			}
			return out, nil
		case []any:
			out := make([]string, 0, len(t))
			for i, e := range t {
				s, ok := e.(string)
				if !ok {
					return nil, fmt.Errorf("expected a list of strings, item %d is %s", i+1, describe(e))
				}
				out = append(out, s)
			}
			return out, nil
		}
		return nil, fmt.Errorf("expected a list of strings, got %s", describe(v))
	}
	return nil, errors.New("unsupported setting type")
}

// describe names a value's type and shows it, in the user's terms.
func describe(v any) string {
	switch t := v.(type) {
	case nil:
		return "nothing (null)"
	case string:
		return fmt.Sprintf("the text %q", t)
	case bool:
		return fmt.Sprintf("the boolean %v", t)
	case int, int64, uint64, float64:
		return fmt.Sprintf("the number %v", t)
	case []any:
		return fmt.Sprintf("a list of %d item(s)", len(t))
	case map[string]any:
		return "a section (" + strings.Join(sortedKeys(t), ", ") + ")"
	}
	return fmt.Sprintf("%v", v)
}

// knownProviders are the built-in backends, every plugin on the search
// path, and the provider selected for this run.
func knownProviders(l *loaded) []string {
	known := append([]string{}, builtinProviders...)
	for _, f := range providers.ListNames(providers.SearchDirs(l.k.String("plugin_dir"))) {
		if !contains(known, f) {
			known = append(known, f)
		}
	}
	if p := l.k.String("provider"); p != "" && !contains(known, p) {
		known = append(known, p)
	}
	sort.Strings(known)
	return known
}

// validate checks ranges: a negative rate or a zero wait is a mistake,
// not a setting.
func validate(l *loaded, c *Config) configErrors {
	var errs configErrors
	check := func(ok bool, key, format string, args ...any) {
		if !ok {
			errs = append(errs, &ConfigError{Origin: l.origin(key), Key: key, Msg: fmt.Sprintf(format, args...)})
		}
	}
	check(c.Concurrency >= 1, "concurrency", "must be at least 1, got %d", c.Concurrency)
	// Each call in flight holds a worker, a stream to the plugin and its
	// buffers (5,000 held 520 MB and ran 3x slower than 16 with dryrun),
	// and no teacher's rate limit admits thousands at once: a typo, not a
	// plan.
	check(c.Concurrency <= maxConcurrency, "concurrency", "must be at most %d (calls in flight at once), got %d", maxConcurrency, c.Concurrency)
	check(c.RPM >= 0, "rpm", "must be 0 (no limit) or more, got %g", c.RPM)
	check(c.TPM >= 0, "tpm", "must be 0 (no limit) or more, got %g", c.TPM)
	check(c.RPMTotal >= 0, "rpm_total", "must be 0 (no limit) or more, got %g", c.RPMTotal)
	check(c.TPMTotal >= 0, "tpm_total", "must be 0 (no limit) or more, got %g", c.TPMTotal)
	if c.Shard != "" {
		// auto/N is resolved when a run starts: other commands read the
		// same config outside the Job.
		_, err := engine.ParseShard(c.Shard, func(string) string { return "0" })
		check(err == nil, "shard", "%v", err)
		check(c.Limit == 0, "limit", "cannot be used with shard %s: a limit per shard would not add up to one run (shard fewer ids instead)", c.Shard)
	}
	check(c.MaxRetries >= 0, "max_retries", "must be 0 or more, got %d", c.MaxRetries)
	check(c.FatalAfter >= 0, "fatal_after", "must be 0 (never stop early) or more, got %d", c.FatalAfter)
	check(c.MaxCalls >= 0, "max_calls", "must be 0 (no cap) or more, got %d", c.MaxCalls)
	check(c.Limit >= 0, "limit", "must be 0 (all samples) or more, got %d", c.Limit)
	check(c.MaxRetryWait > 0, "max_retry_wait", "must be more than 0, got %s", c.MaxRetryWait)
	check(c.CallTimeout >= 0, "call_timeout", "must be 0 (none) or more, got %s", c.CallTimeout)
	r := c.Health.MaxTeacherFailureRate
	check(r >= 0 && r <= 1, "health.max_teacher_failure_rate", "must be between 0 and 1 (a share, 0.1 = 10%%), got %g", r)
	switch c.GatingMode {
	case "strict", "lenient":
	default:
		check(false, "gating_mode", "%q: use strict or lenient", c.GatingMode)
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		check(false, "log_level", "%q: use debug, info, warn or error", c.LogLevel)
	}
	switch c.LogFormat {
	case "auto", "console", "json":
	default:
		check(false, "log_format", "%q: use auto, console or json", c.LogFormat)
	}
	return errs
}

func join(prefix, name string) string {
	if prefix == "" {
		return name
	}
	return prefix + "." + name
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}
