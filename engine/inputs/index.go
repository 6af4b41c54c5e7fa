package inputs

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// Problem is a bad input line. It never stops a run: the line is skipped,
// or, when its id is known, the sample is rejected as invalid_input.
type Problem struct {
	File string `json:"file"`
	Line int    `json:"line"`
	Col  int    `json:"col,omitempty"`
	ID   string `json:"id,omitempty"`
	Msg  string `json:"error"`
}

func (p Problem) Error() string {
	if p.Col > 0 {
		return fmt.Sprintf("%s:%d:%d: %s", p.File, p.Line, p.Col, p.Msg)
	}
	return fmt.Sprintf("%s:%d: %s", p.File, p.Line, p.Msg)
}

type entry struct {
	off  int64
	size int
	line int
	// bad is set when the record has an id but a field of the wrong type.
	bad string
}

// File is an indexed JSONL input: where each id's record starts.
type File struct {
	Path     string
	SHA256   string
	Bytes    int64
	Records  int
	Problems []Problem

	f       *os.File
	entries map[string]entry
	order   []string
	decode  func([]byte) (string, error)
}

// kind describes how one of the three inputs is decoded and validated:
// decode parses a whole record and returns its id.
type kind struct {
	decode func(line []byte) (id string, err error)
}

// indexFile reads path once: it hashes it, finds each record's id and
// offset, and validates every record by decoding it fully, so a bad field
// is reported at start-up with its line rather than halfway through a run.
func indexFile(path string, k kind) (*File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read input %s: %w (check the path, or set it in pgrules.yaml)", path, errors.Unwrap(err))
	}
	fi, err := f.Stat()
	if err == nil && fi.IsDir() {
		f.Close()
		return nil, fmt.Errorf("cannot read input %s: it is a directory, expected a JSONL file", path)
	}
	h := sha256.New()
	r := bufio.NewReaderSize(io.TeeReader(f, h), 1<<20)
	ix := &File{Path: path, f: f, entries: map[string]entry{}, decode: k.decode}
	var off int64
	for lineNo := 1; ; lineNo++ {
		line, rerr := r.ReadBytes('\n')
		start := off
		off += int64(len(line))
		if len(line) > 0 {
			ix.add(line, start, lineNo)
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			f.Close()
			return nil, fmt.Errorf("%s:%d: read error: %w", path, lineNo, rerr)
		}
	}
	ix.Bytes = off
	ix.SHA256 = hex.EncodeToString(h.Sum(nil))
	return ix, nil
}

func (ix *File) add(line []byte, off int64, lineNo int) {
	trimmed := bytes.TrimSpace(line)
	if len(trimmed) == 0 {
		return
	}
	problem := func(col int, id, format string, args ...any) {
		ix.Problems = append(ix.Problems, Problem{File: ix.Path, Line: lineNo, Col: col, ID: id, Msg: fmt.Sprintf(format, args...)})
	}
	// The common case, a good record, costs one decode; only a bad one is
	// looked at again to say what is wrong with it.
	id, derr := ix.decode(trimmed)
	if derr == nil && strings.TrimSpace(id) != "" {
		if prev, dup := ix.entries[id]; dup {
			problem(0, id, "duplicate id %q (first seen on line %d); this line is ignored", id, prev.line)
			return
		}
		ix.entries[id] = entry{off: off, size: len(line), line: lineNo}
		ix.order = append(ix.order, id)
		ix.Records++
		return
	}
	var head struct {
		ID json.RawMessage `json:"id"`
	}
	if err := json.Unmarshal(trimmed, &head); err != nil {
		col := 0
		var se *json.SyntaxError
		if errors.As(err, &se) {
			col = int(se.Offset) + leadingSpace(line)
		}
		problem(col, "", "malformed JSON line (%s); the line is skipped: fix or remove it", describeJSONError(err))
		return
	}
	id = ""
	if len(head.ID) == 0 || string(head.ID) == "null" {
		problem(0, "", `record has no "id"; the line is skipped`)
		return
	}
	if err := json.Unmarshal(head.ID, &id); err != nil || strings.TrimSpace(id) == "" {
		problem(0, "", `"id" must be a non-empty string, got %s; the line is skipped`, truncate(string(head.ID), 40))
		return
	}
	if prev, dup := ix.entries[id]; dup {
		problem(0, id, "duplicate id %q (first seen on line %d); this line is ignored", id, prev.line)
		return
	}
	e := entry{off: off, size: len(line), line: lineNo}
	if derr != nil {
		e.bad = fmt.Sprintf("%s:%d: %s", ix.Path, lineNo, describeJSONError(derr))
		problem(0, id, "%s; sample %q is rejected as invalid_input", describeJSONError(derr), id)
	}
	ix.entries[id] = e
	ix.order = append(ix.order, id)
	ix.Records++
}

// read returns the raw line of id, or nil when the file has none.
func (ix *File) read(id string) (line []byte, e entry, ok bool, err error) {
	if ix == nil {
		return nil, entry{}, false, nil
	}
	e, ok = ix.entries[id]
	if !ok {
		return nil, e, false, nil
	}
	buf := make([]byte, e.size)
	if _, err := ix.f.ReadAt(buf, e.off); err != nil && !(errors.Is(err, io.EOF) && len(buf) == e.size) {
		return nil, e, true, fmt.Errorf("%s:%d: re-reading record %q: %w (was the file changed during the run?)", ix.Path, e.line, id, err)
	}
	return bytes.TrimSpace(buf), e, true, nil
}

// Has reports whether the file has a record for id.
func (ix *File) Has(id string) bool {
	if ix == nil {
		return false
	}
	_, ok := ix.entries[id]
	return ok
}

// Close releases the file.
func (ix *File) Close() error {
	if ix == nil || ix.f == nil {
		return nil
	}
	return ix.f.Close()
}

func leadingSpace(b []byte) int {
	return len(b) - len(bytes.TrimLeft(b, " \t\r"))
}

func describeJSONError(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		field := te.Field
		if field == "" {
			field = "record"
		}
		return fmt.Sprintf("field %q: expected %s, got JSON %s", field, goTypeName(te.Type.String()), te.Value)
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return se.Error()
	}
	return err.Error()
}

func goTypeName(t string) string {
	switch {
	case strings.HasPrefix(t, "[]"):
		return "an array of " + goTypeName(t[2:]) + "s"
	case t == "string", t == "*string":
		return "string"
	case strings.Contains(t, "int"), strings.Contains(t, "float"):
		return "number"
	case t == "bool":
		return "boolean"
	default:
		return "object"
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
