//go:build !linux

package testredis

import "os/exec"

// setProcAttr has no portable equivalent of Linux's parent-death signal;
// t.Cleanup stops the server on every orderly exit.
func setProcAttr(*exec.Cmd) {}
