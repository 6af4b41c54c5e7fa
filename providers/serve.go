package providers

import (
	"os"
	"runtime/debug"
	"runtime/pprof"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/experimental"
)

// EnvCPUProfile names the file a plugin built on Serve writes a Go CPU
// profile of itself to, from its start until the host stops it
// (HostOptions.CPUProfile sets it). On two cores the plugin takes a
// seventh of a fast first run's CPU, which the host's own profile does
// not show.
const EnvCPUProfile = "PGRULES_PLUGIN_CPU_PROFILE"

// Serve runs a provider plugin: a backend's main calls it, and it returns
// once the host has stopped the plugin. Logs go to stderr as JSON with
// go-plugin's keys, which the host turns into its own log lines; stdout
// belongs to the handshake.
func Serve(impl Provider) {
	tuneGC()
	if path := os.Getenv(EnvCPUProfile); path != "" {
		f, err := os.Create(path)
		if err == nil {
			if err = pprof.StartCPUProfile(f); err == nil {
				defer func() { pprof.StopCPUProfile(); f.Close() }()
			} else {
				f.Close()
			}
		}
		if err != nil {
			PluginLogger().Warn("no CPU profile", "path", path, "error", err.Error())
		}
	}
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig:  Handshake,
		VersionedPlugins: pluginSets(impl),
		GRPCServer: func(opts []grpc.ServerOption) *grpc.Server {
			return grpc.NewServer(append(opts, grpc.MaxRecvMsgSize(maxMsg), grpc.MaxSendMsgSize(maxMsg), experimental.BufferPool(bufferPool), grpc.ForceServerCodecV2(codec))...)
		},
		Logger: PluginLogger(),
	})
}

// PluginLogger is the logger a plugin should use for its own lines.
func PluginLogger() hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{Output: os.Stderr, JSONFormat: true, Level: hclog.Info})
}

// tuneGC: a plugin keeps almost nothing and allocates each call's request
// and answer, so at the default GOGC=100 its heap of a few MB was
// collected dozens of times a second, and the collector took a tenth of
// a fast teacher's CPU. GOGC, when set, wins.
func tuneGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
}
