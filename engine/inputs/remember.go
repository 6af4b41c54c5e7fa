package inputs

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io/fs"
	"math"
	"path/filepath"
	"strconv"
	"time"

	"github.com/pgrules/pgrules/engine/memo"
)

// A file's index — what the scan said of each line — depends on its bytes
// only, so it is remembered under the file's sha256 (and the build: see
// package memo). A re-gate of the same inputs then reads no record to
// index them; a record is still read when its sample is loaded.

const kindIndex = "input-index"

// A file's sha256 is remembered under its identity on disk — path,
// device, inode, size, modification and change times to the nanosecond —
// as git's index remembers what it hashed: a write changes the change
// time, which no tool sets back. A file changed within settle of being
// opened is hashed every time: a write in the same clock tick as the one
// seen would leave every time as it was.
const (
	kindSum = "input-sha256"
	settle  = 2 * time.Second
)

// now is the clock files' times are compared with (tests move it).
var now = time.Now

// fileIdentity is "" when fi is not a file whose times can be trusted yet.
func fileIdentity(path string, fi fs.FileInfo, now time.Time) string {
	st, ok := inode(fi)
	if !ok {
		return ""
	}
	mtime, ctime := fi.ModTime(), st.ctime
	if now.Sub(mtime) < settle || now.Sub(ctime) < settle {
		return ""
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return ""
	}
	return fmt.Sprintf("%s\x00%d:%d:%d:%d:%d", abs, st.dev, st.ino, fi.Size(), mtime.UnixNano(), ctime.UnixNano())
}

func (ix *File) sumDigest() []byte {
	d := memo.New(kindSum)
	if d == nil || ix.identity == "" {
		return nil
	}
	return d.Add(ix.identity).Sum()
}

func (ix *File) recallSum(memos memo.Store) ([]byte, bool) {
	b := memo.Recall(memos, ix.sumDigest())
	return b, len(b) == sha256.Size
}

func (ix *File) rememberSum(memos memo.Store, sum []byte) {
	memo.Keep(memos, kindSum, ix.sumDigest(), sum)
}

func (ix *File) indexDigest() []byte {
	d := memo.New(kindIndex)
	if d == nil || ix.SHA256 == "" {
		return nil
	}
	return d.Add(ix.kind.name, ix.SHA256, strconv.Itoa(len(ix.data))).Sum()
}

// recall returns the remembered index of the file, if any, checked whole
// (eachScanned then reads it without failing).
func (ix *File) recall(memos memo.Store) ([]byte, bool) {
	b := memo.Recall(memos, ix.indexDigest())
	if b == nil {
		return nil, false
	}
	n, ok := checkScanned(b, len(ix.data))
	if !ok || n == 0 && len(ix.data) > 0 {
		return nil, false
	}
	return b, true
}

// remember keeps the index; a memo that cannot be kept costs the next run
// a scan, nothing else.
func (ix *File) remember(memos memo.Store, index []byte) {
	memo.Keep(memos, kindIndex, ix.indexDigest(), index)
}

const (
	flagOK = 1 << iota
)

// appendScanned encodes one scanned line: offsets and numbers as varints,
// strings length-prefixed.
func appendScanned(b []byte, sc scanned) []byte {
	if b == nil {
		b = make([]byte, 0, 64<<10)
	}
	b = binary.AppendUvarint(b, uint64(sc.off))
	b = binary.AppendUvarint(b, uint64(sc.size))
	b = binary.AppendUvarint(b, uint64(sc.line))
	b = binary.AppendUvarint(b, uint64(sc.col))
	flags := byte(0)
	if sc.ok {
		flags |= flagOK
	}
	b = append(b, flags)
	for _, s := range []string{sc.id, sc.derr, sc.why, sc.problem} {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	return b
}

// checkScanned counts the lines of an index appendScanned wrote; false
// when b is not such an index of a file of size bytes.
func checkScanned(b []byte, size int) (int, bool) {
	n := 0
	for len(b) > 0 {
		_, rest, ok := nextScanned(b, size)
		if !ok {
			return 0, false
		}
		b = rest
		n++
	}
	return n, true
}

// eachScanned calls fn with each line of an index checkScanned accepted,
// decoding one at a time: an index of a million lines is never held
// decoded.
func eachScanned(b []byte, fn func(scanned)) {
	for len(b) > 0 {
		sc, rest, ok := nextScanned(b, math.MaxInt)
		if !ok {
			return
		}
		fn(sc)
		b = rest
	}
}

// nextScanned decodes the first line of an index.
func nextScanned(b []byte, size int) (scanned, []byte, bool) {
	var sc scanned
	num := func() (int, bool) {
		v, n := binary.Uvarint(b)
		if n <= 0 || v > math.MaxInt64/4 {
			return 0, false
		}
		b = b[n:]
		return int(v), true
	}
	str := func() (string, bool) {
		n, ok := num()
		if !ok || n > len(b) {
			return "", false
		}
		s := string(b[:n])
		b = b[n:]
		return s, true
	}
	var ok [4]bool
	sc.off, ok[0] = num()
	sc.size, ok[1] = num()
	sc.line, ok[2] = num()
	sc.col, ok[3] = num()
	if ok != [4]bool{true, true, true, true} || len(b) == 0 || sc.off+sc.size > size {
		return sc, nil, false
	}
	sc.ok = b[0]&flagOK != 0
	b = b[1:]
	for _, dst := range []*string{&sc.id, &sc.derr, &sc.why, &sc.problem} {
		s, good := str()
		if !good {
			return sc, nil, false
		}
		*dst = s
	}
	return sc, b, true
}
