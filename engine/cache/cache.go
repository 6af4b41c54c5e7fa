// Package cache keeps teacher answers in a content-addressed, crash-safe
// embedded database, so a rerun (after a crash, or to re-gate with edited
// rules) never pays twice for the same answer.
//
// bbolt is a single-file copy-on-write B+tree: an interrupted transaction
// leaves no trace, and a file lock admits one writing process at a time.
// A committed transaction is in the kernel once Put returns, so it
// survives kill -9 of pgrules; it reaches the disk at the next periodic
// fsync (every SyncEvery) or at Close. An fsync per answer would cap a
// fast teacher at a few hundred answers a second.
package cache

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/pgrules/pgrules/providers"
)

// keyFormat changes whenever Key's encoding does, so old entries are never
// read under a new meaning.
const keyFormat = "pgrules-cache-key/v2"

var bucket = []byte("answers")

// SyncEvery bounds what an OS crash or power loss can take: the answers of
// the last interval. A killed pgrules loses nothing that Put returned.
const SyncEvery = time.Second

// Options tune Open.
type Options struct {
	// SyncEachPut fsyncs every Put (slow; for teachers so slow it does not
	// matter and power loss must lose nothing).
	SyncEachPut bool
	// Timeout is how long to wait for another pgrules run to release the
	// file before giving up with a clear message.
	Timeout  time.Duration
	ReadOnly bool
}

// Cache is an open response cache. It is safe for concurrent use.
type Cache struct {
	db   *bolt.DB
	path string
	stop chan struct{}
	done chan struct{}
}

// Open opens or creates the cache file.
func Open(path string, opt Options) (*Cache, error) {
	if opt.Timeout == 0 {
		opt.Timeout = 5 * time.Second
	}
	if !opt.ReadOnly {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return nil, fmt.Errorf("cannot create the cache directory for %s: %w", path, err)
		}
	} else if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("no response cache at %s: %w", path, errors.Unwrap(err))
	}
	db, err := bolt.Open(path, 0o644, &bolt.Options{Timeout: opt.Timeout, ReadOnly: opt.ReadOnly})
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, fmt.Errorf("response cache %s is in use by another pgrules run (waited %s): wait for it to finish, or give this run its own --cache-path", path, opt.Timeout)
	}
	if err != nil {
		return nil, fmt.Errorf("cannot open response cache %s: %w (delete it with `pgrules cache clear` if it is damaged)", path, err)
	}
	c := &Cache{db: db, path: path}
	if !opt.ReadOnly && !opt.SyncEachPut {
		db.NoSync = true
		c.stop, c.done = make(chan struct{}), make(chan struct{})
		go c.syncLoop()
	}
	if !opt.ReadOnly {
		if err := db.Update(func(tx *bolt.Tx) error {
			_, err := tx.CreateBucketIfNotExists(bucket)
			return err
		}); err != nil {
			db.Close()
			return nil, fmt.Errorf("cache %s: %w", path, err)
		}
	}
	return c, nil
}

func (c *Cache) syncLoop() {
	defer close(c.done)
	t := time.NewTicker(SyncEvery)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			_ = c.db.Sync()
		case <-c.stop:
			return
		}
	}
}

// Close syncs and releases the file.
func (c *Cache) Close() error {
	if c.stop != nil {
		close(c.stop)
		<-c.done
		if err := c.db.Sync(); err != nil {
			c.db.Close()
			return fmt.Errorf("cache %s: %w", c.path, err)
		}
	}
	return c.db.Close()
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
			io.WriteString(h, p)
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
}

// Get returns the answer stored under key.
func (c *Cache) Get(key string) (Entry, bool, error) {
	var e Entry
	var found bool
	err := c.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucket)
		if b == nil {
			return nil
		}
		v := b.Get([]byte(key))
		if v == nil {
			return nil
		}
		found = true
		var err error
		e, err = decode(v)
		return err
	})
	if err != nil {
		return Entry{}, false, fmt.Errorf("cache %s: entry %s: %w", c.path, key[:12], err)
	}
	return e, found, nil
}

