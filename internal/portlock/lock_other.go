//go:build !unix

package portlock

import (
	"errors"
	"os"
)

// errLocked says another process holds the lock; never, where advisory
// locks are not used.
var errLocked = errors.New("locked")

// lock does nothing outside Unix, where Caddy's listeners do not share
// ports between processes.
func lock(*os.File) error { return nil }
