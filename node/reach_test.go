package node_test

import (
	"bytes"
	"context"
	"slices"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multiaddr"
	"github.com/pacman-cdn/pacman/ingest"
	"github.com/pacman-cdn/pacman/internal/testutil"
	"github.com/pacman-cdn/pacman/node"
)

// TestAnnounce: what a node's peers learn of its addresses (identify) is
// its announce list, less what no_announce names; with neither, its
// listen addresses.
func TestAnnounce(t *testing.T) {
	public := multiaddr.StringCast("/ip4/198.51.100.7/tcp/4001")
	hidden := multiaddr.StringCast("/ip4/10.1.2.3/tcp/4001")
	for name, tc := range map[string]struct {
		reach node.Reach
		want  func(seen []multiaddr.Multiaddr) bool
	}{
		"announce": {
			node.Reach{Announce: []multiaddr.Multiaddr{public, hidden}, NoAnnounce: []multiaddr.Multiaddr{multiaddr.StringCast("/ip4/10.0.0.0/ipcidr/8")}},
			func(seen []multiaddr.Multiaddr) bool { return len(seen) == 1 && seen[0].Equal(public) },
		},
		"no_announce only": {
			node.Reach{NoAnnounce: []multiaddr.Multiaddr{multiaddr.StringCast("/ip4/127.0.0.0/ipcidr/8")}},
			func(seen []multiaddr.Multiaddr) bool { return len(seen) == 0 },
		},
		"neither": {
			node.Reach{},
			func(seen []multiaddr.Multiaddr) bool {
				return len(seen) > 0 && !slices.ContainsFunc(seen, public.Equal)
			},
		},
	} {
		t.Run(name, func(t *testing.T) {
			told := testutil.NewNodeConfig(t, node.Config{Reach: tc.reach})
			asker := testutil.NewNode(t)
			sub, err := asker.Host().EventBus().Subscribe(new(event.EvtPeerIdentificationCompleted))
			if err != nil {
				t.Fatal(err)
			}
			defer sub.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			// Dial the listen address: what it announces need not be
			// where it is.
			at := peer.AddrInfo{ID: told.Host().ID(), Addrs: told.Host().Network().ListenAddresses()}
			if err := asker.Host().Connect(ctx, at); err != nil {
				t.Fatal(err)
			}
			for {
				select {
				case e := <-sub.Out():
					done := e.(event.EvtPeerIdentificationCompleted)
					if done.Peer != told.Host().ID() {
						continue
					}
					if !tc.want(done.ListenAddrs) {
						t.Errorf("peers were told %v", done.ListenAddrs)
					}
					return
				case <-ctx.Done():
					t.Fatal("identify never completed")
				}
			}
		})
	}
}

// TestReachWithoutListening: a node that does not listen starts with the
// relay options on (they do not apply to it) and still fetches.
func TestReachWithoutListening(t *testing.T) {
	seeder := testutil.NewNode(t)
	data := testutil.Bytes("no-listen", 1<<20)
	root, err := ingest.Import(context.Background(), seeder.DAG(), bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	leech := testutil.NewNodeConfig(t, node.Config{
		ListenAddrs: []multiaddr.Multiaddr{},
		Peers:       []peer.AddrInfo{seeder.AddrInfo()},
		Reach:       node.Reach{AutoNAT: true, HolePunching: true, RelayClient: true, RelayService: true},
	})
	if _, err := fetchAll(leech, root, data); err != nil {
		t.Fatal(err)
	}
}
