package inputs

import (
	"bytes"
	"encoding/json"
	"strings"

	"github.com/pgrules/pgrules/internal/jsonscan"
)

// The fast decoders below read the three record kinds from their members.
// Each returns ok=false when it cannot be sure it agrees with
// encoding/json — a key that differs from a field only in case (which
// encoding/json would accept), a value of another type, the flat critique
// shape — and the caller then uses encoding/json.

// field looks a raw key up among names; fallback is set when the key might
// still mean one of them to encoding/json (escapes, other case).
func field(key []byte, names []string) (idx int, fallback bool) {
	for i, n := range names {
		if string(key) == n {
			return i, false
		}
	}
	if strings.IndexByte(string(key), '\\') >= 0 {
		return -1, true
	}
	for _, n := range names {
		if strings.EqualFold(string(key), n) {
			return -1, true
		}
	}
	return -1, false
}

var planFields = []string{"id", "payload_type", "category", "difficulty", "region_tags", "template_version", "template_name", "prompt", "location", "created_by", "seed"}

func fastPlan(line []byte) (p Plan, ok bool) { return fastPlanMode(line, true) }

// fastPlanMode with decode false only checks types where a value is big
// (the prompt): indexing needs the id and the verdict, not the text.
func fastPlanMode(line []byte, decode bool) (p Plan, ok bool) {
	ok = true
	// The prompt, most of the line, is decoded as it is checked: with
	// Members and StringOf, a prompt with an escape was read three times
	// (checked, searched for a backslash, unescaped).
	var prompt jsonscan.Decoded
	dst := &prompt
	if !decode {
		dst = nil
	}
	valid := jsonscan.MembersDecoding(line, "prompt", dst, func(key, v []byte) {
		if !ok {
			return
		}
		i, fb := field(key, planFields)
		if fb {
			ok = false
			return
		}
		var dst *string
		switch i {
		case 0:
			dst = &p.ID
		case 1:
			dst = &p.PayloadType
		case 2:
			dst = &p.Category
		case 3:
			dst = &p.Difficulty
		case 4:
			tags, good := jsonscan.StringsOf(v)
			p.RegionTags, ok = tags, good
			return
		case 5:
			dst = &p.TemplateVersion
		case 6:
			dst = &p.TemplateName
		case 7:
			if !decode {
				ok = isType(v, 's')
				return
			}
			// A "prompt" that is not a string (MembersDecoding decodes
			// those): null leaves the text decoded so far, as in
			// encoding/json; anything else is refused. (A key in another
			// case or with an escape is left to encoding/json: field.)
			dst = &p.Prompt
		case 8:
			ok = fastLocation(v, &p)
			return
		case 9:
			dst = &p.CreatedBy
		case 10:
			// seed is not used by a run; only its type is checked.
			ok = isType(v, 'i')
			return
		default:
			return
		}
		s, isNull, good := jsonscan.StringOf(v)
		ok = good
		if !isNull { // null leaves a string as it was, as with encoding/json
			*dst = s
		}
	})
	if prompt.Seen {
		p.Prompt = prompt.Value
	}
	return p, ok && valid
}

var locationFields = []string{"country", "city", "region"}

func fastLocation(v []byte, p *Plan) bool {
	if string(v) == "null" {
		p.Location = nil
		return true
	}
	if !isType(v, 'o') {
		return false
	}
	loc := &Location{}
	ok := true
	valid := jsonscan.Members(v, func(key, val []byte) {
		i, fb := field(key, locationFields)
		if fb {
			ok = false
			return
		}
		if i < 0 {
			return
		}
		s, isNull, good := jsonscan.StringOf(val)
		ok = ok && good
		if isNull {
			return
		}
		switch i {
		case 0:
			loc.Country = s
		case 1:
			loc.City = s
		case 2:
			loc.Region = s
		}
	})
	p.Location = loc
	return ok && valid
}

var draftFields = []string{"id", "output_text", "prompt", "prompt_plan", "contract", "teacher"}

// fastDraftText decodes a draft line but for the draft's prompt, which a
// run never reads (it renders the plan's): a tenth of a draft's bytes.
func fastDraftText(line []byte) (d Draft, ok bool) { return fastDraftMode(line, true, false) }

