// Package cache keeps teacher answers in a content-addressed, crash-safe
// store shared by every run of a user, so no answer is paid for twice —
// not after a crash, not to re-gate with edited rules, not into another
// out dir.
//
// The store is SQLite in WAL mode (modernc.org/sqlite: pure Go, no cgo).
// WAL lets any number of processes read while one writes and makes a
// writer wait (busy_timeout) rather than fail, so runs into different out
// dirs share one cache at the same time. An answer is committed within
// storeDelay of Store (when Sync returns, at the latest), and is then in
// the WAL file and survives kill -9 of pgrules; with synchronous=NORMAL it reaches the disk
// at the next checkpoint, so a power loss can take the last moments — an
// fsync per answer would cap a fast teacher at a few hundred answers a
// second.
package cache

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	_ "modernc.org/sqlite" // the database/sql driver "sqlite"

	"github.com/pgrules/pgrules/providers"
)

// keyFormat changes whenever Key's encoding does, so old entries are never
// read under a new meaning.
const keyFormat = "pgrules-cache-key/v2"

// schemaVersion is the layout of the database; Open refuses another.
const schemaVersion = "2"

// Options tune Open.
type Options struct {
	// ReadOnly opens an existing cache without changing it.
	ReadOnly bool
	// Timeout is how long a write waits for another process's write to
	// finish before failing (default 30s).
	Timeout time.Duration
}

// Cache is an open response cache. It is safe for concurrent use, and
// several processes may use one cache file at once.
type Cache struct {
	db   *sql.DB
	path string
	// get runs on getConn, one connection of its own, one Get at a time
	// (getMu): every commit makes a connection drop the pages it holds
	// before its next read, and a Get on whichever of the pool's
	// connections was free found them dropped (measured on a first run
	// with dryrun: Gets took 14 % of the CPU, most of it freeing and
	// reading pages back; on one connection, 5 %).
	get     *sql.Stmt
	getConn *sql.Conn
	getMu   sync.Mutex
	// getMany reads GetManyBatch keys in one statement.
	getMany *sql.Stmt
	put     *sql.Stmt
	// getMemo is the query of a memo; answerSum what a query selects for
	// an answer's checksum ("NULL" in a cache made before checksums and
	// open read-only).
	getMemo, answerSum string
	// putMemo stores a memo, mark records facts about an answer (see
	// Mark); both are nil on a read-only cache.
	putMemo *sql.Stmt
	mark    *sql.Stmt
	// writes feed the group-commit loop; written closes when it is done.
	writes  chan *putReq
	written chan struct{}

	// mu guards unstored, the answers handed to Store and not committed
	// yet, by key (Get reads them first: a sample whose prompt another
	// sample of the run has just been answered for is not asked again),
	// and storeErr, the first failure to commit one of them and how many
	// it lost, which Sync reports.
	mu       sync.Mutex
	unstored map[string]*putReq
	storeErr error
	lost     int

	// known tells most keys that are not in the file without reading it
	// (see absent.go); lookups counts Gets that read the file, catchUps
	// those that read the rows added since known last caught up, commits
	// the transactions of the write loop.
	known    known
	lookups  atomic.Int64
	catchUps atomic.Int64
	commits  atomic.Int64
}

// DefaultPath is the cache every run of this user shares unless told
// otherwise: <user cache dir>/pgrules/cache.db ($XDG_CACHE_HOME or
// ~/.cache on Linux).
func DefaultPath() (string, error) {
	dir, err := os.UserCacheDir()
	if err != nil {
		return "", &Error{Op: "locate", Err: err}
	}
	return filepath.Join(dir, "pgrules", "cache.db"), nil
}

// Error is a cache that cannot be used.
type Error struct {
	Op, Path string
	Err      error
}

func (e *Error) Error() string {
	if e.Path == "" {
		return fmt.Sprintf("response cache: cannot %s: %v", e.Op, e.Err)
	}
	return fmt.Sprintf("response cache %s: cannot %s: %v", e.Path, e.Op, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// ErrNotCache reports a file that is not a pgrules cache of this format.
var ErrNotCache = errors.New("not a pgrules response cache")

// ErrDamaged reports a cache file SQLite finds malformed (a disk that
// filled up under another tool, a copy cut short).
var ErrDamaged = errors.New("the cache file is damaged")

// Open opens or creates the cache file.
func Open(path string, opt Options) (*Cache, error) {
	if opt.Timeout == 0 {
		opt.Timeout = 30 * time.Second
	}
	if opt.ReadOnly {
		if _, err := os.Stat(path); err != nil {
			return nil, &Error{Op: "open", Path: path, Err: errors.Unwrap(err)}
		}
	} else if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, &Error{Op: "create its directory", Path: path, Err: err}
	}
	if isBolt(path) {
		return nil, &Error{Op: "open", Path: path, Err: fmt.Errorf("%w: it is a cache of an older pgrules (bbolt)", ErrNotCache)}
	}
	// mmap_size: pages are read from a mapping, not with a pread each.
	// Each connection keeps its own page cache, outside the Go heap: a
	// small one per connection and a few connections (workers wait for
	// one) keep a million-answer cache from holding a gigabyte of pages
	// in anonymous memory; the interior pages, the ones reused, fit.
	mode := "rwc"
	if opt.ReadOnly {
		mode = "ro"
	}
	dsn := fmt.Sprintf("file:%s?mode=%s&_pragma=busy_timeout(%d)&_pragma=synchronous(NORMAL)&_pragma=mmap_size(1073741824)&_pragma=cache_size(-4096)&_txlock=immediate",
		escapePath(path), mode, opt.Timeout.Milliseconds())
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, &Error{Op: "open", Path: path, Err: err}
	}
	// As many idle as open: database/sql keeps 2 idle by default and
	// closes the others after each use, and a reopened connection starts
	// with an empty page cache and a fresh mapping (measured: a warm
	// re-gate spent 40 % of its CPU re-reading b-tree pages).
	conns := 2*runtime.GOMAXPROCS(0) + 2
	db.SetMaxOpenConns(conns)
	db.SetMaxIdleConns(conns)
	c := &Cache{db: db, path: path}
	if err := c.init(opt.ReadOnly, opt.Timeout); err != nil {
		if c.getConn != nil {
			c.getConn.Close()
		}
		db.Close()
		switch msg := err.Error(); {
		case strings.Contains(msg, "not a database") || strings.Contains(msg, "file is encrypted"):
			err = fmt.Errorf("%w: %v", ErrNotCache, err)
		case strings.Contains(msg, "malformed"):
			err = fmt.Errorf("%w: %v", ErrDamaged, err)
		}
		return nil, &Error{Op: "open", Path: path, Err: err}
	}
	return c, nil
}

