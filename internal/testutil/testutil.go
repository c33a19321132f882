// Package testutil holds helpers shared by the tests of several packages:
// deterministic test data, loopback node swarms and open gateways.
package testutil

import (
	"bytes"
	"context"
	"math/rand/v2"
	"net/http"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/ipfs/boxo/bitswap"
	bsnet "github.com/ipfs/boxo/bitswap/network/bsnet"
	"github.com/ipfs/boxo/blockservice"
	"github.com/ipfs/boxo/blockstore"
	"github.com/ipfs/boxo/ipld/merkledag"
	"github.com/ipfs/go-cid"
	"github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
	ipld "github.com/ipfs/go-ipld-format"
	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multiaddr"
	"github.com/pacman-cdn/pacman/gateway"
	"github.com/pacman-cdn/pacman/hedge"
	"github.com/pacman-cdn/pacman/ingest"
	"github.com/pacman-cdn/pacman/node"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
)

// Bytes returns n deterministic pseudo-random bytes for seed. The stream is
// ChaCha8 keyed with seed, so it is the same on every machine and Go
// version; reference CIDs recorded in tests depend on that.
func Bytes(seed string, n int) []byte {
	var key [32]byte
	copy(key[:], seed)
	b := make([]byte, n)
	_, _ = rand.NewChaCha8(key).Read(b)
	return b
}

// Logger returns a logger that writes warnings and errors to t's log, so a
// failing test shows why a node dropped a peer or gave up on a block.
func Logger(t testing.TB) *zap.Logger {
	return zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
}

// Loopback is the listen address tests give nodes.
var Loopback = multiaddr.StringCast("/ip4/127.0.0.1/tcp/0")

// NewNode starts a node with a fresh data directory, listening on loopback
// and dialling peers, and closes it when the test ends.
func NewNode(t testing.TB, peers ...peer.AddrInfo) *node.Node {
	t.Helper()
	return NewNodeConfig(t, node.Config{Peers: peers})
}

// NewNodeConfig starts a node configured by cfg, with a fresh data
// directory and listening on loopback unless cfg says otherwise, and
// closes it when the test ends.
func NewNodeConfig(t testing.TB, cfg node.Config) *node.Node {
	t.Helper()
	if cfg.DataDir == "" {
		cfg.DataDir = t.TempDir()
	}
	if cfg.ListenAddrs == nil {
		cfg.ListenAddrs = []multiaddr.Multiaddr{Loopback}
	}
	if cfg.Logger == nil {
		cfg.Logger = Logger(t)
	}
	n, err := node.New(context.Background(), cfg)
	if err != nil {
		t.Fatalf("starting node: %v", err)
	}
	t.Cleanup(func() { _ = n.Close() })
	return n
}

// Seeders starts k nodes that each hold data and returns them with the CID
// of data.
func Seeders(t testing.TB, k int, data []byte) ([]*node.Node, cid.Cid) {
	t.Helper()
	var root cid.Cid
	nodes := make([]*node.Node, k)
	for i := range nodes {
		nodes[i] = NewNode(t)
		c, err := ingest.Import(context.Background(), nodes[i].DAG(), bytes.NewReader(data))
		if err != nil {
			t.Fatalf("importing into seeder %d: %v", i, err)
		}
		root = c
	}
	return nodes, root
}

// AddrInfos returns the addresses of nodes.
func AddrInfos(nodes []*node.Node) []peer.AddrInfo {
	infos := make([]peer.AddrInfo, len(nodes))
	for i, n := range nodes {
		infos[i] = n.AddrInfo()
	}
	return infos
}

// DiscardDAG is a DAG service that stores nothing, for computing CIDs.
type DiscardDAG struct{}

// Get finds nothing.
func (DiscardDAG) Get(context.Context, cid.Cid) (ipld.Node, error) { return nil, ipld.ErrNotFound{} }

// GetMany finds nothing.
func (DiscardDAG) GetMany(context.Context, []cid.Cid) <-chan *ipld.NodeOption {
	ch := make(chan *ipld.NodeOption)
	close(ch)
	return ch
}

// Add drops the node.
func (DiscardDAG) Add(context.Context, ipld.Node) error { return nil }

// AddMany drops the nodes.
func (DiscardDAG) AddMany(context.Context, []ipld.Node) error { return nil }

// Remove does nothing.
func (DiscardDAG) Remove(context.Context, cid.Cid) error { return nil }

// RemoveMany does nothing.
func (DiscardDAG) RemoveMany(context.Context, []cid.Cid) error { return nil }

// BitswapPeer starts a bare libp2p host serving bs over bitswap, for peers
// whose blockstore misbehaves on purpose, and returns its address. It stops
// when the test ends.
func BitswapPeer(t testing.TB, bs blockstore.Blockstore) peer.AddrInfo {
	t.Helper()
	h, err := libp2p.New(libp2p.ListenAddrs(Loopback))
	if err != nil {
		t.Fatal(err)
	}
	bsw := bitswap.New(context.Background(), bsnet.NewFromIpfsHost(h), nil, bs)
	t.Cleanup(func() {
		_ = bsw.Close()
		_ = h.Close()
	})
	return peer.AddrInfo{ID: h.ID(), Addrs: h.Addrs()}
}

// OpenPolicy lets every request fetch from the open network, as
// pacman.policies.open does.
type OpenPolicy struct{}

// Decide lets c be fetched.
func (OpenPolicy) Decide(cid.Cid) gateway.Decision { return gateway.Decision{Verdict: gateway.Fetch} }

// PeerSessions is the bitswap source over open's sessions, as
// pacman.sources.bitswap sets it up.
func PeerSessions(open func(ctx context.Context) hedge.Getter) *hedge.Sessions {
	return hedge.NewSessions(hedge.Rung{Name: "peers", Owned: true}, open, 1024, time.Minute)
}

// OpenGateway returns an open path gateway over n: /ipfs/ paths, blocks
// from n's store and its peers over bitswap. Fields of cfg left zero are
// filled in so.
func OpenGateway(n *node.Node, cfg gateway.Config) (*gateway.Handler, error) {
	if cfg.Resolvers == nil {
		cfg.Resolvers = []gateway.Resolver{gateway.IPFSPaths{}}
	}
	if cfg.Policies == nil {
		cfg.Policies = []gateway.Policy{OpenPolicy{}}
	}
	if cfg.Sources == nil {
		cfg.Sources = []hedge.Source{PeerSessions(func(ctx context.Context) hedge.Getter { return n.NewSession(ctx) })}
	}
	if cfg.Local == nil {
		cfg.Local, cfg.Store = n.Store(), n
	}
	if cfg.MaxStreamsPerClient == 0 {
		cfg.MaxStreamsPerClient = 10000 // benchmarks are many clients on loopback
	}
	return gateway.NewHandler(cfg)
}

// Placeholders expands Caddy's placeholders for r, as the Caddy module's
// gateway.Config.Expander does.
func Placeholders(r *http.Request) func(string) string {
	repl := caddyhttp.NewTestReplacer(r)
	return func(s string) string { return repl.ReplaceAll(s, "") }
}

// MemStore is an in-memory blockstore, with its block and DAG services.
func MemStore() (blockstore.Blockstore, blockservice.BlockService, ipld.DAGService) {
	bs := blockstore.NewBlockstore(dssync.MutexWrap(datastore.NewMapDatastore()))
	bserv := blockservice.New(bs, nil)
	return bs, bserv, merkledag.NewDAGService(bserv)
}