// fastDraftMode with decode false checks the text's type but does not
// unescape it (most of a draft line is its output_text), and likewise the
// prompt's with decodePrompt false.
func fastDraftMode(line []byte, decode, decodePrompt bool) (d Draft, ok bool) {
	ok = true
	// The text, most of the line, is decoded as it is checked.
	var text jsonscan.Decoded
	dst := &text
	if !decode {
		dst = nil
	}
	valid := jsonscan.MembersDecoding(line, "output_text", dst, func(key, v []byte) {
		if !ok {
			return
		}
		i, fb := field(key, draftFields)
		if fb {
			ok = false
			return
		}
		switch i {
		case 0:
			ok = setString(&d.ID, v)
		case 1:
			if !decode {
				ok = isType(v, 's')
				empty := ""
				d.OutputText = &empty
				if string(v) == "null" {
					d.OutputText = nil
				}
				return
			}
			// Not a string (MembersDecoding decodes those): null, or
			// not a draft's.
			text.Seen = false
			s, isNull, good := jsonscan.StringOf(v)
			ok = good
			if isNull {
				d.OutputText = nil
			} else {
				d.OutputText = &s
			}
		case 2:
			if !decodePrompt {
				ok = isType(v, 's')
				return
			}
			ok = setString(&d.Prompt, v)
		}
		// prompt_plan, contract, teacher: any JSON; nothing downstream reads them.
	})
	if text.Seen {
		d.OutputText = &text.Value
	}
	return d, ok && valid
}

var critiqueTop = []string{"id", "draft_id", "critique", "verdict"}

// fastCritiqueMode with decode false leaves the critique object undecoded
// when it can (see critiqueVerdict): for loading a line the index has
// already decoded.
func fastCritiqueMode(line []byte, decode bool) (rec *CritiqueRecord, ok bool) {
	rec, body, ok := critiqueLine(line)
	if !ok || body == nil {
		return rec, ok
	}
	if !decode {
		// Only the verdict, where the object is plain; Body decodes the
		// rest from Raw if it is ever asked for.
		if v, plain := critiqueVerdict(body); plain {
			rec.verdict, rec.Raw = v, bytes.Clone(body)
			return rec, true
		}
	}
	c, good := fastCritiqueBody(body, true)
	if !good {
		return nil, false
	}
	// A copy: the line lives in a memory-mapped file, and the critique
	// outlives the load (it is rendered into the prompt).
	rec.body, rec.verdict, rec.Raw = c, c.Verdict, bytes.Clone(body)
	return rec, true
}

// checkCritique is fastCritiqueMode for the index, which keeps only the
// id and whether the line is good: it checks what a full decode checks,
// and builds none of the values (they were most of indexing the critiques:
// 0.45 s of CPU at 100k, for a tenth of the bytes). The record's Raw is
// the line's own bytes: it must not outlive the scan of the line.
func checkCritique(line []byte) (rec *CritiqueRecord, ok bool) {
	rec, body, ok := critiqueLine(line)
	if !ok || body == nil {
		return rec, ok
	}
	c, good := fastCritiqueBody(body, false)
	if !good {
		return nil, false
	}
	rec.verdict, rec.Raw = c.Verdict, body
	return rec, true
}

// critiqueLine reads the top level of a critique line: the record with
// its ids, and the critique object (nil when absent or null).
func critiqueLine(line []byte) (rec *CritiqueRecord, body []byte, ok bool) {
	rec = &CritiqueRecord{}
	ok = true
	// decodeCritique reads the top level as a map: the last of duplicate
	// keys wins as a whole, so values are decoded after the walk.
	var rawID, rawDraftID []byte
	nested, flat := false, false
	valid := jsonscan.Members(line, func(key, v []byte) {
		if !ok {
			return
		}
		i, fb := field(key, critiqueTop)
		if fb {
			ok = false
			return
		}
		switch i {
		case 0:
			rawID = v
		case 1:
			rawDraftID = v
		case 2:
			body, nested = v, true
		case 3:
			flat = true
		}
	})
	if !ok || !valid {
		return nil, nil, false
	}
	// A non-string id is ignored, as it always was: the draft_id or the
	// line's problems decide.
	if rawID != nil {
		if s, _, good := jsonscan.StringOf(rawID); good {
			rec.ID = s
		}
	}
	if rawDraftID != nil && !setString(&rec.DraftID, rawDraftID) {
		return nil, nil, false
	}
	if !nested {
		if flat {
			return nil, nil, false // the flat shape is rare: encoding/json reads it
		}
		return rec, nil, true
	}
	if string(body) == "null" {
		return rec, nil, true
	}
	return rec, body, true
}

