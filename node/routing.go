package node

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ipfs/boxo/provider"
	"github.com/ipfs/boxo/routing/http/client"
	"github.com/ipfs/boxo/routing/http/contentrouter"
	"github.com/ipfs/go-cid"
	"github.com/ipfs/go-datastore"
	"github.com/ipfs/go-datastore/namespace"
	dht "github.com/libp2p/go-libp2p-kad-dht"
	routinghelpers "github.com/libp2p/go-libp2p-routing-helpers"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/routing"
)

// Routing says how the node finds the providers of content its connected
// peers lack, and what it announces it provides. The zero value is no
// routing: only connected peers are asked, nothing is announced.
type Routing struct {
	// DHT runs the Amino DHT: "" (none), "client" (queries only),
	// "server" (also answers other nodes' queries and stores their
	// provider records; for reachable edges) or "auto" (server once
	// libp2p finds the node publicly reachable).
	DHT string
	// Bootstrap are the peers the DHT joins through. Empty means the
	// Amino DHT's public bootstrap peers.
	Bootstrap []peer.AddrInfo
	// Delegated are delegated routing v1 HTTP endpoints (an indexer, or
	// a gateway's /routing/v1) asked for providers in parallel with the
	// DHT.
	Delegated []string
	// Provide is what the node announces: "roots" (the default: the root
	// of every pin, and every import pins its root), "all" (every block held,
	// fetched ones included, as they arrive) or "none".
	Provide string
	// ReprovideInterval is how often everything is announced again, as
	// provider records expire. Default 22h.
	ReprovideInterval time.Duration
}

// router is the node's content routing and announcing.
type router struct {
	routing  routing.Routing // nil when none is configured
	dht      *dht.IpfsDHT    // nil without the DHT
	provider provider.System
	all      bool // announce every block kept
}

// newRouter builds the routers of cfg and the provider announcing through
// them.
func newRouter(ctx context.Context, h host.Host, store *Store, cfg Routing) (*router, error) {
	r := &router{}
	var routers []*routinghelpers.ParallelRouter
	if cfg.DHT != "" {
		mode, ok := map[string]dht.ModeOpt{"client": dht.ModeClient, "server": dht.ModeServer, "auto": dht.ModeAuto}[cfg.DHT]
		if !ok {
			return nil, fmt.Errorf("dht must be client, server or auto, got %q", cfg.DHT)
		}
		bootstrap := cfg.Bootstrap
		if len(bootstrap) == 0 {
			bootstrap = dht.GetDefaultBootstrapPeerAddrInfos()
		}
		d, err := dht.New(h,
			dht.Mode(mode), // validates IPNS records, and picks the best, by default
			dht.BootstrapPeers(bootstrap...),
			dht.Datastore(namespace.Wrap(store.ds, datastore.NewKey("/pacman/dht"))),
		)
		if err != nil {
			return nil, fmt.Errorf("starting the DHT: %w", err)
		}
		if err := d.Bootstrap(ctx); err != nil {
			_ = d.Close()
			return nil, fmt.Errorf("bootstrapping the DHT: %w", err)
		}
		r.dht = d
		routers = append(routers, &routinghelpers.ParallelRouter{Router: d, Timeout: 5 * time.Minute})
	}
	for _, u := range cfg.Delegated {
		c, err := client.New(u,
			client.WithUserAgent("pacman"),
			client.WithProtocolFilter([]string{"transport-bitswap", "unknown"}),
		)
		if err != nil {
			r.close()
			return nil, fmt.Errorf("delegated routing endpoint %q: %w", u, err)
		}
		cr := contentrouter.NewContentRoutingClient(c)
		routers = append(routers, &routinghelpers.ParallelRouter{
			Router:  &routinghelpers.Compose{ContentRouting: cr, ValueStore: cr},
			Timeout: time.Minute,
			// Most endpoints take no announcements; they are found
			// through the DHT or the indexer's own crawl.
			IgnoreError: true,
		})
	}
	if len(routers) > 0 {
		r.routing = routinghelpers.NewComposableParallel(routers)
	}

	var keys provider.KeyChanFunc
	switch cfg.Provide {
	case "", "roots":
		keys = store.pins
	case "all":
		r.all = true
		keys = func(ctx context.Context) (<-chan cid.Cid, error) { return store.base.AllKeysChan(ctx) }
	case "none":
	default:
		r.close()
		return nil, fmt.Errorf("provide must be roots, all or none, got %q", cfg.Provide)
	}
	if r.routing == nil || keys == nil {
		r.provider = provider.NewNoopProvider()
		return r, nil
	}
	interval := cfg.ReprovideInterval
	if interval <= 0 {
		interval = 22 * time.Hour
	}
	p, err := provider.New(namespace.Wrap(store.ds, datastore.NewKey("/pacman/provider")),
		provider.Online(r.routing),
		provider.KeyProvider(keys),
		provider.ReproviderInterval(interval),
	)
	if err != nil {
		r.close()
		return nil, fmt.Errorf("starting the provider: %w", err)
	}
	r.provider = p
	return r, nil
}

