package edge_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multiaddr"
	"github.com/pacman-cdn/pacman/edge"
	"github.com/pacman-cdn/pacman/hedge"
	"github.com/pacman-cdn/pacman/ingest"
	"github.com/pacman-cdn/pacman/internal/testutil"
	"github.com/pacman-cdn/pacman/node"
)

// denying is a route that denies one CID.
type denying struct{ c cid.Cid }

func (d denying) Denies(c cid.Cid) bool { return c == d.c }
func (d denying) Hedge() *hedge.Hedge   { return nil }

// nopObserver counts nothing.
type nopObserver struct{}

func (nopObserver) Delivered(string, int, time.Duration) {}
func (nopObserver) Fetched(string, hedge.Reason, int)    {}
func (nopObserver) Rejected(string)                      {}
func (nopObserver) Held(string, time.Duration)           {}
func (nopObserver) Dropped(string)                       {}

// TestServedRoutesDecideSeeding: the node seeds what no route served now
// denies; serving a configuration's routes replaces the last one's, as a
// reload does, and removing a route lifts its denial.
func TestServedRoutesDecideSeeding(t *testing.T) {
	ctx := context.Background()
	e, err := edge.New(ctx, edge.Config{
		Node:     node.Config{DataDir: t.TempDir(), ListenAddrs: []multiaddr.Multiaddr{testutil.Loopback}, Logger: testutil.Logger(t)},
		Observer: nopObserver{},
		Logger:   testutil.Logger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := e.Close(); err != nil {
			t.Error(err)
		}
	})
	a, err := ingest.Import(ctx, e.Node().DAG(), bytes.NewReader(testutil.Bytes("a", 4096)))
	if err != nil {
		t.Fatal(err)
	}
	b, err := ingest.Import(ctx, e.Node().DAG(), bytes.NewReader(testutil.Bytes("b", 4096)))
	if err != nil {
		t.Fatal(err)
	}
	// Each look is a fresh peer's, so nothing a peer remembers of an
	// earlier refusal counts: only the edge's answer. A refusal waits
	// 2s; a block the edge seeds may take longer on a loaded machine.
	seeds := func(c cid.Cid, patience time.Duration) bool {
		peer := testutil.NewNode(t, e.Node().AddrInfo())
		ctx, cancel := context.WithTimeout(ctx, patience)
		defer cancel()
		_, err := peer.NewSession(ctx).GetBlock(ctx, c)
		return err == nil
	}
	const refused, served = 2 * time.Second, 20 * time.Second

	var first edge.Routes
	first.Add(denying{a})
	e.Serve(&first)
	if seeds(a, refused) {
		t.Error("the node seeded a block the served route denies")
	}
	var second edge.Routes
	remove := second.Add(denying{b})
	e.Serve(&second)
	if !seeds(a, served) {
		t.Error("the node still refuses a block only the replaced configuration denied")
	}
	if seeds(b, refused) {
		t.Error("the node seeded a block the new configuration denies")
	}
	remove()
	if !seeds(b, served) {
		t.Error("the node still refuses a block whose route was removed")
	}
}
