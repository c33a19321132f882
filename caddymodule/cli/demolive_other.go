//go:build !linux

package cli

import "syscall"

// childAttr is nil where a child cannot be tied to its parent's life: the
// demo stops its children when it stops.
func childAttr() *syscall.SysProcAttr { return nil }
