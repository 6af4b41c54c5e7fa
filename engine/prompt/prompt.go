// Package prompt loads the refinement template and renders one teacher
// prompt per sample.
package prompt

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"regexp"
	"strconv"
	"strings"

	"github.com/pgrules/pgrules/engine/inputs"
	"github.com/pgrules/pgrules/internal/suggest"
	"github.com/pgrules/pgrules/internal/textpos"
)

// Placeholders are the names a template may use, each as {name}.
var Placeholders = []string{"prompt", "draft_output", "critique_json", "rewrite_instructions", "payload_type"}

// Fields are the values of one sample's placeholders.
type Fields struct {
	Prompt              string
	DraftOutput         string
	CritiqueJSON        json.RawMessage
	RewriteInstructions []string
	PayloadType         string
}

// Template is a parsed refine template: literal text and placeholder
// names, alternating, so rendering never rescans the text.
type Template struct {
	Path   string
	SHA256 string
	parts  []part
}

type part struct {
	lit  string
	name string
}

// {name} where name looks like an identifier; JSON examples such as
// {"summary": ...} in a template are not placeholders.
var placeholderRE = regexp.MustCompile(`\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// Load reads a template from disk or, when fsys is non-nil, from fsys.
func Load(fsys fs.FS, path string) (*Template, error) {
	var b []byte
	var err error
	if fsys == nil {
		b, err = os.ReadFile(path)
	} else {
		b, err = fs.ReadFile(fsys, path)
	}
	if err != nil {
		return nil, fmt.Errorf("cannot read prompt template %s: %w", path, err)
	}
	return Parse(path, string(b))
}

// Parse checks that text uses only known placeholders and every one of
// them at least once; errors point at file:line:col.
func Parse(path, text string) (*Template, error) {
	sum := sha256.Sum256([]byte(text))
	t := &Template{Path: path, SHA256: hex.EncodeToString(sum[:])}
	known := map[string]bool{}
	for _, p := range Placeholders {
		known[p] = true
	}
	used := map[string]bool{}
	var errs []string
	last := 0
	for _, m := range placeholderRE.FindAllStringSubmatchIndex(text, -1) {
		name := text[m[2]:m[3]]
		if !known[name] {
			line, col := textpos.LineCol(text, m[0])
			hint := ""
			if s := suggest.Closest(name, Placeholders); s != "" {
				hint = "; did you mean {" + s + "}?"
			}
			errs = append(errs, fmt.Sprintf("%s:%d:%d: unknown placeholder {%s}%s (known: {%s})", path, line, col, name, hint, strings.Join(Placeholders, "}, {")))
			continue
		}
		used[name] = true
		t.parts = append(t.parts, part{lit: text[last:m[0]]}, part{name: name})
		last = m[1]
	}
	t.parts = append(t.parts, part{lit: text[last:]})
	for _, p := range Placeholders {
		if !used[p] {
			errs = append(errs, fmt.Sprintf("%s: placeholder {%s} is never used; the teacher would not see it", path, p))
		}
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("%s", strings.Join(errs, "\n"))
	}
	return t, nil
}

// Render fills the template for one sample.
func (t *Template) Render(f Fields) string {
	return t.Parts(f).String()
}

// Rendered is a prompt as the pieces it is made of. A re-gate only needs
// the prompt's hash (its cache key), so it is not joined into one string
// unless a teacher is asked.
type Rendered []string

// Parts renders the template's pieces without joining them.
func (t *Template) Parts(f Fields) Rendered {
	out := make(Rendered, 0, len(t.parts))
	for _, p := range t.parts {
		if p.name == "" {
			out = append(out, p.lit)
			continue
		}
		switch p.name {
		case "prompt":
			out = append(out, f.Prompt)
		case "draft_output":
			out = append(out, f.DraftOutput)
		case "critique_json":
			out = append(out, prettyJSON(f.CritiqueJSON))
		case "rewrite_instructions":
			out = append(out, numbered(f.RewriteInstructions))
		case "payload_type":
			out = append(out, f.PayloadType)
		}
	}
	return out
}

// Len is the prompt's length in bytes.
func (r Rendered) Len() int {
	n := 0
	for _, p := range r {
		n += len(p)
	}
	return n
}

// String joins the pieces: the prompt as the teacher gets it.
func (r Rendered) String() string { return strings.Join(r, "") }

func prettyJSON(raw json.RawMessage) string {
	if len(raw) == 0 {
		return "(no critique: keep what is right and fix what the requirements below ask for)"
	}
	if s, ok := indentObject(raw); ok {
		return s
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, raw, "", "  "); err != nil {
		return string(raw)
	}
	return buf.String()
}

func numbered(items []string) string {
	var b strings.Builder
	n := 0
	for _, it := range items {
		if strings.TrimSpace(it) == "" {
			continue
		}
		n++
		if n > 1 {
			b.WriteByte('\n')
		}
		b.WriteString(strconv.Itoa(n))
		b.WriteString(". ")
		b.WriteString(it)
	}
	if n == 0 {
		return "(none)"
	}
	return b.String()
}

// FieldsOf takes a joined sample's fields for the template; the sample
// must have a plan and a draft with text (the join checked it).
func FieldsOf(s inputs.Sample) Fields {
	f := Fields{Prompt: s.Plan.Prompt, DraftOutput: *s.Draft.OutputText, PayloadType: s.Plan.PayloadType}
	if s.Critique != nil && s.Critique.Raw != nil {
		f.CritiqueJSON = s.Critique.Raw
		f.RewriteInstructions = s.Critique.RewriteInstructions()
	}
	return f
}
