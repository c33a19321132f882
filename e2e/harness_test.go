// Package e2e tests pacman with software nobody here wrote: Kubo, ffmpeg,
// Chromium with hls.js, nginx's slice module, aria2 and curl. Each test
// drives the real caddy binary built from this checkout, on loopback only.
//
// A test whose tool is missing skips with a message on a developer machine
// and fails in CI (CI=true), where .ci/run installs every tool.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

// caddyBin is the caddy binary TestMain builds from this checkout.
var caddyBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "pacman-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	caddyBin = filepath.Join(dir, "caddy")
	build := exec.Command("go", "build", "-o", caddyBin, "../cmd/caddy")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building caddy:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// notShort skips a test under go test -short: every e2e test runs programs.
func notShort(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("runs external programs")
	}
}

// need returns the path of tool, skipping the test when it is missing on a
// developer machine and failing it in CI.
func need(t *testing.T, tool string) string {
	t.Helper()
	notShort(t)
	p, err := exec.LookPath(tool)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is not installed; .ci/run must install it", tool)
		}
		t.Skipf("%s is not installed (apt-get install it, or run .ci/run)", tool)
	}
	return p
}

// handedOut are the ports freePort has returned in this test binary: the
// kernel can give a port just closed to the next listener, and two
// servers on one port (Caddy binds with SO_REUSEPORT) would share its
// requests (CI saw a quickstart's HTTP and admin ports alike).
var handedOut struct {
	sync.Mutex
	ports map[int]bool
}

// freePort returns a TCP port free on 127.0.0.1 at the time of the call,
// and never one it returned before.
func freePort(t *testing.T) int {
	t.Helper()
	handedOut.Lock()
	defer handedOut.Unlock()
	if handedOut.ports == nil {
		handedOut.ports = map[int]bool{}
	}
	for range 100 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if !handedOut.ports[port] {
			handedOut.ports[port] = true
			return port
		}
	}
	t.Fatal("no fresh free port in 100 tries")
	return 0
}

// pacman is a running caddy with the pacman app and handler.
type pacman struct {
	URL     string // http://127.0.0.1:port
	DataDir string
	P2P     string // multiaddr with /p2p/ of its libp2p host
	Admin   string // host:port of Caddy's admin endpoint, or ""
	cfgPath string
	cmd     *exec.Cmd
}

// kill9 kills the process at once, as a crash would.
func (p *pacman) kill9() {
	_ = p.cmd.Process.Kill()
	_ = p.cmd.Wait()
}

// newDataDir makes a data directory with a fresh identity and returns it
// with the peer ID that identity gives.
func newDataDir(t *testing.T) (string, peer.ID) {
	t.Helper()
	dir := t.TempDir()
	key, _, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := crypto.MarshalPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "identity.key"), raw, 0o600); err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return dir, id
}

// caddyCmd runs the caddy binary with args and returns its stdout.
func caddyCmd(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(caddyBin, args...).Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("caddy %s: %v\n%s", strings.Join(args, " "), err, stderr)
	}
	return string(out)
}

// addContent imports path into dataDir with `caddy pacman add` and returns
// its CID.
func addContent(t *testing.T, dataDir, path string) string {
	t.Helper()
	out := caddyCmd(t, "pacman", "add", "--data-dir", dataDir, path)
	c, _, _ := strings.Cut(strings.TrimSpace(out), " ")
	return c
}

// startPacman runs caddy serving /ipfs/* from dataDir, peered with peers.
func startPacman(t *testing.T, dataDir string, id peer.ID, peers ...string) *pacman {
	t.Helper()
	return startPacmanAdmin(t, "", dataDir, id, peers...)
}

// startPacmanAdmin is startPacman with Caddy's admin endpoint (and so its
// /metrics) on admin, a host:port.
func startPacmanAdmin(t *testing.T, admin, dataDir string, id peer.ID, peers ...string) *pacman {
	t.Helper()
	return startPacmanApp(t, admin, dataDir, id, map[string]any{"peers": peers})
}

