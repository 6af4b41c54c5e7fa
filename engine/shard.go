package engine

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"
)

// Shard is one share of the ids: shard K of N. The zero Shard is the whole
// run.
type Shard struct {
	K int `json:"k"`
	N int `json:"n"`
}

// ShardHash documents, in every shard's manifest, how ids are assigned.
const ShardHash = "first 8 bytes of sha256(id), big-endian, modulo n"

// Enabled says whether the run is a shard.
func (s Shard) Enabled() bool { return s.N > 0 }

func (s Shard) String() string { return fmt.Sprintf("%d/%d", s.K, s.N) }

// Has says whether id falls in this shard.
func (s Shard) Has(id string) bool { return !s.Enabled() || ShardOf(id, s.N) == s.K }

// ShardOf is the shard of id among n. It depends on the id alone — not on
// the input order, the other ids or the machine — so every shard of every
// run agrees on it.
func ShardOf(id string, n int) int {
	sum := sha256.Sum256([]byte(id))
	return int(binary.BigEndian.Uint64(sum[:8]) % uint64(n))
}

// JobIndexEnv is where a Kubernetes Indexed Job puts a pod's index.
const JobIndexEnv = "JOB_COMPLETION_INDEX"

// ParseShard reads "K/N", or "auto/N" with K from $JOB_COMPLETION_INDEX.
func ParseShard(s string, getenv func(string) string) (Shard, error) {
	k, n, ok := strings.Cut(s, "/")
	if !ok {
		return Shard{}, fmt.Errorf("%q is not K/N (e.g. 0/4, or auto/4 in a Kubernetes Indexed Job)", s)
	}
	N, err := strconv.Atoi(n)
	if err != nil || N < 1 {
		return Shard{}, fmt.Errorf("%q: N must be a whole number ≥ 1", s)
	}
	if k == "auto" {
		v := getenv(JobIndexEnv)
		if v == "" {
			return Shard{}, fmt.Errorf("%q: $%s is not set (auto/N is for Kubernetes Indexed Jobs; elsewhere give K)", s, JobIndexEnv)
		}
		k = v
	}
	K, err := strconv.Atoi(k)
	if err != nil || K < 0 || K >= N {
		return Shard{}, fmt.Errorf("%q: K must be a whole number with 0 ≤ K < %d", s, N)
	}
	return Shard{K: K, N: N}, nil
}
