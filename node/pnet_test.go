package node_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/pnet"
	"github.com/pacman-cdn/pacman/ingest"
	"github.com/pacman-cdn/pacman/internal/testutil"
	"github.com/pacman-cdn/pacman/node"
)

// swarmKey returns a fresh key in Kubo's swarm.key format, decoded.
func swarmKey(t *testing.T) pnet.PSK {
	t.Helper()
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		t.Fatal(err)
	}
	psk, err := pnet.DecodeV1PSK(strings.NewReader("/key/swarm/psk/1.0.0/\n/base16/\n" + hex.EncodeToString(raw) + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	return psk
}

// TestPrivateSwarm: a node with the swarm's key fetches from a seeder of
// the swarm byte-exact; a node without a key, and one with another key,
// cannot connect to it at all.
func TestPrivateSwarm(t *testing.T) {
	key := swarmKey(t)
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
		"with another key": {SwarmKey: swarmKey(t)},
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
