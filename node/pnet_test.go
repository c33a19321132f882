package node_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/pnet"
	"github.com/pacman-cdn/pacman/ingest"
	"github.com/pacman-cdn/pacman/internal/testutil"
	"github.com/pacman-cdn/pacman/node"
)

// swarmKey returns a fresh key in Kubo's swarm.key format, decoded.

// TestPrivateSwarm: a node with the swarm's key fetches from a seeder of
// the swarm byte-exact; a node without a key, and one with another key,
// cannot connect to it at all.
func TestPrivateSwarm(t *testing.T) {
	key := swarmPSK(t)
	seeder := testutil.NewNodeConfig(t, node.Config{SwarmKey: key})
	data := testutil.Bytes("private-swarm", 3<<20)
	root, err := ingest.Import(context.Background(), seeder.DAG(), bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	member := testutil.NewNodeConfig(t, node.Config{SwarmKey: key, Peers: []peer.AddrInfo{seeder.AddrInfo()}})
	if _, err := fetchAll(member, root, data); err != nil {
		t.Fatalf("a member of the swarm: %v", err)
	}
	for name, cfg := range map[string]node.Config{
		"without a key":    {},
		"with another key": {SwarmKey: swarmPSK(t)},
	} {
		outsider := testutil.NewNodeConfig(t, cfg)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err := outsider.Host().Connect(ctx, seeder.AddrInfo())
		cancel()
		if err == nil {
			t.Errorf("a node %s connected to the private swarm", name)
		}
	}
}

// swarmPSK returns a fresh private-swarm key.
func swarmPSK(t *testing.T) pnet.PSK {
	_, psk := testutil.SwarmKey(t)
	return psk
}
