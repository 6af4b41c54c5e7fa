package output

import (
	"bufio"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"unsafe"
)

// Reading the previous outputs meant reading every byte of them, to find
// each line and its head: 0.2 s at 100,000 records, and 8.9 s at a
// million, where 7.4 GB of outputs no longer fit in the page cache beside
// the inputs and the cache. The writer knows each line's size and head as
// it writes it, so it keeps them beside the record file (<name>.heads in
// the state dir), and a reader that finds the very file the last commit
// recorded (see fingerprint.go) reads the heads instead of the file.
//
// A heads file is, per line of its record file: the line's size with its
// newline, its id, and its head (none, a category, or reason codes), as
// uvarint-prefixed strings; then the number of lines and a CRC-32 of all
// that, which a reader checks in full before it uses any of it. It is
// moved into place after the commit's renames and before its fingerprints
// are recorded, and the fingerprints are dropped before the next commit
// starts, so fingerprints that match mean heads of the same commit.

const headsSuffix = ".heads"

const (
	headNone byte = iota
	headCategory
	headReasons
)

// headsWriter encodes the heads of one record file as it is written.
type headsWriter struct {
	f   *os.File
	w   *bufio.Writer
	crc uint32
	n   uint64
	buf []byte
	// bad: a line pgrules could not read back the head of (never the
	// case for records it writes); the heads are then not kept.
	bad bool
}

func newHeadsWriter(path string) *headsWriter {
	f, err := os.Create(path)
	if err != nil {
		return &headsWriter{bad: true}
	}
	return &headsWriter{f: f, w: bufio.NewWriterSize(f, 64<<10)}
}

// add records line (without its newline).
func (h *headsWriter) add(line []byte) {
	if h.bad {
		return
	}
	head, ok := fastHead(line)
	if !ok {
		var err error
		if head, err = decodeHead(line); err != nil || head.ID == "" {
			h.bad = true
			return
		}
	}
	b := binary.AppendUvarint(h.buf[:0], uint64(len(line)+1))
	b = appendHeadString(b, head.ID)
	switch {
	case head.ReasonCodes != nil:
		b = append(b, headReasons)
		b = binary.AppendUvarint(b, uint64(len(head.ReasonCodes)))
		for _, rc := range head.ReasonCodes {
			b = appendHeadString(b, rc)
		}
	case head.Category != "":
		b = append(b, headCategory)
		b = appendHeadString(b, head.Category)
	default:
		b = append(b, headNone)
	}
	h.buf = b
	h.crc = crc32.Update(h.crc, crc32.IEEETable, b)
	h.n++
	if _, err := h.w.Write(b); err != nil {
		h.bad = true
	}
}

