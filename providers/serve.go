package providers

import (
	"os"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
)

// Serve runs a provider plugin: a backend's main calls it and never
// returns. Logs go to stderr as JSON with go-plugin's keys, which the host
// turns into its own log lines; stdout belongs to the handshake.
func Serve(impl Provider) {
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig:  Handshake,
		VersionedPlugins: pluginSets(impl),
		GRPCServer: func(opts []grpc.ServerOption) *grpc.Server {
			return grpc.NewServer(append(opts, grpc.MaxRecvMsgSize(maxMsg), grpc.MaxSendMsgSize(maxMsg))...)
		},
		Logger: PluginLogger(),
	})
}

// PluginLogger is the logger a plugin should use for its own lines.
func PluginLogger() hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{Output: os.Stderr, JSONFormat: true, Level: hclog.Info})
}
