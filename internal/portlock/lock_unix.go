//go:build unix

package portlock

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// errLocked says another open file description holds the lock.
var errLocked = errors.New("locked")

// lock takes an exclusive lock on f without waiting.
func lock(f *os.File) error {
	err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
	if errors.Is(err, unix.EWOULDBLOCK) {
		return errLocked
	}
	return err
}
