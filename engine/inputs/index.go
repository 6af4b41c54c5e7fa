package inputs

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/pgrules/pgrules/engine/memo"
	"github.com/pgrules/pgrules/internal/idtab"
	"github.com/pgrules/pgrules/internal/jsonstr"
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

// File is an indexed JSONL input: where each id's record is.
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

	// data is the file, memory-mapped read-only (a non-seekable input is
	// spooled to a temporary file first). Records are sliced out of it
	// when a sample is loaded: no read, no copy.
	data  []byte
	spool *os.File
	// fd is a regular file kept open, and opened what it was then: the
	// mapping shows writes to the file while the run reads it, so the
	// run checks before it commits that there were none (Unchanged).
	fd     *os.File
	opened fileState
	kind   kind
	// identity names the file's bytes by where and when they were
	// written ("": not a regular file, or written too recently to tell;
	// see fileIdentity).
	identity string
	// Where each id's record is, by the Set's id index, in 16 bytes an id
	// (size 0: no record), and the rare bad records' messages. Memory
	// grows with ids, never with bytes or problems.
	byIndex []location
	bad     map[int32]string
	// salvaged holds, while indexing, the ids whose record is a broken
	// line (a later good line replaces it), with its problem's index in
	// Problems (-1: not kept).
	salvaged map[int32]int32
}

// location is a record's place in its file, in 12 bytes (a run holds
// three an id): its offset, split in two halves so the struct needs no
// 8-byte alignment, and its line number (0: no record). Its end is the
// end of its line: finding the newline when the record is loaded costs
// less than storing the size a million times.
type location struct{ lo, hi, line uint32 }

func (e location) present() bool { return e.line != 0 }

func (e location) off() int64 { return int64(e.hi)<<32 | int64(e.lo) }

// MaxProblemsKept bounds the problems kept (and logged) per input file.
const MaxProblemsKept = 100

var bom = []byte("\xEF\xBB\xBF")

// kind is how one of the three inputs is read: fast decodes a record from
// its members (ok=false when unsure), slow is encoding/json, which decides
// and words errors.
type kind struct {
	name string
	fast func(line []byte) (id string, ok bool)
	slow func(line []byte) (id string, err error)
}

// chunkSize is the unit of parallel indexing: large files are split at
// line boundaries and their chunks scanned on every core.
var chunkSize = 32 << 20 // a variable for tests: small chunks number lines across boundaries

// openFile maps path into memory (spooling a pipe or FIFO first). Every
// blocking step (opening a FIFO that has no writer yet, reading a pipe)
// ends when ctx does.
func openFile(ctx context.Context, path string, k kind) (*File, error) {
	f, err := openInput(ctx, path)
	if err != nil {
		return nil, err
	}
	keep := false // a regular file stays open: see File.fd
	defer func() {
		if !keep {
			f.Close()
		}
	}()
	fi, err := f.Stat()
	if err != nil {
		return nil, &InputError{Path: path, Err: err}
	}
	if fi.IsDir() {
		return nil, &InputError{Path: path, Err: errors.New("it is a directory, expected a JSONL file")}
	}
	ix := &File{Path: path, kind: k}
	src := f
	if fi.Mode().IsRegular() {
		ix.identity = fileIdentity(path, fi, now())
		ix.fd, ix.opened, keep = f, stateOf(fi), true
	} else {
		spool, err := os.CreateTemp("", "pgrules-spool-*.jsonl")
		if err != nil {
			return nil, &InputError{Path: path, Err: fmt.Errorf("cannot spool a non-seekable input: %w", err)}
		}
		os.Remove(spool.Name())                              // the open descriptor keeps it alive; nothing to clean up
		stop := context.AfterFunc(ctx, func() { f.Close() }) // unblocks a read of a pipe
		_, cerr := io.Copy(spool, f)
		stop()
		if ctx.Err() != nil {
			spool.Close()
			return nil, ctx.Err()
		}
		if cerr != nil {
			spool.Close()
			return nil, &InputError{Path: path, Err: fmt.Errorf("read error: %w", cerr)}
		}
		ix.spool, src = spool, spool
		if fi, err = spool.Stat(); err != nil {
			spool.Close()
			return nil, &InputError{Path: path, Err: err}
		}
	}
	if n := fi.Size(); n > 0 {
		ix.data, err = syscall.Mmap(int(src.Fd()), 0, int(n), syscall.PROT_READ, syscall.MAP_SHARED)
		if err != nil {
			ix.Close()
			return nil, &InputError{Path: path, Err: fmt.Errorf("cannot map the file: %w", err)}
		}
	}
	ix.Bytes = int64(len(ix.data))
	return ix, nil
}