func escapePath(p string) string {
	return strings.NewReplacer("?", "%3f", "#", "%23", "%", "%25").Replace(p)
}

func (c *Cache) init(readOnly bool, timeout time.Duration) error {
	if !readOnly {
		if err := c.createSchema(timeout); err != nil {
			return err
		}
	}
	var v string
	if err := c.db.QueryRow(`SELECT v FROM meta WHERE k = 'schema'`).Scan(&v); err != nil {
		return err
	}
	if v != schemaVersion {
		return fmt.Errorf("%w: schema version %s, this pgrules reads %s", ErrNotCache, v, schemaVersion)
	}
	var err error
	later := []string{"passed", "hits", "sum", "passed_sum", "hits_sum"}
	for i, col := range later {
		if later[i], err = c.column(readOnly, "answers", col); err != nil {
			return err
		}
	}
	c.answerSum = later[2]
	cols := `teacher, text, stored_at, ` + strings.Join(later, ", ")
	memoSum, err := c.column(readOnly, "memos", "sum")
	if err != nil {
		return err
	}
	c.getMemo = `SELECT value, ` + memoSum + ` FROM memos WHERE digest = ?`
	if c.getConn, err = c.db.Conn(context.Background()); err != nil {
		return err
	}
	if c.get, err = c.getConn.PrepareContext(context.Background(), `SELECT `+cols+` FROM answers WHERE key = ?`); err != nil {
		return err
	}
	if c.getMany, err = c.db.Prepare(`SELECT key, ` + cols + ` FROM answers WHERE key IN (?` + strings.Repeat(", ?", GetManyBatch-1) + `)`); err != nil {
		return err
	}
	if !readOnly {
		// A new answer under a key clears the old one's marks, unless it
		// is the very same text (--refresh, same answer).
		// The marks stored with it (NULL: none known) join those the
		// row has for that text.
		// Each mark keeps its checksum with it.
		if c.put, err = c.db.Prepare(`INSERT INTO answers (key, provider, model, teacher, text, stored_at, passed, hits, sum, passed_sum, hits_sum) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (key) DO UPDATE SET provider = excluded.provider, model = excluded.model, teacher = excluded.teacher,
				text = excluded.text, stored_at = excluded.stored_at, sum = excluded.sum,
				passed_sum = CASE WHEN answers.text = excluded.text AND excluded.passed IS NULL THEN answers.passed_sum ELSE excluded.passed_sum END,
				passed = CASE WHEN answers.text = excluded.text THEN coalesce(excluded.passed, answers.passed) ELSE excluded.passed END,
				hits_sum = CASE WHEN answers.text = excluded.text AND excluded.hits IS NULL THEN answers.hits_sum ELSE excluded.hits_sum END,
				hits = CASE WHEN answers.text = excluded.text THEN coalesce(excluded.hits, answers.hits) ELSE excluded.hits END`); err != nil {
			return err
		}
		if c.putMemo, err = c.db.Prepare(`INSERT OR REPLACE INTO memos (digest, kind, value, stored_at, sum) VALUES (?, ?, ?, ?, ?)`); err != nil {
			return err
		}
		// Only the very text that was checked is marked: an answer
		// replaced meanwhile (--refresh in another process) is not. A
		// mark not given keeps what the row has.
		if c.mark, err = c.db.Prepare(`UPDATE answers SET
				passed_sum = CASE WHEN ?1 IS NULL THEN passed_sum ELSE ?2 END, passed = coalesce(?1, passed),
				hits_sum = CASE WHEN ?3 IS NULL THEN hits_sum ELSE ?4 END, hits = coalesce(?3, hits)
			WHERE key = ?5 AND text = ?6`); err != nil {
			return err
		}
		// Room for what arrives while a commit runs (a group, then the
		// checkpoint's fsync every few groups): a worker that found the
		// queue full stood still until the commit ended, and with 256
		// places all of a first run's workers did, idling the cores 5–10 %
		// of the run. The answers queued are held by unstored anyway.
		c.writes, c.written = make(chan *putReq, lazyBatch), make(chan struct{})
		go c.writeLoop()
	}
	return nil
}

