package providers

import (
	"bytes"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	pb "github.com/pgrules/pgrules/providers/proto"
)

// Every size gets a buffer of that length from the tier that fits it, and
// a buffer put back is handed out again for any size its tier serves —
// never for a larger one.
func TestDirtyPoolServesEverySizeFromItsTier(t *testing.T) {
	p := &dirtyPool{}
	for _, n := range []int{0, 1, 255, 256, 257, 4095, 4096, 4097, 16 << 10, 1<<20 - 1, 1 << 20, 1<<20 + 1, 3 << 20} {
		b := p.Get(n)
		if len(*b) != n {
			t.Fatalf("Get(%d): len %d", n, len(*b))
		}
		if n > 1<<minShift && n <= 1<<maxShift && (cap(*b) < n || cap(*b) >= 2*n) {
			t.Errorf("Get(%d): cap %d, want the power of two that fits it", n, cap(*b))
		}
		p.Put(b)
	}
	b := p.Get(5000) // 8 KB tier
	(*b)[0] = 'x'
	p.Put(b)
	for range 100 { // sync.Pool may drop it; it must never hand it out too small
		c := p.Get(8192)
		if cap(*c) < 8192 {
			t.Fatalf("Get(8192) returned cap %d", cap(*c))
		}
		p.Put(c)
	}
	// A buffer whose capacity is not a power of two goes to the tier
	// below it, so Get never reslices past its capacity.
	odd := make([]byte, 100, 6000)
	p.Put(&odd)
	for range 100 {
		c := p.Get(4096)
		if cap(*c) < 4096 || len(*c) != 4096 {
			t.Fatalf("Get(4096) = len %d cap %d", len(*c), cap(*c))
		}
	}
}

// The codec writes what proto.Marshal writes, into a pooled buffer above
// gRPC's pooling threshold and a plain one below it, and reads it back.
func TestPoolCodecMarshalsAsProto(t *testing.T) {
	for _, n := range []int{0, 10, 5000, 70000} {
		req := &pb.GenerateRequest{Id: "s1", Prompt: strings.Repeat("é", n)}
		want, err := proto.Marshal(req)
		if err != nil {
			t.Fatal(err)
		}
		for range 3 { // buffers put back and taken again
			data, err := codec.Marshal(req)
			if err != nil {
				t.Fatal(err)
			}
			got := data.Materialize()
			if !bytes.Equal(got, want) {
				t.Fatalf("prompt of %d: codec wrote %d bytes, proto.Marshal %d", n, len(got), len(want))
			}
			var back pb.GenerateRequest
			if err := codec.Unmarshal(data, &back); err != nil || back.Prompt != req.Prompt {
				t.Fatalf("prompt of %d: read back %d bytes, %v", n, len(back.Prompt), err)
			}
			data.Free()
		}
	}
	if _, err := codec.Marshal("not a message"); err == nil {
		t.Error("a value that is not a message was marshalled")
	}
}
