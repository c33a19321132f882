package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pacman-cdn/pacman/internal/testutil"
)

// kuboVersion is the Kubo the interop tests run, built from the Go module
// proxy like any other Go module.
const kuboVersion = "v0.42.0"

var (
	kuboOnce sync.Once
	kuboPath string
	kuboErr  error
)

// kuboBinary returns a Kubo binary, building it on first use and caching it
// in the user cache directory between runs (a cold build takes minutes).
func kuboBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds Kubo")
	}
	kuboOnce.Do(func() {
		cache, err := os.UserCacheDir()
		if err != nil {
			kuboErr = err
			return
		}
		kuboPath = filepath.Join(cache, "pacman-test", "kubo-"+kuboVersion, "ipfs")
		if _, err := os.Stat(kuboPath); err == nil {
			return
		}
		out, err := exec.Command("go", "mod", "download", "-json", "github.com/ipfs/kubo@"+kuboVersion).Output()
		if err != nil {
			kuboErr = fmt.Errorf("downloading kubo: %w", err)
			return
		}
		var mod struct{ Dir string }
		if err := json.Unmarshal(out, &mod); err != nil || mod.Dir == "" {
			kuboErr = fmt.Errorf("downloading kubo: no module directory in %s", out)
			return
		}
		src, err := os.MkdirTemp("", "kubo-src-")
		if err != nil {
			kuboErr = err
			return
		}
		defer os.RemoveAll(src)
		if out, err := exec.Command("cp", "-r", mod.Dir+"/.", src).CombinedOutput(); err != nil {
			kuboErr = fmt.Errorf("copying kubo: %v: %s", err, out)
			return
		}
		_ = exec.Command("chmod", "-R", "u+w", src).Run()
		build := exec.Command("go", "build", "-o", kuboPath, "./cmd/ipfs")
		build.Dir = src
		if out, err := build.CombinedOutput(); err != nil {
			kuboErr = fmt.Errorf("building kubo: %v: %s", err, out)
		}
	})
	if kuboErr != nil {
		t.Fatal(kuboErr)
	}
	return kuboPath
}

// kubo is a Kubo daemon on loopback only: test profile (no bootstrap, no
// MDNS), routing none, telemetry off.
type kubo struct {
	bin, repo string
	P2P       string // swarm multiaddr with /p2p/
	Gateway   string // http://127.0.0.1:port
}

func (k *kubo) ipfs(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command(k.bin, args...)
	cmd.Env = append(os.Environ(), "IPFS_PATH="+k.repo, "IPFS_TELEMETRY=off")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("ipfs %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return strings.TrimSpace(string(out))
}

func startKubo(t *testing.T) *kubo {
	t.Helper()
	return startKuboWith(t, nil)
}

// startKuboWith is startKubo with prepare run on the repo before the
// daemon starts.
func startKuboWith(t *testing.T, prepare func(repo string)) *kubo {
	t.Helper()
	k := &kubo{bin: kuboBinary(t), repo: t.TempDir()}
	swarm, api, gw := freePort(t), freePort(t), freePort(t)
	k.ipfs(t, "init", "--profile=test,unixfs-v1-2025")
	k.ipfs(t, "config", "--json", "Addresses.Swarm", fmt.Sprintf(`["/ip4/127.0.0.1/tcp/%d"]`, swarm))
	k.ipfs(t, "config", "Addresses.API", fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", api))
	k.ipfs(t, "config", "Addresses.Gateway", fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", gw))
	k.ipfs(t, "config", "--json", "Bootstrap", "[]")
	k.ipfs(t, "config", "Routing.Type", "none")
	if prepare != nil {
		prepare(k.repo)
	}
	cmd := exec.Command(k.bin, "daemon")
	cmd.Env = append(os.Environ(), "IPFS_PATH="+k.repo, "IPFS_TELEMETRY=off")
	var log bytes.Buffer
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("kubo log:\n%s", log.String())
		}
	})
	k.Gateway = fmt.Sprintf("http://127.0.0.1:%d", gw)
	// Wait for the API port and the repo's api file: an ipfs command run
	// before the daemon holds the repo would take the repo lock itself
	// and make the daemon fail, and one run before the api file is
	// written finds the lock taken ("someone else has the lock": CI saw
	// it with the port already open).
	deadline := time.Now().Add(60 * time.Second)
	for {
		conn, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", api))
		if err == nil {
			conn.Close()
			if _, err := os.Stat(filepath.Join(k.repo, "api")); err == nil {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("kubo daemon did not start:\n%s", log.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	k.P2P = fmt.Sprintf("/ip4/127.0.0.1/tcp/%d/p2p/%s", swarm, k.ipfs(t, "id", "-f", "<id>"))
	return k
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

	cat := exec.Command(k.bin, "cat", c)
	cat.Env = append(os.Environ(), "IPFS_PATH="+k.repo, "IPFS_TELEMETRY=off")
	got, err := cat.Output()
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
	k := startKuboWith(t, func(repo string) {
		key, err := os.ReadFile(keyFile)
		if err == nil {
			err = os.WriteFile(filepath.Join(repo, "swarm.key"), key, 0o600)
		}
		if err != nil {
			t.Fatal(err)
		}
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
	connect := exec.Command(k.bin, "swarm", "connect", outsider.P2P)
	connect.Env = append(os.Environ(), "IPFS_PATH="+k.repo, "IPFS_TELEMETRY=off")
	if out, err := connect.CombinedOutput(); err == nil {
		t.Fatalf("Kubo in the private swarm connected to a pacman without the key: %s", out)
	}
}
