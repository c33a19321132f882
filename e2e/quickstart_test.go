package e2e

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pacman-cdn/pacman/internal/testutil"
)

// TestReadmeQuickstart runs README's "Your own files on localhost" as a
// newcomer does: its Caddyfile (with free ports for :8080 and the admin
// endpoint), `caddy run` in that directory, `caddy pacman add` with no
// flags but the address, and a Range GET of the file it printed.
func TestReadmeQuickstart(t *testing.T) {
	notShort(t)
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(readme), "### Your own files on localhost")
	if !ok {
		t.Fatal("README has no section \"Your own files on localhost\"")
	}
	_, block, _ := strings.Cut(section, "```caddyfile\n")
	caddyfile, _, _ := strings.Cut(block, "```")
	if !strings.Contains(caddyfile, ":8080 {") {
		t.Fatalf("the quickstart Caddyfile no longer serves :8080:\n%s", caddyfile)
	}
	httpPort, admin := freePort(t), fmt.Sprintf("localhost:%d", freePort(t))
	caddyfile = strings.Replace(caddyfile, ":8080 {", fmt.Sprintf(":%d {", httpPort), 1)
	caddyfile = strings.Replace(caddyfile, "{\n", "{\n\tadmin "+admin+"\n", 1)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "Caddyfile"), []byte(caddyfile), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(caddyBin, "run")
	cmd.Dir = dir
	startProcess(t, cmd)
	url := fmt.Sprintf("http://127.0.0.1:%d", httpPort)
	waitHTTP(t, url+"/ipfs/")

	movie := testutil.Bytes("quickstart", 3<<20+11)
	if err := os.WriteFile(filepath.Join(dir, "movie.mp4"), movie, 0o644); err != nil {
		t.Fatal(err)
	}
	add := exec.Command(caddyBin, "pacman", "add", "--address", admin, "movie.mp4")
	add.Dir = dir
	var stdout, stderr bytes.Buffer
	add.Stdout, add.Stderr = &stdout, &stderr
	if err := add.Run(); err != nil {
		t.Fatalf("pacman add: %v\n%s", err, stderr.String())
	}
	c, name, _ := strings.Cut(strings.TrimSpace(stdout.String()), "  ")
	if name != "movie.mp4" {
		t.Fatalf("add printed %q", stdout.String())
	}
	if want := "add: via the Caddy at " + admin + " (data dir " + filepath.Join(dir, "pacman-data") + ")"; !strings.Contains(stderr.String(), want) {
		t.Errorf("add said %q, want %q", stderr.String(), want)
	}
	req, _ := http.NewRequest(http.MethodGet, url+"/ipfs/"+c, nil)
	req.Header.Set("Range", "bytes=0-99")
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(body, movie[:100]) {
		t.Errorf("curl -r 0-99: %d, %d bytes, equal %v", resp.StatusCode, len(body), bytes.Equal(body, movie[:100]))
	}
}
