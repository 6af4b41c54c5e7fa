package providers

import (
	"context"
	"io"
	"math"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/pgrules/pgrules/providers/proto"
)

// ProtocolVersion is bumped on any incompatible change of provider.proto;
// go-plugin's handshake then refuses a plugin built for another version
// with a clear message instead of a confusing RPC error.
const ProtocolVersion = 1

// Handshake is shared by host and plugins. The cookie is not security: it
// stops a user from running a plugin binary by hand by mistake.
var Handshake = plugin.HandshakeConfig{
	ProtocolVersion:  ProtocolVersion,
	MagicCookieKey:   "PGRULES_PROVIDER_PLUGIN",
	MagicCookieValue: "c2b9f0d4-teacher-provider",
}

// pluginName is the one plugin each binary serves.
const pluginName = "provider"

// maxMsg raises gRPC's 4 MB default: prompts with long drafts and answers
// of long itineraries must fit.
const maxMsg = 64 << 20

// pluginSets is versioned so a future protocol version can be served next
// to this one and go-plugin negotiates the highest both sides speak.
func pluginSets(impl Provider) map[int]plugin.PluginSet {
	return map[int]plugin.PluginSet{ProtocolVersion: {pluginName: &grpcPlugin{impl: impl}}}
}

// grpcPlugin is go-plugin's glue: it registers the server side in the
// plugin and builds the client side in the host.
type grpcPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	impl Provider
}

func (p *grpcPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	pb.RegisterProviderServer(s, &grpcServer{impl: p.impl})
	return nil
}

func (p *grpcPlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	return &grpcClient{c: pb.NewProviderClient(c)}, nil
}

// grpcServer adapts a Provider to the generated service.
type grpcServer struct {
	pb.UnimplementedProviderServer
	impl Provider
}

func (s *grpcServer) Describe(ctx context.Context, _ *pb.DescribeRequest) (*pb.DescribeResponse, error) {
	info, err := s.impl.Describe(ctx)
	if err != nil {
		return nil, err
	}
	return &pb.DescribeResponse{Name: info.Name, Version: info.Version, ProtocolVersion: ProtocolVersion, Description: info.Description}, nil
}

func (s *grpcServer) Configure(ctx context.Context, req *pb.ConfigureRequest) (*pb.ConfigureResponse, error) {
	c, err := s.impl.Configure(ctx, req.ConfigJson)
	if err != nil {
		return nil, err
	}
	return &pb.ConfigureResponse{IdentityJson: c.IdentityJSON, Models: c.Models, AnswersDependOnId: c.AnswersDependOnID, NoPrompt: c.NoPrompt, WantsDraft: c.WantsDraft,
		SuggestedConcurrency: int32(min(max(c.SuggestedConcurrency, 0), math.MaxInt32))}, nil
}

func (s *grpcServer) Generate(ctx context.Context, req *pb.GenerateRequest) (*pb.GenerateResponse, error) {
	return s.generate(ctx, req), nil
}

// GenerateStream answers the calls of one stream in turn. Each call runs
// under the stream's context: the host cancels the stream to cancel it.
func (s *grpcServer) GenerateStream(st pb.Provider_GenerateStreamServer) error {
	for {
		req, err := st.Recv()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if err := st.Send(s.generate(st.Context(), req)); err != nil {
			return err
		}
	}
}

