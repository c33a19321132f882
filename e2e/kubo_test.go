package e2e

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	kubod "github.com/pacman-cdn/pacman/internal/kubo"
	"github.com/pacman-cdn/pacman/internal/testutil"
)

// kuboBinary returns the Kubo the interop tests run (internal/kubo builds
// and caches it).
func kuboBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds Kubo")
	}
	bin, err := kubod.Binary()
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// kubo is a Kubo daemon on loopback only, stopped when the test ends.
type kubo struct {
	*kubod.Daemon
}

// ipfs runs an ipfs command on the daemon's repo, failing the test if it
// fails.
func (k *kubo) ipfs(t *testing.T, args ...string) string {
	t.Helper()
	out, err := k.IPFS(args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func startKubo(t *testing.T) *kubo {
	t.Helper()
	return startKuboWith(t, nil)
}

// startKuboWith is startKubo with prepare run on the repo before the
// daemon starts.
func startKuboWith(t *testing.T, prepare func(repo string) error) *kubo {
	t.Helper()
	d, err := kubod.Start(kuboBinary(t), t.TempDir(), kubod.Config{Prepare: prepare})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		d.Stop()
		if t.Failed() {
			t.Logf("kubo log:\n%s", d.Log())
		}
	})
	return &kubo{d}
}

// TestKuboSeedsPacmanServes: a file added to Kubo is served by pacman's
// gateway, whose blockstore starts empty, byte-exact for ranges and whole.
func TestKuboSeedsPacmanServes(t *testing.T) {
	k := startKubo(t)
	data := testutil.Bytes("kubo-seeds", 9<<20+321)
	file := filepath.Join(t.TempDir(), "from-kubo.bin")
	if err := os.WriteFile(file, data, 0o644); err != nil {
		t.Fatal(err)
	}
	c := k.ipfs(t, "add", "-Q", file)

	dir, id := newDataDir(t)
	p := startPacman(t, dir, id, k.P2P)
	url := p.URL + "/ipfs/" + c
	for _, r := range [][2]int{{0, 0}, {1<<20 - 10, 1<<20 + 10}, {5 << 20, 7<<20 + 3}, {len(data) - 100, len(data) - 1}} {
		req, _ := http.NewRequest("GET", url, nil)
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", r[0], r[1]))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 206 || !bytes.Equal(body, data[r[0]:r[1]+1]) {
			t.Fatalf("range %v: status %d, %d bytes, err %v", r, resp.StatusCode, len(body), err)
		}
	}
	if _, body := fetch(t, url); !bytes.Equal(body, data) {
		t.Fatalf("whole file from Kubo: %d bytes differ from the source", len(body))
	}
}

// TestPacmanSeedsKuboFetches: a file added with `caddy pacman add` gets the
// CID `ipfs add` gives it, and Kubo fetches it from pacman alone, both with
// `ipfs cat` and through Kubo's own gateway.
func TestPacmanSeedsKuboFetches(t *testing.T) {
	k := startKubo(t)
	data := testutil.Bytes("pacman-seeds", 6<<20+77)
	file := filepath.Join(t.TempDir(), "from-pacman.bin")
	if err := os.WriteFile(file, data, 0o644); err != nil {
		t.Fatal(err)
	}
	dir, id := newDataDir(t)
	c := addContent(t, dir, file)
	if want := k.ipfs(t, "add", "-Q", "--only-hash", file); c != want {
		t.Fatalf("pacman CID %s, Kubo CID %s for the same bytes", c, want)
	}
	p := startPacman(t, dir, id)
	k.ipfs(t, "swarm", "connect", p.P2P)

	got, err := k.Command("cat", c).Output()
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("ipfs cat: %d bytes, err %v", len(got), err)
	}
	if _, body := fetch(t, k.Gateway+"/ipfs/"+c); !bytes.Equal(body, data) {
		t.Fatalf("Kubo gateway: %d bytes differ from the source", len(body))
	}
}

// TestKuboPrivateSwarm: Kubo and pacman given the same swarm.key form one
// private swarm (pacman fetches a file Kubo holds, byte-exact); a pacman
// without the key cannot connect to that Kubo.
func TestKuboPrivateSwarm(t *testing.T) {
	key, _ := testutil.SwarmKey(t)
	keyFile := filepath.Join(t.TempDir(), "swarm.key")
	if err := os.WriteFile(keyFile, []byte(key), 0o600); err != nil {
		t.Fatal(err)
	}
	k := startKuboWith(t, func(repo string) error {
		key, err := os.ReadFile(keyFile)
		if err == nil {
			err = os.WriteFile(filepath.Join(repo, "swarm.key"), key, 0o600)
		}
		return err
	})
	data := testutil.Bytes("kubo-private", 4<<20+9)
	file := filepath.Join(t.TempDir(), "private.bin")
	if err := os.WriteFile(file, data, 0o644); err != nil {
		t.Fatal(err)
	}
	c := k.ipfs(t, "add", "-Q", file)

	dir, id := newDataDir(t)
	member := startWith(t, "", dir, id, map[string]any{"peers": []string{k.P2P}, "swarm_key": keyFile}, []any{map[string]any{
		"handle": []any{map[string]any{"handler": "pacman", "policies": []any{map[string]any{"policy": "open"}}}},
	}})
	if _, body := fetch(t, member.URL+"/ipfs/"+c); !bytes.Equal(body, data) {
		t.Fatalf("from Kubo in the private swarm: %d bytes, not the file's", len(body))
	}

	outDir, outID := newDataDir(t)
	outsider := startPacman(t, outDir, outID)
	if out, err := k.Command("swarm", "connect", outsider.P2P).CombinedOutput(); err == nil {
		t.Fatalf("Kubo in the private swarm connected to a pacman without the key: %s", out)
	}
}
