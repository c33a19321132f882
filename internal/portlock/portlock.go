// Package portlock keeps a second pacman off the HTTP ports a first one
// serves. Caddy binds its listeners with SO_REUSEPORT (so a reload can bind
// the new listener before the old one closes), and the kernel lets any
// process of the same user do the same: a second `caddy run` on the same
// ports starts without a word and the kernel shares the port's connections
// between two processes with two stores. Each port a pacman serves is held
// by an advisory lock file, taken when its config starts and released when
// the last config of the process that uses it stops. A port is one per
// network namespace: pacmans in two namespaces (containers, `ip netns
// exec`) that share the temporary directory do not see each other.
package portlock

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// ErrPortInUse says another pacman process serves the port.
var ErrPortInUse = errors.New("HTTP port served by another pacman")

// Dir is where the locks of one machine live, shared by every pacman that
// sees the same temporary directory.
func Dir() string { return filepath.Join(os.TempDir(), "pacman-ports") }

// netns names the network namespace this process is in ("" where there
// are none): the same port in two namespaces is two ports, though the
// processes share a temporary directory.
func netns() string {
	link, err := os.Readlink("/proc/self/ns/net") // net:[4026531840]
	if err != nil {
		return ""
	}
	return "-" + strings.Trim(strings.TrimPrefix(link, "net:"), "[]")
}

// Lock is one held port.
type Lock struct {
	f *os.File
}

// Take takes the lock of network's port in dir, writing who into it so a
// refused process can name the holder. It fails with ErrPortInUse when
// another process holds it, and with another error when the lock cannot be
// made at all (the caller decides whether that matters).
func Take(dir, network string, port uint, who string) (*Lock, error) {
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return nil, fmt.Errorf("port lock directory: %w", err)
	}
	// Every user's pacman shares the directory, each keeping its own files,
	// like /tmp.
	_ = os.Chmod(dir, 0o777|os.ModeSticky)
	path := filepath.Join(dir, fmt.Sprintf("%s-%d%s", network, port, netns()))
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("port lock %s: %w", path, err)
	}
	if err := lock(f); err != nil {
		holder, _ := os.ReadFile(path)
		f.Close()
		if errors.Is(err, errLocked) {
			return nil, fmt.Errorf("%w: %s port %d is served by %s; stop it, or give this Caddy other ports",
				ErrPortInUse, network, port, strings.TrimSpace(string(holder)))
		}
		return nil, fmt.Errorf("port lock %s: %w", path, err)
	}
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(who+"\n"), 0)
	}
	return &Lock{f: f}, nil
}

// Destruct releases the lock. Its file stays: removing it would let a
// process that opened it before the removal hold a lock nobody else sees.
func (l *Lock) Destruct() error {
	return l.f.Close() // closing the last descriptor releases the lock
}
