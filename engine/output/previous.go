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

	"github.com/pgrules/pgrules/internal/idtab"
)

// PriorRecord is one record of a previous run's output files. A run holds
// one for every id, so it is kept small: what records repeat (category,
// reason codes) is held once and pointed to.
type PriorRecord struct {
	ID   string
	head *Head
	file *os.File
	off  int64
	size int32
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

// NewPriorRecord is a record as a previous run's files would hold it (for
// tests of what reads them).
func NewPriorRecord(id string, accepted bool, head Head) PriorRecord {
	return PriorRecord{ID: id, Accepted: accepted, head: &head}
}

// ReasonCodes are a rejected record's reasons (none when accepted).
func (r PriorRecord) ReasonCodes() []string {
	if r.head == nil {
		return nil
	}
	return r.head.ReasonCodes
}

// Category is an accepted record's (rejected ones do not carry it).
func (r PriorRecord) Category() string {
	if r.head == nil {
		return ""
	}
	return r.head.Category
}

// Line re-reads the record's line from its file; lines are not kept in
// memory, which grows with the number of ids only.
func (r PriorRecord) Line() ([]byte, error) {
	buf := make([]byte, r.size)
	if _, err := r.file.ReadAt(buf, r.off); err != nil && !(errors.Is(err, io.EOF)) {
		return nil, &IOError{Op: "re-read", Path: r.file.Name(), Err: err}
	}
	return bytes.TrimSpace(buf), nil
}

// Prior is what a previous run left in the out dir.
type Prior struct {
	Records []PriorRecord
	// ids numbers the records' ids: an id's ordinal is its record's index
	// in Records (see Index).
	ids *idtab.Table
	// Problems are lines that could not be used (torn, malformed,
	// duplicate); they are dropped, never copied.
	Problems []string
	// Manifest and Stats are the previous run's documents, nil when absent.
	Manifest, Stats []byte
	snap            *Committed
	// parts are the shards a merged Prior was read from.
	parts []*Prior
	// heads interns what a million records repeat: a handful of
	// categories and reason lists, each held once.
	heads map[string]*Head
}

// Index returns the index in Records of id's record; false when there is
// none.
func (p *Prior) Index(id string) (int, bool) { return p.ids.Get(id) }

// Close releases the previous run's files.
func (p *Prior) Close() {
	if p.snap != nil {
		p.snap.Close()
	}
	for _, q := range p.parts {
		q.Close()
	}
}

// Current reports whether p is still what outDir holds committed: a run
// reads its out dir's outputs before it holds the out dir's lock (while the
// inputs are indexed), and reads them again if another run committed in
// between.
func (p *Prior) Current() (bool, error) {
	if p.snap == nil {
		return false, nil
	}
	now, err := OpenCommitted(p.snap.Dir)
	if err != nil {
		return false, err
	}
	defer now.Close()
	return p.snap.same(now), nil
}

// ReadPriors reads the committed outputs of several out dirs (the shards
// of a run) as one. Every problem is reported — a torn or edited file, an
// id in two shards — and the caller refuses to merge if there is any.
func ReadPriors(dirs []string) (*Prior, error) {
	all := &Prior{ids: idtab.New(0)}
	// from names the shard of each record, by its index.
	var from []string
	for _, dir := range dirs {
		p, err := ReadPrior(dir)
		if err != nil {
			all.Close()
			return nil, err
		}
		all.parts = append(all.parts, p)
		for _, prob := range p.Problems {
			all.Problems = append(all.Problems, dir+": "+prob)
		}
		for _, r := range p.Records {
			if first, added := all.ids.Add(r.ID); !added {
				all.Problems = append(all.Problems, fmt.Sprintf("id %q has a record in %s and in %s", r.ID, from[first], dir))
				continue
			}
			from = append(from, dir)
			all.Records = append(all.Records, r)
		}
	}
	return all, nil
}

// teacherFailureReasons mark records whose outcome is a failed teacher
// call, not a decision about the sample.
var teacherFailureReasons = map[string]bool{"teacher_error": true, "no_cached_answer": true}

// ReadPrior reads the committed outputs of outDir, if any. A torn or
// malformed line is reported and dropped; an id present twice keeps its
// first record. Record files that do not match the manifest's checksums
// (edited by hand, or copied from two runs) are reported too.
func ReadPrior(outDir string) (*Prior, error) {
	snap, err := OpenCommitted(outDir)
	if err != nil {
		return nil, err
	}
	p := &Prior{ids: idtab.New(0), snap: snap}
	if p.Manifest, err = snap.ReadDocument(ManifestFile); err == nil {
		p.Stats, err = snap.ReadDocument(StatsFile)
	}
	if err != nil {
		p.Close()
		return nil, err
	}
	var man ManifestView
	_ = json.Unmarshal(p.Manifest, &man)
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
	if json.Unmarshal(p.Stats, &counts) == nil {
		if n := counts.Summary.Accepted + counts.Summary.Rejected; n > 0 && n < 1<<30 {
			p.Records = make([]PriorRecord, 0, n)
			p.ids = idtab.New(n)
		}
	}
	for _, f := range []struct {
		name, key string
		accepted  bool
	}{{DatasetFile, "dataset", true}, {RejectedFile, "rejected", false}} {
		file := snap.Files[f.name]
		if file == nil {
			continue
		}
		sum, err := p.read(file, f.accepted)
		if err != nil {
			p.Close()
			return nil, err
		}
		if want := man.Outputs[f.key].SHA256; want != "" && want != sum {
			p.Problems = append(p.Problems, fmt.Sprintf("%s does not match the sha256 in %s (changed since that run?); its records are used as they are now", file.Name(), ManifestFile))
		}
	}
	return p, nil
}

func (p *Prior) read(f *os.File, accepted bool) (string, error) {
	path := f.Name()
	h := sha256.New()
	r := bufio.NewReaderSize(io.TeeReader(f, h), 1<<20)
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
			return "", fmt.Errorf("%s:%d: %w", path, lineNo, rerr)
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
				first, added := p.ids.Add(head.ID)
				if !added {
					where := "dataset"
					if !p.Records[first].Accepted {
						where = "rejected file"
					}
					p.Problems = append(p.Problems, fmt.Sprintf("%s:%d: id %q is already in the %s; dropped", path, lineNo, head.ID, where))
					break
				}
				// The id is the table's copy, cut from its shared chunks.
				rec := PriorRecord{ID: p.ids.IDs()[first], Accepted: accepted, head: p.intern(head), file: f, off: start, size: int32(min(size, math.MaxInt32))}
				for _, rc := range head.ReasonCodes {
					rec.TeacherFailed = rec.TeacherFailed || teacherFailureReasons[rc]
				}
				p.Records = append(p.Records, rec)
			}
		}
		if rerr == io.EOF {
			return hex.EncodeToString(h.Sum(nil)), nil
		}
	}
}

func (p *Prior) intern(h recordHead) *Head {
	if h.Category == "" && h.ReasonCodes == nil {
		return nil
	}
	if p.heads == nil {
		p.heads = map[string]*Head{}
	}
	key := h.Category + "\x01" + strings.Join(h.ReasonCodes, "\x00")
	if h.ReasonCodes != nil {
		key += "\x01" // a list of no codes is not no list
	}
	if hd, ok := p.heads[key]; ok {
		return hd
	}
	hd := &Head{Category: h.Category, ReasonCodes: h.ReasonCodes}
	p.heads[key] = hd
	return hd
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
