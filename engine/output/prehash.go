package output

import (
	"errors"
	"os"
	"path/filepath"
)

// Prehash hashes the committed record files of an out dir in the
// background, before a run holds the out dir (while it indexes its
// inputs): hashing the previous dataset was most of reading the previous
// outputs, which waits for the lock. ReadPriorWith takes a sum only for
// the very file it opens under the lock — same device, inode, size and
// modification time, before and after the hash — and hashes any other
// (replaced by a run that committed meanwhile, or changed while hashed).
type Prehash struct {
	files map[string]*prehashed // by record file name
}

type prehashed struct {
	stat fingerprint // without a sum: the file as opened
	h    hashed
	done chan struct{} // closed once h is set
}

// StartPrehash starts hashing outDir's record files; those that cannot be
// opened are simply not prehashed.
func StartPrehash(outDir string) *Prehash {
	p := &Prehash{files: map[string]*prehashed{}}
	fps := readFingerprints(outDir)
	for _, name := range RecordFiles {
		f, err := os.Open(filepath.Join(outDir, name))
		if err != nil {
			continue
		}
		if _, known := knownSum(fps, name, f); known {
			f.Close() // ReadPriorWith takes the recorded sum itself
			continue
		}
		st, ok := statFingerprint(f)
		if !ok {
			f.Close()
			continue
		}
		ph := &prehashed{stat: st, done: make(chan struct{})}
		p.files[name] = ph
		go func() {
			defer f.Close()
			defer close(ph.done)
			ph.h = hashFile(f)
			if after, ok := statFingerprint(f); !ok || !after.sameContent(st) {
				ph.h = hashed{err: errChangedWhileHashed}
			}
		}()
	}
	return p
}

// sum is the prehashed sum of f, the record file name; false when f is
// not the file that was hashed, or it changed while hashed.
func (p *Prehash) sum(name string, f *os.File) (hashed, bool) {
	if p == nil {
		return hashed{}, false
	}
	ph := p.files[name]
	if ph == nil {
		return hashed{}, false
	}
	st, ok := statFingerprint(f)
	if !ok || !st.sameContent(ph.stat) {
		return hashed{}, false
	}
	<-ph.done
	return ph.h, ph.h.err == nil
}

var errChangedWhileHashed = errors.New("changed while hashed")