const schemaSQL = `
	-- A rowid table with an index on the key: rows are kilobytes, and a
	-- WITHOUT ROWID table keeps whole rows in its key b-tree, which SQLite
	-- advises against for rows larger than a twentieth of a page.
	CREATE TABLE IF NOT EXISTS answers (
		id        INTEGER PRIMARY KEY,
		key       BLOB NOT NULL UNIQUE,
		provider  TEXT NOT NULL,
		model     TEXT NOT NULL,
		teacher   BLOB NOT NULL,   -- providers.Response as JSON
		text      BLOB NOT NULL,   -- the answer's bytes, as received
		stored_at INTEGER NOT NULL, -- unix seconds, wall clock
		-- The check this very text is known to pass (a memo digest, see
		-- Mark); replacing the answer clears it.
		passed    BLOB,
		-- The word-list hits of this very text (a memo digest, then the
		-- hits; see Mark); replacing the answer clears them.
		hits      BLOB,
		-- CRC-32C of the key with teacher and text, of the key with
		-- passed, of the key with hits (see sum.go); NULL in rows of a
		-- pgrules before them.
		sum        INTEGER,
		passed_sum INTEGER,
		hits_sum   INTEGER
	);
	CREATE INDEX IF NOT EXISTS answers_stored_at ON answers(stored_at);
	CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);
	-- What a provider plugin said its answer-changing settings are, for a
	-- given binary and configuration: an --offline run finds its answers'
	-- keys without starting the plugin.
	CREATE TABLE IF NOT EXISTS identities (
		provider   TEXT NOT NULL,
		plugin_sha TEXT NOT NULL,
		config_sha TEXT NOT NULL,
		version    TEXT NOT NULL,
		identity   BLOB NOT NULL,
		models     TEXT NOT NULL,
		by_id      INTEGER NOT NULL,
		PRIMARY KEY (provider, plugin_sha, config_sha)
	) WITHOUT ROWID;
	-- Facts a run derived and a rerun would derive again at a cost, under
	-- the sha256 of everything they derive from (see Memo): never answers,
	-- so losing one costs time, not money. A pgrules that predates the
	-- table ignores it.
	CREATE TABLE IF NOT EXISTS memos (
		digest    BLOB PRIMARY KEY,
		kind      TEXT NOT NULL,
		value     BLOB NOT NULL,
		stored_at INTEGER NOT NULL,
		sum       INTEGER -- CRC-32C of digest and value
	);
	INSERT OR IGNORE INTO meta VALUES ('schema', '` + schemaVersion + `');`

// createSchema creates the tables of a new cache. A new file gets 16 KB
// pages first, so that one page holds a whole answer: with SQLite's
// default 4 KB a 6 KB answer spans a chain of overflow pages, read one by
// one and assembled in a fresh allocation on every read. The page size of
// a file is fixed by its first write, so the pragma and the tables go
// through one connection. (The DSN's _pragma parameters are applied in
// name order, and WAL mode writes the first page.)
// createSchema makes a new file a cache, or checks an existing one is.
// Two processes opening a new file at once race to set it up: switching to
// WAL needs the file to itself and SQLite answers SQLITE_BUSY at once, not
// after busy_timeout, so the loser tries again until the winner is done.
func (c *Cache) createSchema(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for wait := 5 * time.Millisecond; ; wait = min(2*wait, 200*time.Millisecond) {
		err := c.createSchemaOnce()
		if err == nil || !isBusy(err) || time.Now().After(deadline) {
			return err
		}
		time.Sleep(wait)
	}
}

func isBusy(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "SQLITE_BUSY") || strings.Contains(msg, "database is locked")
}