func (s *grpcServer) generate(ctx context.Context, req *pb.GenerateRequest) *pb.GenerateResponse {
	r, err := s.impl.Generate(ctx, Request{ID: req.Id, System: req.System, Prompt: req.Prompt, PayloadType: req.PayloadType, Draft: req.Draft, PromptBytes: req.PromptBytes})
	if err != nil {
		return &pb.GenerateResponse{Failure: toFailure(err)}
	}
	out := &pb.GenerateResponse{
		// The answer goes as bytes, UTF-8 or not: a proto3 string is
		// checked when written and again when read, and the host checks
		// the answer itself (one that is not UTF-8 is rejected, not
		// repaired). Marshalling only reads the string's bytes.
		RawText:  unsafe.Slice(unsafe.StringData(r.Text), len(r.Text)),
		Provider: r.Provider, SelectedModel: r.SelectedModel, ChosenModel: r.ChosenModel,
		AttemptedModels: r.AttemptedModels, Fallbacks: toAttempts(r.Fallbacks), RequestId: r.RequestID,
		LatencySeconds: r.LatencySeconds, FinishReason: r.FinishReason, SecretsRedacted: int32(r.SecretsRedacted),
	}
	if u := r.Usage; u != nil {
		out.Usage = &pb.Usage{PromptTokens: u.PromptTokens, CompletionTokens: u.CompletionTokens, TotalTokens: u.TotalTokens}
	}
	if r.CostUSD != nil {
		out.HasCost, out.CostUsd = true, *r.CostUSD
	}
	return out
}

// grpcClient is the host's Provider over one plugin connection.
type grpcClient struct {
	c pb.ProviderClient

	mu sync.Mutex
	// idle streams of GenerateStream, each free for one call at a time;
	// there are as many as calls were ever in flight together.
	idle []*callStream
	// unary is set once the plugin answered UNIMPLEMENTED to
	// GenerateStream (a plugin built before it, or in another language
	// that did not implement it).
	unary atomic.Bool
}

type callStream struct {
	st     pb.Provider_GenerateStreamClient
	cancel context.CancelFunc
}

func (c *grpcClient) Describe(ctx context.Context) (Info, error) {
	r, err := c.c.Describe(ctx, &pb.DescribeRequest{})
	if err != nil {
		return Info{}, err
	}
	return Info{Name: r.Name, Version: r.Version, ProtocolVersion: int(r.ProtocolVersion), Description: r.Description}, nil
}

func (c *grpcClient) Configure(ctx context.Context, cfg []byte) (Configured, error) {
	r, err := c.c.Configure(ctx, &pb.ConfigureRequest{ConfigJson: cfg})
	if err != nil {
		return Configured{}, err
	}
	return Configured{IdentityJSON: r.IdentityJson, Models: r.Models, AnswersDependOnID: r.AnswersDependOnId, NoPrompt: r.NoPrompt, WantsDraft: r.WantsDraft,
		SuggestedConcurrency: int(r.SuggestedConcurrency)}, nil
}

func (c *grpcClient) Generate(ctx context.Context, req Request) (Response, error) {
	start := time.Now()
	r, err := c.generate(ctx, &pb.GenerateRequest{Id: req.ID, System: req.System, Prompt: req.Prompt, PayloadType: req.PayloadType, Draft: req.Draft, PromptBytes: req.PromptBytes})
	took := time.Since(start)
	if err != nil {
		return Response{}, err
	}
	if f := r.Failure; f != nil {
		return Response{}, fromFailure(f)
	}
	out := Response{
		Text: r.Text, Provider: r.Provider, SelectedModel: r.SelectedModel, ChosenModel: r.ChosenModel,
		AttemptedModels: r.AttemptedModels, Fallbacks: fromAttempts(r.Fallbacks), RequestID: r.RequestId,
		LatencySeconds: r.LatencySeconds, FinishReason: r.FinishReason,
	}
	if out.LatencySeconds <= 0 {
		// A plugin that does not time its calls still gets a latency: the
		// host's, around the gRPC call (so plugin overhead included).
		out.LatencySeconds = max(math.Round(took.Seconds()*1e6)/1e6, 1e-6)
	}
	if u := r.Usage; u != nil {
		out.Usage = &Usage{PromptTokens: u.PromptTokens, CompletionTokens: u.CompletionTokens, TotalTokens: u.TotalTokens}
	}
	if len(r.RawText) > 0 {
		// Unmarshalling copied the bytes out of the transport's buffer
		// into the message's own, which nothing writes again.
		out.Text = unsafe.String(&r.RawText[0], len(r.RawText))
	}
	out.SecretsRedacted = int(r.SecretsRedacted)
	if r.HasCost {
		cost := r.CostUsd
		out.CostUSD = &cost
	}
	return out, nil
}

