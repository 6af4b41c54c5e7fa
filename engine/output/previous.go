package output

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strings"
	"sync/atomic"

	"github.com/pgrules/pgrules/internal/idtab"
)

// PriorRecord is one record of a previous run's output files. A run holds
// one for every id, a million in a big run, so it is 24 bytes and holds
// no pointer (nothing for the collector to mark): what records repeat
// (category, reason codes) is held once by the Prior and numbered, the
// id is in an id table, and the line stays in its file. Read them through
// the Prior's methods.
type PriorRecord struct {
	off  int64
	size int32
	// ord is the id's ordinal in the Prior's id table; -1: the id is not
	// in it (read over inputs that lack the id; see strays).
	ord int32
	// head is 1 + the index in the Prior's heads (0: none).
	head int32
	// file is the index in the Prior's files.
	file uint16
	// Accepted: the record is in the dataset, not the rejected file.
	Accepted bool
	// TeacherFailed is set on records rejected because the teacher call
	// failed: they are not finished, and --resume asks again.
	TeacherFailed bool
}

// Head is what a record says before its bulk: its category (accepted
// records) or its reason codes (rejected ones).
type Head struct {
	Category    string
	ReasonCodes []string
}

// ID is record i's id.
func (p *Prior) ID(i int) string {
	if o := p.Records[i].ord; o >= 0 {
		return p.ids.ID(int(o))
	}
	return p.strays[int32(i)]
}

// Head is record i's head: a rejected record's reason codes (nil when
// accepted), an accepted record's category. The slices are the Prior's:
// do not modify them.
func (p *Prior) Head(i int) Head {
	if h := p.Records[i].head; h > 0 {
		return p.heads[h-1]
	}
	return Head{}
}

// Line re-reads record i's line from its file; lines are not kept in
// memory, which grows with the number of ids only.
func (p *Prior) Line(i int) ([]byte, error) {
	r := p.Records[i]
	f := p.files[r.file]
	buf := make([]byte, r.size)
	if _, err := f.ReadAt(buf, r.off); err != nil && !(errors.Is(err, io.EOF)) {
		return nil, &IOError{Op: "re-read", Path: f.Name(), Err: err}
	}
	return bytes.TrimSpace(buf), nil
}

// Prior is what a previous run left in the out dir.
type Prior struct {
	Records []PriorRecord
	// ids numbers the records' ids. Read on its own, a Prior numbers them
	// itself and an id's ordinal is its record's index in Records. Read
	// over a run's inputs (see ReadPrior), ids is the inputs' table and
	// byOrd maps an ordinal to 1 + its record's index (0: none): a run
	// holds each id once.
	ids   *idtab.Table
	byOrd []int32
	// strays are the records of ids an inputs' table lacks, by record
	// index and by id.
	strays     map[int32]string
	strayIndex map[string]int32
	// files are the record files that Records point into.
	files []*os.File
	// Problems are lines that could not be used (torn, malformed,
	// duplicate); they are dropped, never copied.
	Problems []string
	// Edited are the record files that do not match the sums the
	// manifest holds: changed since the run that wrote them.
	Edited []string
	// View is Manifest read, nil when it is absent or not JSON.
	View *ManifestView
	// Manifest and Stats are the previous run's documents, nil when absent.
	Manifest, Stats []byte
	snap            *Committed
	// parts are the shards a merged Prior was read from.
	parts []*Prior
	// heads holds what a million records repeat, a handful of categories
	// and reason lists, each once; headIndex finds them by content.
	heads     []Head
	headIndex map[string]int32
}

// Index returns the index in Records of id's record; false when there is
// none.
func (p *Prior) Index(id string) (int, bool) {
	o, ok := p.ids.Get(id)
	if !ok || p.byOrd == nil {
		return o, ok
	}
	i := p.byOrd[o]
	return int(i) - 1, i > 0
}

// Close releases the previous run's files.
func (p *Prior) Close() {
	if p.snap != nil {
		p.snap.Close()
	}
	for _, q := range p.parts {
		q.Close()
	}
}

// add numbers the next record, of id: its ord (-1: a stray), or the
// index of id's record when it has one already (added false).
func (p *Prior) add(id string) (ord int32, first int, added bool) {
	if p.byOrd == nil {
		o, added := p.ids.Add(id)
		return int32(o), o, added
	}
	next := len(p.Records)
	if o, ok := p.ids.Get(id); ok {
		if i := p.byOrd[o]; i > 0 {
			return 0, int(i) - 1, false
		}
		p.byOrd[o] = int32(next + 1)
		return int32(o), next, true
	}
	if i, ok := p.strayIndex[id]; ok {
		return 0, int(i), false
	}
	if p.strays == nil {
		p.strays, p.strayIndex = map[int32]string{}, map[string]int32{}
	}
	id = strings.Clone(id)
	p.strays[int32(next)], p.strayIndex[id] = id, int32(next)
	return -1, next, true
}

