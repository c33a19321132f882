package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pacman-cdn/pacman/internal/testutil"
)

// TestOutOfTreePlugin proves the plugin seam: a resolver defined in a Go
// module of its own (testdata/plugin, which only imports pacman) is built
// into a Caddy binary beside pacman, as `xcaddy build --with` would, and
// serves a file through the gateway byte-exact, with no pacman file edited.
func TestOutOfTreePlugin(t *testing.T) {
	notShort(t)
	repo, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	mod := t.TempDir()
	if err := os.CopyFS(mod, os.DirFS("testdata/plugin")); err != nil {
		t.Fatal(err)
	}
	goMod, err := os.ReadFile(filepath.Join(mod, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	goMod = bytes.Replace(goMod, []byte("=> ../../.."), []byte("=> "+repo), 1)
	if err := os.WriteFile(filepath.Join(mod, "go.mod"), goMod, 0o644); err != nil {
		t.Fatal(err)
	}
	// pacman's sums cover the plugin's dependencies, which are pacman's.
	sums, err := os.ReadFile(filepath.Join(repo, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(mod, "go.sum"), sums, 0o644); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "caddy")
	build := exec.Command("go", "build", "-mod=mod", "-o", bin, "./cmd/caddy")
	build.Dir = mod
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building Caddy with the plugin: %v\n%s", err, out)
	}
	mods := run(t, time.Minute, bin, "list-modules")
	for _, m := range []string{"pacman.resolvers.pinned", "pacman.resolvers.ipfs", "http.handlers.pacman"} {
		if !strings.Contains(mods, m+"\n") {
			t.Fatalf("list-modules lacks %s:\n%s", m, mods)
		}
	}

	data := testutil.Bytes("plugin", 3<<20+17)
	file := filepath.Join(t.TempDir(), "hello.bin")
	if err := os.WriteFile(file, data, 0o644); err != nil {
		t.Fatal(err)
	}
	dataDir, _ := newDataDir(t)
	// The CID is on stdout; stderr says where the command worked.
	out, err := exec.Command(bin, "pacman", "add", "--data-dir", dataDir, file).Output()
	if err != nil {
		t.Fatalf("pacman add: %v", err)
	}
	root, _, _ := strings.Cut(strings.TrimSpace(string(out)), " ")

	port := freePort(t)
	cfg := map[string]any{
		"admin": map[string]any{"disabled": true},
		"apps": map[string]any{
			"pacman": map[string]any{"data_dir": dataDir, "listen": []string{}},
			"http": map[string]any{"servers": map[string]any{"e2e": map[string]any{
				"listen":          []string{fmt.Sprintf("127.0.0.1:%d", port)},
				"automatic_https": map[string]any{"disable": true},
				"routes": []any{map[string]any{"handle": []any{map[string]any{
					"handler":   "pacman",
					"resolvers": []any{map[string]any{"resolver": "pinned", "path": "/hello.bin", "cid": root}},
				}}}},
			}}},
		},
	}
	b, _ := json.Marshal(cfg)
	cfgPath := filepath.Join(t.TempDir(), "caddy.json")
	if err := os.WriteFile(cfgPath, b, 0o600); err != nil {
		t.Fatal(err)
	}
	startProcess(t, exec.Command(bin, "run", "--config", cfgPath))
	url := fmt.Sprintf("http://127.0.0.1:%d/hello.bin", port)
	waitHTTP(t, url)
	resp, got := fetch(t, url)
	if resp.StatusCode != 200 || !bytes.Equal(got, data) {
		t.Fatalf("GET %s through the plugin: status %d, %d bytes, want the file's %d", url, resp.StatusCode, len(got), len(data))
	}
	resp, got = fetch(t, url, "Range", "bytes=1048570-1048589")
	if resp.StatusCode != 206 || !bytes.Equal(got, data[1048570:1048590]) {
		t.Errorf("range through the plugin: status %d, %q", resp.StatusCode, got)
	}
}
