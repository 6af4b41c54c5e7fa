package inputs

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"unicode/utf8"
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
	// salvaged: the line does not decode and its id was read from the raw
	// text; a later good line for the same id takes its place.
	salvaged bool
	problem  int // index in Problems of the salvaged line's problem, or -1
}

// File is an indexed JSONL input: where each id's record starts.
type File struct {
	Path    string
	SHA256  string
	Bytes   int64
	Records int
	// Problems holds the first MaxProblemsKept bad lines; ProblemCount
	// counts them all. A file of a million broken lines costs a counter,
	// not a million messages.
	Problems     []Problem
	ProblemCount int

	// f is where records are read back from: the input itself, or a spool
	// copy when the input cannot seek (a pipe, a FIFO, <(process)).
	f       *os.File
	spooled bool
	entries map[string]entry
	order   []string
	decode  func([]byte) (string, error)
}

// MaxProblemsKept bounds the problems kept (and logged) per input file.
const MaxProblemsKept = 100

var bom = []byte("\xEF\xBB\xBF")

// kind describes how one of the three inputs is decoded and validated:
// decode parses a whole record and returns its id.
type kind struct {
	decode func(line []byte) (id string, err error)
}

// indexFile reads path once: it hashes it, finds each record's id and
// offset, and validates every record by decoding it fully, so a bad field
// is reported at start-up with its line rather than halfway through a run.
// An input that cannot seek is copied to a spool file as it is read. Every
// blocking step (opening a FIFO that has no writer yet, reading a pipe)
// ends when ctx does.
func indexFile(ctx context.Context, path string, k kind) (ix *File, err error) {
	f, err := openInput(ctx, path)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err == nil && fi.IsDir() {
		f.Close()
		return nil, &InputError{Path: path, Err: errors.New("it is a directory, expected a JSONL file")}
	}
	ix = &File{Path: path, f: f, entries: map[string]entry{}, decode: k.decode}
	var src io.Reader = f
	if err == nil && !fi.Mode().IsRegular() {
		spool, serr := os.CreateTemp("", "pgrules-spool-*.jsonl")
		if serr != nil {
			f.Close()
			return nil, &InputError{Path: path, Err: fmt.Errorf("cannot spool a non-seekable input: %w", serr)}
		}
		os.Remove(spool.Name()) // the open descriptor keeps it alive; nothing to clean up
		src = io.TeeReader(f, spool)
		ix.f, ix.spooled = spool, true
		defer f.Close()
	}
	defer func() {
		if err != nil {
			ix.f.Close()
		}
	}()
	stop := context.AfterFunc(ctx, func() { f.Close() }) // unblocks a read of a pipe
	defer stop()

	h := sha256.New()
	r := bufio.NewReaderSize(io.TeeReader(src, h), 1<<20)
	var off int64
	for lineNo := 1; ; lineNo++ {
		line, rerr := r.ReadBytes('\n')
		start := off
		off += int64(len(line))
		if lineNo == 1 && bytes.HasPrefix(line, bom) {
			// A byte order mark is not part of the first record.
			line, start = line[len(bom):], start+int64(len(bom))
		}
		if len(line) > 0 {
			ix.add(line, start, lineNo)
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, &InputError{Path: path, Line: lineNo, Err: fmt.Errorf("read error: %w", rerr)}
		}
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	ix.Bytes = off
	ix.SHA256 = hex.EncodeToString(h.Sum(nil))
	return ix, nil
}

// openInput opens path without letting a FIFO that no one writes to hang
// the run: open(2) on a FIFO blocks until a writer appears.
func openInput(ctx context.Context, path string) (*os.File, error) {
	type opened struct {
		f   *os.File
		err error
	}
	ch := make(chan opened, 1)
	go func() {
		f, err := os.Open(path)
		ch <- opened{f, err}
	}()
	select {
	case o := <-ch:
		if o.err != nil {
			return nil, &InputError{Path: path, Err: errors.Unwrap(o.err)}
		}
		return o.f, nil
	case <-ctx.Done():
		go func() {
			if o := <-ch; o.f != nil {
				o.f.Close()
			}
		}()
		return nil, ctx.Err()
	}
}

// InputError is an input that cannot be read at all (as opposed to a bad
// line, which is a Problem).
type InputError struct {
	Path string
	Line int
	Err  error
}

func (e *InputError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %v", e.Path, e.Line, e.Err)
	}
	return fmt.Sprintf("cannot read input %s: %v", e.Path, e.Err)
}

func (e *InputError) Unwrap() error { return e.Err }

