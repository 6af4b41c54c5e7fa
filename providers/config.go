package providers

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"time"

	"github.com/pgrules/pgrules/internal/suggest"
)

// ConfigError is a bad setting in a plugin's section of the config. Path
// is relative to that section ("generation.temprature"); the host turns it
// into providers.<name>.<path> and says where it was set (file:line:col,
// environment variable or flag).
type ConfigError struct {
	Path string
	Msg  string
}

func (e *ConfigError) Error() string {
	if e.Path == "" {
		return e.Msg
	}
	return e.Path + ": " + e.Msg
}

// DecodeConfig decodes a plugin's config JSON into dst (a pointer to a
// struct with json tags) strictly: an unknown key at any level is an error
// that names the keys known at that level and the nearest one; a value of
// the wrong type names the type wanted. Fields whose type implements
// json.Unmarshaler decide for themselves. Errors are *ConfigError.
func DecodeConfig(raw []byte, dst any) error {
	if len(bytes.TrimSpace(raw)) == 0 || string(bytes.TrimSpace(raw)) == "null" {
		return nil
	}
	var tree any
	if err := json.Unmarshal(raw, &tree); err != nil {
		return &ConfigError{Msg: "not a JSON object: " + err.Error()}
	}
	if err := checkValue(tree, reflect.TypeOf(dst).Elem(), ""); err != nil {
		return err
	}
	if err := json.Unmarshal(raw, dst); err != nil {
		return &ConfigError{Msg: err.Error()}
	}
	return nil
}

var unmarshalerType = reflect.TypeOf((*json.Unmarshaler)(nil)).Elem()

func checkValue(v any, t reflect.Type, path string) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if reflect.PointerTo(t).Implements(unmarshalerType) {
		b, _ := json.Marshal(v)
		if err := json.Unmarshal(b, reflect.New(t).Interface()); err != nil {
			return &ConfigError{Path: path, Msg: strings.TrimPrefix(err.Error(), "json: ")}
		}
		return nil
	}
	if v == nil {
		return nil
	}
	want := func(what string) error {
		return &ConfigError{Path: path, Msg: fmt.Sprintf("expected %s, got %s", what, describeJSON(v))}
	}
	switch t.Kind() {
	case reflect.Struct:
		m, ok := v.(map[string]any)
		if !ok {
			return want("a section of settings")
		}
		fields := map[string]reflect.StructField{}
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			name := strings.Split(f.Tag.Get("json"), ",")[0]
			if name == "" || name == "-" {
				continue
			}
			fields[name] = f
		}
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			f, ok := fields[k]
			sub := join(path, k)
			if !ok {
				known := make([]string, 0, len(fields))
				for n := range fields {
					known = append(known, n)
				}
				sort.Strings(known)
				msg := "unknown setting"
				if s := Suggest(k, known); s != "" {
					msg += fmt.Sprintf("; did you mean %s?", s)
				}
				where := "here"
				if path != "" {
					where = "under " + path
				}
				return &ConfigError{Path: sub, Msg: fmt.Sprintf("%s (known %s: %s)", msg, where, strings.Join(known, ", "))}
			}
			if err := checkValue(m[k], f.Type, sub); err != nil {
				return err
			}
		}
	case reflect.Map:
		m, ok := v.(map[string]any)
		if !ok {
			return want("a map")
		}
		for k, e := range m {
			if err := checkValue(e, t.Elem(), join(path, k)); err != nil {
				return err
			}
		}
	case reflect.Slice:
		l, ok := v.([]any)
		if !ok {
			return want("a list")
		}
		for i, e := range l {
			if err := checkValue(e, t.Elem(), fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
	case reflect.String:
		if _, ok := v.(string); !ok {
			return want("a string")
		}
	case reflect.Bool:
		if _, ok := v.(bool); !ok {
			return want("true or false")
		}
	case reflect.Int, reflect.Int32, reflect.Int64, reflect.Uint, reflect.Uint32, reflect.Uint64:
		n, ok := v.(float64)
		if !ok || n != float64(int64(n)) {
			return want("a whole number")
		}
	case reflect.Float32, reflect.Float64:
		if _, ok := v.(float64); !ok {
			return want("a number")
		}
	}
	return nil
}

func describeJSON(v any) string {
	switch t := v.(type) {
	case string:
		return fmt.Sprintf("the text %q", t)
	case bool:
		return fmt.Sprintf("the boolean %v", t)
	case float64:
		return fmt.Sprintf("the number %v", t)
	case []any:
		return fmt.Sprintf("a list of %d item(s)", len(t))
	case map[string]any:
		return "a section"
	}
	return fmt.Sprint(v)
}

func join(prefix, name string) string {
	if prefix == "" {
		return name
	}
	return prefix + "." + name
}

// StringList is a list setting that also accepts one comma-separated
// string, as an environment variable writes it (PGRULES_..._MODELS=a,b).
type StringList []string

// UnmarshalJSON accepts ["a", "b"] or "a,b".
func (l *StringList) UnmarshalJSON(b []byte) error {
	var s string
	if json.Unmarshal(b, &s) == nil {
		*l = nil
		for _, p := range strings.Split(s, ",") {
			if p = strings.TrimSpace(p); p != "" {
				*l = append(*l, p)
			}
		}
		return nil
	}
	var list []string
	if err := json.Unmarshal(b, &list); err != nil {
		return fmt.Errorf("expected a list of strings or one comma-separated string")
	}
	*l = list
	return nil
}

// Duration is a duration setting: "90s", "5m", or a number of seconds.
type Duration time.Duration

// UnmarshalJSON accepts "90s" or 90.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if json.Unmarshal(b, &s) == nil {
		v, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("expected a duration such as \"90s\" or \"5m\", got %q", s)
		}
		*d = Duration(v)
		return nil
	}
	var n float64
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("expected a duration such as \"90s\" or \"5m\"")
	}
	*d = Duration(time.Duration(n * float64(time.Second)))
	return nil
}

// Suggest returns the candidate nearest to s when it is near enough to be
// a typo, else "": for a plugin's own "did you mean" in a ConfigError.
func Suggest(s string, candidates []string) string { return suggest.Closest(s, candidates) }
