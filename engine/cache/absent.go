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
// b-tree descent: 25 µs, 7 % of a first run's CPU, where every lookup
// finds nothing. known answers most of those lookups from memory: it
// holds a fingerprint of every key in the file, so a key whose
// fingerprint it lacks is not there, unless another process stored it
// since known last read the file's new rows (at most rereadAfter ago):
// that answer is then asked for again and stored over, as it would be if
// both processes had asked at once, which they can anyway. A key it has
// may still be absent (a collision, a row deleted): the file decides.
type known struct {
	mu sync.Mutex
	// fps holds the first four bytes of every key read or stored; nil
	// until it is worth reading them all (see worthIt).
	fps map[uint32]struct{}
	// maxID is the highest row id read; read when the rows were last read.
	maxID int64
	read  time.Time
	// misses counts the lookups that found nothing before fps was made.
	misses int
}

// rereadAfter bounds how long an answer another process stored can go
// unseen by Get.
const rereadAfter = 50 * time.Millisecond

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
	if _, ok := kn.fps[fingerprint(k)]; ok {
		return false
	}
	if time.Since(kn.read) < rereadAfter {
		return true
	}
	if err := c.readNewKeys(); err != nil {
		kn.fps = nil // the file decides again, and known starts over
		kn.misses = 0
		return false
	}
	_, ok := kn.fps[fingerprint(k)]
	return !ok
}

// missed counts a lookup that found nothing, and makes fps once reading
// every key costs less than the lookups it would have saved so far: a
// row read costs about a twentieth of a lookup, so once misses reach a
// twentieth of the rows (at once, for a new cache). A re-gate, whose
// lookups find their answers, never reads them. It runs under getMu.
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
		if err := c.getConn.QueryRowContext(context.Background(), `SELECT coalesce(max(id), 0) FROM answers`).Scan(&kn.maxID); err != nil {
			kn.misses = 0
			return
		}
	}
	if int64(kn.misses)*20 < kn.maxID {
		return
	}
	kn.fps, kn.maxID = map[uint32]struct{}{}, 0
	if err := c.readNewKeys(); err != nil {
		kn.fps, kn.misses = nil, 0
	}
}

// stored adds the key of an answer given to Store: it is in the file
// (or among the answers not committed yet) from now on.
func (c *Cache) stored(k []byte) {
	kn := &c.known
	kn.mu.Lock()
	if kn.fps != nil {
		kn.fps[fingerprint(k)] = struct{}{}
	}
	kn.mu.Unlock()
}

// readNewKeys adds the keys of the rows above maxID. Ids are handed out
// above the highest one, so rows are new above it — unless the rows at
// the top were deleted (cache clear, prune) and others added since: the
// top id is then below maxID, and every key is read again. A deletion
// and enough new rows to pass maxID between two readings go unseen; a
// key missed so costs one answer asked for again.
func (c *Cache) readNewKeys() error {
	kn := &c.known
	ctx := context.Background()
	var top int64
	if err := c.getConn.QueryRowContext(ctx, `SELECT coalesce(max(id), 0) FROM answers`).Scan(&top); err != nil {
		return err
	}
	if top < kn.maxID {
		// Rows at the top were deleted, and the ids below top may be
		// new: every key is read again (which drops the deleted ones).
		kn.fps, kn.maxID = map[uint32]struct{}{}, 0
	}
	if top > kn.maxID {
		// All the keys are read from the key index (a few dozen bytes
		// a row), new ones from the rows themselves, found by id.
		q, args := `SELECT id, substr(key, 1, 4) FROM answers`, []any(nil)
		if kn.maxID > 0 {
			q, args = q+` WHERE id > ?`, []any{kn.maxID}
		}
		rows, err := c.getConn.QueryContext(ctx, q, args...)
		if err != nil {
			return err
		}
		if err := kn.add(rows); err != nil {
			return err
		}
	}
	kn.read = time.Now()
	return nil
}

func (kn *known) add(rows *sql.Rows) error {
	defer rows.Close()
	var id int64
	var fp []byte
	for rows.Next() {
		if err := rows.Scan(&id, &fp); err != nil {
			return err
		}
		if len(fp) == 4 {
			kn.fps[fingerprint(fp)] = struct{}{}
		}
		kn.maxID = max(kn.maxID, id)
	}
	return rows.Err()
}
