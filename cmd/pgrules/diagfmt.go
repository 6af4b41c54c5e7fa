package main

import (
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/pgrules/pgrules/rules"
)

// The output formats of lint and test-rules, after golangci-lint's and
// conftest's: text for people, json for scripts, junit and sarif for CI
// systems and code scanning, github for workflow annotations.
var diagFormats = []string{"text", "json", "junit", "sarif", "github"}

func checkFormat(f string) error {
	for _, k := range diagFormats {
		if f == k {
			return nil
		}
	}
	return fmt.Errorf("--format %q: use one of %s", f, strings.Join(diagFormats, ", "))
}

// diagnostic is one thing a tool says about a place in a file.
type diagnostic struct {
	Severity string `json:"severity"` // error, warning or info
	Rule     string `json:"rule"`
	File     string `json:"file"`
	Line     int    `json:"line,omitempty"`
	Col      int    `json:"column,omitempty"`
	Message  string `json:"message"`
	// Name is what a JUnit test case is called (a rule case's name).
	Name string `json:"name,omitempty"`
	// Passed marks a JUnit case without a failure (test-rules only).
	Passed bool `json:"passed,omitempty"`
}

func (d diagnostic) where() string {
	s := d.File
	if d.Line > 0 {
		s += ":" + strconv.Itoa(d.Line)
		if d.Col > 0 {
			s += ":" + strconv.Itoa(d.Col)
		}
	}
	return s
}

var posPrefix = regexp.MustCompile(`^(.+?):(\d+)(?::(\d+))?: (.*)$`)

// loadDiagnostics turns an error loading the rules into diagnostics at
// their file:line:col.
func loadDiagnostics(err error) []diagnostic {
	var le *rules.LoadError
	if errors.As(err, &le) {
		var out []diagnostic
		for _, p := range le.Problems {
			out = append(out, diagnostic{Severity: "error", Rule: "load-error", File: p.Pos.File, Line: p.Pos.Line, Col: p.Pos.Col, Message: p.Msg})
		}
		return out
	}
	var out []diagnostic
	for _, line := range strings.Split(err.Error(), "\n") {
		d := diagnostic{Severity: "error", Rule: "load-error", Message: line}
		if m := posPrefix.FindStringSubmatch(line); m != nil {
			d.File, d.Message = m[1], m[4]
			d.Line, _ = strconv.Atoi(m[2])
			d.Col, _ = strconv.Atoi(m[3])
		}
		out = append(out, d)
	}
	return out
}

// writeDiagnostics prints diags in a machine format; summary goes into the
// json document as it is.
func writeDiagnostics(w io.Writer, format, tool string, diags []diagnostic, ruleDocs map[string]string, summary any) error {
	switch format {
	case "json":
		if diags == nil {
			diags = []diagnostic{}
		}
		return writeJSON(w, map[string]any{"tool": "pgrules " + tool, "version": version, "diagnostics": diags, "summary": summary})
	case "github":
		for _, d := range diags {
			if d.Passed {
				continue
			}
			level := map[string]string{"error": "error", "warning": "warning"}[d.Severity]
			if level == "" {
				level = "notice"
			}
			props := []string{"file=" + ghProp(d.File)}
			if d.Line > 0 {
				props = append(props, "line="+strconv.Itoa(d.Line))
			}
			if d.Col > 0 {
				props = append(props, "col="+strconv.Itoa(d.Col))
			}
			props = append(props, "title="+ghProp("pgrules "+tool+": "+d.Rule))
			fmt.Fprintf(w, "::%s %s::%s\n", level, strings.Join(props, ","), ghData(d.Message))
		}
		return nil
	case "sarif":
		return writeSARIF(w, tool, diags, ruleDocs)
	case "junit":
		return writeDiagJUnit(w, tool, diags)
	}
	for _, d := range diags {
		fmt.Fprintf(w, "%s: %s: %s\n", d.where(), d.Severity, d.Message)
	}
	return nil
}

// GitHub workflow commands escape %, CR and LF in data, and also : and ,
// in properties.
func ghData(s string) string {
	return strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A").Replace(s)
}

func ghProp(s string) string {
	return strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A", ":", "%3A", ",", "%2C").Replace(s)
}

