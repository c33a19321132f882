package fleet_test

import (
	"context"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/pacman-cdn/pacman/fleet"
	"github.com/pacman-cdn/pacman/internal/testutil"
	"github.com/pacman-cdn/pacman/node"
)

// TestSwarmFindsItsMembers: in a private swarm, edges given no member
// list and one way in (a peer line to the first) become one fleet: each
// finds the others through the members it reaches, and a name has the
// same owner at every edge. An edge that joins later is found by all, and
// one that leaves is dropped.
func TestSwarmFindsItsMembers(t *testing.T) {
	_, key := testutil.SwarmKey(t)
	first := testutil.NewNodeConfig(t, node.Config{SwarmKey: key})
	nodes := []*node.Node{first}
	for range 3 {
		nodes = append(nodes, testutil.NewNodeConfig(t, node.Config{SwarmKey: key, Peers: []peer.AddrInfo{first.AddrInfo()}}))
	}
	fleets := make([]*fleet.Fleet, len(nodes))
	for i, n := range nodes {
		f, err := fleet.New(fleet.Config{Host: n.Host(), Swarm: true, Logger: testutil.Logger(t)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(f.Close)
		fleets[i] = f
	}
	waitMembers := func(fs []*fleet.Fleet, want int) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for _, f := range fs {
			for len(f.Members()) != want {
				if time.Now().After(deadline) {
					t.Fatalf("an edge sees %d members, want %d", len(f.Members()), want)
				}
				time.Sleep(50 * time.Millisecond)
			}
		}
	}
	waitMembers(fleets, 3)
	// Every edge asks the same owner about a name: one of the others, or
	// itself, the same one everywhere.
	for _, name := range []string{"https://origin/a", "https://origin/b", "https://origin/c"} {
		owners := map[string]bool{}
		for i, f := range fleets {
			if _, mine, _, _ := f.Ask(context.Background(), name); mine {
				owners[nodes[i].Host().ID().String()] = true
			}
		}
		if len(owners) != 1 {
			t.Errorf("%s is owned by %d edges, want one", name, len(owners))
		}
	}

	// One joins; one leaves.
	late := testutil.NewNodeConfig(t, node.Config{SwarmKey: key, Peers: []peer.AddrInfo{nodes[3].AddrInfo()}})
	fl, err := fleet.New(fleet.Config{Host: late.Host(), Swarm: true, Logger: testutil.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fl.Close)
	fleets = append(fleets, fl)
	waitMembers(fleets, 4)
	fleets[2].Close()
	if err := nodes[2].Close(); err != nil {
		t.Fatal(err)
	}
	waitMembers([]*fleet.Fleet{fleets[0], fleets[1], fleets[3], fleets[4]}, 3)
}
