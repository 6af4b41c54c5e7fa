package providers

import (
	"context"
	"errors"
	"net"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/pgrules/pgrules/providers/plugintest"
	pb "github.com/pgrules/pgrules/providers/proto"
)

// echo answers with the request id; a request for "slow" waits until its
// context ends and records that it did.
type echo struct {
	slowCancelled chan struct{}
}

func (echo) Describe(context.Context) (Info, error)                { return Info{Name: "echo"}, nil }
func (echo) Configure(context.Context, []byte) (Configured, error) { return Configured{}, nil }

func (e echo) Generate(ctx context.Context, req Request) (Response, error) {
	if req.ID == "slow" {
		<-ctx.Done()
		close(e.slowCancelled)
		return Response{}, ctx.Err()
	}
	if req.ID == "fail" {
		return Response{}, &Error{Kind: KindRetryable, Code: "busy", Message: "try again"}
	}
	return Response{Text: "answer to " + req.ID}, nil
}

// countingServer is the plugin side's gRPC server with its calls counted;
// noStream makes it a plugin that predates GenerateStream.
type countingServer struct {
	*grpcServer
	noStream       bool
	streams, unary atomic.Int32
}

func (s *countingServer) Generate(ctx context.Context, req *pb.GenerateRequest) (*pb.GenerateResponse, error) {
	s.unary.Add(1)
	return s.grpcServer.Generate(ctx, req)
}

func (s *countingServer) GenerateStream(st pb.Provider_GenerateStreamServer) error {
	s.streams.Add(1)
	if s.noStream {
		return s.grpcServer.UnimplementedProviderServer.GenerateStream(st)
	}
	return s.grpcServer.GenerateStream(st)
}

// serve runs srv on a real loopback listener and returns the host side.
func serve(t *testing.T, srv *countingServer) *grpcClient {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	pb.RegisterProviderServer(s, srv)
	go s.Serve(lis)
	t.Cleanup(s.Stop)
	conn, err := grpc.NewClient("passthrough:///"+lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &grpcClient{c: pb.NewProviderClient(conn)}
}

func newServer(noStream bool) *countingServer {
	return &countingServer{grpcServer: &grpcServer{impl: echo{slowCancelled: make(chan struct{})}}, noStream: noStream}
}

// callMany makes n calls from workers goroutines and checks every answer
// and every classified failure crossed intact.
func callMany(t *testing.T, c *grpcClient, workers, n int) {
	t.Helper()
	var next atomic.Int32
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := next.Add(1); i <= int32(n); i = next.Add(1) {
				id := "id-" + string(rune('a'+i%26)) + string(rune('a'+i/26%26))
				if i%10 == 0 {
					id = "fail"
				}
				resp, err := c.Generate(context.Background(), Request{ID: id})
				var pe *Error
				switch {
				case id == "fail" && errors.As(err, &pe) && pe.Code == "busy" && pe.Kind == KindRetryable:
				case id != "fail" && err == nil && resp.Text == "answer to "+id:
				default:
					t.Errorf("call %s: %+v, %v", id, resp, err)
				}
			}
		}()
	}
	wg.Wait()
}

func TestCallsShareStreams(t *testing.T) {
	srv := newServer(false)
	c := serve(t, srv)
	callMany(t, c, 4, 400)
	if got := srv.streams.Load(); got < 1 || got > 4 {
		t.Errorf("400 calls from 4 workers opened %d streams: want at most one per call in flight", got)
	}
	if got := srv.unary.Load(); got != 0 {
		t.Errorf("%d calls went unary to a plugin that streams", got)
	}
}

func TestAPluginWithoutGenerateStreamIsCalledUnary(t *testing.T) {
	srv := newServer(true)
	c := serve(t, srv)
	callMany(t, c, 1, 50)
	if got := srv.unary.Load(); got != 50 {
		t.Errorf("%d of 50 calls reached Generate", got)
	}
	if got := srv.streams.Load(); got != 1 {
		t.Errorf("GenerateStream was tried %d times: want once, then no more", got)
	}
}

