package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestSecondCaddyRunIsRefused: a second `caddy run` of the same config,
// on another data directory, exits with the reason instead of starting
// beside the first. The review saw it start: the two shared the HTTP and
// libp2p ports (SO_REUSEPORT), and GETs came back 404 200 404 … from two
// stores.
func TestSecondCaddyRunIsRefused(t *testing.T) {
	notShort(t)
	dataDir, id := newDataDir(t)
	first := startPacmanApp(t, "", dataDir, id, map[string]any{})
	out := secondRun(t, first, "listen address in use", func(map[string]any) {})
	msg := string(out[max(0, strings.Index(string(out), "listen address in use")-40):])
	t.Logf("refused: %s", msg[:min(len(msg), 200)])
}

// TestSecondCaddyOnTheHTTPPortIsRefused: a second pacman whose libp2p
// addresses are its own but whose HTTP port is the first's exits naming
// the process that serves it. Caddy binds HTTP ports with SO_REUSEPORT,
// so on the old code it started, and the kernel shared the port's
// connections between the two stores.
func TestSecondCaddyOnTheHTTPPortIsRefused(t *testing.T) {
	notShort(t)
	dataDir, id := newDataDir(t)
	first := startPacmanApp(t, "", dataDir, id, map[string]any{})
	out := secondRun(t, first, "HTTP port served by another pacman", func(app map[string]any) {
		app["listen"] = []string{"/ip4/127.0.0.1/tcp/0"}
	})
	if want := fmt.Sprintf("pid %d", first.cmd.Process.Pid); !strings.Contains(string(out), want) {
		t.Errorf("the refusal does not name the first process (%s):\n%s", want, out)
	}
}

// secondRun runs `caddy run` on first's config with another data directory
// and the pacman app edited by edit, and checks that it exits at once with
// an error line of pacman's own that says cause, and that the first still
// serves. It returns the second's output.
func secondRun(t *testing.T, first *pacman, cause string, edit func(app map[string]any)) []byte {
	t.Helper()
	raw, err := os.ReadFile(first.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := json.Unmarshal(raw, &cfg); err != nil {
		t.Fatal(err)
	}
	app := cfg["apps"].(map[string]any)["pacman"].(map[string]any)
	otherDir, _ := newDataDir(t)
	app["data_dir"] = otherDir
	edit(app)
	b, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	second := filepath.Join(t.TempDir(), "second.json")
	if err := os.WriteFile(second, b, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, caddyBin, "run", "--config", second).CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("the second caddy run was still running after 30 s: it started beside the first\n%s", out)
	}
	if err == nil || !strings.Contains(string(out), cause) {
		t.Fatalf("the second caddy run: %v, want it refused: %s\n%s", err, cause, out)
	}
	// The cause comes first, on pacman's own line, before Caddy's chain
	// of every module it was provisioning.
	for line := range strings.SplitSeq(string(out), "\n") {
		if strings.Contains(line, `"level":"error"`) {
			if !strings.Contains(line, `"logger":"pacman"`) || !strings.Contains(line, cause) {
				t.Errorf("the first error line is not pacman's own, naming the cause:\n%s", line)
			}
			break
		}
	}
	if resp, err := http.Get(first.URL + "/ipfs/"); err != nil {
		t.Errorf("the first caddy after the second was refused: %v", err)
	} else {
		resp.Body.Close()
	}
	return out
}