func (c *Cache) createSchemaOnce() error {
	ctx := context.Background()
	conn, err := c.db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	var tables int
	if err := conn.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master`).Scan(&tables); err != nil {
		return err
	}
	if tables == 0 {
		// Best effort: a process creating the file at the same time may
		// have fixed the page size already.
		_, _ = conn.ExecContext(ctx, `PRAGMA page_size = 16384`)
	}
	// WAL is a property of the file: set once, every connection of every
	// process uses it. (It writes the first page: after page_size.)
	var mode string
	if err := conn.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode); err != nil {
		return err
	}
	if mode != "wal" {
		if err := conn.QueryRowContext(ctx, `PRAGMA journal_mode = WAL`).Scan(&mode); err != nil {
			return err
		}
	}
	_, err = conn.ExecContext(ctx, schemaSQL)
	return err
}

// Close releases the cache. The last answers are checkpointed from the
// WAL into the database file when no other process has it open.
func (c *Cache) Close() error {
	if c.writes != nil {
		close(c.writes)
		<-c.written
		c.writes = nil
	}
	if c.getConn != nil {
		c.get.Close()
		c.getConn.Close()
		c.getConn = nil
	}
	if err := c.db.Close(); err != nil {
		return &Error{Op: "close", Path: c.path, Err: err}
	}
	return nil
}

// Path is the cache file.
func (c *Cache) Path() string { return c.path }

// KeyParts is everything that changes a teacher's answer, and nothing
// else: not the gates, not file names or paths.
type KeyParts struct {
	Provider     string
	IdentityJSON []byte
	System       string
	Prompt       string
	// PromptParts, when set, is the prompt as pieces (Prompt is then
	// ignored): hashed in place, never joined.
	PromptParts []string
	// SampleID is set only for providers whose answers depend on it.
	SampleID string
}

// Key hashes the parts with length prefixes, so no two different part
// lists can encode alike ("ab"+"c" vs "a"+"bc").
func Key(k KeyParts) string {
	h := sha256.New()
	var n [8]byte
	write := func(parts ...string) {
		size := 0
		for _, p := range parts {
			size += len(p)
		}
		binary.BigEndian.PutUint64(n[:], uint64(size))
		h.Write(n[:])
		for _, p := range parts {
			// sha256's digest has no WriteString: io.WriteString would
			// copy each piece of the prompt (measured: 9 KB a sample). A
			// hash reads what it is given and keeps none of it.
			h.Write(unsafe.Slice(unsafe.StringData(p), len(p)))
		}
	}
	write(keyFormat)
	write(k.Provider)
	h.Write(binary.BigEndian.AppendUint64(n[:0], uint64(len(k.IdentityJSON))))
	h.Write(k.IdentityJSON)
	write(k.System)
	if k.PromptParts != nil {
		write(k.PromptParts...)
	} else {
		write(k.Prompt)
	}
	write(k.SampleID)
	var sum [sha256.Size]byte
	return hex.EncodeToString(h.Sum(sum[:0]))
}

// Entry is one cached answer.
type Entry struct {
	Text     string             `json:"text"`
	Teacher  providers.Response `json:"teacher"`
	StoredAt time.Time          `json:"stored_at"`
	// Passed is the digest of the check this text is known to pass (nil:
	// none), as Mark recorded it.
	Passed []byte `json:"-"`
	// Hits are the word-list hits of this text as Mark recorded them
	// (nil: none).
	Hits []byte `json:"-"`
}

func keyBytes(key string) ([]byte, error) {
	b, err := hex.DecodeString(key)
	if err != nil || len(b) != sha256.Size {
		return nil, fmt.Errorf("cache key %q is not a sha256", key)
	}
	return b, nil
}

// Get returns the answer stored under key.
func (c *Cache) Get(key string) (Entry, bool, error) {
	k, err := keyBytes(key)
	if err != nil {
		return Entry{}, false, err
	}
	if e, ok := c.unstoredEntry(key); ok {
		return e, true, nil
	}
	// RawBytes: the driver's copy of each column is read in place, not
	// copied again by Scan before the text becomes a string.
	c.getMu.Lock()
	defer c.getMu.Unlock()
	if c.absent(k) {
		return Entry{}, false, nil
	}
	c.lookups.Add(1)
	rows, err := c.get.Query(k)
	if err != nil {
		return Entry{}, false, &Error{Op: "read", Path: c.path, Err: err}
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return Entry{}, false, &Error{Op: "read", Path: c.path, Err: err}
		}
		rows.Close()
		c.missed()
		return Entry{}, false, nil
	}
	_, e, err := c.scanEntry(rows, key, k)
	if err != nil {
		return Entry{}, false, err
	}
	return e, true, nil
}

// scanEntry reads the entry at rows; key "" means the row's key is its
// first column (GetMany's). It returns the key, hex.
func (c *Cache) scanEntry(rows *sql.Rows, key string, k []byte) (string, Entry, error) {
	var teacher, text sql.RawBytes
	var passed, hits []byte
	var stored int64
	var sum, passedSum, hitsSum *int64
	dest := []any{&teacher, &text, &stored, &passed, &hits, &sum, &passedSum, &hitsSum}
	if key == "" {
		dest = append([]any{&k}, dest...)
	}
	if err := rows.Scan(dest...); err != nil {
		return "", Entry{}, &Error{Op: "read", Path: c.path, Err: err}
	}
	if key == "" {
		key = hex.EncodeToString(k)
	}
	if !intact(sum, answerSum(k, teacher, text)) {
		return key, Entry{}, &Error{Op: "read the answer under " + key[:min(12, len(key))], Path: c.path, Err: ErrChecksum}
	}
	e := Entry{Text: string(text), StoredAt: time.Unix(stored, 0).UTC(), Passed: verified(k, passed, passedSum), Hits: verified(k, hits, hitsSum)}
	if err := decodeTeacher(teacher, &e.Teacher); err != nil {
		return key, Entry{}, &Error{Op: "read entry " + key[:min(12, len(key))], Path: c.path, Err: err}
	}
	e.Teacher.Text = e.Text
	return key, e, nil
}

// GetManyBatch is how many keys one GetMany statement reads: callers that
// batch keys for GetMany fill statements with multiples of it.
const GetManyBatch = 32

// GetMany is Get for many keys, GetManyBatch to a statement: the entries
// found, by key. A statement each cost 36 µs an answer, 32 to a statement
// 19 µs (BenchmarkGetMany): a lock, a read transaction and database/sql's
// bookkeeping a statement. A key not in the map has no entry, or one that
// cannot be read: Get says why. Like Get, it finds answers given to Store
// and not committed yet.
func (c *Cache) GetMany(keys []string) (map[string]Entry, error) {
	// Looked at before the file: an answer committed in between is in
	// one or the other.
	var fresh map[string]Entry
	for _, k := range keys {
		if e, ok := c.unstoredEntry(k); ok {
			if fresh == nil {
				fresh = map[string]Entry{}
			}
			fresh[k] = e
		}
	}
	out := make(map[string]Entry, len(keys))
	args := make([]any, GetManyBatch)
	for len(keys) > 0 {
		batch := keys[:min(GetManyBatch, len(keys))]
		keys = keys[len(batch):]
		for i := range args {
			// A short batch repeats its last key: IN ignores repeats.
			k, err := keyBytes(batch[min(i, len(batch)-1)])
			if err != nil {
				return nil, err
			}
			args[i] = k
		}
		if err := c.getBatch(args, out); err != nil {
			return nil, err
		}
	}
	maps.Copy(out, fresh)
	return out, nil
}

func (c *Cache) getBatch(args []any, out map[string]Entry) error {
	rows, err := c.getMany.Query(args...)
	if err != nil {
		return &Error{Op: "read", Path: c.path, Err: err}
	}
	defer rows.Close()
	for rows.Next() {
		if key, e, err := c.scanEntry(rows, "", nil); err == nil {
			out[key] = e
		}
	}
	if err := rows.Err(); err != nil {
		return &Error{Op: "read", Path: c.path, Err: err}
	}
	return nil
}

// Mark records facts about the answer under key, if its text is still
// text (Entry.Passed and Entry.Hits of later reads): passed, the digest of
// a check it passes, and hits, its word-list hits. A nil fact leaves the
// row's as it is. Mark returns at once: the marks are committed with a
// later group of writes, and a lost mark only costs the work again.
func (c *Cache) Mark(key, text string, passed, hits []byte) error {
	if c.mark == nil {
		return &Error{Op: "write", Path: c.path, Err: errors.New("the cache is open read-only")}
	}
	k, err := keyBytes(key)
	if err != nil {
		return err
	}
	c.writes <- &putReq{stmt: c.mark, args: []any{passed, optSum(k, passed), hits, optSum(k, hits), k, blob(text)}, delay: lazyDelay}
	return nil
}

// column gives a cache made before column name of table that column, and
// returns what a query selects for it: the column, or NULL in a
// read-only cache without it (no marks, no checksums). Two processes may
// race to add it: the loser's "duplicate column" is success.
func (c *Cache) column(readOnly bool, table, name string) (string, error) {
	var n int
	if err := c.db.QueryRow(`SELECT count(*) FROM pragma_table_info('`+table+`') WHERE name = ?`, name).Scan(&n); err == nil && n > 0 {
		return name, nil
	}
	if readOnly {
		return "NULL", nil
	}
	_, err := c.db.Exec(`ALTER TABLE ` + table + ` ADD COLUMN ` + name + ` BLOB`)
	if err != nil && !strings.Contains(err.Error(), "duplicate column") {
		return "", err
	}
	return name, nil
}

// Memo returns the value remembered under digest, in a slice of the
// caller's (Scan copies it). Values are at most 1 MB: bigger ones are
// stored in pieces (see memo.Keep).
func (c *Cache) Memo(digest []byte) ([]byte, bool, error) {
	var v []byte
	var sum *int64
	err := c.db.QueryRow(c.getMemo, digest).Scan(&v, &sum)
	switch {
	case errors.Is(err, sql.ErrNoRows), err != nil && strings.Contains(err.Error(), "no such table"):
		return nil, false, nil
	case err != nil:
		return nil, false, &Error{Op: "read", Path: c.path, Err: err}
	case !intact(sum, checksum(digest, v)):
		return nil, false, nil // damaged: as good as absent
	}
	return v, true, nil
}

// PutMemo remembers value under digest. kind says what it is (for cache
// stats). With wait false it returns at once and the memo is committed
// with the next group of answers: a lost memo only costs time.
func (c *Cache) PutMemo(kind string, digest, value []byte, wait bool) error {
	if c.putMemo == nil {
		return &Error{Op: "write", Path: c.path, Err: errors.New("the cache is open read-only")}
	}
	req := &putReq{stmt: c.putMemo, args: []any{digest, kind, value, time.Now().Unix(), checksum(digest, value)}}
	if !wait {
		req.delay = lazyDelay
		c.writes <- req
		return nil
	}
	req.done = make(chan error, 1)
	c.writes <- req
	if err := <-req.done; err != nil {
		return &Error{Op: "write", Path: c.path, Err: err}
	}
	return nil
}

// Sync returns once every write nobody waited for (Store, Mark, memos)
// is committed or failed. A memo or a mark is not worth an error; answers
// are: the error says how many Store lost since the last Sync.
func (c *Cache) Sync() error {
	if c.writes == nil {
		return nil
	}
	req := &putReq{done: make(chan error, 1)}
	c.writes <- req
	<-req.done
	c.mu.Lock()
	defer c.mu.Unlock()
	err, lost := c.storeErr, c.lost
	c.storeErr, c.lost = nil, 0
	if err != nil {
		return &StoreError{Lost: lost, Err: &Error{Op: "write", Path: c.path, Err: err}}
	}
	return nil
}

// StoreError reports answers given to Store that were never committed.
type StoreError struct {
	Lost int
	Err  error
}

func (e *StoreError) Error() string {
	return fmt.Sprintf("%d answer(s) not stored: %v", e.Lost, e.Err)
}

func (e *StoreError) Unwrap() error { return e.Err }

// Store stores an answer — only successful answers are ever stored: an
// error is not an answer — with e.Passed and e.Hits, when set, as its
// marks (see Mark). It does not wait: the answer is committed with others
// within storeDelay, and Get finds it meanwhile; Sync waits for the
// commit, and reports one that failed. A worker that waited for each commit spent
// most of a fast teacher's run waiting (measured with dryrun: 94 of the
// 127 s workers were blocked in 20,000 samples), while the answers
// reached the disk no sooner; a kill can now lose the answers of the last
// storeDelay, as it always lost those of the calls in flight.
func (c *Cache) Store(key string, e Entry) error {
	if c.put == nil {
		return &Error{Op: "write", Path: c.path, Err: errors.New("the cache is open read-only")}
	}
	k, err := keyBytes(key)
	if err != nil {
		return err
	}
	teacher, err := encodeTeacher(&e.Teacher)
	if err != nil {
		return err
	}
	if e.StoredAt.IsZero() {
		e.StoredAt = time.Now()
	}
	req := &putReq{key: key, entry: e, delay: storeDelay,
		args: []any{k, e.Teacher.Provider, e.Teacher.ChosenModel, teacher, blob(e.Text), e.StoredAt.Unix(), e.Passed, e.Hits,
			answerSum(k, teacher, blob(e.Text)), optSum(k, e.Passed), optSum(k, e.Hits)}}
	c.mu.Lock()
	if c.unstored == nil {
		c.unstored = map[string]*putReq{}
	}
	c.unstored[key] = req
	c.mu.Unlock()
	c.stored(k)
	c.writes <- req
	return nil
}

// blob is s as the bytes of a BLOB argument, without a copy: the driver
// copies an argument when it binds it and never writes to it. (A string
// argument would be stored as TEXT, which never equals the BLOB of the
// same bytes that ON CONFLICT compares it with.)
func blob(s string) []byte {
	if s == "" {
		return []byte{} // not nil: nil binds NULL
	}
	return unsafe.Slice(unsafe.StringData(s), len(s))
}

// unstoredEntry is the answer Store was given under key, while it is
// not committed.
func (c *Cache) unstoredEntry(key string) (Entry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r, ok := c.unstored[key]
	if !ok {
		return Entry{}, false
	}
	e := r.entry
	e.Teacher.Text = e.Text
	return e, true
}

// putReq is one write waiting for the group commit that stores it.
type putReq struct {
	// stmt is the statement to run (nil: store an answer).
	stmt *sql.Stmt
	args []any
	// done, when set, receives the commit's outcome: someone waits.
	done chan error
	// delay bounds how long a write nobody waits for may wait for others
	// to share its commit.
	delay time.Duration
	// key and entry: an answer given to Store.
	key   string
	entry Entry
}

// Writes nobody waits for (memos, marks, stored answers) wait for a
// commit that happens anyway, for lazyBatch of them, or for their delay:
// every commit makes every other connection drop its page cache, and a
// re-gate that remembers a verdict per sample would otherwise commit
// hundreds of times a second (measured: 37 % of a cold re-gate's CPU went
// to reading pages back). A memo or a mark waits lazyDelay at most:
// losing one costs time, not money. An answer waits storeDelay at most,
// so a kill loses few paid answers next to the calls in flight it always
// loses (a teacher's call takes seconds: 100 ms of its answers is a
// twentieth of them or less). It is 100 ms, not the 10 ms a commit took
// when workers waited for it, for the key index: keys are
// hashes, so each answer of a group lands on its own leaf of it, and a
// commit writes every leaf it touched, 16 KB each, into the WAL and again
// at the checkpoint. A larger group shares leaves (100k first runs:
// pgrules wrote 4.10 GB at 10 ms, 2.95 GB at 100 ms, 2.73 GB at 1 s, for
// a 634 MB cache and 750 MB of records; the commit loop's CPU went from
// 5.6 to 4.2 s). At 20,000 samples the index is too small for this to
// show (7.3-8.4 s either way).
const (
	lazyBatch  = 4096
	lazyDelay  = time.Second
	storeDelay = 100 * time.Millisecond
)

// commitLinger is how long a commit someone waits for waits for more
// writes to share it.
const commitLinger = 2 * time.Millisecond

// writeLoop commits writes in groups. A transaction costs the same for
// one answer or a hundred, so concurrent writers share it; a write someone
// waits for (Sync, a memo put with wait) is answered only once it is
// committed.
func (c *Cache) writeLoop() {
	defer close(c.written)
	var pending []*putReq
	var due time.Time // when pending must be committed; zero: none is
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	flush := func() {
		err := c.commit(pending)
		c.finish(pending, err)
		pending, due = nil, time.Time{}
		timer.Stop()
	}
	for {
		select {
		case r, ok := <-c.writes:
			if !ok {
				if len(pending) > 0 {
					flush()
				}
				return
			}
			pending = append(pending, r)
			if r.done != nil {
				c.linger(&pending)
				flush()
				continue
			}
			if at := time.Now().Add(r.delay); due.IsZero() || at.Before(due) {
				due = at
				timer.Reset(r.delay)
			}
			if len(pending) >= lazyBatch {
				flush()
			}
		case <-timer.C:
			if len(pending) > 0 {
				flush()
			}
		}
	}
}

// linger adds to batch the writes that arrive within commitLinger.
func (c *Cache) linger(batch *[]*putReq) {
	t := time.NewTimer(commitLinger)
	defer t.Stop()
	for len(*batch) < 256+lazyBatch {
		select {
		case r, ok := <-c.writes:
			if !ok {
				return
			}
			*batch = append(*batch, r)
		case <-t.C:
			return
		}
	}
}

// finish tells the writers of batch how its commit went: those who wait
// by their channel, Store's answers by Sync.
func (c *Cache) finish(batch []*putReq, err error) {
	c.mu.Lock()
	for _, r := range batch {
		if r.key == "" {
			continue
		}
		if c.unstored[r.key] == r {
			delete(c.unstored, r.key)
		}
		if err != nil {
			c.lost++
			if c.storeErr == nil {
				c.storeErr = err
			}
		}
	}
	c.mu.Unlock()
	for _, r := range batch {
		if r.done != nil {
			r.done <- err
		}
	}
}

func (c *Cache) commit(batch []*putReq) error {
	tx, err := c.db.Begin()
	if err != nil {
		return err
	}
	ks, syncing := c.syncKeys(tx)
	sortAnswerRuns(batch)
	stmts := map[*sql.Stmt]*sql.Stmt{}
	for _, r := range batch {
		if r.args == nil {
			continue // a Sync
		}
		s := r.stmt
		if s == nil {
			s = c.put
		}
		stmt, ok := stmts[s]
		if !ok {
			stmt = tx.Stmt(s)
			stmts[s] = stmt
		}
		if _, err := stmt.Exec(r.args...); err != nil {
			tx.Rollback()
			return err
		}
	}
	syncing = syncing && ks.end(tx)
	c.commits.Add(1)
	if err := tx.Commit(); err != nil {
		return err
	}
	if syncing {
		c.synced(ks)
	}
	return nil
}

// sortAnswerRuns orders each run of answers in batch by key. A group is
// larger than a connection's page cache, so SQLite writes some of its
// dirty pages to the WAL before the commit; inserted in arrival order the
// random keys came back to key-index leaves already written out, which
// were then written again, and the commit read every frame from the first
// one written again back to recompute their checksums (100k first run:
// 805 MB written to the WAL for a 634 MB cache, 1.5 GB read back). In key
// order, a leaf is done with once the inserts pass it. The sort is stable
// and stays within a run: of two answers under one key the later still
// wins, and a mark or memo keeps its place among the answers.
func sortAnswerRuns(batch []*putReq) {
	isAnswer := func(r *putReq) bool { return r.stmt == nil && r.args != nil }
	for i := 0; i < len(batch); {
		if !isAnswer(batch[i]) {
			i++
			continue
		}
		j := i + 1
		for j < len(batch) && isAnswer(batch[j]) {
			j++
		}
		slices.SortStableFunc(batch[i:j], func(a, b *putReq) int {
			return bytes.Compare(a.args[0].([]byte), b.args[0].([]byte))
		})
		i = j
	}
}

// Identity is a provider plugin's account of its configuration, as
// Configure returned it, remembered for offline runs.
type Identity struct {
	Version  string
	JSON     []byte
	Models   []string
	KeyByID  bool
	Provider string
}

// RememberIdentity records what plugin pluginSHA, configured with the
// config whose sha256 is configSHA, reported.
func (c *Cache) RememberIdentity(pluginSHA, configSHA string, id Identity) error {
	_, err := c.db.Exec(`INSERT OR REPLACE INTO identities VALUES (?, ?, ?, ?, ?, ?, ?)`,
		id.Provider, pluginSHA, configSHA, id.Version, id.JSON, strings.Join(id.Models, "\n"), id.KeyByID)
	if err != nil {
		return &Error{Op: "write", Path: c.path, Err: err}
	}
	return nil
}

// LookupIdentity finds what RememberIdentity recorded.
func (c *Cache) LookupIdentity(provider, pluginSHA, configSHA string) (Identity, bool, error) {
	id := Identity{Provider: provider}
	var models string
	err := c.db.QueryRow(`SELECT version, identity, models, by_id FROM identities WHERE provider = ? AND plugin_sha = ? AND config_sha = ?`,
		provider, pluginSHA, configSHA).Scan(&id.Version, &id.JSON, &models, &id.KeyByID)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return id, false, nil
	case err != nil:
		return id, false, &Error{Op: "read", Path: c.path, Err: err}
	}
	if models != "" {
		id.Models = strings.Split(models, "\n")
	}
	return id, true, nil
}

// Stats describes what the cache holds: what a re-gate saves.
type Stats struct {
	Path       string         `json:"path"`
	Entries    int            `json:"entries"`
	Bytes      int64          `json:"bytes"`
	ByProvider map[string]int `json:"by_provider"`
	ByModel    map[string]int `json:"by_model"`
	Oldest     *time.Time     `json:"oldest,omitempty"`
	Newest     *time.Time     `json:"newest,omitempty"`
	Tokens     int64          `json:"tokens"`
	CostUSD    float64        `json:"cost_usd"`
	// CostReported counts the answers whose cost the provider reported
	// (CostUSD sums theirs; a local server or dryrun reports none).
	CostReported int     `json:"cost_reported"`
	LatencyTotal float64 `json:"latency_s_total"`
	// Memos count the derived facts kept to make reruns faster (input
	// indexes, prompt keys); they are not answers.
	Memos     int   `json:"memos"`
	MemoBytes int64 `json:"memo_bytes"`
}

// Stats scans the cache.
func (c *Cache) Stats() (Stats, error) {
	s := Stats{Path: c.path, ByProvider: map[string]int{}, ByModel: map[string]int{}}
	for _, f := range []string{c.path, c.path + "-wal"} {
		if fi, err := os.Stat(f); err == nil {
			s.Bytes += fi.Size()
		}
	}
	rows, err := c.db.Query(`SELECT provider, model, teacher, stored_at FROM answers`)
	if err != nil {
		return s, &Error{Op: "read", Path: c.path, Err: err}
	}
	defer rows.Close()
	for rows.Next() {
		var provider, model string
		var teacher []byte
		var stored int64
		if err := rows.Scan(&provider, &model, &teacher, &stored); err != nil {
			return s, &Error{Op: "read", Path: c.path, Err: err}
		}
		var t providers.Response
		if err := json.Unmarshal(teacher, &t); err != nil {
			return s, &Error{Op: "read", Path: c.path, Err: err}
		}
		s.Entries++
		s.ByProvider[provider]++
		s.ByModel[model]++
		if t.Usage != nil {
			s.Tokens += t.Usage.TotalTokens
		}
		s.LatencyTotal += t.LatencySeconds
		if t.CostUSD != nil {
			s.CostUSD += *t.CostUSD
			s.CostReported++
		}
		at := time.Unix(stored, 0).UTC()
		if s.Oldest == nil || at.Before(*s.Oldest) {
			s.Oldest = &at
		}
		if s.Newest == nil || at.After(*s.Newest) {
			s.Newest = &at
		}
	}
	if err := rows.Err(); err != nil {
		return s, &Error{Op: "read", Path: c.path, Err: err}
	}
	var memoBytes sql.NullInt64
	err = c.db.QueryRow(`SELECT count(*), sum(length(value)) FROM memos`).Scan(&s.Memos, &memoBytes)
	if err != nil && !strings.Contains(err.Error(), "no such table") {
		return s, &Error{Op: "read", Path: c.path, Err: err}
	}
	s.MemoBytes = memoBytes.Int64
	return s, nil
}

// Clear removes every entry (and every memo) and returns how many entries
// there were.
func (c *Cache) Clear() (int, error) {
	return c.deleteWhere(`DELETE FROM answers`, `DELETE FROM memos`)
}

// storedBefore selects the rows stored before ?1 (a Unix time). Times are
// whole seconds: a row stored in that very second counts as before it,
// so --older-than 0d removes an answer stored a moment ago.
const storedBefore = `stored_at <= ?1`

// StoredBefore counts the answers stored before t: what Prune(t) would
// remove.
func (c *Cache) StoredBefore(t time.Time) (int, error) {
	var n int
	if err := c.db.QueryRow(`SELECT count(*) FROM answers WHERE `+storedBefore, t.Unix()).Scan(&n); err != nil {
		return 0, &Error{Op: "read", Path: c.path, Err: err}
	}
	return n, nil
}

// Prune removes the answers (and memos) stored before t and returns how
// many answers.
func (c *Cache) Prune(t time.Time) (int, error) {
	return c.deleteWhere(`DELETE FROM answers WHERE `+storedBefore, `DELETE FROM memos WHERE `+storedBefore, t.Unix())
}

func (c *Cache) deleteWhere(answers, memos string, args ...any) (int, error) {
	tx, err := c.db.Begin()
	if err != nil {
		return 0, &Error{Op: "delete", Path: c.path, Err: err}
	}
	defer tx.Rollback()
	res, err := tx.Exec(answers, args...)
	if err == nil {
		_, err = tx.Exec(memos, args...)
	}
	if err == nil {
		err = tx.Commit()
	}
	if err != nil {
		return 0, &Error{Op: "delete", Path: c.path, Err: err}
	}
	n, _ := res.RowsAffected()
	// Give the space back: a pruned cache should shrink on disk.
	_, _ = c.db.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`)
	return int(n), nil
}