func TestACancelledCallCancelsThePluginsCallAndOnlyIt(t *testing.T) {
	for _, tc := range []struct {
		name string
		ctx  func() (context.Context, context.CancelFunc)
		code codes.Code
	}{
		{"cancel", func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(50*time.Millisecond, cancel)
			return ctx, cancel
		}, codes.Canceled},
		{"deadline", func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), 50*time.Millisecond)
		}, codes.DeadlineExceeded},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newServer(false)
			c := serve(t, srv)
			callMany(t, c, 2, 20) // leaves idle streams, one of which the slow call takes
			idle := func() int {
				c.mu.Lock()
				defer c.mu.Unlock()
				return len(c.idle)
			}
			before := idle()
			ctx, cancel := tc.ctx()
			defer cancel()
			_, err := c.Generate(ctx, Request{ID: "slow"})
			if status.Code(err) != tc.code {
				t.Fatalf("slow call returned %v: want %v", err, tc.code)
			}
			select {
			case <-srv.impl.(echo).slowCancelled:
			case <-time.After(5 * time.Second):
				t.Fatal("the plugin's call went on after the host gave up on it")
			}
			if got := idle(); got != before-1 {
				t.Errorf("idle streams %d -> %d: the cancelled call's stream must be dropped and the others kept", before, got)
			}
			callMany(t, c, 2, 20) // the pool still serves
		})
	}
}

// A Go plugin built on Serve, run as the real subprocess, is called over
// streams: the unary fallback would hide a plugin side that lost them.
func TestGoPluginsAreCalledOverStreams(t *testing.T) {
	c, err := Start(context.Background(), HostOptions{Name: "dryrun", Dirs: []string{plugintest.Build(t, "dryrun")}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i := range 20 {
		if _, err := c.Generate(context.Background(), Request{ID: string(rune('a' + i)), PayloadType: "checklist"}); err != nil {
			var pe *Error
			if !errors.As(err, &pe) {
				t.Fatal(err)
			}
		}
	}
	gc := c.p.(*grpcClient)
	gc.mu.Lock()
	idle := len(gc.idle)
	gc.mu.Unlock()
	if gc.unary.Load() || idle != 1 {
		t.Errorf("unary fallback %v, %d idle streams after 20 calls in a row: want streams, one", gc.unary.Load(), idle)
	}
}

// A Go plugin sends its answer as bytes (raw_text), UTF-8 or not, which
// spares a string's UTF-8 checks on both sides; the host reads it back
// as the text the plugin returned (callMany checks every answer that
// crosses; the Python template, which sends text, is run end to end by
// cmd/pgrules' TestPythonPluginRunsTheSample).
func TestAnswersCrossAsBytes(t *testing.T) {
	s := &grpcServer{impl: echo{}}
	for _, id := range []string{"x", "caf\xff"} {
		resp := s.generate(context.Background(), &pb.GenerateRequest{Id: id})
		if resp.Text != "" || string(resp.RawText) != "answer to "+id {
			t.Errorf("%q: text %q, raw_text %q", id, resp.Text, resp.RawText)
		}
	}
	c := serve(t, newServer(false))
	resp, err := c.Generate(context.Background(), Request{ID: "café"})
	if err != nil || resp.Text != "answer to café" {
		t.Errorf("%+v, %v", resp, err)
	}
}

// Serve collects garbage at GOGC=400 unless GOGC says otherwise.
func TestPluginsCollectAtGOGC400UnlessSet(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	t.Setenv("GOGC", "")
	tuneGC()
	if got := debug.SetGCPercent(100); got != 400 {
		t.Errorf("GOGC unset: %d, want 400", got)
	}
	t.Setenv("GOGC", "150")
	tuneGC()
	if got := debug.SetGCPercent(100); got != 100 {
		t.Errorf("GOGC=150 in the environment: tuneGC set %d", got)
	}
}
