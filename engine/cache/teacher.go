package cache

import (
	"encoding/json"
	"math"
	"strconv"
	"unicode/utf8"

	"github.com/pgrules/pgrules/internal/jsonscan"
	"github.com/pgrules/pgrules/internal/pyjson"
	"github.com/pgrules/pgrules/providers"
)

// decodeTeacher decodes a cached answer's teacher block, which every
// cache hit reads: the fields pgrules writes are decoded by walking the
// members (json.Unmarshal's reflection was 2.8 % of a warm re-gate's
// CPU). Anything else — a key it does not write, a value of another
// type, fallbacks, invalid UTF-8 — is left to json.Unmarshal, so the
// result is always what json.Unmarshal gives.
func decodeTeacher(b []byte, r *providers.Response) error {
	if fastTeacher(b, r) {
		return nil
	}
	*r = providers.Response{}
	return json.Unmarshal(b, r)
}

func fastTeacher(b []byte, r *providers.Response) bool {
	if !utf8.Valid(b) {
		return false
	}
	ok := true
	str := func(dst *string, v []byte) {
		s, null, good := jsonscan.StringOf(v)
		if !good {
			ok = false
		} else if !null {
			*dst = s
		}
	}
	integer := func(v []byte) int64 {
		n, err := strconv.ParseInt(string(v), 10, 64)
		if err != nil {
			ok = false
		}
		return n
	}
	float := func(v []byte) float64 {
		f, err := strconv.ParseFloat(string(v), 64)
		if err != nil {
			ok = false
		}
		return f
	}
	null := func(v []byte) bool { return string(v) == "null" }
	valid := jsonscan.Members(b, func(key, v []byte) {
		switch string(key) {
		case "provider":
			str(&r.Provider, v)
		case "selected_model":
			str(&r.SelectedModel, v)
		case "chosen_model":
			str(&r.ChosenModel, v)
		case "request_id":
			str(&r.RequestID, v)
		case "finish_reason":
			str(&r.FinishReason, v)
		case "attempted_models":
			var good bool
			if r.AttemptedModels, good = jsonscan.StringsOf(v); !good {
				ok = false
			}
		case "latency_s":
			if !null(v) {
				r.LatencySeconds = float(v)
			}
		case "cost_usd":
			r.CostUSD = nil
			if !null(v) {
				f := float(v)
				r.CostUSD = &f
			}
		case "secrets_redacted":
			if !null(v) {
				r.SecretsRedacted = int(integer(v))
			}
		case "usage":
			r.Usage = nil
			if null(v) {
				return
			}
			u := &providers.Usage{}
			inner := jsonscan.Members(v, func(k, n []byte) {
				switch string(k) {
				case "prompt_tokens":
					u.PromptTokens = integer(n)
				case "completion_tokens":
					u.CompletionTokens = integer(n)
				case "total_tokens":
					u.TotalTokens = integer(n)
				default:
					ok = false
				}
			})
			ok = ok && inner
			r.Usage = u
		default: // fallbacks (rare) and anything pgrules does not write
			ok = false
		}
	})
	return valid && ok
}

// encodeTeacher writes r as json.Marshal does — the same members in the
// same order, numbers byte for byte — but for strings, which it writes
// as Python does (pyjson: no HTML escapes), so that they decode to the
// same values. json.Marshal's reflection was 42 % of Store, which every
// answer a first run gets goes through. A number JSON cannot hold is
// json.Marshal's to refuse.
func encodeTeacher(r *providers.Response) ([]byte, error) {
	if !finite(r.LatencySeconds) || r.CostUSD != nil && !finite(*r.CostUSD) {
		return json.Marshal(r)
	}
	b := make([]byte, 0, 320)
	b = appendMember(b, `{"provider":`, r.Provider)
	b = appendMember(b, `,"selected_model":`, r.SelectedModel)
	b = appendMember(b, `,"chosen_model":`, r.ChosenModel)
	b = append(b, `,"attempted_models":`...)
	if r.AttemptedModels == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i, m := range r.AttemptedModels {
			if i > 0 {
				b = append(b, ',')
			}
			b = pyjson.AppendString(b, m)
		}
		b = append(b, ']')
	}
	if len(r.Fallbacks) > 0 { // rare: reflection will do
		fb, err := json.Marshal(r.Fallbacks)
		if err != nil {
			return nil, err
		}
		b = append(b, `,"fallbacks":`...)
		b = append(b, fb...)
	}
	if r.RequestID != "" {
		b = appendMember(b, `,"request_id":`, r.RequestID)
	}
	b = append(b, `,"latency_s":`...)
	b = pyjson.AppendFloat(b, r.LatencySeconds)
	b = append(b, `,"usage":`...)
	if u := r.Usage; u == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, `{"prompt_tokens":`...)
		b = strconv.AppendInt(b, u.PromptTokens, 10)
		b = append(b, `,"completion_tokens":`...)
		b = strconv.AppendInt(b, u.CompletionTokens, 10)
		b = append(b, `,"total_tokens":`...)
		b = strconv.AppendInt(b, u.TotalTokens, 10)
		b = append(b, '}')
	}
	if r.CostUSD != nil {
		b = append(b, `,"cost_usd":`...)
		b = pyjson.AppendFloat(b, *r.CostUSD)
	}
	if r.FinishReason != "" {
		b = appendMember(b, `,"finish_reason":`, r.FinishReason)
	}
	if r.SecretsRedacted != 0 {
		b = append(b, `,"secrets_redacted":`...)
		b = strconv.AppendInt(b, int64(r.SecretsRedacted), 10)
	}
	return append(b, '}'), nil
}

func appendMember(b []byte, key, s string) []byte {
	return pyjson.AppendString(append(b, key...), s)
}

func finite(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }
