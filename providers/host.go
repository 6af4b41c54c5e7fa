package providers

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"iter"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-plugin"
	"github.com/rs/zerolog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/experimental"
	"google.golang.org/grpc/status"
)

// BinaryPrefix names provider executables: pgrules-provider-<name>.
const BinaryPrefix = "pgrules-provider-"

// SearchDirs is where plugins are looked for, in order: --plugin-dir,
// $PGRULES_PLUGIN_DIR, the directory of the running executable, $PATH.
// Each directory is listed once (the plugin dir setting is often
// $PGRULES_PLUGIN_DIR itself, and PATHs repeat), so a "not found" message
// reads as the search it was.
func SearchDirs(pluginDir string) []string {
	var dirs []string
	if pluginDir != "" {
		dirs = append(dirs, pluginDir)
	}
	if d := os.Getenv("PGRULES_PLUGIN_DIR"); d != "" {
		dirs = append(dirs, d)
	}
	if exe, err := os.Executable(); err == nil {
		dirs = append(dirs, filepath.Dir(exe))
	}
	dirs = append(dirs, filepath.SplitList(os.Getenv("PATH"))...)
	seen := make(map[string]bool, len(dirs))
	out := dirs[:0]
	for _, d := range dirs {
		if !seen[d] {
			seen[d] = true
			out = append(out, d)
		}
	}
	return out
}

// Find returns the first pgrules-provider-<name> executable in dirs.
func Find(name string, dirs []string) (string, error) {
	if strings.ContainsAny(name, `/\`) || name == "" {
		return "", fmt.Errorf("provider name %q: use a plain name such as openrouter, local or dryrun", name)
	}
	bin := BinaryPrefix + name
	for _, d := range dirs {
		p := filepath.Join(d, bin)
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", &NotFoundError{Name: name, Binary: bin, Dirs: dirs}
}

// NotFoundError is a provider with no executable on the search path.
type NotFoundError struct {
	Name, Binary string
	Dirs         []string
}

func (e *NotFoundError) Error() string {
	return fmt.Sprintf("provider %q not found: no executable %s in %s", e.Name, e.Binary, strings.Join(e.Dirs, ", "))
}

// binaries yields the name and path of each provider plugin binary in
// dirs, the first per name only, as a run picks it.
func binaries(dirs []string) iter.Seq2[string, string] {
	return func(yield func(name, path string) bool) {
		seen := map[string]bool{}
		for _, d := range dirs {
			entries, err := os.ReadDir(d)
			if err != nil {
				continue
			}
			for _, e := range entries {
				name, ok := strings.CutPrefix(e.Name(), BinaryPrefix)
				if !ok || e.IsDir() || seen[name] {
					continue
				}
				seen[name] = true
				if !yield(name, filepath.Join(d, e.Name())) {
					return
				}
			}
		}
	}
}

// ListNames returns the names of the provider plugins in dirs without
// starting them.
func ListNames(dirs []string) []string {
	var out []string
	for name := range binaries(dirs) {
		out = append(out, name)
	}
	return out
}

// Found is one plugin binary seen by List.
type Found struct {
	Name, Path, Version, SHA256 string
	Err                         error
}

// List finds every provider plugin in dirs (the first per name wins, as in
// a run) and asks each to describe itself.
func List(dirs []string) []Found {
	var out []Found
	for name, path := range binaries(dirs) {
		f := Found{Name: name, Path: path}
		f.SHA256, f.Err = fileSHA256(f.Path)
		if f.Err == nil {
			f.Version, f.Err = describe(f.Path)
		}
		out = append(out, f)
	}
	return out
}

func describe(path string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pc, p, err := launch(ctx, path, zerolog.Nop(), "", "")
	if err != nil {
		return "", err
	}
	defer pc.Kill()
	info, err := p.Describe(ctx)
	if err != nil {
		return "", err
	}
	return info.Version, nil
}

// BinarySHA256 is the sha256 of a plugin binary, read without running it.
func BinarySHA256(path string) (string, error) { return fileSHA256(path) }

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// HostOptions say which plugin to start and how.
type HostOptions struct {
	Name string
	Dirs []string
	// SHA256 pins the binary: a plugin whose checksum differs is refused
	// before it runs.
	SHA256      string
	Logger      zerolog.Logger
	MaxRestarts int
	ConfigJSON  []byte
	// CPUProfile, when set, has the plugin write a Go CPU profile of
	// itself to this file, from its start until it is stopped (plugins
	// built on Serve; others ignore it). A restarted plugin starts the
	// file anew.
	CPUProfile string
}

// Client is a running provider plugin. It restarts the plugin when the
// process dies and retries the calls that were in flight, so a crash costs
// a restart, not the samples.
type Client struct {
	opts   HostOptions
	path   string
	sha    string
	log    zerolog.Logger
	info   Info
	config Configured

	mu       sync.Mutex
	pc       *process
	p        Provider
	gen      int
	restarts int
	closed   bool
}

// Start finds, verifies, launches, describes and configures a plugin.
func Start(ctx context.Context, opts HostOptions) (*Client, error) {
	path, err := Find(opts.Name, opts.Dirs)
	if err != nil {
		return nil, err
	}
	sum, err := fileSHA256(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read plugin %s: %w", path, err)
	}
	c := &Client{opts: opts, path: path, sha: sum, log: opts.Logger.With().Str("plugin", opts.Name).Logger()}
	if err := c.start(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// start launches a fresh plugin process; the caller holds c.mu or owns c.
func (c *Client) start(ctx context.Context) error {
	pc, p, err := launch(ctx, c.path, c.log, c.opts.SHA256, c.opts.CPUProfile)
	if err != nil {
		return err
	}
	info, err := p.Describe(ctx)
	if err != nil {
		pc.Kill()
		return fmt.Errorf("plugin %s: describe: %w", c.path, err)
	}
	conf, err := p.Configure(ctx, orEmpty(c.opts.ConfigJSON))
	if err != nil {
		pc.Kill()
		return &ConfigRejected{Provider: c.opts.Name, Err: parseConfigError(status.Convert(err).Message())}
	}
	c.pc, c.p, c.info, c.config = pc, p, info, conf
	c.gen++
	return nil
}

// ConfigRejected is a plugin's refusal of its configuration; Err.Path is
// relative to providers.<Provider>.
type ConfigRejected struct {
	Provider string
	Err      *ConfigError
}

func (e *ConfigRejected) Error() string {
	return fmt.Sprintf("provider %s rejected its configuration: %s", e.Provider, e.Err)
}

// configPathRE reads the path a plugin's ConfigError put in front of its
// message, across the gRPC boundary.
var configPathRE = regexp.MustCompile(`^([A-Za-z0-9_\-]+(?:\.[A-Za-z0-9_\-]+|\[\d+\])*): (.+)$`)

func parseConfigError(msg string) *ConfigError {
	if m := configPathRE.FindStringSubmatch(msg); m != nil {
		return &ConfigError{Path: m[1], Msg: m[2]}
	}
	return &ConfigError{Msg: msg}
}

func orEmpty(b []byte) []byte {
	if len(b) == 0 || string(b) == "null" {
		return []byte("{}")
	}
	return b
}

// launch starts a plugin process and connects to it. The handshake waits
// at most until ctx ends (or StartTimeout): a plugin that never answers
// cannot hold up a Ctrl-C.
func launch(ctx context.Context, path string, log zerolog.Logger, pin, cpuProfile string) (*process, Provider, error) {
	var secure *plugin.SecureConfig
	if pin != "" {
		want, err := hex.DecodeString(strings.TrimPrefix(strings.ToLower(pin), "sha256:"))
		if err != nil || len(want) != sha256.Size {
			return nil, nil, fmt.Errorf("plugins.<name>.sha256 %q is not a sha256: want 64 hex digits, quoted in YAML", pin)
		}
		// Checked here for a clear message, and again by go-plugin right
		// before it executes the file.
		if got, _ := fileSHA256(path); got != hex.EncodeToString(want) {
			return nil, nil, fmt.Errorf("plugin %s has sha256 %s but the config pins %s: refusing to start it (rebuild the pinned version or update plugins.<name>.sha256)", path, got, pin)
		}
		secure = &plugin.SecureConfig{Checksum: want, Hash: sha256.New()}
	}
	sockets, err := socketDir()
	if err != nil {
		return nil, nil, fmt.Errorf("cannot start plugin %s: %w", path, err)
	}
	cmd := exec.Command(path)
	var env []string
	if sockets != "" {
		env = append(env, plugin.EnvUnixSocketDir+"="+sockets)
	}
	if cpuProfile != "" {
		env = append(env, EnvCPUProfile+"="+cpuProfile)
	}
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	setDeathSignal(cmd)
	pc := &process{dir: sockets}
	pc.Client = plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  Handshake,
		VersionedPlugins: pluginSets(nil),
		Cmd:              cmd,
		SecureConfig:     secure,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		AutoMTLS:         true,
		Logger:           newLogBridge(log),
		StartTimeout:     30 * time.Second,
		GRPCDialOptions:  []grpc.DialOption{grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxMsg), grpc.MaxCallSendMsgSize(maxMsg), grpc.ForceCodecV2(codec)), experimental.WithBufferPool(bufferPool)},
	})
	type started struct {
		rpc plugin.ClientProtocol
		err error
	}
	ch := make(chan started, 1)
	go func() {
		rpc, err := pc.Client.Client()
		ch <- started{rpc, err}
	}()
	var rpc plugin.ClientProtocol
	select {
	case s := <-ch:
		if s.err != nil {
			pc.Kill()
			return nil, nil, fmt.Errorf("cannot start plugin %s: %w", path, s.err)
		}
		rpc = s.rpc
	case <-ctx.Done():
		pc.Kill()
		return nil, nil, ctx.Err()
	}
	raw, err := rpc.Dispense(pluginName)
	if err != nil {
		pc.Kill()
		return nil, nil, fmt.Errorf("plugin %s: %w", path, err)
	}
	return pc, raw.(Provider), nil
}

// Info is what the plugin said about itself.
func (c *Client) Info() Info { return c.info }

// Configured is what the plugin reported after Configure.
func (c *Client) Configured() Configured { return c.config }

// Path is the plugin binary.
func (c *Client) Path() string { return c.path }

// SHA256 is the plugin binary's checksum.
func (c *Client) SHA256() string { return c.sha }

// Restarts counts plugin restarts after crashes.
func (c *Client) Restarts() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.restarts
}

// Pid is the plugin process id, for tests and diagnostics.
func (c *Client) Pid() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pc == nil || c.pc.ReattachConfig() == nil {
		return 0
	}
	return c.pc.ReattachConfig().Pid
}

// Transport says how calls reach the plugin: "streams" (GenerateStream)
// or "unary" (a plugin without it). Plugin authors read it in the run's
// log to see that their GenerateStream is used.
func (c *Client) Transport() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gc, ok := c.p.(*grpcClient); ok && gc.unary.Load() {
		return "unary"
	}
	return "streams"
}

// Describe implements Provider.
func (c *Client) Describe(ctx context.Context) (Info, error) { return c.info, nil }

// Configure implements Provider; the plugin was configured at Start.
func (c *Client) Configure(ctx context.Context, _ []byte) (Configured, error) { return c.config, nil }

// Generate implements Provider, restarting a dead plugin and retrying.
func (c *Client) Generate(ctx context.Context, req Request) (Response, error) {
	for {
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			return Response{}, &Error{Kind: KindFatal, Code: "plugin_closed", Message: "provider plugin was shut down"}
		}
		p, gen := c.p, c.gen
		c.mu.Unlock()

		resp, err := p.Generate(ctx, req)
		if err == nil || !c.transportFailure(err) || ctx.Err() != nil {
			return resp, err
		}
		if rerr := c.restart(ctx, gen, err); rerr != nil {
			return Response{}, rerr
		}
	}
}

// transportFailure tells a dead plugin from an answer: a *Error is the
// plugin speaking; a gRPC Unavailable or an exited process is not.
func (c *Client) transportFailure(err error) bool {
	var pe *Error
	if errors.As(err, &pe) {
		return false
	}
	c.mu.Lock()
	exited := c.pc != nil && c.pc.Exited()
	c.mu.Unlock()
	// The caller's context is alive (checked by Generate), so Canceled
	// means go-plugin closed the connection of a process that died.
	code := status.Code(err)
	return exited || code == codes.Unavailable || code == codes.Canceled
}

func (c *Client) restart(ctx context.Context, gen int, cause error) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != gen {
		return nil // another caller already restarted it
	}
	if c.restarts >= c.opts.MaxRestarts {
		return &Error{Kind: KindFatal, Code: CodePluginCrashed, Message: fmt.Sprintf("provider plugin %s died %d times (last: %v); giving up", c.path, c.restarts+1, status.Convert(cause).Message())}
	}
	c.restarts++
	c.log.Warn().Int("restart", c.restarts).Str("cause", status.Convert(cause).Message()).Msg("provider plugin died; restarting it and retrying its in-flight calls")
	if c.pc != nil {
		c.pc.Kill()
	}
	if err := c.start(ctx); err != nil {
		return &Error{Kind: KindFatal, Code: CodePluginCrashed, Message: "restarting provider plugin: " + err.Error()}
	}
	return nil
}

// Close stops the plugin process. Plugins ignore SIGINT, so the host
// kills them on every exit path.
func (c *Client) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	if c.pc != nil {
		c.pc.Kill()
	}
	return nil
}
