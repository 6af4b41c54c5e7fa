package providers

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pgrules/pgrules/providers/plugintest"
)

// socketDirs lists this host's plugin socket directories in tmp and the
// sockets in them.
func socketDirs(t *testing.T, tmp string) (dirs []string, sockets int) {
	t.Helper()
	dirs, _ = filepath.Glob(filepath.Join(tmp, socketPrefix+strconv.Itoa(os.Getpid())+"-*"))
	for _, d := range dirs {
		entries, _ := os.ReadDir(d)
		for _, e := range entries {
			if e.Type()&os.ModeSocket != 0 {
				sockets++
			}
		}
	}
	return dirs, sockets
}

// A plugin killed (here: as after a crash, and then by Close) leaves no
// socket behind: go-plugin's plugin removes its socket only on a clean
// exit, and every killed plugin used to leave one in /tmp for good.
func TestAKilledPluginLeavesNoSocket(t *testing.T) {
	plugins := plugintest.Build(t, "dryrun") // before TMPDIR moves
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	c, err := Start(context.Background(), HostOptions{Name: "dryrun", Dirs: []string{plugins}, MaxRestarts: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	first, n := socketDirs(t, tmp)
	if len(first) != 1 || n != 1 {
		t.Fatalf("a running plugin: socket dirs %v with %d socket(s), want 1 with 1", first, n)
	}
	pid := c.Pid()
	syscall.Kill(pid, syscall.SIGKILL)
	for syscall.Kill(pid, 0) == nil {
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := c.Generate(context.Background(), Request{ID: "a", PayloadType: "checklist"}); err != nil {
		t.Fatal(err)
	}
	if c.Restarts() != 1 {
		t.Fatalf("restarts %d, want 1", c.Restarts())
	}
	second, n := socketDirs(t, tmp)
	if len(second) != 1 || n != 1 || second[0] == first[0] {
		t.Errorf("after a crash and a restart: socket dirs %v with %d socket(s), want only the new one (the old was %s)", second, n, first[0])
	}
	c.Close()
	if left, _ := socketDirs(t, tmp); len(left) != 0 {
		t.Errorf("after Close: %v left", left)
	}
	if left, _ := filepath.Glob(filepath.Join(tmp, "plugin*")); len(left) != 0 {
		t.Errorf("sockets in the temp dir itself: %v", left)
	}
}

// A $TMPDIR so long that a socket directory in it would make the socket's
// path too long for the system: the plugin makes its socket in $TMPDIR, as
// it did before, and starts.
func TestALongTmpdirStillStartsThePlugin(t *testing.T) {
	plugins := plugintest.Build(t, "dryrun")
	tmp := t.TempDir()
	long := filepath.Join(tmp, strings.Repeat("d", maxSocketPath-len(tmp)-len("/plugin1234567890")-4))
	if err := os.MkdirAll(long, 0o700); err != nil {
		t.Fatal(err)
	}
	t.Setenv("TMPDIR", long)
	c, err := Start(context.Background(), HostOptions{Name: "dryrun", Dirs: []string{plugins}})
	if err != nil {
		t.Fatalf("TMPDIR of %d bytes: %v", len(long), err)
	}
	c.Close()
	if dirs, _ := socketDirs(t, long); len(dirs) != 0 {
		t.Errorf("socket dirs %v", dirs)
	}
}

// The socket directories of a host that was killed are removed by the
// next host; those of a running host are not.
func TestSocketDirsOfGoneHostsAreSwept(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	gone := exec.Command("true")
	if err := gone.Run(); err != nil {
		t.Fatal(err)
	}
	dead := filepath.Join(tmp, socketPrefix+strconv.Itoa(gone.Process.Pid)+"-123")
	live := filepath.Join(tmp, socketPrefix+strconv.Itoa(os.Getppid())+"-456")
	mine := filepath.Join(tmp, socketPrefix+strconv.Itoa(os.Getpid())+"-789")
	other := filepath.Join(tmp, "pgrules-plugins-99") // the tests' plugin binaries
	for _, d := range []string{dead, live, mine, other} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(d, "plugin1"), nil, 0o600)
	}
	sweepSocketDirs()
	for d, want := range map[string]bool{dead: false, live: true, mine: true, other: true} {
		if _, err := os.Stat(d); (err == nil) != want {
			t.Errorf("%s: exists %v, want %v", filepath.Base(d), err == nil, want)
		}
	}
}
