package caddymodule

import (
	"slices"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// TestReloadSettings: a reload names every setting it cannot apply to the
// running node, and nothing else: live_trust and added peers are applied,
// a removed peer waits for a restart.
func TestReloadSettings(t *testing.T) {
	old := App{DataDir: "/d", CacheSize: 1 << 30, Peers: []string{"/ip4/192.0.2.1/tcp/4001/p2p/12D3KooWGC6TvWhfapngX6wvJHMYvKpDMXPb3ZnCZ6dMoaMtimQ5"},
		LiveTrust: []string{"a"}, Routing: &Routing{DHT: "client"}}
	same := old.exported()
	same.LiveTrust = []string{"b"}
	if got := restartSettings(old, same); len(got) != 0 {
		t.Errorf("live_trust changed: %v, want nothing waiting for a restart", got)
	}
	changed := old.exported()
	changed.CacheSize, changed.Routing = 2<<30, &Routing{DHT: "server"}
	changed.Peers = append(changed.Peers, "/ip4/192.0.2.2/tcp/4001/p2p/12D3KooWGC6TvWhfapngX6wvJHMYvKpDMXPb3ZnCZ6dMoaMtimQ5")
	if got := restartSettings(old, changed); !slices.Equal(got, []string{"cache_size", "routing"}) {
		t.Errorf("cache_size, routing and a peer changed: %v, want cache_size and routing", got)
	}
	added, removed := peerChanges(old.Peers, changed.Peers[1:])
	if len(added) != 1 || len(removed) != 1 || removed[0] != old.Peers[0] {
		t.Errorf("peers: added %v, removed %v", added, removed)
	}

	// The warning a reload logs.
	core, logs := observer.New(zap.WarnLevel)
	s := &settings{app: old.exported()}
	next := old.exported()
	next.CacheSize, next.Peers = 2<<30, nil
	s.reload(&next, zap.New(core))
	if logs.Len() != 1 {
		t.Fatalf("%d warnings, want 1", logs.Len())
	}
	got := logs.All()[0].ContextMap()["settings"]
	want := []any{"cache_size", "peers (removed: " + old.Peers[0] + ")"}
	if !slices.Equal(got.([]any), want) {
		t.Errorf("the reload warned of %v, want %v", got, want)
	}
}
