package node_test

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipfs/boxo/routing/http/server"
	"github.com/ipfs/boxo/routing/http/types"
	"github.com/ipfs/boxo/routing/http/types/iter"
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p"
	dht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multiaddr"
	"github.com/pacman-cdn/pacman/dag"
	"github.com/pacman-cdn/pacman/ingest"
	"github.com/pacman-cdn/pacman/internal/testutil"
	"github.com/pacman-cdn/pacman/node"
)

// TestDHTFindsProviders builds a DHT of a bootstrap node and six pacman
// nodes on loopback. One imports a file and announces its root; another,
// connected to neither it nor anyone holding the file, finds it through
// the DHT and fetches every byte.
func TestDHTFindsProviders(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a 7-node DHT")
	}
	ctx := context.Background()
	bh, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = bh.Close() })
	bd, err := dht.New(bh, dht.Mode(dht.ModeServer))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = bd.Close() })
	bootstrap := []peer.AddrInfo{{ID: bh.ID(), Addrs: bh.Addrs()}}

	nodes := make([]*node.Node, 6)
	for i := range nodes {
		provide := "roots"
		if i == 5 {
			provide = "all" // the fetcher announces every block it fetches
		}
		nodes[i] = testutil.NewNodeConfig(t, node.Config{Routing: node.Routing{DHT: "server", Bootstrap: bootstrap, Provide: provide}})
	}
	seeder, fetcher := nodes[0], nodes[5]
	data := testutil.Bytes("dht", 3<<20+17)
	root, err := ingest.Import(ctx, seeder.DAG(), bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := seeder.PinHeld(ctx, root); err != nil {
		t.Fatal(err)
	}
	// The fetcher's DHT finds the seeder's provider record.
	deadline := time.Now().Add(30 * time.Second)
	for {
		fctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		provs := fetcher.FindProviders(fctx, root, 1)
		cancel()
		if len(provs) == 1 && provs[0].ID == seeder.Host().ID() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the DHT found providers %v for the root, want the seeder %s", provs, seeder.Host().ID())
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Nothing connects the fetcher to the seeder but the DHT: cut any
	// connection the DHT's own lookups made.
	_ = fetcher.Host().Network().ClosePeer(seeder.Host().ID())

	got := fetchFile(t, fetcher, root, len(data))
	if !bytes.Equal(got, data) {
		t.Fatal("bytes fetched through DHT-found providers differ from the source")
	}

	// Under "all", the fetcher announces the blocks it now holds: a third
	// node finds it as a provider of the root.
	deadline = time.Now().Add(30 * time.Second)
	for {
		fctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		provs := nodes[2].FindProviders(fctx, root, 2)
		cancel()
		if len(provs) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("providers of the root after the fetch: %v, want the seeder and the fetcher", provs)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// fetchFile reads the file root through n's session, within a minute.
func fetchFile(t *testing.T, n *node.Node, root cid.Cid, size int) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ix, err := dag.NewIndex(16)
	if err != nil {
		t.Fatal(err)
	}
	session := n.NewSession(ctx)
	var got []byte
	for leaf, err := range ix.Leaves(ctx, session, root, 0, int64(size)) {
		if err != nil {
			t.Fatalf("resolving the file: %v", err)
		}
		blk, err := session.GetBlock(ctx, leaf.Cid)
		if err != nil {
			t.Fatalf("leaf at %d: %v", leaf.Offset, err)
		}
		got = append(got, blk.RawData()...)
	}
	return got
}

// indexer is a delegated routing backend that knows who provides what.
type indexer struct {
	server.DelegatedRouter // unimplemented methods: never called here
	mu                     sync.Mutex
	providers              map[string]peer.AddrInfo // by multihash
	asked                  atomic.Int64
}

func (ix *indexer) FindProviders(_ context.Context, c cid.Cid, _ int) (iter.ResultIter[types.Record], error) {
	ix.asked.Add(1)
	ix.mu.Lock()
	defer ix.mu.Unlock()
	var out []iter.Result[types.Record]
	if p, ok := ix.providers[string(c.Hash())]; ok {
		rec := &types.PeerRecord{Schema: types.SchemaPeer, ID: &p.ID, Protocols: []string{"transport-bitswap"}}
		for _, a := range p.Addrs {
			rec.Addrs = append(rec.Addrs, types.Multiaddr{Multiaddr: a})
		}
		out = append(out, iter.Result[types.Record]{Val: rec})
	}
	return iter.FromSlice(out), nil
}

// TestDelegatedRouting: a node peered with no one asks a delegated
// routing endpoint (boxo's server, backed by a small indexer) who holds a
// file, dials the provider it names and fetches every byte.
func TestDelegatedRouting(t *testing.T) {
	ctx := context.Background()
	seeder := testutil.NewNode(t)
	data := testutil.Bytes("delegated", 2<<20+5)
	root, err := ingest.Import(ctx, seeder.DAG(), bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	ix := &indexer{providers: map[string]peer.AddrInfo{string(root.Hash()): seeder.AddrInfo()}}
	srv := httptest.NewServer(server.Handler(ix))
	t.Cleanup(srv.Close)

	fetcher := testutil.NewNodeConfig(t, node.Config{Routing: node.Routing{Delegated: []string{srv.URL}}})
	got := fetchFile(t, fetcher, root, len(data))
	if !bytes.Equal(got, data) {
		t.Fatal("bytes fetched through the delegated router's provider differ from the source")
	}
	if ix.asked.Load() == 0 {
		t.Error("the delegated endpoint was never asked")
	}
}

// TestHTTPRetrievalDialsOnlyNamedGateways: a provider record from routing
// that names an /http address (here an internal service) is never dialled
// by HTTP retrieval; only the configured http_gateway hosts are.
func TestHTTPRetrievalDialsOnlyNamedGateways(t *testing.T) {
	var internal atomic.Int64
	svc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		internal.Add(1)
		http.NotFound(w, r)
	}))
	t.Cleanup(svc.Close)
	gw := httptest.NewServer(http.NotFoundHandler()) // the one gateway named
	t.Cleanup(gw.Close)
	_, port, _ := net.SplitHostPort(svc.Listener.Addr().String())
	missing := blocks.NewBlock([]byte("held by no one")).Cid()
	fake, err := peer.Decode("12D3KooWGC6TvWhfapngX6wvJHMYvKpDMXPb3ZnCZ6dMoaMtimQ5")
	if err != nil {
		t.Fatal(err)
	}
	ix := &httpIndexer{provider: fake, addr: multiaddr.StringCast("/ip4/127.0.0.1/tcp/" + port + "/http")}
	router := httptest.NewServer(server.Handler(ix))
	t.Cleanup(router.Close)

	n := testutil.NewNodeConfig(t, node.Config{
		HTTPGateways: []string{strings.Replace(gw.URL, "127.0.0.1", "localhost", 1)},
		Routing:      node.Routing{Delegated: []string{router.URL}},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
	defer cancel()
	if _, err := n.NewSession(ctx).GetBlock(ctx, missing); err == nil {
		t.Fatal("a block no one holds was fetched")
	}
	if ix.asked.Load() == 0 {
		t.Fatal("the delegated router was never asked, so the test proves nothing")
	}
	if got := internal.Load(); got != 0 {
		t.Errorf("HTTP retrieval sent %d requests to a host that only a routing record named", got)
	}
}

// httpIndexer answers every provider lookup with one HTTP provider.
type httpIndexer struct {
	server.DelegatedRouter // unimplemented methods: never called here
	provider               peer.ID
	addr                   multiaddr.Multiaddr
	asked                  atomic.Int64
}

func (ix *httpIndexer) FindProviders(context.Context, cid.Cid, int) (iter.ResultIter[types.Record], error) {
	ix.asked.Add(1)
	rec := &types.PeerRecord{Schema: types.SchemaPeer, ID: &ix.provider, Protocols: []string{"transport-bitswap", "transport-ipfs-gateway-http"},
		Addrs: []types.Multiaddr{{Multiaddr: ix.addr}}}
	return iter.FromSlice([]iter.Result[types.Record]{{Val: rec}}), nil
}
