package inputs

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/pgrules/pgrules/engine/cache"
	"github.com/pgrules/pgrules/engine/memo"
)

// snapshot is everything a Set tells a run: ids, problems, and each
// sample as loaded.
func snapshot(t *testing.T, s *Set) string {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "ids %q\n", idsOf(s))
	for _, f := range []*File{s.Plan, s.Drafts, s.Critiques} {
		if f != nil {
			fmt.Fprintf(&b, "%s: %d records, %d problems, sha %s\n", filepath.Base(f.Path), f.Records, f.ProblemCount, f.SHA256)
		}
	}
	for _, p := range s.Problems() {
		fmt.Fprintln(&b, p.Error())
	}
	for _, id := range idsOf(s) {
		smp, err := loadID(t, s, id)
		j, _ := json.Marshal(smp)
		fmt.Fprintf(&b, "%s %v\n", j, err)
	}
	return b.String()
}

// A file's index is remembered under its sha256: the second open scans
// nothing and tells the run exactly what the first did — bad lines,
// duplicates, a byte order mark, a broken line a later one replaces. A
// changed file, or a memo that is not an index, is scanned again.
func TestRememberedIndexIsTheScannedIndex(t *testing.T) {
	dir := t.TempDir()
	var plan, drafts strings.Builder
	plan.WriteString("\xEF\xBB\xBF")
	for i := range 200 {
		switch {
		case i%37 == 5:
			plan.WriteString("\n")
		case i%41 == 7:
			fmt.Fprintf(&plan, "{\"id\":\"s%d\",\"payload_type\":\n", i)
		case i%53 == 11:
			fmt.Fprintf(&plan, "{\"id\":\"s%d\",\"payload_type\":\"checklist\",\"prompt\":\"dup\"}\n", i-1)
		case i%59 == 13:
			fmt.Fprintf(&plan, "{\"id\":\"s%d\",\"payload_type\":\"checklist\",\"prompt\":\"bad \xff byte\"}\n", i)
		default:
			fmt.Fprintf(&plan, "{\"id\":\"s%d\",\"payload_type\":\"checklist\",\"prompt\":\"p\\u00e9 %d\"}\n", i, i)
		}
		if i%43 == 3 {
			fmt.Fprintf(&drafts, "{\"id\":\"s%d\",\"output_text\":\"tru\n", i)
		}
		fmt.Fprintf(&drafts, "{\"id\":\"s%d\",\"output_text\":\"draft\\n%d\"}\n", i, i)
	}
	paths := Paths{
		Plan:      write(t, dir, "plan.jsonl", plan.String()),
		Drafts:    write(t, dir, "drafts.jsonl", drafts.String()),
		Critiques: write(t, dir, "crit.jsonl", `{"id":"s1","critique":{"verdict":"revise","issues":[],"rewrite_instructions":["x"]}}`+"\n"+`{"id":"s2","critique":7}`+"\n"),
	}
	c, err := cache.Open(filepath.Join(dir, "cache.db"), cache.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	open := func(store memo.Store) string {
		s, err := OpenRemembering(context.Background(), paths, store)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		return snapshot(t, s)
	}
	plain := open(nil)
	if !strings.Contains(plain, "invalid UTF-8") || !strings.Contains(plain, "duplicate id") || !strings.Contains(plain, "holds a good record") {
		t.Fatalf("the corpus lost its bad lines:\n%s", plain)
	}
	if got := open(c); got != plain {
		t.Fatalf("first open with memos differs from a plain one:\n%s\nwant\n%s", got, plain)
	}
	c.Sync()
	if s, _ := c.Stats(); s.Memos != 3 {
		t.Fatalf("%d memos kept, want an index per file", s.Memos)
	}
	// Spoil the scan: were the index scanned again, every line would fail.
	old := draftKind.fast
	draftKind.fast = func([]byte) (string, bool) { panic("scanned a remembered file") }
	got := open(c)
	draftKind.fast = old
	if got != plain {
		t.Fatalf("remembered index differs from the scanned one:\n%s\nwant\n%s", got, plain)
	}

	// A changed file is scanned again and remembered anew.
	paths.Drafts = write(t, dir, "drafts.jsonl", drafts.String()+`{"id":"s999","output_text":"new"}`+"\n")
	changed := open(nil)
	if got := open(c); got != changed || !strings.Contains(got, "s999") {
		t.Fatalf("changed drafts:\n%s\nwant\n%s", got, changed)
	}

	// An index memo that does not decode is ignored.
	f := &File{kind: planKind, SHA256: "x", data: []byte(plan.String())}
	c.PutMemo(kindIndex, f.indexDigest(), []byte{0xff, 0xff, 0xff}, true)
	if _, ok := f.recall(c); ok {
		t.Error("a memo that is not an index was recalled")
	}
	if _, ok := checkScanned(appendScanned(nil, scanned1()), 10); ok {
		t.Error("an index reaching past the end of the file was accepted")
	}
	index := appendScanned(appendScanned(nil, scanned1()), scanned{off: 5 << 30, size: 9, line: 1 << 20, id: "big"})
	var lines []scanned
	eachScanned(index, func(sc scanned) { lines = append(lines, sc) })
	if n, ok := checkScanned(index, 6<<30); !ok || n != 2 || !reflect.DeepEqual(lines, []scanned{scanned1(), {off: 5 << 30, size: 9, line: 1 << 20, id: "big"}}) {
		t.Errorf("round trip (offsets past 4 GB included): %+v %d %v", lines, n, ok)
	}
}

func scanned1() scanned {
	return scanned{off: 3, size: 40, line: 2, id: "a\x00b", ok: true, derr: "d", why: "w", col: 9, problem: "p"}
}

// A file's sha256 is remembered under its identity on disk once its times
// have settled: a remembered sum is used (here, a planted one), a file
// written again — even to the same size and modification time — is hashed
// again, and a file written just now is never remembered.
func TestRememberedSumFollowsTheFileOnDisk(t *testing.T) {
	dir := t.TempDir()
	paths := Paths{
		Plan:      write(t, dir, "plan.jsonl", `{"id":"s1","payload_type":"checklist","prompt":"p"}`+"\n"),
		Drafts:    write(t, dir, "drafts.jsonl", `{"id":"s1","output_text":"d"}`+"\n"),
		Critiques: write(t, dir, "crit.jsonl", `{"id":"s1","critique":{"verdict":"revise","issues":[],"rewrite_instructions":["x"]}}`+"\n"),
	}
	c, err := cache.Open(filepath.Join(dir, "cache.db"), cache.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sumOf := func() string {
		t.Helper()
		s, err := OpenRemembering(context.Background(), paths, c)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		c.Sync()
		return s.Plan.SHA256
	}
	real := sumOf()
	if s, _ := c.Stats(); s.Memos != 3 {
		t.Fatalf("%d memos after opening files written just now, want their indexes only", s.Memos)
	}

	defer func(old func() time.Time) { now = old }(now)
	now = func() time.Time { return time.Now().Add(time.Minute) }
	if got := sumOf(); got != real {
		t.Fatalf("sha256 %s, want %s", got, real)
	}
	fi, err := os.Stat(paths.Plan)
	if err != nil {
		t.Fatal(err)
	}
	f := &File{identity: fileIdentity(paths.Plan, fi, now())}
	if f.identity == "" {
		t.Fatal("no identity for a settled file")
	}
	planted := bytes.Repeat([]byte{0xab}, 32)
	c.PutMemo(kindSum, f.sumDigest(), planted, true)
	if got := sumOf(); got != hex.EncodeToString(planted) {
		t.Fatalf("sha256 %s: the remembered one (planted) was not used", got)
	}

	// Same size, same modification time, other bytes: the change time
	// tells.
	time.Sleep(10 * time.Millisecond)
	os.WriteFile(paths.Plan, []byte(`{"id":"s1","payload_type":"checklist","prompt":"q"}`+"\n"), 0o644)
	os.Chtimes(paths.Plan, fi.ModTime(), fi.ModTime())
	want := sha256.Sum256([]byte(`{"id":"s1","payload_type":"checklist","prompt":"q"}` + "\n"))
	if got := sumOf(); got != hex.EncodeToString(want[:]) {
		t.Fatalf("sha256 %s after the file was rewritten, want %x", got, want)
	}
}

// Inputs get their true sha256 — hashed, remembered and recalled — and a
// run cancelled while they are hashed returns without reading a file it
// has unmapped.
func TestInputSumsAreTheFilesSHA256(t *testing.T) {
	defer func(old func() time.Time) { now = old }(now)
	now = func() time.Time { return time.Now().Add(time.Minute) }
	dir := t.TempDir()
	var plan, drafts strings.Builder
	for i := range 3000 {
		fmt.Fprintf(&plan, "{\"id\":\"s%d\",\"payload_type\":\"checklist\",\"prompt\":\"p %d\"}\n", i, i)
		fmt.Fprintf(&drafts, "{\"id\":\"s%d\",\"output_text\":\"%s\"}\n", i, strings.Repeat("draft ", 200))
	}
	paths := Paths{Plan: write(t, dir, "plan.jsonl", plan.String()), Drafts: write(t, dir, "drafts.jsonl", drafts.String())}
	want := map[string]string{}
	for _, p := range []string{paths.Plan, paths.Drafts} {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(b)
		want[p] = hex.EncodeToString(sum[:])
	}
	c, err := cache.Open(filepath.Join(dir, "cache.db"), cache.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, store := range []memo.Store{nil, c, c} { // hashed, hashed and remembered, recalled
		s, err := OpenRemembering(context.Background(), paths, store)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range []*File{s.Plan, s.Drafts} {
			if f.SHA256 != want[f.Path] {
				t.Errorf("%s: sha256 %s, want %s", f.Path, f.SHA256, want[f.Path])
			}
		}
		s.Close()
		c.Sync()
	}
	ctx, cancel := context.WithCancel(context.Background())
	paths.Drafts = write(t, dir, "drafts2.jsonl", drafts.String()) // a file whose sum is not remembered
	go func() { time.Sleep(time.Millisecond); cancel() }()
	if s, err := OpenRemembering(ctx, paths, c); err == nil {
		s.Close() // it may have finished first
	} else if !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
}