// Merge copies every answer of src that c does not have, and returns how
// many it copied. A source may also be a cache file of an older pgrules
// (bbolt), which is how old caches are carried forward.
func (c *Cache) Merge(ctx context.Context, srcPath string) (Merged, error) {
	if isBolt(srcPath) {
		return c.mergeBolt(ctx, srcPath)
	}
	src, err := Open(srcPath, Options{ReadOnly: true})
	if err != nil {
		return Merged{}, err
	}
	defer src.Close()
	return c.importRows(ctx, srcPath, func(put putRow) error {
		rows, err := src.db.QueryContext(ctx, `SELECT key, provider, model, teacher, text, stored_at, `+src.answerSum+` FROM answers`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var r row
			if err := rows.Scan(&r.key, &r.provider, &r.model, &r.teacher, &r.text, &r.stored, &r.sum); err != nil {
				return err
			}
			if err := put(r); err != nil {
				return err
			}
		}
		return rows.Err()
	})
}

// Merged is what a Merge added, and the source's answers it left out
// because they fail their checksum.
type Merged struct {
	Added, Damaged int
}

// row is one answer as the answers table holds it.
type row struct {
	key             []byte
	provider, model string
	teacher, text   []byte
	stored          int64
	// sum is the checksum the source stored (nil: none).
	sum *int64
}

