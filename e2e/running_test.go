package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pacman-cdn/pacman/ingest"
	"github.com/pacman-cdn/pacman/internal/testutil"
)

// TestContentIntoRunningEdge: with `caddy run` serving a file to a slow
// client, `caddy pacman add` (a file and a directory), `import`, `export`,
// `verify`, `pin`, `unpin` and `ls` work in the running Caddy through its
// admin endpoint, the content they add is served byte-exact at once, a pin
// fetches all of a file from a peer (served after the peer is gone), and
// the stream in progress is not interrupted. The admin routes refuse a
// foreign Host and a cross-origin page, as the rest of Caddy's admin API
// does.
func TestContentIntoRunningEdge(t *testing.T) {
	notShort(t)
	dataDir, id := newDataDir(t)
	src := t.TempDir()
	streamed := testutil.Bytes("streamed", 24<<20+3)
	if err := os.WriteFile(filepath.Join(src, "streamed.bin"), streamed, 0o644); err != nil {
		t.Fatal(err)
	}
	streamedCID := addContent(t, dataDir, filepath.Join(src, "streamed.bin"))
	// A peer holding a file the edge will pin.
	seederDir, seederID := newDataDir(t)
	remote := testutil.Bytes("remote", 9<<20+11)
	if err := os.WriteFile(filepath.Join(src, "remote.bin"), remote, 0o644); err != nil {
		t.Fatal(err)
	}
	remoteCID := addContent(t, seederDir, filepath.Join(src, "remote.bin"))
	seeder := startPacman(t, seederDir, seederID)
	admin := fmt.Sprintf("localhost:%d", freePort(t))
	p := startPacmanAdmin(t, admin, dataDir, id, seeder.P2P)

	// A slow reader: about 4 MiB/s, so the stream lasts the whole test.
	resp, err := http.Get(p.URL + "/ipfs/" + streamedCID)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got := make(chan []byte, 1)
	go func() {
		var b bytes.Buffer
		buf := make([]byte, 256<<10)
		for {
			n, err := resp.Body.Read(buf)
			b.Write(buf[:n])
			if err != nil {
				got <- b.Bytes()
				return
			}
			time.Sleep(60 * time.Millisecond)
		}
	}()

	cmd := func(args ...string) string {
		t.Helper()
		return caddyCmd(t, append([]string{"pacman"}, append(args, "--data-dir", dataDir, "--address", admin)...)...)
	}
	// A file.
	file := testutil.Bytes("added", 5<<20+7)
	if err := os.WriteFile(filepath.Join(src, "added.bin"), file, 0o644); err != nil {
		t.Fatal(err)
	}
	fileCID, _, _ := strings.Cut(cmd("add", filepath.Join(src, "added.bin")), " ")
	if code, body, err := getBody(p.URL + "/ipfs/" + fileCID); err != nil || code != 200 || !bytes.Equal(body, file) {
		t.Fatalf("the file added to the running edge: %d, equal %v, %v", code, bytes.Equal(body, file), err)
	}
	// A directory: its CID is the one an offline add gives.
	site := filepath.Join(src, "site")
	if err := os.MkdirAll(filepath.Join(site, "css"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string]string{"index.html": "<h1>hi</h1>", "css/a.css": "h1{}"} {
		if err := os.WriteFile(filepath.Join(site, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	dirCID, _, _ := strings.Cut(cmd("add", site), " ")
	if want := addContent(t, t.TempDir(), site); dirCID != want {
		t.Errorf("the directory added to the running edge is %s, offline %s", dirCID, want)
	}
	if code, body, _ := getBody(p.URL + "/ipfs/" + dirCID + "/css/a.css"); code != 200 || string(body) != "h1{}" {
		t.Errorf("a file of the added directory: %d %q", code, body)
	}
	// Export from the running edge, import into an offline one: the same
	// bytes come out.
	car := filepath.Join(src, "added.car")
	out, err := exec.Command(caddyBin, "pacman", "export", "--data-dir", dataDir, "--address", admin, fileCID).Output()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(car, out, 0o644); err != nil {
		t.Fatal(err)
	}
	offline := t.TempDir()
	if roots := caddyCmd(t, "pacman", "import", "--data-dir", offline, car); strings.TrimSpace(roots) != fileCID {
		t.Errorf("the exported CAR's roots: %q, want %s", roots, fileCID)
	}
	// Import into the running edge, a CAR of content it lacks.
	other := testutil.Bytes("imported", 3<<20)
	if err := os.WriteFile(filepath.Join(src, "other.bin"), other, 0o644); err != nil {
		t.Fatal(err)
	}
	otherDir := t.TempDir()
	otherCID := addContent(t, otherDir, filepath.Join(src, "other.bin"))
	otherCAR, err := exec.Command(caddyBin, "pacman", "export", "--data-dir", otherDir, otherCID).Output()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "other.car"), otherCAR, 0o644); err != nil {
		t.Fatal(err)
	}
	if roots := cmd("import", filepath.Join(src, "other.car")); strings.TrimSpace(roots) != otherCID {
		t.Errorf("import into the running edge printed %q, want %s", roots, otherCID)
	}
	if code, body, _ := getBody(p.URL + "/ipfs/" + otherCID); code != 200 || !bytes.Equal(body, other) {
		t.Errorf("the imported file: %d, equal %v", code, bytes.Equal(body, other))
	}
	if rep := cmd("verify"); !strings.Contains(rep, " 0 bad") {
		t.Errorf("verify in the running edge: %q", rep)
	}

	// Pin a file only the seeder has: the edge fetches all of it, and
	// serves it once the seeder is gone.
	if out := cmd("pin", remoteCID); !strings.HasPrefix(out, "pinned "+remoteCID+": 11 blocks, 9.0 MiB") {
		t.Errorf("pin in the running edge printed %q", out)
	}
	stop(seeder.cmd)
	if code, body, _ := getBody(p.URL + "/ipfs/" + remoteCID); code != 200 || !bytes.Equal(body, remote) {
		t.Errorf("the pinned file, its seeder gone: %d, equal %v", code, bytes.Equal(body, remote))
	}
	pins := strings.Fields(cmd("ls"))
	for _, c := range []string{streamedCID, fileCID, dirCID, otherCID, remoteCID} {
		if !slices.Contains(pins, c) {
			t.Errorf("ls in the running edge: %q lacks %s", pins, c)
		}
	}
	if out := cmd("unpin", fileCID); !strings.HasPrefix(out, "unpinned "+fileCID+": 7 blocks, 5.0 MiB, now evictable") {
		t.Errorf("unpin in the running edge printed %q", out)
	}
	if slices.Contains(strings.Fields(cmd("ls")), fileCID) {
		t.Errorf("ls lists %s after its unpin", fileCID)
	}
	again := exec.Command(caddyBin, "pacman", "unpin", "--data-dir", dataDir, "--address", admin, fileCID)
	if out, err := again.CombinedOutput(); err == nil || !strings.Contains(string(out), "is not pinned") {
		t.Errorf("a second unpin: %v %q, want it refused as not pinned", err, out)
	}

	// What the running edge lacks is refused by it, with the reason: not
	// taken for a Caddy that does not run the directory.
	absent, err := ingest.Import(context.Background(), testutil.DiscardDAG{}, bytes.NewReader(testutil.Bytes("absent", 1<<20)))
	if err != nil {
		t.Fatal(err)
	}
	exp := exec.Command(caddyBin, "pacman", "export", "--data-dir", dataDir, "--address", admin, absent.String())
	if out, err := exp.CombinedOutput(); err == nil || !strings.Contains(string(out), "is not in the store") {
		t.Errorf("export of a CID the running edge lacks: %v %q, want it refused as not in the store", err, out)
	}

	// Caddy's admin protections hold for these routes too: a foreign
	// Host (DNS rebinding), and a page of another origin.
	req, _ := http.NewRequest(http.MethodPost, "http://"+admin+"/pacman/verify?data_dir="+dataDir, nil)
	req.Host = "evil.example"
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("a foreign Host at the admin endpoint: %v %v, want 403", resp.Status, err)
	}
	req, _ = http.NewRequest(http.MethodPost, "http://"+admin+"/pacman/unpin?data_dir="+dataDir+"&cid="+dirCID, nil)
	req.Header.Set("Origin", "http://evil.example")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("another origin at the admin endpoint: %v %v, want 403", resp.Status, err)
	}
	if !slices.Contains(strings.Fields(cmd("ls")), dirCID) {
		t.Error("a refused cross-origin unpin unpinned")
	}

	select {
	case b := <-got:
		if !bytes.Equal(b, streamed) {
			t.Errorf("the stream served meanwhile: %d of %d bytes, equal %v", len(b), len(streamed), bytes.Equal(b, streamed))
		}
	case <-time.After(60 * time.Second):
		t.Fatal("the stream served meanwhile never ended")
	}
	_, _ = io.Copy(io.Discard, resp.Body)
}