// writeSARIF writes SARIF 2.1.0, what GitHub code scanning and most CI
// dashboards ingest.
func writeSARIF(w io.Writer, tool string, diags []diagnostic, ruleDocs map[string]string) error {
	type msg struct {
		Text string `json:"text"`
	}
	type rule struct {
		ID   string `json:"id"`
		Desc msg    `json:"shortDescription"`
	}
	type region struct {
		StartLine   int `json:"startLine,omitempty"`
		StartColumn int `json:"startColumn,omitempty"`
	}
	type location struct {
		Physical struct {
			Artifact struct {
				URI string `json:"uri"`
			} `json:"artifactLocation"`
			Region *region `json:"region,omitempty"`
		} `json:"physicalLocation"`
	}
	type result struct {
		RuleID    string     `json:"ruleId"`
		Level     string     `json:"level"`
		Message   msg        `json:"message"`
		Locations []location `json:"locations"`
	}
	ids := map[string]bool{}
	results := []result{}
	for _, d := range diags {
		if d.Passed {
			continue
		}
		ids[d.Rule] = true
		level := map[string]string{"error": "error", "warning": "warning"}[d.Severity]
		if level == "" {
			level = "note"
		}
		var loc location
		loc.Physical.Artifact.URI = d.File
		if d.Line > 0 {
			loc.Physical.Region = &region{StartLine: d.Line, StartColumn: d.Col}
		}
		text := d.Message
		if d.Name != "" {
			text = d.Name + ": " + text
		}
		results = append(results, result{RuleID: d.Rule, Level: level, Message: msg{text}, Locations: []location{loc}})
	}
	var rs []rule
	for id := range ids {
		doc := ruleDocs[id]
		if doc == "" {
			doc = id
		}
		rs = append(rs, rule{ID: id, Desc: msg{doc}})
	}
	sort.Slice(rs, func(i, j int) bool { return rs[i].ID < rs[j].ID })
	if rs == nil {
		rs = []rule{}
	}
	doc := map[string]any{
		"$schema": "https://json.schemastore.org/sarif-2.1.0.json",
		"version": "2.1.0",
		"runs": []any{map[string]any{
			"tool": map[string]any{"driver": map[string]any{
				"name": "pgrules " + tool, "version": version, "informationUri": "https://github.com/pgrules/pgrules", "rules": rs,
			}},
			"results": results,
		}},
	}
	return writeJSON(w, doc)
}

// writeJSON prints v as the JSON of every --json and --format json:
// indented, and with <, > and & as they are (the reader is a script or a
// person, never an HTML page).
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

type junitSuite struct {
	XMLName  xml.Name    `xml:"testsuite"`
	Name     string      `xml:"name,attr"`
	Tests    int         `xml:"tests,attr"`
	Failures int         `xml:"failures,attr"`
	Errors   int         `xml:"errors,attr"`
	Time     string      `xml:"time,attr,omitempty"`
	Cases    []junitCase `xml:"testcase"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Failure   *junitFailure `xml:"failure,omitempty"`
}

type junitFailure struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr,omitempty"`
	Text    string `xml:",chardata"`
}

// writeDiagJUnit: one test case per diagnostic (a failure unless it
// passed or is only info), as conftest does for policy findings.
func writeDiagJUnit(w io.Writer, tool string, diags []diagnostic) error {
	s := junitSuite{Name: "pgrules " + tool}
	for _, d := range diags {
		name := d.Name
		if name == "" {
			name = d.where() + " " + d.Rule
		}
		c := junitCase{Name: name, Classname: d.File}
		if !d.Passed && d.Severity != "info" {
			// A case's headline is where it is (its name is the test's);
			// a finding's is what it says.
			headline := d.where()
			if d.Name == "" {
				headline += ": " + d.Message
			}
			c.Failure = &junitFailure{Message: headline, Type: d.Severity, Text: d.Message}
			if d.Severity == "error" && d.Rule == "load-error" {
				s.Errors++
			} else {
				s.Failures++
			}
		}
		s.Cases = append(s.Cases, c)
	}
	s.Tests = len(s.Cases)
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(s); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}