// numberBy makes p number its ids by over (nil: by a table of its own,
// sized for n).
func (p *Prior) numberBy(over *idtab.Table, n int) {
	if over == nil {
		p.ids = idtab.New(n)
		return
	}
	p.ids, p.byOrd = over, make([]int32, over.Len())
}

// ReadPriors reads the committed outputs of several out dirs (the shards
// of a run) as one, numbering ids by over like ReadPrior. Every problem is
// reported — a torn or edited file, an id in two shards — and the caller
// refuses to merge if there is any.
func ReadPriors(dirs []string, over *idtab.Table) (*Prior, error) {
	all := &Prior{}
	all.numberBy(over, 0)
	// from names the shard of each record, by its index.
	var from []string
	for _, dir := range dirs {
		p, err := ReadPrior(dir, nil)
		if err != nil {
			all.Close()
			return nil, err
		}
		all.parts = append(all.parts, p)
		for _, prob := range p.Problems {
			all.Problems = append(all.Problems, dir+": "+prob)
		}
		files, heads := uint16(len(all.files)), int32(len(all.heads))
		all.files = append(all.files, p.files...)
		all.heads = append(all.heads, p.heads...)
		for i, r := range p.Records {
			id := p.ID(i)
			ord, first, added := all.add(id)
			if !added {
				all.Problems = append(all.Problems, fmt.Sprintf("id %q has a record in %s and in %s", id, from[first], dir))
				continue
			}
			from = append(from, dir)
			r.ord, r.file = ord, r.file+files
			if r.head > 0 {
				r.head += heads
			}
			all.Records = append(all.Records, r)
		}
	}
	return all, nil
}

// The reason codes of records whose outcome is a failed teacher call, not
// a decision about the sample: such a sample is not finished, and
// --resume asks again. Defined here, below the judge that writes them, so
// that reading the previous records knows them too.
const (
	ReasonTeacherError   = "teacher_error"
	ReasonNoCachedAnswer = "no_cached_answer"
)

// TeacherFailure reports whether reason means the teacher gave no usable
// answer.
func TeacherFailure(reason string) bool {
	return reason == ReasonTeacherError || reason == ReasonNoCachedAnswer
}

// ReadPrior reads the committed outputs of outDir, if any. A torn or
// malformed line is reported and dropped; an id present twice keeps its
// first record. Record files that do not match the manifest's checksums
// (edited by hand, or copied from two runs) are reported too.
//
// over, when not nil, is the id table of the inputs a run reads: the
// records are numbered by it, so a million ids are held once, not twice.
// Records of ids it lacks are kept all the same (and found by ID, not by
// Index).
func ReadPrior(outDir string, over *idtab.Table) (*Prior, error) {
	return ReadPriorWith(outDir, over, nil)
}

// ReadPriorWith is ReadPrior taking the record files' sums from pre when
// they are of the very files it reads (nil: it hashes them).
func ReadPriorWith(outDir string, over *idtab.Table, pre *Prehash) (*Prior, error) {
	snap, err := OpenCommitted(outDir)
	if err != nil {
		return nil, err
	}
	p := &Prior{snap: snap}
	if p.Manifest, err = snap.ReadDocument(ManifestFile); err == nil {
		p.Stats, err = snap.ReadDocument(StatsFile)
	}
	if err != nil {
		p.Close()
		return nil, err
	}
	var man ManifestView
	if p.Manifest != nil && json.Unmarshal(p.Manifest, &man) == nil {
		p.View = &man
	}
	if statsDoc := p.Stats; statsDoc != nil {
		sum := sha256.Sum256(statsDoc)
		if want := man.Outputs["stats"].SHA256; want != "" && want != hex.EncodeToString(sum[:]) {
			p.Problems = append(p.Problems, fmt.Sprintf("%s does not match the sha256 in %s (changed since that run?)", snap.Files[StatsFile].Name(), ManifestFile))
		}
	}
	// The stats say how many records to expect: the table is sized once
	// (a million records appended one by one left a third of it unused).
	var counts struct {
		Summary struct{ Accepted, Rejected int } `json:"summary"`
	}
	n := 0
	if json.Unmarshal(p.Stats, &counts) == nil {
		if m := counts.Summary.Accepted + counts.Summary.Rejected; m > 0 && m < 1<<30 {
			n = m
		}
	}
	p.numberBy(over, n)
	p.Records = make([]PriorRecord, 0, n)
	files := []struct {
		name, key string
		accepted  bool
		sum       chan hashed
	}{{DatasetFile, "dataset", true, nil}, {RejectedFile, "rejected", false, nil}}
	// The files are hashed while their lines are read (or were, by pre,
	// while the inputs were indexed): hashing is about half the time of
	// reading a previous run, and the two need not wait for each other.
	fps := readFingerprints(outDir)
	seals := map[string]uint32{} // of heads of the files fingerprinted
	for i, f := range files {
		if file := snap.Files[f.name]; file != nil {
			files[i].sum = make(chan hashed, 1)
			if h, ok := knownSum(fps, f.name, file); ok {
				files[i].sum <- h
				seals[f.name] = fps[f.name].Heads
				continue
			}
			go func() {
				if h, ok := pre.sum(f.name, file); ok {
					files[i].sum <- h
					return
				}
				files[i].sum <- hashFile(file)
			}()
		}
	}
	for _, f := range files {
		file := snap.Files[f.name]
		if file == nil {
			continue
		}
		p.files = append(p.files, file)
		var err error
		if !p.readHeads(outDir, f.name, seals[f.name], file, uint16(len(p.files)-1), f.accepted) {
			err = p.read(file, uint16(len(p.files)-1), f.accepted)
		}
		h := <-f.sum
		if err == nil {
			err = h.err
		}
		if err != nil {
			p.Close()
			return nil, err
		}
		if want := man.Outputs[f.key].SHA256; want != "" && want != h.sum {
			p.Edited = append(p.Edited, file.Name())
			p.Problems = append(p.Problems, fmt.Sprintf("%s does not match the sha256 in %s (changed since that run?); its records are used as they are now", file.Name(), ManifestFile))
		}
	}
	return p, nil
}