func appendHeadString(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

// finish seals the heads file and returns its seal (the CRC-32 its
// trailer ends with); false when it is not to be used.
func (h *headsWriter) finish() (uint32, bool) {
	if h.f == nil {
		return 0, false
	}
	defer h.f.Close()
	if h.bad {
		return 0, false
	}
	trailer := binary.BigEndian.AppendUint64(nil, h.n)
	h.crc = crc32.Update(h.crc, crc32.IEEETable, trailer)
	trailer = binary.BigEndian.AppendUint32(trailer, h.crc)
	if _, err := h.w.Write(trailer); err != nil {
		return 0, false
	}
	return h.crc, h.w.Flush() == nil
}

// close drops an unfinished heads file's descriptor.
func (h *headsWriter) close() {
	if h.f != nil {
		h.f.Close()
	}
}

var errBadHeads = errors.New("damaged heads file")

// placeHeads moves the committed files' heads beside the state, once the
// commit's renames are done; a file whose heads could not be kept loses
// its seal (and its stale heads), so no reader takes another run's.
func (s *State) placeHeads(staged map[string]fingerprint) {
	for name, fp := range staged {
		dst := filepath.Join(stateDir(s.dir), name+headsSuffix)
		if fp.Heads != 0 && os.Rename(filepath.Join(s.stagingDir(), name+headsSuffix), dst) == nil {
			continue
		}
		fp.Heads = 0
		staged[name] = fp
		_ = os.Remove(dst)
	}
}

// readHeads numbers the records of the record file name (open as f) from
// its heads file: false, with nothing added, when there is none, or it is
// damaged, or it does not describe f to its last byte; the file is then
// read itself.
//
// seal is the CRC-32 the commit recorded for it with the file's
// fingerprint: heads of another commit are not taken.
func (p *Prior) readHeads(outDir, name string, seal uint32, f *os.File, fileIndex uint16, accepted bool) bool {
	path := filepath.Join(stateDir(outDir), name+headsSuffix)
	fi, err := f.Stat()
	if err != nil || seal == 0 {
		return false
	}
	// Checked whole first: numbering a record cannot be undone.
	if crc, err := walkHeads(path, fi.Size(), nil); err != nil || crc != seal {
		return false
	}
	// A million records repeat a handful of heads: each is decoded and
	// interned once, found again by its bytes.
	type known struct {
		head   int32
		failed bool
	}
	seen := map[string]known{}
	_, _ = walkHeads(path, fi.Size(), func(lineNo int, off int64, size int, id string, head []byte) {
		k, ok := seen[string(head)]
		if !ok {
			h, _ := decodeHeadBytes(head)
			k.head = p.intern(h)
			for _, rc := range h.ReasonCodes {
				k.failed = k.failed || teacherFailureReasons[rc]
			}
			seen[string(head)] = k
		}
		p.addRecord(f.Name(), lineNo, id, k.head, k.failed, accepted, fileIndex, off, size)
	})
	return true
}

// walkHeads reads a heads file, calling fn (when not nil) for each line
// with its id and its head's bytes, both valid only during the call; it
// fails unless the file is sealed, whole and its lines' sizes add up to
// size, and returns its seal.
func walkHeads(path string, size int64, fn func(lineNo int, off int64, size int, id string, head []byte)) (uint32, error) {
	hf, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer hf.Close()
	st, err := hf.Stat()
	if err != nil {
		return 0, err
	}
	if st.Size() < 12 {
		return 0, errBadHeads
	}
	body := st.Size() - 12
	r := bufio.NewReaderSize(io.LimitReader(hf, body), 256<<10)
	h := crc32.NewIEEE()
	rec := &headsReader{r: r}
	var off int64
	var n uint64
	for rec.read < body {
		rec.buf = rec.buf[:0]
		lineSize, ok := rec.uvarint()
		if !ok || lineSize == 0 || lineSize > uint64(size-off) {
			return 0, errBadHeads
		}
		if !rec.str() {
			return 0, errBadHeads
		}
		headAt := len(rec.buf)
		idAt := headAt - int(rec.lastLen)
		kind, ok := rec.byte()
		if !ok {
			return 0, errBadHeads
		}
		switch kind {
		case headNone:
		case headCategory:
			ok = rec.str()
		case headReasons:
			var k uint64
			if k, ok = rec.uvarint(); ok && k <= 1<<16 {
				for range k {
					if ok = rec.str(); !ok {
						break
					}
				}
			} else {
				ok = false
			}
		default:
			ok = false
		}
		if !ok {
			return 0, errBadHeads
		}
		h.Write(rec.buf)
		n++
		if fn != nil {
			id := rec.buf[idAt:headAt]
			fn(int(n), off, int(lineSize), unsafe.String(unsafe.SliceData(id), len(id)), rec.buf[headAt:])
		}
		off += int64(lineSize)
	}
	var trailer [12]byte
	if _, err := io.ReadFull(hf, trailer[:]); err != nil {
		return 0, errBadHeads
	}
	h.Write(trailer[:8])
	crc := h.Sum32()
	if binary.BigEndian.Uint64(trailer[:8]) != n || binary.BigEndian.Uint32(trailer[8:]) != crc || off != size {
		return 0, errBadHeads
	}
	return crc, nil
}

// headsReader reads one line's entry of a heads file into buf, as written.
type headsReader struct {
	r       *bufio.Reader
	buf     []byte
	read    int64
	lastLen uint64 // of the last string read
}

func (h *headsReader) byte() (byte, bool) {
	c, err := h.r.ReadByte()
	if err != nil {
		return 0, false
	}
	h.buf = append(h.buf, c)
	h.read++
	return c, true
}

func (h *headsReader) uvarint() (uint64, bool) {
	var x uint64
	for s := uint(0); s < 64; s += 7 {
		c, ok := h.byte()
		if !ok {
			return 0, false
		}
		if c < 0x80 {
			return x | uint64(c)<<s, true
		}
		x |= uint64(c&0x7f) << s
	}
	return 0, false
}

// str reads a length-prefixed string.
func (h *headsReader) str() bool {
	n, ok := h.uvarint()
	if !ok || n > 1<<20 {
		return false
	}
	start := len(h.buf)
	h.buf = append(h.buf, make([]byte, n)...)
	if _, err := io.ReadFull(h.r, h.buf[start:]); err != nil {
		return false
	}
	h.read += int64(n)
	h.lastLen = n
	return true
}

// decodeHeadBytes decodes a head as headsWriter.add wrote it (its kind
// byte first).
func decodeHeadBytes(b []byte) (recordHead, bool) {
	var h recordHead
	if len(b) == 0 {
		return h, false
	}
	kind, b := b[0], b[1:]
	str := func() (string, bool) {
		n, k := binary.Uvarint(b)
		if k <= 0 || n > uint64(len(b)-k) {
			return "", false
		}
		s := string(b[k : k+int(n)])
		b = b[k+int(n):]
		return s, true
	}
	switch kind {
	case headNone:
		return h, true
	case headCategory:
		var ok bool
		h.Category, ok = str()
		return h, ok
	case headReasons:
		n, k := binary.Uvarint(b)
		if k <= 0 || n > uint64(len(b)) {
			return h, false
		}
		b = b[k:]
		h.ReasonCodes = make([]string, 0, n)
		for range n {
			s, ok := str()
			if !ok {
				return h, false
			}
			h.ReasonCodes = append(h.ReasonCodes, s)
		}
		return h, true
	}
	return h, false
}