type putRow func(row) error

// errWrite marks a failure to write this cache, as opposed to reading the
// source of an import.
type errWrite struct{ error }

// importRows adds the answers read yields, in one transaction, keeping an
// answer already here over the source's; it counts those added, and
// leaves out (and counts) those that fail the checksum the source kept.
func (c *Cache) importRows(ctx context.Context, srcPath string, read func(putRow) error) (Merged, error) {
	tx, err := c.db.BeginTx(ctx, nil)
	if err != nil {
		return Merged{}, &Error{Op: "write", Path: c.path, Err: err}
	}
	defer tx.Rollback()
	ins, err := tx.PrepareContext(ctx, `INSERT OR IGNORE INTO answers (key, provider, model, teacher, text, stored_at, sum) VALUES (?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return Merged{}, &Error{Op: "write", Path: c.path, Err: err}
	}
	var m Merged
	err = read(func(r row) error {
		sum := answerSum(r.key, r.teacher, r.text)
		if !intact(r.sum, sum) {
			m.Damaged++
			return nil
		}
		res, err := ins.ExecContext(ctx, r.key, r.provider, r.model, r.teacher, r.text, r.stored, sum)
		if err != nil {
			return errWrite{err}
		}
		if k, _ := res.RowsAffected(); k > 0 {
			m.Added++
		}
		return nil
	})
	var we errWrite
	switch {
	case errors.As(err, &we):
		return Merged{}, &Error{Op: "write", Path: c.path, Err: we.error}
	case err != nil:
		return Merged{}, &Error{Op: "read", Path: srcPath, Err: err}
	}
	if err := tx.Commit(); err != nil {
		return Merged{}, &Error{Op: "write", Path: c.path, Err: err}
	}
	return m, nil
}
