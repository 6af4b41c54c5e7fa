package cache

import (
	"context"
	"database/sql"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash/crc32"
	"strings"
)

// SQLite checks its own structure, not the bytes of a row: a damaged page
// (a bad sector, a copy taken mid-write, a file system that lost a block)
// can change the text of an answer, or point a key's index entry at
// another row, and the answer read back is not what the teacher said. Fed
// to the gates, it decides a sample: a flipped byte in a string is a
// record the dataset holds and the teacher never wrote, committed with
// exit 0. So every answer, every mark and every memo is stored with a
// CRC-32C of its bytes and of the key it is stored under, and checked when
// it is read. An answer that fails the check is not used: the teacher is
// asked again and the row replaced. A mark or memo that fails is as good
// as absent: the work is done again. Rows written before the checksums
// (NULL) are read as before.

// ErrChecksum is an answer whose bytes no longer match the checksum
// stored with them.
var ErrChecksum = fmt.Errorf("%w there: the stored answer does not match its checksum, so it is not used", ErrDamaged)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// checksum is the CRC-32C of parts, each length-prefixed so that bytes
// cannot move from one part to the next unseen.
func checksum(parts ...[]byte) int64 {
	var h uint32
	var n [8]byte
	for _, p := range parts {
		binary.LittleEndian.PutUint64(n[:], uint64(len(p)))
		h = crc32.Update(h, castagnoli, n[:])
		h = crc32.Update(h, castagnoli, p)
	}
	return int64(h)
}

// answerSum is the checksum of an answer: its key is in it, so a row read
// under another key (a damaged index) fails it too.
func answerSum(key, teacher, text []byte) int64 { return checksum(key, teacher, text) }

// intact says whether bytes whose checksum is want match the checksum
// stored with them; a row stored before checksums (nil) is taken as it
// is.
func intact(stored *int64, want int64) bool { return stored == nil || *stored == want }

// optSum is the checksum of a mark stored under key, nil (NULL) for no
// mark.
func optSum(key, mark []byte) any {
	if mark == nil {
		return nil
	}
	return checksum(key, mark)
}

// verified is a mark as read with its checksum: nil when it fails it.
func verified(key, mark []byte, sum *int64) []byte {
	if mark == nil || intact(sum, checksum(key, mark)) {
		return mark
	}
	return nil
}

// Verified is what Verify found.
type Verified struct {
	// Answers counts the answers read; Unchecked those stored without a
	// checksum (by a pgrules before them).
	Answers   int `json:"answers"`
	Unchecked int `json:"unchecked"`
	// Damaged are the keys (hex) of the answers that fail their
	// checksum: a run asks the teacher for them again.
	Damaged []string `json:"damaged"`
	// Integrity is SQLite's own check of the file's structure: "ok", or
	// what it found.
	Integrity string `json:"integrity"`
}

// Verify reads every answer of the cache and checks it against its
// checksum, and has SQLite check the file's structure.
func (c *Cache) Verify(ctx context.Context) (Verified, error) {
	v := Verified{Damaged: []string{}}
	var problems []string
	rows, err := c.db.QueryContext(ctx, `PRAGMA quick_check`)
	if err != nil {
		return v, &Error{Op: "check", Path: c.path, Err: err}
	}
	for rows.Next() {
		var p string
		if err := rows.Scan(&p); err != nil {
			rows.Close()
			return v, &Error{Op: "check", Path: c.path, Err: err}
		}
		problems = append(problems, p)
	}
	rows.Close()
	v.Integrity = strings.Join(problems, "; ")
	rows, err = c.db.QueryContext(ctx, `SELECT key, teacher, text, `+c.answerSum+` FROM answers`)
	if err != nil {
		return v, &Error{Op: "read", Path: c.path, Err: err}
	}
	defer rows.Close()
	for rows.Next() {
		var key, teacher, text sql.RawBytes
		var s *int64
		if err := rows.Scan(&key, &teacher, &text, &s); err != nil {
			return v, &Error{Op: "read", Path: c.path, Err: err}
		}
		v.Answers++
		switch {
		case s == nil:
			v.Unchecked++
		case !intact(s, answerSum(key, teacher, text)):
			v.Damaged = append(v.Damaged, hex.EncodeToString(key))
		}
	}
	if err := rows.Err(); err != nil {
		return v, &Error{Op: "read", Path: c.path, Err: err}
	}
	return v, nil
}
