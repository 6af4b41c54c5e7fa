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
// newline (a uvarint), its id and its head (encodeHead), each a
// uvarint-prefixed string; then the number of lines and a CRC-32 of all
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
	f         *os.File
	w         *bufio.Writer
	crc       uint32
	n         uint64
	buf, hbuf []byte
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
	head, err := readHead(line, true)
	if err != nil || head.ID == "" {
		h.bad = true
		return
	}
	h.hbuf = encodeHead(h.hbuf[:0], head)
	b := binary.AppendUvarint(h.buf[:0], uint64(len(line)+1))
	b = appendBytes(appendBytes(b, head.ID), h.hbuf)
	h.buf = b
	h.crc = crc32.Update(h.crc, crc32.IEEETable, b)
	h.n++
	if _, err := h.w.Write(b); err != nil {
		h.bad = true
	}
}

func appendBytes[T string | []byte](b []byte, s T) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

// encodeHead appends a head: a kind byte, then its category or its
// reason codes (a count, then each), uvarint-prefixed.
func encodeHead(b []byte, h recordHead) []byte {
	switch {
	case h.ReasonCodes != nil:
		b = append(b, headReasons)
		b = binary.AppendUvarint(b, uint64(len(h.ReasonCodes)))
		for _, rc := range h.ReasonCodes {
			b = appendBytes(b, rc)
		}
	case h.Category != "":
		b = appendBytes(append(b, headCategory), h.Category)
	default:
		b = append(b, headNone)
	}
	return b
}

// decodeHeadBytes is encodeHead undone; false for bytes it did not write.
func decodeHeadBytes(b []byte) (recordHead, bool) {
	var h recordHead
	str := func() (string, bool) {
		n, k := binary.Uvarint(b)
		if k <= 0 || n > uint64(len(b)-k) {
			return "", false
		}
		s := string(b[k : k+int(n)])
		b = b[k+int(n):]
		return s, true
	}
	if len(b) == 0 {
		return h, false
	}
	kind := b[0]
	b = b[1:]
	ok := true
	switch kind {
	case headNone:
	case headCategory:
		h.Category, ok = str()
	case headReasons:
		n, k := binary.Uvarint(b)
		if k <= 0 || n > uint64(len(b)) {
			return h, false
		}
		b = b[k:]
		h.ReasonCodes = make([]string, 0, n)
		for range n {
			var rc string
			if rc, ok = str(); !ok {
				break
			}
			h.ReasonCodes = append(h.ReasonCodes, rc)
		}
	default:
		return h, false
	}
	return h, ok && len(b) == 0
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
	// Checked whole first (numbering a record cannot be undone), each of
	// the handful of distinct heads a million records repeat decoded once.
	heads := map[string]recordHead{}
	var order []string // as first met: heads are interned as a read of the file would
	crc, err := walkHeads(path, fi.Size(), func(_ int, _ int64, _ int, _ string, head []byte) bool {
		if _, ok := heads[string(head)]; ok {
			return true
		}
		h, ok := decodeHeadBytes(head)
		heads[string(head)] = h
		order = append(order, string(head))
		return ok
	})
	if err != nil || crc != seal {
		return false
	}
	type interned struct {
		head   int32
		failed bool
	}
	seen := make(map[string]interned, len(heads))
	for _, b := range order {
		h := heads[b]
		k := interned{head: p.intern(h)}
		for _, rc := range h.ReasonCodes {
			k.failed = k.failed || TeacherFailure(rc)
		}
		seen[b] = k
	}
	_, _ = walkHeads(path, fi.Size(), func(lineNo int, off int64, size int, id string, head []byte) bool {
		k := seen[string(head)]
		p.addRecord(f.Name(), lineNo, id, k.head, k.failed, accepted, fileIndex, off, size)
		return true
	})
	return true
}

// walkHeads reads a heads file, calling fn for each line with its id and
// its head's bytes, both valid only during the call (fn returns false to
// call the file damaged). It fails unless the file is sealed and whole
// and its lines' sizes add up to size, and returns its seal.
func walkHeads(path string, size int64, fn func(lineNo int, off int64, size int, id string, head []byte) bool) (uint32, error) {
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
	crc := crc32.NewIEEE()
	var buf []byte
	var off, read int64
	var n uint64
	for read < body {
		buf = buf[:0]
		lineSize, err := binary.ReadUvarint(r)
		if err != nil || lineSize == 0 || lineSize > uint64(size-off) {
			return 0, errBadHeads
		}
		buf = binary.AppendUvarint(buf, lineSize)
		idAt := len(buf)
		if buf, err = readBytes(r, buf); err != nil {
			return 0, err
		}
		headAt := len(buf)
		if buf, err = readBytes(r, buf); err != nil {
			return 0, err
		}
		read += int64(len(buf))
		crc.Write(buf)
		n++
		id, head := uvarintBody(buf[idAt:headAt]), uvarintBody(buf[headAt:])
		if !fn(int(n), off, int(lineSize), unsafe.String(unsafe.SliceData(id), len(id)), head) {
			return 0, errBadHeads
		}
		off += int64(lineSize)
	}
	var trailer [12]byte
	if _, err := io.ReadFull(hf, trailer[:]); err != nil {
		return 0, errBadHeads
	}
	crc.Write(trailer[:8])
	sum := crc.Sum32()
	if binary.BigEndian.Uint64(trailer[:8]) != n || binary.BigEndian.Uint32(trailer[8:]) != sum || off != size {
		return 0, errBadHeads
	}
	return sum, nil
}

// readBytes reads one uvarint-prefixed string from r and appends it,
// prefix included, to buf.
func readBytes(r *bufio.Reader, buf []byte) ([]byte, error) {
	n, err := binary.ReadUvarint(r)
	if err != nil || n > 1<<20 {
		return buf, errBadHeads
	}
	buf = binary.AppendUvarint(buf, n)
	start := len(buf)
	buf = append(buf, make([]byte, n)...)
	if _, err := io.ReadFull(r, buf[start:]); err != nil {
		return buf, errBadHeads
	}
	return buf, nil
}

// uvarintBody is the string a uvarint-prefixed b holds.
func uvarintBody(b []byte) []byte {
	_, k := binary.Uvarint(b)
	return b[k:]
}
