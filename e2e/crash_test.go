package e2e

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pacman-cdn/pacman/chunker"
	"github.com/pacman-cdn/pacman/internal/testutil"
)

// verifyStore runs `caddy pacman verify` and fails the test if any stored
// block does not match its CID.
func verifyStore(t *testing.T, dataDir string) {
	t.Helper()
	out := caddyCmd(t, "pacman", "verify", "--data-dir", dataDir)
	if !strings.Contains(out, " 0 bad") {
		t.Fatalf("verify: %s", out)
	}
	t.Logf("verify: %s", strings.TrimSpace(out))
}

// TestKillDuringAdd kills `caddy pacman add` with SIGKILL part-way through
// a 256 MiB import: the store opens, every block in it matches its CID, and
// adding the file again completes with the right CID and serves byte-exact.
func TestKillDuringAdd(t *testing.T) {
	notShort(t)
	data := testutil.Bytes("crash-add", 256<<20)
	file := filepath.Join(t.TempDir(), "big.bin")
	if err := os.WriteFile(file, data, 0o644); err != nil {
		t.Fatal(err)
	}
	want, err := chunker.Import(context.Background(), testutil.DiscardDAG{}, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	dir, id := newDataDir(t)
	add := exec.Command(caddyBin, "pacman", "add", "--data-dir", dir, file)
	if err := add.Start(); err != nil {
		t.Fatal(err)
	}
	// Kill once the store has taken some writes, well before the end.
	deadline := time.Now().Add(30 * time.Second)
	for dirSize(filepath.Join(dir, "blocks")) < 32<<20 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	_ = add.Process.Kill()
	if err := add.Wait(); err == nil {
		t.Fatal("the import finished before it could be killed; nothing was tested")
	}
	verifyStore(t, dir)

	if got := addContent(t, dir, file); got != want.String() {
		t.Fatalf("re-add after the crash: CID %s, want %s", got, want)
	}
	verifyStore(t, dir)
	p := startPacman(t, dir, id)
	if _, body := fetch(t, p.URL+"/ipfs/"+want.String()); !bytes.Equal(body, data) {
		t.Fatalf("serving after the crash: %d bytes differ from the source", len(body))
	}
}

// TestKillDuringColdFetch kills the gateway with SIGKILL while it streams a
// file from a seeder: after a restart on the same data directory every
// stored block matches its CID, and the file is served byte-exact.
func TestKillDuringColdFetch(t *testing.T) {
	notShort(t)
	data, url := servedFileWithGateway(t, 96<<20)
	gw := url.gateway
	resp, err := http.Get(url.url)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(resp.Body, make([]byte, 24<<20)); err != nil {
		t.Fatal(err)
	}
	gw.kill9()
	resp.Body.Close()
	verifyStore(t, gw.DataDir)

	gw.run(t)
	if _, body := fetch(t, url.url); !bytes.Equal(body, data) {
		t.Fatalf("after restart: %d bytes differ from the source", len(body))
	}
}

type gatewayURL struct {
	url     string
	gateway *pacman
}

// servedFileWithGateway is servedFile that also returns the gateway.
func servedFileWithGateway(t *testing.T, size int) ([]byte, gatewayURL) {
	t.Helper()
	data := testutil.Bytes(t.Name(), size)
	file := filepath.Join(t.TempDir(), "file.bin")
	if err := os.WriteFile(file, data, 0o644); err != nil {
		t.Fatal(err)
	}
	seedDir, seedID := newDataDir(t)
	c := addContent(t, seedDir, file)
	seeder := startPacman(t, seedDir, seedID)
	gwDir, gwID := newDataDir(t)
	gw := startPacman(t, gwDir, gwID, seeder.P2P)
	return data, gatewayURL{url: gw.URL + "/ipfs/" + c, gateway: gw}
}

func dirSize(dir string) int64 {
	var n int64
	_ = filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			n += fi.Size()
		}
		return nil
	})
	return n
}
