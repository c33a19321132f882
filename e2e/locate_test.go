package e2e

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pacman-cdn/pacman/internal/testutil"
)

// TestCommandsFindTheRunningEdge: a command given no --data-dir works in
// the data directory the Caddy at --address runs, as Kubo's commands find
// their daemon (it used to write into the default directory, exit 0, and
// leave the edge without the file), from any working directory; and every
// command says where it worked, through the Caddy or offline in which
// directory.
func TestCommandsFindTheRunningEdge(t *testing.T) {
	notShort(t)
	dataDir, id := newDataDir(t)
	admin := fmt.Sprintf("localhost:%d", freePort(t))
	p := startPacmanAdmin(t, admin, dataDir, id)

	src := t.TempDir()
	file := testutil.Bytes("located", 3<<20+5)
	if err := os.WriteFile(filepath.Join(src, "f.bin"), file, 0o644); err != nil {
		t.Fatal(err)
	}
	// The default data directory is in a scratch XDG_DATA_HOME, so a
	// command that misses the edge writes nothing of the machine's.
	xdg := t.TempDir()
	run := func(dir string, args ...string) (stdout, stderr string) {
		t.Helper()
		cmd := exec.Command(caddyBin, append([]string{"pacman"}, args...)...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "XDG_DATA_HOME="+xdg)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Run(); err != nil {
			t.Fatalf("caddy pacman %s: %v\n%s", strings.Join(args, " "), err, errb.String())
		}
		return out.String(), errb.String()
	}

	out, said := run(t.TempDir(), "add", "--address", admin, filepath.Join(src, "f.bin"))
	c, _, _ := strings.Cut(out, " ")
	if want := fmt.Sprintf("add: via the Caddy at %s (data dir %s)", admin, dataDir); !strings.Contains(said, want) {
		t.Errorf("add said %q, want %q", said, want)
	}
	if code, body, err := getBody(p.URL + "/ipfs/" + c); err != nil || code != 200 || !bytes.Equal(body, file) {
		t.Fatalf("the file added with no --data-dir: %d, equal %v, %v", code, bytes.Equal(body, file), err)
	}
	if out, _ := run(src, "ls", "--address", admin); !strings.Contains(out, c) {
		t.Errorf("ls with no --data-dir lists %q, want %s", out, c)
	}

	// No Caddy at the address: offline, and said so, naming the
	// directory as an absolute path.
	other := t.TempDir()
	_, said = run(other, "add", "--address", fmt.Sprintf("localhost:%d", freePort(t)), "--data-dir", "store", filepath.Join(src, "f.bin"))
	if want := "add: offline, in data dir " + filepath.Join(other, "store") + ", a new one"; !strings.Contains(said, want) {
		t.Errorf("an offline add said %q, want %q", said, want)
	}
}

// TestPacmanCommandMistakes: a bare `caddy pacman` and a mistyped command
// fail (they exited 0), saying what is wrong.
func TestPacmanCommandMistakes(t *testing.T) {
	notShort(t)
	for _, args := range [][]string{{"pacman"}, {"pacman", "ad", "f.bin"}} {
		out, err := exec.Command(caddyBin, args...).CombinedOutput()
		if err == nil {
			t.Errorf("caddy %s exited 0:\n%s", strings.Join(args, " "), out)
		}
		if !strings.Contains(string(out), "command") {
			t.Errorf("caddy %s said %q, want it to name the missing or unknown command", strings.Join(args, " "), out)
		}
	}
}
