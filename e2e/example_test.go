package e2e

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pacman-cdn/pacman/internal/testutil"
)

// TestFleetOnLoopbackExample runs examples/fleet-on-loopback.sh as README
// tells a newcomer to: three edges start, find each other, and a file
// added to the first is served byte-exact through the third, under the
// default access policy.
func TestFleetOnLoopbackExample(t *testing.T) {
	notShort(t)
	base := freeBase(t)
	dir := t.TempDir()
	cmd := exec.Command("../examples/fleet-on-loopback.sh")
	cmd.Env = append(os.Environ(), "CADDY="+caddyBin, fmt.Sprintf("BASE=%d", base), "DIR="+dir)
	// Its own process group, so nothing it started outlives the test.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	log := startProcess(t, cmd)
	t.Cleanup(func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) })
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(log.String(), "three edges:") {
		if time.Now().After(deadline) {
			t.Fatalf("the example never said it started:\n%s", log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	admin := func(i int) string { return fmt.Sprintf("localhost:%d", base+20+i) }
	for i := range 3 {
		for {
			stat, err := exec.Command(caddyBin, "pacman", "stat", "--address", admin(i)).Output()
			if err == nil && strings.Contains(string(stat), "peers         2") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("edge %d never saw the other two: %v\n%s", i, err, stat)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	file := filepath.Join(t.TempDir(), "f.bin")
	data := testutil.Bytes("example fleet", 3<<20+9)
	if err := os.WriteFile(file, data, 0o644); err != nil {
		t.Fatal(err)
	}
	added, err := exec.Command(caddyBin, "pacman", "add", "--address", admin(0), file).Output()
	if err != nil {
		t.Fatal(err)
	}
	c, _, _ := strings.Cut(string(added), " ")
	code, body, err := getBody(fmt.Sprintf("http://127.0.0.1:%d/ipfs/%s", base+2, c))
	if err != nil || code != 200 || !bytes.Equal(body, data) {
		t.Errorf("the file added to edge 0, through edge 2: %d, %d bytes, equal %v, %v", code, len(body), bytes.Equal(body, data), err)
	}
}

// freeBase returns a port p such that p…p+2, p+10…p+12 and p+20…p+22
// are free on loopback, as the example uses them.
func freeBase(t *testing.T) int {
	t.Helper()
	for range 50 {
		base := 20000 + int(time.Now().UnixNano()%20000)
		free := true
		for _, off := range []int{0, 1, 2, 10, 11, 12, 20, 21, 22} {
			l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", base+off))
			if err != nil {
				free = false
				break
			}
			l.Close()
		}
		if free {
			return base
		}
	}
	t.Fatal("no free block of ports for the example")
	return 0
}
