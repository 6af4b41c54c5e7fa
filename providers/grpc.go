package providers

import (
	"context"
	"math"
	"time"
	"unicode/utf8"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

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
	return &pb.ConfigureResponse{IdentityJson: c.IdentityJSON, Models: c.Models, AnswersDependOnId: c.AnswersDependOnID, NoPrompt: c.NoPrompt, WantsDraft: c.WantsDraft}, nil
}

func (s *grpcServer) Generate(ctx context.Context, req *pb.GenerateRequest) (*pb.GenerateResponse, error) {
	r, err := s.impl.Generate(ctx, Request{ID: req.Id, System: req.System, Prompt: req.Prompt, PayloadType: req.PayloadType, Draft: req.Draft, PromptBytes: req.PromptBytes})
	if err != nil {
		return &pb.GenerateResponse{Failure: toFailure(err)}, nil
	}
	out := &pb.GenerateResponse{
		Text: r.Text, Provider: r.Provider, SelectedModel: r.SelectedModel, ChosenModel: r.ChosenModel,
		AttemptedModels: r.AttemptedModels, Fallbacks: toAttempts(r.Fallbacks), RequestId: r.RequestID,
		LatencySeconds: r.LatencySeconds, FinishReason: r.FinishReason, SecretsRedacted: int32(r.SecretsRedacted),
	}
	if u := r.Usage; u != nil {
		out.Usage = &pb.Usage{PromptTokens: u.PromptTokens, CompletionTokens: u.CompletionTokens, TotalTokens: u.TotalTokens}
	}
	if !utf8.ValidString(r.Text) {
		out.Text, out.RawText = "", []byte(r.Text)
	}
	if r.CostUSD != nil {
		out.HasCost, out.CostUsd = true, *r.CostUSD
	}
	return out, nil
}

// grpcClient is the host's Provider over one plugin connection.
type grpcClient struct {
	c pb.ProviderClient
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
	return Configured{IdentityJSON: r.IdentityJson, Models: r.Models, AnswersDependOnID: r.AnswersDependOnId, NoPrompt: r.NoPrompt, WantsDraft: r.WantsDraft}, nil
}

func (c *grpcClient) Generate(ctx context.Context, req Request) (Response, error) {
	start := time.Now()
	r, err := c.c.Generate(ctx, &pb.GenerateRequest{Id: req.ID, System: req.System, Prompt: req.Prompt, PayloadType: req.PayloadType, Draft: req.Draft, PromptBytes: req.PromptBytes})
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
		out.Text = string(r.RawText)
	}
	out.SecretsRedacted = int(r.SecretsRedacted)
	if r.HasCost {
		cost := r.CostUsd
		out.CostUSD = &cost
	}
	return out, nil
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
