package e2e

import (
	"context"
	"encoding/json"
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

	raw, err := os.ReadFile(first.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := json.Unmarshal(raw, &cfg); err != nil {
		t.Fatal(err)
	}
	otherDir, _ := newDataDir(t)
	cfg["apps"].(map[string]any)["pacman"].(map[string]any)["data_dir"] = otherDir
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
	if err == nil || !strings.Contains(string(out), "listen address in use") {
		t.Fatalf("the second caddy run: %v, want it refused for its listen address\n%s", err, out)
	}
	// The cause comes first, on pacman's own line, before Caddy's chain
	// of every module it was provisioning.
	for line := range strings.SplitSeq(string(out), "\n") {
		if strings.Contains(line, `"level":"error"`) {
			if !strings.Contains(line, `"logger":"pacman"`) || !strings.Contains(line, "listen address in use") {
				t.Errorf("the first error line is not pacman's own, naming the cause:\n%s", line)
			}
			break
		}
	}
	msg := string(out[max(0, strings.Index(string(out), "listen address in use")-40):])
	t.Logf("refused: %s", msg[:min(len(msg), 200)])
	if resp, err := http.Get(first.URL + "/ipfs/"); err != nil {
		t.Errorf("the first caddy after the second was refused: %v", err)
	} else {
		resp.Body.Close()
	}
}