type hashed struct {
	sum string
	err error
}

// hashFile is the sha256 of f, read through its own offsets (f's are the
// line reader's).
func hashFile(f *os.File) hashed {
	h := sha256.New()
	// 1 MB reads, as the line reader's: io.Copy's 32 KB made a syscall
	// every 32 KB of a gigabyte.
	if _, err := io.CopyBuffer(h, io.NewSectionReader(f, 0, math.MaxInt64), make([]byte, 1<<20)); err != nil {
		return hashed{err: &IOError{Op: "read", Path: f.Name(), Err: err}}
	}
	return hashed{sum: hex.EncodeToString(h.Sum(nil))}
}

// fileReads counts Prior.read calls, for tests of when a file is read.
var fileReads atomic.Int64

func (p *Prior) read(f *os.File, fileIndex uint16, accepted bool) error {
	fileReads.Add(1)
	path := f.Name()
	r := bufio.NewReaderSize(f, 1<<20)
	var off int64
	for lineNo := 1; ; lineNo++ {
		// ReadSlice reuses the reader's buffer: lines are not kept, only
		// where they are. A line longer than the buffer is gathered whole.
		line, rerr := r.ReadSlice('\n')
		if rerr == bufio.ErrBufferFull {
			long := append([]byte(nil), line...)
			for rerr == bufio.ErrBufferFull {
				line, rerr = r.ReadSlice('\n')
				long = append(long, line...)
			}
			line = long
		}
		start, size := off, len(line)
		off += int64(size)
		if rerr != nil && rerr != io.EOF {
			return fmt.Errorf("%s:%d: %w", path, lineNo, rerr)
		}
		complete := bytes.HasSuffix(line, []byte("\n"))
		line = bytes.TrimSpace(line)
		if len(line) > 0 {
			head, err := readHead(line, complete)
			switch {
			case err != nil && !complete:
				p.Problems = append(p.Problems, fmt.Sprintf("%s:%d: torn last line (an interrupted write); dropped", path, lineNo))
			case err != nil || head.ID == "":
				p.Problems = append(p.Problems, fmt.Sprintf("%s:%d: not a pgrules record; dropped", path, lineNo))
			default:
				failed := false
				for _, rc := range head.ReasonCodes {
					failed = failed || TeacherFailure(rc)
				}
				p.addRecord(path, lineNo, head.ID, p.intern(head), failed, accepted, fileIndex, start, size)
			}
		}
		if rerr == io.EOF {
			return nil
		}
	}
}

// addRecord numbers the record of id, read on line lineNo of path at off
// (size bytes, its newline included), with its interned head.
func (p *Prior) addRecord(path string, lineNo int, id string, head int32, teacherFailed, accepted bool, fileIndex uint16, off int64, size int) {
	ord, first, added := p.add(id)
	if !added {
		where := "dataset"
		if !p.Records[first].Accepted {
			where = "rejected file"
		}
		p.Problems = append(p.Problems, fmt.Sprintf("%s:%d: id %q is already in the %s; dropped", path, lineNo, id, where))
		return
	}
	p.Records = append(p.Records, PriorRecord{ord: ord, Accepted: accepted, head: head, TeacherFailed: teacherFailed,
		file: fileIndex, off: off, size: int32(min(size, math.MaxInt32))})
}