func (ix *File) add(line []byte, off int64, lineNo int) {
	trimmed := bytes.TrimSpace(line)
	if len(trimmed) == 0 {
		return
	}
	problem := func(col int, id, format string, args ...any) int {
		ix.ProblemCount++
		if len(ix.Problems) < MaxProblemsKept {
			ix.Problems = append(ix.Problems, Problem{File: ix.Path, Line: lineNo, Col: col, ID: id, Msg: fmt.Sprintf(format, args...)})
			return len(ix.Problems) - 1
		}
		return -1
	}
	lead := leadingSpace(line)
	// The common case, a good record, costs a UTF-8 check and one decode;
	// only a bad one is looked at again to say what is wrong with it.
	var id string
	var derr error
	badUTF8 := -1
	if !utf8.Valid(trimmed) {
		badUTF8 = invalidUTF8At(trimmed)
	} else {
		id, derr = ix.decode(trimmed)
		if derr == nil && strings.TrimSpace(id) != "" {
			prev, dup := ix.entries[id]
			switch {
			case dup && prev.salvaged:
				// The earlier line was broken; this good one is the record.
				if prev.problem >= 0 {
					p := &ix.Problems[prev.problem]
					p.Msg = strings.TrimSuffix(p.Msg, salvagedSuffix(id)) + fmt.Sprintf("; line %d holds a good record for this id, which is used", lineNo)
				}
				ix.entries[id] = entry{off: off, size: len(line), line: lineNo}
			case dup:
				problem(0, id, "duplicate id %q (first seen on line %d); this line is ignored", id, prev.line)
			default:
				ix.entries[id] = entry{off: off, size: len(line), line: lineNo}
				ix.order = append(ix.order, id)
				ix.Records++
			}
			return
		}
	}
	// What is wrong, and where (col is 1-based, in bytes of the line).
	var why string
	col := 0
	var head struct {
		ID json.RawMessage `json:"id"`
	}
	jerr := error(nil)
	if badUTF8 < 0 {
		jerr = json.Unmarshal(trimmed, &head)
	}
	switch {
	case badUTF8 >= 0:
		col = lead + badUTF8 + 1
		why = fmt.Sprintf("invalid UTF-8 (byte 0x%02x)", trimmed[badUTF8])
	case jerr != nil:
		var se *json.SyntaxError
		if errors.As(jerr, &se) {
			col = lead + int(se.Offset)
		}
		why = "malformed JSON (" + describeJSONError(jerr) + ")"
	}
	if why != "" {
		// A broken line whose id can still be read rejects that sample with
		// the real cause instead of making its record look missing.
		salvaged, ok := salvageID(trimmed)
		if !ok {
			problem(col, "", "%s; the line is skipped: fix or remove it", why)
			return
		}
		id = salvaged
		derr = errors.New(why)
	} else {
		id = ""
		if len(head.ID) == 0 || string(head.ID) == "null" {
			problem(0, "", `record has no "id"; the line is skipped`)
			return
		}
		if err := json.Unmarshal(head.ID, &id); err != nil || strings.TrimSpace(id) == "" {
			problem(0, "", `"id" must be a non-empty string, got %s; the line is skipped`, truncate(string(head.ID), 40))
			return
		}
	}
	if prev, dup := ix.entries[id]; dup {
		problem(col, id, "duplicate id %q (first seen on line %d); this line is ignored", id, prev.line)
		return
	}
	e := entry{off: off, size: len(line), line: lineNo, salvaged: why != "", problem: -1}
	if derr != nil {
		where := fmt.Sprintf("%s:%d", ix.Path, lineNo)
		if col > 0 {
			where += fmt.Sprintf(":%d", col)
		}
		e.bad = where + ": " + describeJSONError(derr)
		e.problem = problem(col, id, "%s%s", describeJSONError(derr), salvagedSuffix(id))
	}
	ix.entries[id] = e
	ix.order = append(ix.order, id)
	ix.Records++
}

func salvagedSuffix(id string) string {
	return fmt.Sprintf("; sample %q is rejected as invalid_input", id)
}

// idRE finds a record's id in a line that does not decode. The top-level
// id comes first in every pgrules input, so the first match is taken.
var idRE = regexp.MustCompile(`^\{\s*"id"\s*:\s*("(?:[^"\\\x00-\x1f]|\\.)*")`)

func salvageID(line []byte) (string, bool) {
	m := idRE.FindSubmatch(line)
	if m == nil || !utf8.Valid(m[1]) {
		return "", false
	}
	var id string
	if json.Unmarshal(m[1], &id) != nil || strings.TrimSpace(id) == "" {
		return "", false
	}
	return id, true
}

// invalidUTF8At returns the offset of the first byte that is not valid
// UTF-8.
func invalidUTF8At(b []byte) int {
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && size <= 1 {
			return i
		}
		i += size
	}
	return -1
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
		// The plan's sample fields are an embedded struct: its Go name is
		// not part of the record.
		field := strings.TrimPrefix(te.Field, "Sample.")
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
