// Package cachetest helps tests put a response cache in the states a run
// meets in life.
package cachetest

import (
	"database/sql"
	"testing"

	_ "modernc.org/sqlite" // the database/sql driver "sqlite"
)

// HoldWrites opens a write transaction on the cache file at path from
// another connection, as another process's long write would: the cache's
// own writes wait their timeout, then fail. The returned release ends the
// transaction (it is also ended when the test ends).
func HoldWrites(t testing.TB, path string) (release func()) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?_txlock=immediate")
	if err != nil {
		t.Fatal(err)
	}
	tx, err := db.Begin()
	if err != nil {
		db.Close()
		t.Fatal(err)
	}
	release = func() { tx.Rollback() }
	t.Cleanup(func() { release(); db.Close() })
	return release
}
