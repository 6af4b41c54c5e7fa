package cache

import (
	"context"
	"database/sql"
	"encoding/binary"
	"sync"
	"time"
)

// A lookup that finds nothing cost a read transaction — two fcntl locks
// on the shared-memory file, in this VM a trap to the host each — and a
// b-tree descent: 11 µs alone, 25 in a run, 7 % of a first run's CPU,
// where every lookup finds nothing. known answers most of those lookups
// from memory: it
// holds a fingerprint of every key in the file, so a key whose
// fingerprint it lacks is not there, unless another process stored it
// since known last caught up (at most rereadAfter ago): that answer is
// then asked for again and stored over, as it would be if both
// processes had asked at once, which they can anyway. A key it has may
// still be absent (a collision, a row deleted): the file decides.
//
// known catches up with the rows above the highest id it has read
// (maxID): ids are handed out above the highest one. The writer does it
// in each commit's own transaction, where its own rows are the ones it
// just wrote (reading back the rows it stored, from the WAL, had cost 12
// % of a 100k first run); Get does it when no commit has for rereadAfter.
type known struct {
	mu sync.Mutex
	// fps holds the first four bytes of every key read or stored; nil
	// until it is worth reading them all (see missed).
	fps   *fpSet
	maxID int64
	// read is when known last caught up; rebuild says rows at the top
	// were deleted (cache clear, prune) and ids below maxID may be new:
	// every key is read again.
	read    time.Time
	rebuild bool
	// misses counts the lookups that found nothing before fps was made,
	// rows the rows the file had at the first of them.
	misses int
	rows   int64
}

// rereadAfter bounds how long an answer another process stored can go
// unseen by Get. It is twice storeDelay, so that while answers arrive
// the commits (storeDelay apart, plus the commit's own time) keep known
// caught up and lookups do not have to: at 50 ms with 100 ms commits,
// lookups caught up between every two commits, a read transaction and
// two queries each time (1.4 % of a 100k first run's CPU; 1.5 times
// storeDelay still left 0.6 %).
const rereadAfter = 2 * storeDelay

func fingerprint(k []byte) uint32 { return binary.LittleEndian.Uint32(k) }

// absent reports whether the key k is known not to be in the file. It
// runs under getMu, on getConn.
func (c *Cache) absent(k []byte) bool {
	kn := &c.known
	kn.mu.Lock()
	defer kn.mu.Unlock()
	if kn.fps == nil {
		return false
	}
	if kn.fps.has(fingerprint(k)) {
		return false
	}
	if !kn.rebuild && time.Since(kn.read) < rereadAfter {
		return true
	}
	c.catchUps.Add(1)
	if err := c.catchUp(); err != nil {
		kn.fps, kn.misses = nil, 0 // the file decides again, and known starts over
		return false
	}
	return !kn.fps.has(fingerprint(k))
}

// missed counts a lookup that found nothing, and reads every key once
// that costs less than the lookups it would have saved so far: a row
// read costs about a twentieth of a lookup (BenchmarkGetMany), so once
// misses reach a twentieth of the rows (at once, for a new cache). A
// re-gate, whose lookups find their answers, never reads them. It runs
// under getMu.
func (c *Cache) missed() {
	kn := &c.known
	kn.mu.Lock()
	defer kn.mu.Unlock()
	if kn.fps != nil {
		return
	}
	kn.misses++
	if kn.misses == 1 {
		// The rows there are, roughly: ids are not reused but at the top.
		top, err := topID(c.getConn)
		if err != nil {
			kn.misses = 0
			return
		}
		kn.rows = top
	}
	if int64(kn.misses)*20 < kn.rows {
		return
	}
	if err := c.readAllKeys(); err != nil {
		kn.fps, kn.misses = nil, 0
	}
}

// stored adds the key of an answer given to Store: it is in the file
// (or among the answers not committed yet) from now on.
func (c *Cache) stored(k []byte) {
	kn := &c.known
	kn.mu.Lock()
	if kn.fps != nil {
		kn.fps.add(fingerprint(k))
	}
	kn.mu.Unlock()
}

// catchUp adds the keys of the rows above maxID, on getConn, under
// kn.mu.
func (c *Cache) catchUp() error {
	kn := &c.known
	if kn.rebuild {
		return c.readAllKeys()
	}
	top, err := topID(c.getConn)
	if err != nil {
		return err
	}
	if top < kn.maxID {
		return c.readAllKeys()
	}
	if top > kn.maxID {
		if err := keysAbove(c.getConn, kn.maxID, kn.add); err != nil {
			return err
		}
	}
	kn.read = time.Now()
	return nil
}

// readAllKeys makes fps anew from every key in the file (read from the
// key index, a few dozen bytes a row) and every answer not committed
// yet, on getConn, under kn.mu. Those are listed first: one committed
// meanwhile is then in the file when it is read, and Store, which adds
// to fps, waits for kn.mu.
func (c *Cache) readAllKeys() error {
	kn := &c.known
	c.mu.Lock()
	pending := make([][]byte, 0, len(c.unstored))
	for key := range c.unstored {
		if k, err := keyBytes(key); err == nil {
			pending = append(pending, k)
		}
	}
	c.mu.Unlock()
	kn.fps, kn.maxID = newFPSet(), 0
	if err := keysAbove(c.getConn, 0, kn.add); err != nil {
		return err
	}
	for _, k := range pending {
		kn.fps.add(fingerprint(k))
	}
	kn.read, kn.rebuild = time.Now(), false
	return nil
}