// startPacmanApp is startPacmanAdmin with the pacman app's fields app.
func startPacmanApp(t *testing.T, admin, dataDir string, id peer.ID, app map[string]any) *pacman {
	t.Helper()
	return startWith(t, admin, dataDir, id, app, []any{map[string]any{
		"match": []any{map[string]any{"path": []string{"/ipfs/*"}}},
		"handle": []any{map[string]any{"handler": "pacman",
			// Every test client comes from 127.0.0.1: the load
			// tests are many clients from one address.
			"max_streams_per_client": 10000,
			"policies":               []any{map[string]any{"policy": "open"}}, "sources": []any{map[string]any{"source": "bitswap", "session_idle": "2s"}}}},
	}})
}

// startWith starts a caddy whose pacman app has the fields of app (its
// data directory and listen address added) and whose one server has
// routes; admin is as for startPacmanAdmin.
func startWith(t *testing.T, admin, dataDir string, id peer.ID, app map[string]any, routes []any) *pacman {
	t.Helper()
	httpPort, p2pPort := freePort(t), freePort(t)
	adminCfg := map[string]any{"disabled": true}
	if admin != "" {
		adminCfg = map[string]any{"listen": admin}
	}
	app["data_dir"] = dataDir
	app["listen"] = []string{fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", p2pPort)}
	cfg := map[string]any{
		"admin":   adminCfg,
		"logging": map[string]any{"logs": map[string]any{"default": map[string]any{"level": "WARN"}}},
		"apps": map[string]any{
			"pacman": app,
			"http": map[string]any{"servers": map[string]any{"e2e": map[string]any{
				"listen":          []string{fmt.Sprintf("127.0.0.1:%d", httpPort)},
				"automatic_https": map[string]any{"disable": true},
				"routes":          routes,
			}}},
		},
	}
	b, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(t.TempDir(), "caddy.json")
	if err := os.WriteFile(cfgPath, b, 0o600); err != nil {
		t.Fatal(err)
	}
	p := &pacman{
		Admin:   admin,
		URL:     fmt.Sprintf("http://127.0.0.1:%d", httpPort),
		DataDir: dataDir,
		P2P:     fmt.Sprintf("/ip4/127.0.0.1/tcp/%d/p2p/%s", p2pPort, id),
		cfgPath: cfgPath,
	}
	p.run(t)
	return p
}

// run starts (or, after kill9, restarts) the caddy process of p.
func (p *pacman) run(t *testing.T) {
	t.Helper()
	cmd := exec.Command(caddyBin, "run", "--config", p.cfgPath)
	p.cmd = cmd
	logPath := filepath.Join(t.TempDir(), "caddy.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState != nil {
			return // killed and reaped by the test
		}
		stop(cmd)
		logf.Close()
		if t.Failed() {
			log, _ := os.ReadFile(logPath)
			t.Logf("caddy log:\n%s", log)
		}
	})
	waitHTTP(t, p.URL+"/ipfs/")
}

// stop ends a process as Caddy is meant to be ended (SIGTERM), killing it
// if it has not exited within 10 s.
func stop(cmd *exec.Cmd) {
	_ = cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
}

// waitHTTP waits until url answers at all.
func waitHTTP(t *testing.T, url string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never answered: %v", url, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// run runs a command with a deadline and returns its combined output,
// failing the test with that output if it fails.
func run(t *testing.T, timeout time.Duration, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// startCaddy runs the caddy binary with args and env added to the test's
// own, until the test ends; its output is logged if the test fails.
func startCaddy(t *testing.T, env []string, args ...string) {
	t.Helper()
	cmd := exec.Command(caddyBin, args...)
	cmd.Env = append(os.Environ(), env...)
	startProcess(t, cmd)
}

// startProcess starts cmd, stops it when the test ends (see stop) and logs
// its output if the test failed. The output so far is returned.
func startProcess(t *testing.T, cmd *exec.Cmd) *syncBuffer {
	t.Helper()
	log := new(syncBuffer)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stop(cmd)
		if t.Failed() {
			t.Logf("%s output:\n%s", strings.Join(cmd.Args, " "), log.String())
		}
	})
	return log
}

// syncBuffer is a buffer two writers may share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// artifact is the path a test writes its artifact name to (a screenshot):
// in $PACMAN_ARTIFACTS, made if need be, or else the test's temp dir.
func artifact(t *testing.T, name string) string {
	t.Helper()
	dir := os.Getenv("PACMAN_ARTIFACTS")
	if dir == "" {
		dir = t.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, name)
}
