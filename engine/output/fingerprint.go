package output

import (
	"encoding/json"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// Reading the previous outputs used to hash them (750 MB at 100k samples,
// half a second of CPU per re-gate) only to tell whether anyone changed
// them since the run that wrote them. The commit now records what each
// record file is — device, inode, size, modification and change times —
// beside the sum it wrote into the manifest, and a reader that finds the
// very same file takes that sum instead of hashing. This is git's index
// trick: a write to the file moves its modification time, and even a
// modification time put back by hand moves its change time, which no
// user can set.
//
// Two rules keep it sound on a kernel whose clock for file times ticks
// coarsely (every 1–10 ms): the commit waits until that clock has moved
// past the files' last write before renaming them into place (so a later
// edit cannot share the last write's time), and it records a file only if
// it is still, after the rename, the file it staged.

const fingerprintFile = "fingerprints.json"

// timeTick bounds the granularity of file times: two ticks of a 100 Hz
// kernel.
const timeTick = 20 * time.Millisecond

// fingerprint is what a committed record file was when its sum was taken.
type fingerprint struct {
	SHA256 string `json:"sha256"`
	Dev    uint64 `json:"dev"`
	Ino    uint64 `json:"ino"`
	Size   int64  `json:"size"`
	Mtime  int64  `json:"mtime_ns"`
	Ctime  int64  `json:"ctime_ns"`
	// Heads is the seal of the file's heads (see heads.go); 0: none.
	Heads uint32 `json:"heads_crc,omitempty"`
}

// fingerprintsVersion names the layout of fingerprints and of the heads
// files they seal; fingerprints of another are not used.
const fingerprintsVersion = 2

type fingerprints struct {
	Version int                    `json:"version"`
	Files   map[string]fingerprint `json:"files"`
}

// statFingerprint is f's fingerprint without a sum.
func statFingerprint(f *os.File) (fingerprint, bool) {
	var st unix.Stat_t
	if unix.Fstat(int(f.Fd()), &st) != nil {
		return fingerprint{}, false
	}
	return fingerprintOf(&st), true
}

func statFingerprintPath(path string) (fingerprint, bool) {
	var st unix.Stat_t
	if unix.Stat(path, &st) != nil {
		return fingerprint{}, false
	}
	return fingerprintOf(&st), true
}

func fingerprintOf(st *unix.Stat_t) fingerprint {
	return fingerprint{Dev: uint64(st.Dev), Ino: uint64(st.Ino), Size: st.Size, Mtime: st.Mtim.Nano(), Ctime: st.Ctim.Nano()}
}

// sameContent: same file, same size, not written since.
func (a fingerprint) sameContent(b fingerprint) bool {
	return a.Dev == b.Dev && a.Ino == b.Ino && a.Size == b.Size && a.Mtime == b.Mtime
}

// readFingerprints reads what the last commit recorded (nil: nothing).
func readFingerprints(outDir string) map[string]fingerprint {
	b, err := os.ReadFile(filepath.Join(stateDir(outDir), fingerprintFile))
	if err != nil {
		return nil
	}
	var fp fingerprints
	if json.Unmarshal(b, &fp) != nil || fp.Version != fingerprintsVersion {
		return nil
	}
	return fp.Files
}

// knownSum is the recorded sum of f, the record file name, when f is the
// very file the commit recorded.
func knownSum(fps map[string]fingerprint, name string, f *os.File) (hashed, bool) {
	want, ok := fps[name]
	if !ok || want.SHA256 == "" {
		return hashed{}, false
	}
	now, ok := statFingerprint(f)
	if !ok || !now.sameContent(want) || now.Ctime != want.Ctime {
		return hashed{}, false
	}
	return hashed{sum: want.SHA256}, true
}

// forgetFingerprints drops the record before a commit changes the files,
// so none outlives the files it describes (one that did would not match
// them anyway: their inode or times differ).
func (s *State) forgetFingerprints() {
	_ = os.Remove(filepath.Join(stateDir(s.dir), fingerprintFile))
}

// waitPastLastWrite sleeps until the clock of file times has surely moved
// past the staged files' last write (a long run has long passed it).
func waitPastLastWrite(staged map[string]fingerprint) {
	var last int64
	for _, fp := range staged {
		last = max(last, fp.Mtime)
	}
	if d := time.Until(time.Unix(0, last).Add(timeTick)); d > 0 {
		time.Sleep(d)
	}
}

// recordFingerprints writes the fingerprints of the committed record
// files that are still the files staged. It is an optimisation: failing
// to write it costs the next run a hash, nothing else.
func (s *State) recordFingerprints(staged map[string]fingerprint) {
	out := fingerprints{Version: fingerprintsVersion, Files: map[string]fingerprint{}}
	for name, was := range staged {
		now, ok := statFingerprintPath(filepath.Join(s.dir, name))
		if !ok || !now.sameContent(was) {
			continue
		}
		now.SHA256, now.Heads = was.SHA256, was.Heads
		out.Files[name] = now
	}
	if b, err := json.Marshal(out); err == nil {
		_ = writeFileAtomic(filepath.Join(stateDir(s.dir), fingerprintFile), b)
	}
}
