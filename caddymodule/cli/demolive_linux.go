package cli

import "syscall"

// childAttr makes the demo's children die with it, killed or not: a
// publisher and an encoder left running would hold their ports and keep
// publishing.
func childAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} }