// chunk is a run of whole lines of one file, scanned by one worker.
type chunk struct {
	file  *File
	start int // byte offset in the file
	data  []byte
	// lineCount is how many lines the chunk holds; its lines are numbered
	// from 1 by scan and made absolute once every chunk before it is
	// counted (counting them up front was a serial pass over every byte).
	lineCount int
	lines     []scanned
	// done is closed once the chunk is scanned (or skipped: the run is
	// ending, or the file's index is remembered).
	done chan struct{}
	// decided is closed once the file's sum is known and its index looked
	// for in the memos; remembered then says it was found: the chunk is
	// not scanned.
	decided    <-chan struct{}
	remembered *bool
}

// scanned is one line as the parallel phase saw it.
type scanned struct {
	off, size int
	line      int
	id        string
	ok        bool   // a good record with this id
	derr      string // why the record cannot be used (id known)
	why       string // the line is broken (id salvaged, or none)
	col       int
	problem   string // a problem without an id
}

// split cuts a file into chunks at line boundaries.
func (ix *File) split() []*chunk {
	var out []*chunk
	for start := 0; start < len(ix.data); {
		end := min(start+chunkSize, len(ix.data))
		if end < len(ix.data) {
			if nl := bytes.IndexByte(ix.data[end:], '\n'); nl >= 0 {
				end += nl + 1
			} else {
				end = len(ix.data)
			}
		}
		out = append(out, &chunk{file: ix, start: start, data: ix.data[start:end]})
		start = end
	}
	return out
}

// scan decodes every line of a chunk; it only reads.
func (c *chunk) scan() {
	d := c.data
	line := 1
	defer func() { c.lineCount = line - 1 }()
	for pos := 0; pos < len(d); line++ {
		end := bytes.IndexByte(d[pos:], '\n')
		if end < 0 {
			end = len(d)
		} else {
			end += pos + 1
		}
		raw := d[pos:end]
		off := c.start + pos
		if off == 0 && bytes.HasPrefix(raw, bom) {
			// A byte order mark is not part of the first record.
			raw, off = raw[len(bom):], off+len(bom)
		}
		pos = end
		if len(bytes.TrimSpace(raw)) == 0 {
			continue
		}
		c.lines = append(c.lines, c.file.kind.scanLine(raw, off, line))
	}
}

// scanLine is the whole verdict on one non-blank line.
func (k kind) scanLine(line []byte, off, lineNo int) scanned {
	sc := scanned{off: off, size: len(line), line: lineNo}
	trimmed := bytes.TrimSpace(line)
	lead := leadingSpace(line)
	// The common case, a good record, costs a UTF-8 check and one fast
	// walk; only a bad one is looked at again to say what is wrong.
	if !utf8.Valid(trimmed) {
		bad := invalidUTF8At(trimmed)
		sc.col = lead + bad + 1
		sc.why = fmt.Sprintf("invalid UTF-8 (byte 0x%02x)", trimmed[bad])
		sc.id, _ = salvageID(trimmed)
		return sc
	}
	if id, ok := k.fast(trimmed); ok && strings.TrimSpace(id) != "" {
		sc.id, sc.ok = id, true
		return sc
	}
	// The fast walk refuses a lone surrogate escape, which encoding/json
	// would decode as U+FFFD: named like invalid UTF-8, never repaired.
	if at := jsonstr.LoneSurrogate(trimmed); at >= 0 {
		sc.col = lead + at + 1
		sc.why = fmt.Sprintf("a lone surrogate escape (%s: half of a UTF-16 pair, no character)", trimmed[at:at+6])
		sc.id, _ = salvageID(trimmed)
		return sc
	}
	id, derr := k.slow(trimmed)
	if derr == nil && strings.TrimSpace(id) != "" {
		sc.id, sc.ok = id, true
		return sc
	}
	var head struct {
		ID json.RawMessage `json:"id"`
	}
	if jerr := json.Unmarshal(trimmed, &head); jerr != nil {
		var se *json.SyntaxError
		if errors.As(jerr, &se) {
			sc.col = lead + int(se.Offset)
		}
		sc.why = "malformed JSON (" + describeJSONError(jerr) + ")"
		// A broken line whose id can still be read rejects that sample
		// with the real cause instead of making its record look missing.
		sc.id, _ = salvageID(trimmed)
		return sc
	}
	if len(head.ID) == 0 || string(head.ID) == "null" {
		sc.problem = `record has no "id"; the line is skipped`
		return sc
	}
	if err := json.Unmarshal(head.ID, &id); err != nil || strings.TrimSpace(id) == "" {
		sc.problem = fmt.Sprintf(`"id" must be a non-empty string, got %s; the line is skipped`, truncate(string(head.ID), 40))
		return sc
	}
	sc.id, sc.derr = id, describeJSONError(derr)
	return sc
}

