package output

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// PriorRecord is one record of a previous run's output files.
type PriorRecord struct {
	ID          string
	Accepted    bool
	ReasonCodes []string

	file *os.File
	off  int64
	size int
}

// Line re-reads the record's line from its file; lines are not kept in
// memory, which grows with the number of ids only.
func (r PriorRecord) Line() ([]byte, error) {
	buf := make([]byte, r.size)
	if _, err := r.file.ReadAt(buf, r.off); err != nil && !(errors.Is(err, io.EOF)) {
		return nil, fmt.Errorf("re-reading %s: %w", r.file.Name(), err)
	}
	return bytes.TrimSpace(buf), nil
}

// Prior is what a previous run left in the out dir.
type Prior struct {
	Records []PriorRecord
	ByID    map[string]int
	// Problems are lines that could not be used (torn, malformed,
	// duplicate); they are dropped, never copied.
	Problems []string
	files    []*os.File
}

// Close releases the previous run's files.
func (p *Prior) Close() {
	for _, f := range p.files {
		f.Close()
	}
}

// ReadPrior reads the dataset and rejected files of outDir, if any. A torn
// or malformed line is reported and dropped; an id present twice keeps its
// first record.
func ReadPrior(outDir string) (*Prior, error) {
	p := &Prior{ByID: map[string]int{}}
	for _, f := range []struct {
		name     string
		accepted bool
	}{{DatasetFile, true}, {RejectedFile, false}} {
		if err := p.read(filepath.Join(outDir, f.name), f.accepted); err != nil {
			p.Close()
			return nil, err
		}
	}
	return p, nil
}

func (p *Prior) read(path string, accepted bool) error {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("cannot read previous output %s: %w", path, err)
	}
	p.files = append(p.files, f)
	r := bufio.NewReaderSize(f, 1<<20)
	var off int64
	for lineNo := 1; ; lineNo++ {
		line, rerr := r.ReadBytes('\n')
		start, size := off, len(line)
		off += int64(size)
		if rerr != nil && rerr != io.EOF {
			return fmt.Errorf("%s:%d: %w", path, lineNo, rerr)
		}
		complete := bytes.HasSuffix(line, []byte("\n"))
		line = bytes.TrimSpace(line)
		if len(line) > 0 {
			var head struct {
				ID          string   `json:"id"`
				ReasonCodes []string `json:"reason_codes"`
			}
			switch err := json.Unmarshal(line, &head); {
			case err != nil && !complete:
				p.Problems = append(p.Problems, fmt.Sprintf("%s:%d: torn last line (an interrupted write); dropped", path, lineNo))
			case err != nil || head.ID == "":
				p.Problems = append(p.Problems, fmt.Sprintf("%s:%d: not a pgrules record; dropped", path, lineNo))
			default:
				if first, dup := p.ByID[head.ID]; dup {
					where := "dataset"
					if !p.Records[first].Accepted {
						where = "rejected file"
					}
					p.Problems = append(p.Problems, fmt.Sprintf("%s:%d: id %q is already in the %s; dropped", path, lineNo, head.ID, where))
					break
				}
				p.ByID[head.ID] = len(p.Records)
				p.Records = append(p.Records, PriorRecord{ID: head.ID, Accepted: accepted, ReasonCodes: head.ReasonCodes, file: f, off: start, size: size})
			}
		}
		if rerr == io.EOF {
			return nil
		}
	}
}
