package providers

import (
	"os/exec"
	"syscall"
)

// setDeathSignal makes the kernel kill the plugin when pgrules dies, even
// by SIGKILL, so no orphan keeps a port or a paid request open.
func setDeathSignal(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
