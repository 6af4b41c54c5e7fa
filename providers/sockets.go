package providers

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/hashicorp/go-plugin"
)

// A plugin listens on a Unix socket it creates in the directory go-plugin
// names in PLUGIN_UNIX_SOCKET_DIR (else in /tmp), and removes it only when
// it exits cleanly. A plugin killed — after a crash, a hang, or with the
// host on SIGKILL — left its socket in /tmp for good: one more file for
// every such run. Each plugin process gets a directory of its own, named
// for the host's pid, which the host removes once the plugin is stopped;
// a later host removes the directories of hosts that are gone.

// socketPrefix is short: a socket's path must fit in 104 bytes (macOS;
// 108 on Linux), and $TMPDIR may be long already.
const socketPrefix = "pgrules-"

// maxSocketPath is the longest socket path every Unix takes, its NUL
// included.
const maxSocketPath = 104

var sweepOnce sync.Once

// socketDir makes the socket directory of one plugin process, or returns
// "" when its socket's path would be too long: the plugin then makes its
// socket in $TMPDIR itself, as go-plugin does by default.
func socketDir() (string, error) {
	sweepOnce.Do(sweepSocketDirs)
	d, err := os.MkdirTemp("", socketPrefix+strconv.Itoa(os.Getpid())+"-")
	if err != nil {
		return "", err
	}
	// go-plugin names the socket "plugin" and up to 10 digits.
	if len(d)+len("/plugin1234567890")+1 > maxSocketPath {
		os.Remove(d)
		return "", nil
	}
	return d, nil
}

// sweepSocketDirs removes the socket directories of hosts no longer
// running. One whose pid has been reused by another process is left: it
// costs an empty directory, not a plugin's socket of a live run.
func sweepSocketDirs() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), socketPrefix+"*-*"))
	for _, d := range dirs {
		pid, err := strconv.Atoi(strings.SplitN(strings.TrimPrefix(filepath.Base(d), socketPrefix), "-", 2)[0])
		if err != nil || pid <= 0 || pid == os.Getpid() {
			continue
		}
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			os.RemoveAll(d) // another user's stays: /tmp is sticky
		}
	}
}

// process is a plugin's process and the directory of its socket.
type process struct {
	*plugin.Client
	dir string
}

// Kill stops the process and removes its socket directory.
func (p *process) Kill() {
	if p.Client != nil {
		p.Client.Kill()
	}
	if p.dir != "" {
		os.RemoveAll(p.dir)
	}
}
