package providers

import (
	"io"
	"log"
	"strings"

	"github.com/hashicorp/go-hclog"
	"github.com/rs/zerolog"
)

// newLogBridge is the hclog.Logger go-plugin logs through, including the
// lines it relays from the plugin's stderr; everything lands in pgrules'
// zerolog output with the plugin's name.
func newLogBridge(z zerolog.Logger) hclog.Logger {
	return &logBridge{z: z}
}

type logBridge struct {
	z    zerolog.Logger
	name string
	args []any
}

func (b *logBridge) event(l hclog.Level) *zerolog.Event {
	switch l {
	case hclog.Trace, hclog.Debug:
		return b.z.Debug()
	case hclog.Info:
		return b.z.Info()
	case hclog.Warn:
		return b.z.Warn()
	case hclog.Error:
		return b.z.Error()
	}
	return b.z.Info()
}

func (b *logBridge) Log(level hclog.Level, msg string, args ...any) {
	// go-plugin's own chatter (starting, exited...) comes from the unnamed
	// logger and is debug detail; the plugin's own lines arrive through a
	// logger named after its binary and keep their level.
	if b.name == "" && level <= hclog.Info {
		level = hclog.Debug
	}
	e := b.event(level)
	all := append(append([]any{}, b.args...), args...)
	for i := 0; i+1 < len(all); i += 2 {
		k, _ := all[i].(string)
		if k == "" {
			continue
		}
		e = e.Interface(k, all[i+1])
	}
	if b.name != "" {
		e = e.Str("module", b.name)
	}
	e.Msg(msg)
}

func (b *logBridge) Trace(msg string, args ...any) { b.Log(hclog.Trace, msg, args...) }
func (b *logBridge) Debug(msg string, args ...any) { b.Log(hclog.Debug, msg, args...) }
func (b *logBridge) Info(msg string, args ...any)  { b.Log(hclog.Info, msg, args...) }
func (b *logBridge) Warn(msg string, args ...any)  { b.Log(hclog.Warn, msg, args...) }
func (b *logBridge) Error(msg string, args ...any) { b.Log(hclog.Error, msg, args...) }

func (b *logBridge) IsTrace() bool { return false }
func (b *logBridge) IsDebug() bool { return b.z.GetLevel() <= zerolog.DebugLevel }
func (b *logBridge) IsInfo() bool  { return b.z.GetLevel() <= zerolog.InfoLevel }
func (b *logBridge) IsWarn() bool  { return b.z.GetLevel() <= zerolog.WarnLevel }
func (b *logBridge) IsError() bool { return b.z.GetLevel() <= zerolog.ErrorLevel }

func (b *logBridge) ImpliedArgs() []any { return b.args }
func (b *logBridge) With(args ...any) hclog.Logger {
	return &logBridge{z: b.z, name: b.name, args: append(append([]any{}, b.args...), args...)}
}
func (b *logBridge) Name() string { return b.name }
func (b *logBridge) Named(name string) hclog.Logger {
	n := name
	if b.name != "" {
		n = b.name + "." + name
	}
	return &logBridge{z: b.z, name: n, args: b.args}
}
func (b *logBridge) ResetNamed(name string) hclog.Logger {
	return &logBridge{z: b.z, name: name, args: b.args}
}
func (b *logBridge) SetLevel(hclog.Level)  {}
func (b *logBridge) GetLevel() hclog.Level { return hclog.Info }
func (b *logBridge) StandardLogger(*hclog.StandardLoggerOptions) *log.Logger {
	return log.New(b.StandardWriter(nil), "", 0)
}
func (b *logBridge) StandardWriter(*hclog.StandardLoggerOptions) io.Writer {
	return zerologWriter{b.z}
}

type zerologWriter struct{ z zerolog.Logger }

func (w zerologWriter) Write(p []byte) (int, error) {
	w.z.Info().Msg(strings.TrimSpace(string(p)))
	return len(p), nil
}
