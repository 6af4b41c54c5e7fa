// Command jsonfloor is the benchmark's floor: a bare encoding/json decode
// and re-encode of every line of the given JSONL files, in one process,
// reading each file once. pgrules does more per line than this (joins,
// prompts, cache, schema, CEL, writing), so being faster than the floor
// means it decodes less, not that it skips work.
//
//	go run ./scripts/jsonfloor plan.jsonl drafts.jsonl critiques.jsonl
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"time"
)

func main() {
	start := time.Now()
	lines, bytes := 0, 0
	for _, path := range os.Args[1:] {
		f, err := os.Open(path)
		if err != nil {
			fmt.Fprintln(os.Stderr, "jsonfloor:", err)
			os.Exit(1)
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<20), 1<<26)
		for sc.Scan() {
			var v any
			if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
				continue
			}
			out, _ := json.Marshal(v)
			lines++
			bytes += len(out)
		}
		f.Close()
	}
	el := time.Since(start).Seconds()
	fmt.Printf("floor: %d lines decoded and re-encoded in %.2fs (%.0f lines/s, %.0f MB/s)\n", lines, el, float64(lines)/el, float64(bytes)/el/1e6)
}