// intern returns 1 + the index of h's head in p.heads (0: no head).
func (p *Prior) intern(h recordHead) int32 {
	if h.Category == "" && h.ReasonCodes == nil {
		return 0
	}
	if p.headIndex == nil {
		p.headIndex = map[string]int32{}
	}
	key := h.Category + "\x01" + strings.Join(h.ReasonCodes, "\x00")
	if h.ReasonCodes != nil {
		key += "\x01" // a list of no codes is not no list
	}
	if i, ok := p.headIndex[key]; ok {
		return i
	}
	p.heads = append(p.heads, Head{Category: h.Category, ReasonCodes: h.ReasonCodes})
	p.headIndex[key] = int32(len(p.heads))
	return int32(len(p.heads))
}

// recordHead is what a previous run's record must say for the next run:
// its id and, if rejected, its reason codes.
type recordHead struct {
	ID          string   `json:"id"`
	ReasonCodes []string `json:"reason_codes"`
	Category    string   `json:"category"`
}

// readHead reads the head of a record pgrules wrote: its first keys are
// id and then reason_codes (rejected) or category (accepted), so the rest of the line
// (most of its bytes) is not decoded. A line without its newline (torn by
// a crash) is decoded whole, so a truncated record is never taken for a
// good one; a file edited by hand is caught by the manifest's sha256.
func readHead(line []byte, complete bool) (recordHead, error) {
	var h recordHead
	if !complete {
		err := json.Unmarshal(line, &h)
		return h, err
	}
	if h, ok := fastHead(line); ok {
		return h, nil
	}
	return decodeHead(line)
}

// decodeHead is readHead for a complete line, with a JSON decoder.
func decodeHead(line []byte) (recordHead, error) {
	var h recordHead
	dec := json.NewDecoder(bytes.NewReader(line))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return h, errNotRecord
	}
	for i := 0; i < 2 && dec.More(); i++ {
		t, err := dec.Token()
		if err != nil {
			return h, err
		}
		switch t {
		case "id":
			if err := dec.Decode(&h.ID); err != nil {
				return h, err
			}
		case "reason_codes":
			if err := dec.Decode(&h.ReasonCodes); err != nil {
				return h, err
			}
		case "category":
			if err := dec.Decode(&h.Category); err != nil {
				return h, err
			}
		default:
			if h.ID == "" {
				// Not the layout pgrules writes: decode it all.
				err := json.Unmarshal(line, &h)
				return h, err
			}
			return h, nil
		}
	}
	return h, nil
}

var errNotRecord = errors.New("not a pgrules record")

// fastHead reads the head of a line as pgrules writes it — the id, then
// the category (accepted) or the reason codes (rejected), every string
// printable ASCII without escapes — without a JSON decoder; false for
// anything else, which readHead's decoder reads. With the previous
// outputs hashed while the inputs are indexed, the decoder was most of
// reading them (0.35 s of 0.46 at 100,000 records).
func fastHead(line []byte) (h recordHead, ok bool) {
	rest, ok := bytes.CutPrefix(line, []byte(`{"id": `))
	if !ok {
		return h, false
	}
	if h.ID, rest, ok = plainString(rest); !ok || h.ID == "" {
		return h, false
	}
	if rest, ok = bytes.CutPrefix(rest, []byte(`, "category": `)); ok {
		h.Category, _, ok = plainString(rest)
		return h, ok
	}
	if rest, ok = bytes.CutPrefix(rest, []byte(`, "reason_codes": [`)); !ok {
		return h, false
	}
	h.ReasonCodes = []string{}
	for len(rest) > 0 && rest[0] != ']' {
		if len(h.ReasonCodes) > 0 {
			if rest, ok = bytes.CutPrefix(rest, []byte(", ")); !ok {
				return h, false
			}
		}
		var code string
		if code, rest, ok = plainString(rest); !ok {
			return h, false
		}
		h.ReasonCodes = append(h.ReasonCodes, code)
	}
	return h, len(rest) > 0
}

// plainString reads a JSON string at the start of b made of printable
// ASCII other than a backslash: its value and what follows it.
func plainString(b []byte) (string, []byte, bool) {
	if len(b) == 0 || b[0] != '"' {
		return "", nil, false
	}
	for i := 1; i < len(b); i++ {
		switch c := b[i]; {
		case c == '"':
			return string(b[1:i]), b[i+1:], true
		case c < 0x20 || c >= 0x7f || c == '\\':
			return "", nil, false
		}
	}
	return "", nil, false
}
