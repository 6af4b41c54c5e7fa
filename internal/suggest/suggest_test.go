package suggest

import "testing"

func TestClosest(t *testing.T) {
	keys := []string{"name", "expression", "when", "reason", "reasonExpression", "details", "detailsOnFail", "action", "requires", "description"}
	for _, c := range []struct{ in, want string }{
		{"expresion", "expression"}, // a letter left out
		{"reasno", "reason"},        // neighbours swapped
		{"Reason", "reason"},        // case does not count
		{"reasonexpresion", "reasonExpression"},
		{"detail", "details"},
		{"acton", "action"},
		{"severity", ""}, // nothing near: no guess
		{"x", ""},
		{"", ""},
	} {
		if got := Closest(c.in, keys); got != c.want {
			t.Errorf("Closest(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	// Ties go to the first in sort order, whatever the candidates' order.
	if a, b := Closest("ab", []string{"ac", "aa"}), Closest("ab", []string{"aa", "ac"}); a != "aa" || b != "aa" {
		t.Errorf("tie: %q and %q, want aa both times", a, b)
	}
}

func TestUnknown(t *testing.T) {
	known := []string{"file", "exceptions"}
	if got, want := Unknown("list key", "exception", known), `unknown list key "exception"; did you mean exceptions? (known: file, exceptions)`; got != want {
		t.Errorf("got %s\nwant %s", got, want)
	}
	if got, want := Unknown("list key", "words", known), `unknown list key "words" (known: file, exceptions)`; got != want {
		t.Errorf("got %s\nwant %s", got, want)
	}
}