func (kn *known) add(id int64, fp uint32) {
	kn.fps.add(fp)
	kn.maxID = max(kn.maxID, id)
}

// querier is a connection or a transaction.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// topID is the highest row id in the file (0: none).
func topID(q querier) (int64, error) {
	var top int64
	err := q.QueryRowContext(context.Background(), `SELECT coalesce(max(id), 0) FROM answers`).Scan(&top)
	return top, err
}

// keysAbove calls f with the id and fingerprint of each row above id.
// All of them (id 0) are read from the key index, a few dozen bytes a
// row; the others from the rows themselves, found by id.
func keysAbove(q querier, id int64, f func(int64, uint32)) error {
	query, args := `SELECT id, substr(key, 1, 4) FROM answers`, []any(nil)
	if id > 0 {
		query, args = query+` WHERE id > ?`, []any{id}
	}
	rows, err := q.QueryContext(context.Background(), query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	var rowID int64
	var fp []byte
	for rows.Next() {
		if err := rows.Scan(&rowID, &fp); err != nil {
			return err
		}
		if len(fp) == 4 {
			f(rowID, fingerprint(fp))
		}
	}
	return rows.Err()
}

// A keySync is known catching up within a commit's transaction: from tops
// before and after the commit's own writes, and the keys of the rows
// others added in between.
type keySync struct {
	from       int64 // maxID when the commit began
	top0, top1 int64
	others     []uint32
}

// syncKeys reads, in tx before the commit's writes, the rows others
// added since known caught up; false when there is nothing to keep up
// (no fps) or the reading failed: the commit goes on regardless.
func (c *Cache) syncKeys(tx *sql.Tx) (*keySync, bool) {
	kn := &c.known
	kn.mu.Lock()
	on, from := kn.fps != nil && !kn.rebuild, kn.maxID
	kn.mu.Unlock()
	if !on {
		return nil, false
	}
	s := &keySync{from: from}
	var err error
	if s.top0, err = topID(tx); err != nil {
		return nil, false
	}
	if s.top0 > from && keysAbove(tx, from, func(_ int64, fp uint32) { s.others = append(s.others, fp) }) != nil {
		return nil, false
	}
	return s, true
}

// end reads the top id after the commit's writes, in tx.
func (s *keySync) end(tx *sql.Tx) bool {
	var err error
	s.top1, err = topID(tx)
	return err == nil
}

// synced records a sync whose transaction committed: every row up to
// top1 is known — those up to from before, those others added read in
// the transaction, the commit's own added by Store — as nobody else
// writes within it.
func (c *Cache) synced(s *keySync) {
	kn := &c.known
	kn.mu.Lock()
	defer kn.mu.Unlock()
	if kn.fps == nil {
		return
	}
	for _, fp := range s.others {
		kn.fps.add(fp)
	}
	if s.top0 < s.from {
		kn.rebuild = true
		return
	}
	if kn.maxID >= s.from { // not rebuilt meanwhile from an older top
		kn.maxID, kn.read = max(kn.maxID, s.top1), time.Now()
	}
}

// fpSet is a set of key fingerprints: open addressing over a power-of-two
// table at most three quarters full, 4 bytes a slot (8.4 MB at a million
// keys, where a Go map took 19.4 MB: a million-sample run stays within
// its 300 MB of anonymous memory). A slot of 0 is empty, so a
// fingerprint 0 is kept as 1: a collision costs a lookup in the file.
type fpSet struct {
	slots []uint32
	n     int
}

func newFPSet() *fpSet { return &fpSet{slots: make([]uint32, 1024)} }

func (s *fpSet) len() int { return s.n }

func (s *fpSet) has(fp uint32) bool {
	fp = max(fp, 1)
	mask := uint32(len(s.slots) - 1)
	// Fingerprints are bytes of a sha256: uniform, no hashing needed.
	for i := fp & mask; ; i = (i + 1) & mask {
		switch s.slots[i] {
		case fp:
			return true
		case 0:
			return false
		}
	}
}

func (s *fpSet) add(fp uint32) {
	fp = max(fp, 1)
	if (s.n+1)*4 > len(s.slots)*3 {
		old := s.slots
		s.slots, s.n = make([]uint32, 2*len(old)), 0
		for _, f := range old {
			if f != 0 {
				s.insert(f)
			}
		}
	}
	s.insert(fp)
}

func (s *fpSet) insert(fp uint32) {
	mask := uint32(len(s.slots) - 1)
	for i := fp & mask; ; i = (i + 1) & mask {
		switch s.slots[i] {
		case fp:
			return
		case 0:
			s.slots[i] = fp
			s.n++
			return
		}
	}
}
