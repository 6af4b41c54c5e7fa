package idtab

import "unsafe"

// unsafeString views b as a string. b is a part of a chunk no one writes
// again (Table.store only appends past it).
func unsafeString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}
