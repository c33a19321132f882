package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pacman-cdn/pacman/internal/testutil"
)

// TestSwarmFleetThroughCaddyfiles: three `caddy run` edges of one private
// swarm (swarm_key), the second and third naming only the first, become
// one fleet: each says it has two members, so the two that were never
// told of each other found each other through the first.
func TestSwarmFleetThroughCaddyfiles(t *testing.T) {
	notShort(t)
	keyFile, _ := testutil.SwarmKey(t)
	key := filepath.Join(t.TempDir(), "swarm.key")
	if err := os.WriteFile(key, []byte(keyFile), 0o600); err != nil {
		t.Fatal(err)
	}
	type edge struct {
		dir, id    string
		p2p, admin int
	}
	edges := make([]edge, 3)
	for i := range edges {
		dir, id := newDataDir(t)
		edges[i] = edge{dir, id.String(), freePort(t), freePort(t)}
	}
	for i, e := range edges {
		peerLine := ""
		if i > 0 {
			peerLine = fmt.Sprintf("peer /ip4/127.0.0.1/tcp/%d/p2p/%s", edges[0].p2p, edges[0].id)
		}
		caddyfile := filepath.Join(t.TempDir(), "Caddyfile")
		if err := os.WriteFile(caddyfile, fmt.Appendf(nil, `{
	admin localhost:%d
	metrics
	pacman {
		data_dir %s
		listen /ip4/127.0.0.1/tcp/%d
		swarm_key %s
		%s
	}
}

http://127.0.0.1:%d {
	pacman /ipfs/*
}
`, e.admin, e.dir, e.p2p, key, peerLine, freePort(t)), 0o644); err != nil {
			t.Fatal(err)
		}
		startCaddy(t, nil, "run", "--config", caddyfile, "--adapter", "caddyfile")
	}
	deadline := time.Now().Add(60 * time.Second)
	for i, e := range edges {
		for {
			metrics, _ := adminMetrics(fmt.Sprintf("localhost:%d", e.admin))
			if strings.Contains(metrics, "\npacman_fleet_members 2\n") {
				break
			}
			if time.Now().After(deadline) {
				line := ""
				for l := range strings.SplitSeq(metrics, "\n") {
					if strings.HasPrefix(l, "pacman_fleet_members") {
						line = l
					}
				}
				t.Fatalf("edge %d: %q after 60 s, want 2 members", i, line)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
}
