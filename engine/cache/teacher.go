package cache

import (
	"encoding/json"
	"strconv"
	"unicode/utf8"

	"github.com/pgrules/pgrules/internal/jsonscan"
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