// knownSum fills SHA256 from memos, if the file's sum is remembered
// for its identity.
func (ix *File) knownSum(memos memo.Store) bool {
	sum, ok := ix.recallSum(memos)
	if ok {
		ix.SHA256 = hex.EncodeToString(sum)
	}
	return ok
}

// hash fills SHA256 from the mapped bytes, a few megabytes at a time so
// that a cancelled run does not wait for the rest (SHA256 stays "").
func (ix *File) hash(ctx context.Context, memos memo.Store) {
	h := sha256.New()
	for b := ix.data; len(b) > 0; {
		if ctx.Err() != nil {
			return
		}
		n := min(len(b), 8<<20)
		h.Write(b[:n])
		b = b[n:]
	}
	sum := h.Sum(nil)
	ix.SHA256 = hex.EncodeToString(sum)
	ix.rememberSum(memos, sum)
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

// RecordAt is where in the file the record the run uses for the id
// numbered ord starts; false when the file has none for it.
func (ix *File) RecordAt(ord int) (int64, bool) {
	if ix == nil || !ix.has(int32(ord)) {
		return 0, false
	}
	return ix.byIndex[ord].off(), true
}

// Extends says whether the file is one of n bytes whose sha256 was sum
// (hex), with lines added after them and nothing else changed.
func (ix *File) Extends(n int64, sum string) bool {
	if ix == nil || n < 0 || n > int64(len(ix.data)) {
		return false
	}
	if n == int64(len(ix.data)) {
		return ix.SHA256 == sum
	}
	if n > 0 && ix.data[n-1] != '\n' && !endsLine(ix.data[n:]) {
		return false // the old last line was continued, not followed
	}
	h := sha256.Sum256(ix.data[:n])
	return hex.EncodeToString(h[:]) == sum
}

// endsLine says whether rest starts with a line end.
func endsLine(rest []byte) bool {
	return bytes.HasPrefix(rest, []byte("\n")) || bytes.HasPrefix(rest, []byte("\r\n"))
}

// has reports whether the file has a record for id i.
func (ix *File) has(i int32) bool {
	return int(i) < len(ix.byIndex) && ix.byIndex[i].present()
}

func (ix *File) set(i int32, sc scanned) {
	if n := int(i) + 1 - len(ix.byIndex); n > 0 {
		ix.byIndex = append(ix.byIndex, make([]location, n)...)
	}
	ix.byIndex[i] = location{lo: uint32(sc.off), hi: uint32(uint64(sc.off) >> 32), line: uint32(sc.line)}
}

// add takes one scanned line into the index, in file order: duplicates,
// salvaged lines and problems are decided here.
// t is the Set's id table, built as the files are added in order: plan
// ids first, then ids only in drafts, then only in critiques.
func (ix *File) add(t *idtab.Table, sc scanned) {
	problem := func(col int, id, format string, args ...any) int32 {
		ix.ProblemCount++
		if len(ix.Problems) < MaxProblemsKept {
			ix.Problems = append(ix.Problems, Problem{File: ix.Path, Line: sc.line, Col: col, ID: id, Msg: fmt.Sprintf(format, args...)})
			return int32(len(ix.Problems) - 1)
		}
		return -1
	}
	id := sc.id
	if sc.ok {
		i, known := t.Get(id)
		switch p, salvaged := ix.salvaged[int32(i)]; {
		case known && salvaged:
			// The earlier line was broken; this good one is the record.
			if p >= 0 {
				pr := &ix.Problems[p]
				pr.Msg = strings.TrimSuffix(pr.Msg, salvagedSuffix(id)) + fmt.Sprintf("; line %d holds a good record for this id, which is used", sc.line)
			}
			delete(ix.salvaged, int32(i))
			delete(ix.bad, int32(i))
			ix.set(int32(i), sc)
		case known && ix.has(int32(i)):
			problem(0, id, "duplicate id %q (first seen on line %d); this line is ignored", id, ix.byIndex[i].line)
		default:
			ord, _ := t.Add(id)
			ix.set(int32(ord), sc)
			ix.Records++
		}
		return
	}
	switch {
	case sc.problem != "":
		problem(0, "", "%s", sc.problem)
		return
	case sc.why != "" && id == "":
		problem(sc.col, "", "%s; the line is skipped: fix or remove it", sc.why)
		return
	}
	if i, known := t.Get(id); known && ix.has(int32(i)) {
		problem(sc.col, id, "duplicate id %q (first seen on line %d); this line is ignored", id, ix.byIndex[i].line)
		return
	}
	msg := sc.derr
	if sc.why != "" {
		msg = sc.why
	}
	where := fmt.Sprintf("%s:%d", ix.Path, sc.line)
	if sc.col > 0 {
		where += fmt.Sprintf(":%d", sc.col)
	}
	ord, _ := t.Add(id)
	i := int32(ord)
	ix.set(i, sc)
	if ix.bad == nil {
		ix.bad = map[int32]string{}
	}
	ix.bad[i] = where + ": " + msg
	p := problem(sc.col, id, "%s%s", msg, salvagedSuffix(id))
	if sc.why != "" {
		if ix.salvaged == nil {
			ix.salvaged = map[int32]int32{}
		}
		ix.salvaged[i] = p
	}
	ix.Records++
}

func salvagedSuffix(id string) string {
	return fmt.Sprintf("; sample %q is rejected as invalid_input", id)
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

// line returns the record at e.
func (ix *File) line(e location) []byte {
	rest := ix.data[e.off():]
	if end := bytes.IndexByte(rest, '\n'); end >= 0 {
		rest = rest[:end]
	}
	return bytes.TrimSpace(rest)
}

// fileState is what changes when a file is written. The change time
// also catches a write whose modification time was put back (rsync -t,
// touch -d); it moves too when the file is unlinked (replaced by a
// rename), which changes its link count and not its bytes.
type fileState struct {
	size         int64
	mtime, ctime int64
	nlink        uint64
}

func stateOf(fi fs.FileInfo) fileState {
	st := fileState{size: fi.Size(), mtime: fi.ModTime().UnixNano()}
	if in, ok := inode(fi); ok {
		st.ctime, st.nlink = in.ctime.UnixNano(), in.nlink
	}
	return st
}

// written says whether a file that was st is now, by its state, written to.
func (st fileState) written(now fileState) bool {
	if now.size != st.size || now.mtime != st.mtime {
		return true
	}
	return now.nlink == st.nlink && now.ctime != st.ctime
}

// Unchanged reports, as ErrChanged, a file written to since it was opened:
// records read before and after the write may be of two versions, and the
// sha256 the manifest would record of neither. (A file replaced by a
// rename is not this one: what the run reads stays as it was.)
func (ix *File) Unchanged() error {
	if ix == nil || ix.fd == nil {
		return nil
	}
	fi, err := ix.fd.Stat()
	if err != nil {
		return &InputError{Path: ix.Path, Err: err}
	}
	now := stateOf(fi)
	switch {
	case !ix.opened.written(now):
		return nil
	case now.size > ix.opened.size:
		return fmt.Errorf("%w: %s grew from %d to %d bytes while the run read it (is the stage that writes it still running?)", ErrChanged, ix.Path, ix.opened.size, now.size)
	}
	return fmt.Errorf("%w: %s was written to while the run read it (modified %s)", ErrChanged, ix.Path, time.Unix(0, now.mtime).UTC().Format(time.RFC3339))
}

// Close releases the mapping and the spool.
func (ix *File) Close() error {
	if ix == nil {
		return nil
	}
	if ix.fd != nil {
		ix.fd.Close()
		ix.fd = nil
	}
	var err error
	if ix.data != nil {
		err = syscall.Munmap(ix.data)
		ix.data = nil
	}
	if ix.spool != nil {
		ix.spool.Close()
		ix.spool = nil
	}
	return err
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

// inodeStat is a file's stat beyond fs.FileInfo: ctime is when its inode
// last changed.
type inodeStat struct {
	ctime           time.Time
	nlink, dev, ino uint64
}

// inode is what the stat of fi says beyond fs.FileInfo; false when fi
// holds no stat.
func inode(fi fs.FileInfo) (inodeStat, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return inodeStat{}, false
	}
	ctime := ctimeOf(st)
	return inodeStat{ctime: time.Unix(ctime.Unix()), nlink: uint64(st.Nlink), dev: uint64(st.Dev), ino: uint64(st.Ino)}, true
}
