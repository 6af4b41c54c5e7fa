package engine

import (
	"fmt"
	"reflect"
	"testing"

	"github.com/pgrules/pgrules/engine/stats"
)

// Repeats are named in input order, each with the earliest record whose
// response it repeats; every repeat is counted, the first ten listed.
func TestDupFinderNamesRepeatsInInputOrder(t *testing.T) {
	var f dupFinder
	responses := []string{"A", "B", "A", "C", "B", "A"}
	for i, r := range responses {
		f.add(responseHash([]byte(r)), int32(i))
	}
	idOf := func(ord int) string { return fmt.Sprintf("id%d", ord) }
	got := f.find(idOf)
	want := &stats.Duplicates{Records: 3, First: []stats.Duplicate{{ID: "id2", SameAs: "id0"}, {ID: "id4", SameAs: "id1"}, {ID: "id5", SameAs: "id0"}}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("find = %+v, want %+v", got, want)
	}

	var none dupFinder
	for i, r := range []string{"A", "B", `"A"`, "a"} {
		none.add(responseHash([]byte(r)), int32(i))
	}
	if got := none.find(idOf); got != nil {
		t.Errorf("no repeats, find = %+v", got)
	}

	var many dupFinder
	for i := range 25 {
		many.add(responseHash([]byte("same")), int32(100+i))
	}
	got = many.find(idOf)
	if got.Records != 24 || len(got.First) != maxDuplicatesListed || got.First[0] != (stats.Duplicate{ID: "id101", SameAs: "id100"}) || got.First[9].ID != "id110" {
		t.Errorf("25 alike: %+v", got)
	}
}