// close stops announcing and the DHT.
func (r *router) close() error {
	var errs []error
	if r.provider != nil {
		errs = append(errs, r.provider.Close())
	}
	if r.dht != nil {
		errs = append(errs, r.dht.Close())
	}
	return errors.Join(errs...)
}

// ErrNoRouting says the node has no routing to look records up in.
var ErrNoRouting = errors.New("no routing is configured (dht, delegated_routing)")

// GetValue returns the best value routing knows under key: an IPNS record
// under its routing key, through the DHT and delegated routing at once.
func (n *Node) GetValue(ctx context.Context, key string) ([]byte, error) {
	if n.router.routing == nil {
		return nil, ErrNoRouting
	}
	return n.router.routing.GetValue(ctx, key)
}

// PutValue announces value under key to routing.
func (n *Node) PutValue(ctx context.Context, key string, value []byte) error {
	if n.router.routing == nil {
		return ErrNoRouting
	}
	return n.router.routing.PutValue(ctx, key, value)
}

// HasRouting reports whether the node looks beyond its connected peers.
func (n *Node) HasRouting() bool { return n.router.routing != nil }

// Pin keeps the DAG under root for good, fetching from peers the blocks
// the store lacks (see Store.Pin), and announces root to routing (under
// any strategy but "none").
func (n *Node) Pin(ctx context.Context, root cid.Cid, progress func(PinReport)) (PinReport, error) {
	rep, err := n.store.Pin(ctx, root, n.NewSession(ctx), progress)
	if err != nil {
		return rep, err
	}
	return rep, n.provide(ctx, root)
}

// PinHeld pins what the store holds of the DAG under root, as an import
// does (see Store.PinHeld), and announces root.
func (n *Node) PinHeld(ctx context.Context, root cid.Cid) (PinReport, error) {
	rep, err := n.store.PinHeld(ctx, root)
	if err != nil {
		return rep, err
	}
	return rep, n.provide(ctx, root)
}

// Sync puts on disk every block and record written so far (see
// Store.Sync): what a caller reports saved after it survives a crash.
func (n *Node) Sync(ctx context.Context) error { return n.store.Sync(ctx) }

// Discard makes evictable what the DAGs under roots hold that no pin
// reaches (see Store.Discard).
func (n *Node) Discard(ctx context.Context, roots ...cid.Cid) (PinReport, error) {
	return n.store.Discard(ctx, roots...)
}

// Unpin removes the pin of root (see Store.Unpin).
func (n *Node) Unpin(ctx context.Context, root cid.Cid) (PinReport, error) {
	return n.store.Unpin(ctx, root)
}

// Pins lists the pins.
func (n *Node) Pins(ctx context.Context) ([]Pinned, error) { return n.store.Pins(ctx) }

func (n *Node) provide(ctx context.Context, root cid.Cid) error {
	if err := n.router.provider.Provide(ctx, root, true); err != nil {
		return fmt.Errorf("announcing %s: %w", root, err)
	}
	return nil
}

// FindProviders asks routing for up to limit providers of c.
func (n *Node) FindProviders(ctx context.Context, c cid.Cid, limit int) []peer.AddrInfo {
	if n.router.routing == nil {
		return nil
	}
	var out []peer.AddrInfo
	for p := range n.router.routing.FindProvidersAsync(ctx, c, limit) {
		out = append(out, p)
	}
	return out
}
