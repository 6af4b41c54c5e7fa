package idtab

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"
)

// The table agrees with a map on every Add and Get, through growth, for
// ids of every length (empty, one byte, longer than a chunk's share), and
// keeps its own copies: the caller's buffer may change after Add.
func TestTableAgreesWithAMap(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	tab := New(0)
	model := map[string]int{}
	var order []string
	buf := []byte{}
	for n := 0; n < 200_000; n++ {
		var id string
		switch r.IntN(10) {
		case 0:
			id = ""
		case 1:
			id = strings.Repeat("x", chunkSize/4+1+r.IntN(10))
		case 2, 3:
			if len(order) > 0 {
				id = order[r.IntN(len(order))]
				break
			}
			fallthrough
		default:
			id = fmt.Sprintf("v1_checklist_%d_%d", r.IntN(50_000), r.IntN(3))
		}
		buf = append(buf[:0], id...)
		ord, added := tab.Add(string(buf))
		for i := range buf {
			buf[i] = '#'
		}
		want, known := model[id]
		if !known {
			want = len(order)
			model[id] = want
			order = append(order, id)
		}
		if ord != want || added == known {
			t.Fatalf("Add(%q) = %d, %v; want %d, %v", id, ord, added, want, !known)
		}
	}
	if tab.Len() != len(order) {
		t.Fatalf("Len = %d, want %d", tab.Len(), len(order))
	}
	for i, id := range order {
		if got := tab.ID(i); got != id {
			t.Fatalf("ID(%d) = %q, want %q", i, got, id)
		}
		if got, ok := tab.Get(id); !ok || got != i {
			t.Fatalf("Get(%q) = %d, %v; want %d", id, got, ok, i)
		}
	}
	for _, id := range []string{"absent", "v1_checklist_50000_0", "x"} {
		if got, ok := tab.Get(id); ok {
			t.Errorf("Get(%q) = %d for an id never added", id, got)
		}
	}
}

// A million ids of the real shape (31 bytes) take at most 60 bytes each
// of heap, measured: the ids' bytes, a ref, two slots. (A
// map[string]int, a list and a string allocation an id measure ~107: the
// map 55, the list 20, the strings 32.)
func TestTableHeapPerID(t *testing.T) {
	const n = 1_000_000
	ids := make([][]byte, n)
	for i := range ids {
		ids[i] = fmt.Appendf(nil, "v1_itinerary_city_break_%07d", i)
	}
	var m runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m)
	base := m.HeapAlloc
	tab := New(0)
	for _, id := range ids {
		tab.Add(string(id))
	}
	runtime.GC()
	runtime.ReadMemStats(&m)
	per := (m.HeapAlloc - base) / n
	runtime.KeepAlive(tab)
	runtime.KeepAlive(ids)
	t.Logf("a million ids: %d bytes an id", per)
	if per > 60 {
		t.Errorf("%d bytes of heap an id, want at most 60", per)
	}
}

func BenchmarkAddGet(b *testing.B) {
	ids := make([]string, 100_000)
	for i := range ids {
		ids[i] = fmt.Sprintf("v1_itinerary_city_break_%07d", i)
	}
	b.Run("idtab", func(b *testing.B) {
		for range b.N {
			tab := New(len(ids))
			for _, id := range ids {
				tab.Add(id)
			}
			for _, id := range ids {
				tab.Get(id)
			}
		}
	})
	b.Run("map", func(b *testing.B) {
		for range b.N {
			m := make(map[string]int, len(ids))
			for i, id := range ids {
				m[id] = i
			}
			for _, id := range ids {
				_ = m[id]
			}
		}
	})
}