// Put stores an answer; when it returns, the answer survives the death of
// this process. Only successful answers are ever stored: an error is not an
// answer.
func (c *Cache) Put(key string, e Entry) error {
	v, err := encode(e)
	if err != nil {
		return err
	}
	return c.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucket).Put([]byte(key), v)
	})
}

// Stats describes what the cache holds: what a re-gate saves.
type Stats struct {
	Path         string         `json:"path"`
	Entries      int            `json:"entries"`
	Bytes        int64          `json:"bytes"`
	ByProvider   map[string]int `json:"by_provider"`
	ByModel      map[string]int `json:"by_model"`
	Oldest       *time.Time     `json:"oldest,omitempty"`
	Newest       *time.Time     `json:"newest,omitempty"`
	Tokens       int64          `json:"tokens"`
	CostUSD      float64        `json:"cost_usd"`
	LatencyTotal float64        `json:"latency_s_total"`
}

// Stats scans the cache.
func (c *Cache) Stats() (Stats, error) {
	s := Stats{Path: c.path, ByProvider: map[string]int{}, ByModel: map[string]int{}}
	if fi, err := os.Stat(c.path); err == nil {
		s.Bytes = fi.Size()
	}
	err := c.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucket)
		if b == nil {
			return nil
		}
		return b.ForEach(func(_, v []byte) error {
			e, err := decodeMeta(v)
			if err != nil {
				return err
			}
			s.Entries++
			s.ByProvider[e.Teacher.Provider]++
			s.ByModel[e.Teacher.ChosenModel]++
			if u := e.Teacher.Usage; u != nil {
				s.Tokens += u.TotalTokens
			}
			s.LatencyTotal += e.Teacher.LatencySeconds
			if e.Teacher.CostUSD != nil {
				s.CostUSD += *e.Teacher.CostUSD
			}
			t := e.StoredAt
			if s.Oldest == nil || t.Before(*s.Oldest) {
				s.Oldest = &t
			}
			if s.Newest == nil || t.After(*s.Newest) {
				s.Newest = &t
			}
			return nil
		})
	})
	return s, err
}

// Clear removes every entry and returns how many there were.
func (c *Cache) Clear() (int, error) {
	n := 0
	err := c.db.Update(func(tx *bolt.Tx) error {
		if b := tx.Bucket(bucket); b != nil {
			n = b.Stats().KeyN
			if err := tx.DeleteBucket(bucket); err != nil {
				return err
			}
		}
		_, err := tx.CreateBucket(bucket)
		return err
	})
	return n, err
}

// Values are [uint32 length][JSON of the teacher metadata][answer text]:
// the text, by far the largest part, is stored raw and never JSON-escaped.
type meta struct {
	Teacher  providers.Response `json:"teacher"`
	StoredAt time.Time          `json:"stored_at"`
}

func encode(e Entry) ([]byte, error) {
	m, err := json.Marshal(meta{Teacher: e.Teacher, StoredAt: e.StoredAt})
	if err != nil {
		return nil, err
	}
	v := make([]byte, 4+len(m)+len(e.Text))
	binary.BigEndian.PutUint32(v, uint32(len(m)))
	copy(v[4:], m)
	copy(v[4+len(m):], e.Text)
	return v, nil
}

func decodeMeta(v []byte) (Entry, error) {
	if len(v) < 4 {
		return Entry{}, errors.New("truncated entry")
	}
	n := int(binary.BigEndian.Uint32(v))
	if 4+n > len(v) {
		return Entry{}, errors.New("truncated entry")
	}
	var m meta
	if err := json.Unmarshal(v[4:4+n], &m); err != nil {
		return Entry{}, err
	}
	return Entry{Teacher: m.Teacher, StoredAt: m.StoredAt}, nil
}

func decode(v []byte) (Entry, error) {
	e, err := decodeMeta(v)
	if err != nil {
		return e, err
	}
	n := int(binary.BigEndian.Uint32(v))
	// bbolt's value is only valid inside the transaction: copy the text.
	e.Text = string(v[4+n:])
	e.Teacher.Text = e.Text
	return e, nil
}