// critiqueVerdict reads the verdict of a critique object whose line the
// index has decoded whole already (so its other members are known good):
// false when a key needs encoding/json's case-insensitive matching or the
// verdict is not a string or null, which fastCritiqueBody then decides.
func critiqueVerdict(body []byte) (verdict string, plain bool) {
	if !isType(body, 'o') {
		return "", false
	}
	plain = true
	valid := jsonscan.Members(body, func(key, v []byte) {
		if !plain {
			return
		}
		i, fb := field(key, critiqueFields)
		switch {
		case fb:
			plain = false
		case i == 0:
			plain = setString(&verdict, v)
		}
	})
	return verdict, plain && valid
}

var critiqueFields = []string{"verdict", "issues", "scores", "hallucination", "verification", "schema", "rewrite_instructions"}

// fastCritiqueBody decodes a critique object; with build false it only
// checks it, as fully, and keeps the verdict alone: the scanner has
// checked every string's escapes, so a string's type is as good as its
// decoding (the index keeps no value, and building them was most of
// indexing the critiques).
func fastCritiqueBody(body []byte, build bool) (*Critique, bool) {
	return fastCritiqueBodyOf(body, build, build)
}

// fastCritiqueBodyOf is fastCritiqueBody building the rewrite instructions
// when instructions is set, and the rest when build is.
func fastCritiqueBodyOf(body []byte, build, instructions bool) (*Critique, bool) {
	if !isType(body, 'o') {
		return nil, false
	}
	c := &Critique{}
	clone := func(v []byte) json.RawMessage {
		if !build {
			return nil
		}
		return bytes.Clone(v)
	}
	ok := true
	valid := jsonscan.Members(body, func(key, v []byte) {
		if !ok {
			return
		}
		i, fb := field(key, critiqueFields)
		if fb {
			ok = false
			return
		}
		switch i {
		case 0:
			ok = setString(&c.Verdict, v)
		case 1:
			c.Issues, ok = fastIssues(v, build)
		case 2:
			c.Scores = clone(v)
		case 3:
			c.Hallucination = clone(v)
		case 4:
			c.Verification = clone(v)
		case 5:
			c.Schema = clone(v)
		case 6:
			if instructions {
				c.RewriteInstructions, ok = jsonscan.StringsOf(v)
			} else {
				ok = stringsOK(v)
			}
		}
	})
	return c, ok && valid
}

// stringsOK is jsonscan.StringsOf's verdict.
func stringsOK(v []byte) bool {
	if string(v) == "null" {
		return true
	}
	if len(v) == 0 || v[0] != '[' {
		return false
	}
	return jsonscan.Elements(v, func(item []byte) bool { return isType(item, 's') })
}

var issueFields = []string{"type", "severity", "message", "evidence_path"}

// fastIssues decodes the issues, or with build false only checks them.
func fastIssues(v []byte, build bool) ([]Issue, bool) {
	if string(v) == "null" {
		return nil, true
	}
	if !isType(v, 'a') {
		return nil, false
	}
	out := []Issue{}
	ok := jsonscan.Elements(v, func(item []byte) bool {
		var is Issue
		if string(item) != "null" {
			if !isType(item, 'o') {
				return false
			}
			good := true
			if !jsonscan.Members(item, func(key, val []byte) {
				i, fb := field(key, issueFields)
				if fb {
					good = false
					return
				}
				if i < 0 {
					return
				}
				if !build {
					good = good && isType(val, 's')
					return
				}
				str, isNull, ok := jsonscan.StringOf(val)
				good = good && ok
				if isNull {
					return
				}
				switch i {
				case 0:
					is.Type = str
				case 1:
					is.Severity = str
				case 2:
					is.Message = str
				case 3:
					is.EvidencePath = str
				}
			}) || !good {
				return false
			}
		}
		if build {
			out = append(out, is)
		}
		return true
	})
	if !ok {
		return nil, false
	}
	return out, true
}

// setString decodes a string value into dst; null leaves dst as it was,
// as with encoding/json.
func setString(dst *string, v []byte) bool {
	s, isNull, ok := jsonscan.StringOf(v)
	if ok && !isNull {
		*dst = s
	}
	return ok
}
