// Package yamlmsg says a YAML value of the wrong kind in the user's words,
// at its line and column. The decoder says it in Go's: "line 5: cannot
// unmarshal !!str `parse_f...` into []string", with no column, and with
// the Go type of a struct field where a person wrote a list.
package yamlmsg

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Problem is one value of the wrong kind: where, and what was wanted.
type Problem struct {
	Line, Col int
	Msg       string
}

var typeErrRE = regexp.MustCompile("^line (\\d+): cannot unmarshal !!(\\w+)(?: `([^`]*)`)? into (.+)$")

// Explain turns the "cannot unmarshal" errors of decoding root into
// problems, each naming the value by its path from root (prefix first:
// where root is in the file, "" at the top); ok is false when err is not
// such an error.
func Explain(root *yaml.Node, prefix string, err error) (out []Problem, ok bool) {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return nil, false
	}
	for _, e := range te.Errors {
		m := typeErrRE.FindStringSubmatch(e)
		if m == nil {
			return nil, false
		}
		line, _ := strconv.Atoi(m[1])
		p := Problem{Line: line, Col: 1}
		value, path := m[3], prefix
		if n, at := find(root, line, "!!"+m[2], prefix); n != nil {
			p.Col, value, path = n.Column, n.Value, at // the decoder cuts values short
		}
		p.Msg = fmt.Sprintf("expected %s, got %s", wanted(m[4]), got(m[2], value))
		if path = strings.TrimPrefix(path, "."); path != "" {
			p.Msg = path + ": " + p.Msg
		}
		out = append(out, p)
	}
	return out, len(out) > 0
}

// find is the deepest value on line with tag (a block list starts on the
// line of its first item, whose values are what a decoder complains
// about), and its path: keys joined by dots, list items by their index
// (gates[0].requires).
func find(n *yaml.Node, line int, tag, path string) (*yaml.Node, string) {
	if n == nil {
		return nil, ""
	}
	for i, c := range n.Content {
		at := path
		switch n.Kind {
		case yaml.MappingNode:
			if i%2 == 0 {
				continue // a key: never the value of the wrong kind
			}
			at = path + "." + n.Content[i-1].Value
		case yaml.SequenceNode:
			at = fmt.Sprintf("%s[%d]", path, i)
		}
		if f, fp := find(c, line, tag, at); f != nil {
			return f, fp
		}
	}
	if n.Line == line && n.Tag == tag && n.Kind != yaml.DocumentNode {
		return n, path
	}
	return nil, ""
}

func wanted(goType string) string {
	switch {
	case strings.HasPrefix(goType, "[]"):
		return "a list ([a, b] or one \"- item\" a line)"
	case goType == "bool", goType == "*bool":
		return "true or false"
	case strings.Contains(goType, "int"):
		return "a whole number"
	case strings.HasPrefix(goType, "float"):
		return "a number"
	case goType == "string", goType == "*string":
		return "text"
	}
	return "a mapping (key: value)"
}

func got(tag, value string) string {
	switch tag {
	case "str":
		return fmt.Sprintf("the text %q", value)
	case "seq":
		return "a list"
	case "map":
		return "a mapping"
	case "int", "float":
		return "the number " + value
	case "bool":
		return value
	case "null":
		return "nothing"
	}
	return "a !!" + tag
}
