package ordered

import (
	"math"
	"strings"
	"testing"
)

type pair struct {
	k string
	v any
}

func marshal(pairs ...pair) ([]byte, error) {
	return Marshal(len(pairs), func(i int) (string, any) { return pairs[i].k, pairs[i].v })
}

func TestMarshalKeepsTheOrderGiven(t *testing.T) {
	got, err := marshal(pair{"zeta", 1}, pair{"alpha", []string{"x"}}, pair{"mid\"q", map[string]bool{"b": true}})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"zeta":1,"alpha":["x"],"mid\"q":{"b":true}}`; string(got) != want {
		t.Fatalf("got %s, want %s", got, want)
	}
	if got, _ := marshal(); string(got) != "{}" {
		t.Fatalf("no pairs: got %s, want {}", got)
	}
}

func TestMarshalReportsAValueThatCannotBeWritten(t *testing.T) {
	_, err := marshal(pair{"ok", 1}, pair{"nan", math.NaN()})
	if err == nil || !strings.Contains(err.Error(), "NaN") {
		t.Fatalf("want the NaN error, got %v", err)
	}
}
