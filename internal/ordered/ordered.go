// Package ordered writes JSON objects whose members keep the order the
// user wrote them in (gates.yaml's gates and details), which a Go map
// cannot: records and stats read in that order, and diff stays stable.
package ordered

import (
	"bytes"
	"encoding/json"
)

// Marshal writes an object of n members, in order: member(i) is the i-th
// key and value. (A function, not a slice of pairs, so that each caller
// keeps the type its members already have.)
func Marshal(n int, member func(i int) (key string, value any)) ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		key, value := member(i)
		k, _ := json.Marshal(key) // a string always marshals
		v, err := json.Marshal(value)
		if err != nil {
			return nil, err
		}
		b.Write(k)
		b.WriteByte(':')
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}