// generate makes one call on an idle stream, or on a new one when all are
// busy. A call whose context ends cancels its stream, which then carries
// no more calls: the plugin sees the cancel as it would a unary call's.
func (c *grpcClient) generate(ctx context.Context, in *pb.GenerateRequest) (*pb.GenerateResponse, error) {
	if c.unary.Load() {
		return c.c.Generate(ctx, in)
	}
	s, err := c.take()
	if err != nil {
		return nil, err
	}
	stop := context.AfterFunc(ctx, s.cancel)
	err = s.st.Send(in)
	var out *pb.GenerateResponse
	if err == nil || err == io.EOF {
		// Send reports a broken stream as io.EOF; Recv has its status.
		out, err = s.st.Recv()
	}
	if !stop() || err != nil {
		s.cancel()
		if err == nil {
			return out, nil
		}
		if cerr := ctx.Err(); cerr != nil {
			return nil, status.FromContextError(cerr).Err()
		}
		if status.Code(err) == codes.Unimplemented {
			c.unary.Store(true)
			return c.c.Generate(ctx, in)
		}
		return nil, err
	}
	c.mu.Lock()
	c.idle = append(c.idle, s)
	c.mu.Unlock()
	return out, nil
}

func (c *grpcClient) take() (*callStream, error) {
	c.mu.Lock()
	if n := len(c.idle); n > 0 {
		s := c.idle[n-1]
		c.idle = c.idle[:n-1]
		c.mu.Unlock()
		return s, nil
	}
	c.mu.Unlock()
	// The stream outlives the call that opens it, so its context is its
	// own; calls cancel it through AfterFunc.
	sctx, cancel := context.WithCancel(context.Background())
	st, err := c.c.GenerateStream(sctx)
	if err != nil {
		cancel()
		return nil, err
	}
	return &callStream{st: st, cancel: cancel}, nil
}

func toFailure(err error) *pb.Failure {
	e, ok := err.(*Error)
	if !ok {
		return &pb.Failure{Kind: pb.Failure_FAILED, Code: "error", Message: err.Error()}
	}
	kind := pb.Failure_FAILED
	switch e.Kind {
	case KindRetryable:
		kind = pb.Failure_RETRYABLE
	case KindFatal:
		kind = pb.Failure_FATAL
	}
	return &pb.Failure{Kind: kind, Code: e.Code, Message: e.Message, StatusCode: int32(e.StatusCode), RetryAfterMs: e.RetryAfter.Milliseconds(), Attempts: toAttempts(e.Attempts)}
}

func fromFailure(f *pb.Failure) *Error {
	kind := KindFailed
	switch f.Kind {
	case pb.Failure_RETRYABLE:
		kind = KindRetryable
	case pb.Failure_FATAL:
		kind = KindFatal
	}
	return &Error{Kind: kind, Code: f.Code, Message: f.Message, StatusCode: int(f.StatusCode), RetryAfter: time.Duration(f.RetryAfterMs) * time.Millisecond, Attempts: fromAttempts(f.Attempts)}
}

func toAttempts(as []Attempt) []*pb.Attempt {
	out := make([]*pb.Attempt, len(as))
	for i, a := range as {
		out[i] = &pb.Attempt{Model: a.Model, StatusCode: int32(a.StatusCode), Error: a.Error, Code: a.Code}
	}
	return out
}

func fromAttempts(as []*pb.Attempt) []Attempt {
	if len(as) == 0 {
		return nil
	}
	out := make([]Attempt, len(as))
	for i, a := range as {
		out[i] = Attempt{Model: a.Model, StatusCode: int(a.StatusCode), Error: a.Error, Code: a.Code}
	}
	return out
}
