//go:build !linux

package providers

import "os/exec"

func setDeathSignal(*exec.Cmd) {}
