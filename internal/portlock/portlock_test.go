package portlock

import (
	"errors"
	"strings"
	"testing"
)

// TestSecondTakerIsRefusedUntilRelease: a port's lock is held by one taker
// at a time (two descriptors, as two processes would have), the refused
// one is told who holds it, and a release lets the next one take it.
func TestSecondTakerIsRefusedUntilRelease(t *testing.T) {
	dir := t.TempDir()
	first, err := Take(dir, "tcp", 8080, "pacman pid 1 (data dir /a)")
	if err != nil {
		t.Fatal(err)
	}
	_, err = Take(dir, "tcp", 8080, "pacman pid 2 (data dir /b)")
	if !errors.Is(err, ErrPortInUse) || !strings.Contains(err.Error(), "pid 1 (data dir /a)") {
		t.Fatalf("second take: %v, want ErrPortInUse naming the holder", err)
	}
	other, err := Take(dir, "tcp", 8081, "pacman pid 2")
	if err != nil {
		t.Fatalf("another port: %v", err)
	}
	defer other.Destruct()
	if err := first.Destruct(); err != nil {
		t.Fatal(err)
	}
	again, err := Take(dir, "tcp", 8080, "pacman pid 2")
	if err != nil {
		t.Fatalf("after release: %v", err)
	}
	again.Destruct()
}
