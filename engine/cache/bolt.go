package cache

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/pgrules/pgrules/providers"
)

// Caches written by pgrules before the shared SQLite cache were bbolt files
// in each out dir (<out-dir>/cache.db). They are read here only to carry
// their answers forward: `pgrules cache merge OLD` copies them into the
// shared cache.

const boltMagic = 0xED0CDAED

// isBolt reports a bbolt file: its first meta page carries the magic.
func isBolt(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	var head [20]byte
	if _, err := f.ReadAt(head[:], 0); err != nil {
		return false
	}
	return binary.LittleEndian.Uint32(head[16:]) == boltMagic
}

func (c *Cache) mergeBolt(ctx context.Context, path string) (Merged, error) {
	db, err := bolt.Open(path, 0o444, &bolt.Options{ReadOnly: true, Timeout: 5 * time.Second})
	if err != nil {
		return Merged{}, &Error{Op: "open", Path: path, Err: err}
	}
	defer db.Close()
	return c.importRows(ctx, path, func(put putRow) error {
		return db.View(func(btx *bolt.Tx) error {
			b := btx.Bucket([]byte("answers"))
			if b == nil {
				return nil
			}
			return b.ForEach(func(k, v []byte) error {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				key, err := hex.DecodeString(string(k))
				if err != nil {
					return nil // not an answer
				}
				// Old values: [uint32 length][JSON of the teacher metadata][text].
				if len(v) < 4 || 4+int(binary.BigEndian.Uint32(v)) > len(v) {
					return errors.New("truncated entry")
				}
				m := int(binary.BigEndian.Uint32(v))
				var meta struct {
					Teacher  providers.Response `json:"teacher"`
					StoredAt time.Time          `json:"stored_at"`
				}
				if err := json.Unmarshal(v[4:4+m], &meta); err != nil {
					return err
				}
				teacher, _ := json.Marshal(meta.Teacher)
				return put(row{key: key, provider: meta.Teacher.Provider, model: meta.Teacher.ChosenModel, teacher: teacher,
					text: append([]byte(nil), v[4+m:]...), stored: meta.StoredAt.Unix()})
			})
		})
	})
}
