// Package caddymodule is the thin Caddy glue of pacman: the pacman app that
// keeps the running edge (package edge) across reloads, the
// http.handlers.pacman handler that serves content through package
// gateway, the live ingest handler, their Caddyfile syntax and metrics.
// It translates configuration; the edge does the work. The admin routes
// and the dashboard are in caddymodule/admin, the `caddy pacman`
// commands in caddymodule/cli.
package caddymodule

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/ipfs/boxo/blockstore"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/pnet"
	"github.com/multiformats/go-multiaddr"
	"github.com/pacman-cdn/pacman/edge"
	"github.com/pacman-cdn/pacman/fleet"
	"github.com/pacman-cdn/pacman/gateway"
	"github.com/pacman-cdn/pacman/hedge"
	"github.com/pacman-cdn/pacman/httpurl"
	"github.com/pacman-cdn/pacman/live"
	"github.com/pacman-cdn/pacman/names"
	"github.com/pacman-cdn/pacman/node"
	"go.uber.org/zap"
)

func init() {
	caddy.RegisterModule(App{})
}

// nodes holds the running node of each data directory. A config reload
// provisions the new config before cleaning up the old one, so the node,
// its peer connections and in-flight streams survive the reload.
var nodes = caddy.NewUsagePool()

// App is the pacman app: it runs the embedded IPFS node (a libp2p host with
// bitswap over a persistent blockstore) that every pacman handler fetches
// content through and that seeds every block it holds back to its peers.
//
// The edge is kept across config reloads of the same data directory: a
// reload dials the peers added and applies live_trust; the other node
// settings wait for a restart, and the reload warns of each by name.
type App struct {
	// DataDir holds the blockstore and the node's identity key.
	// Default: the "pacman" folder in Caddy's data directory.
	DataDir string `json:"data_dir,omitempty"`
	// Listen is the list of libp2p multiaddrs the node listens on for
	// peers. Default: /ip4/0.0.0.0/tcp/4001, /ip4/0.0.0.0/udp/4001/quic-v1
	// and /ip4/0.0.0.0/udp/4001/quic-v1/webtransport (for browsers).
	Listen []string `json:"listen,omitempty"`
	// Peers are multiaddrs ending in /p2p/{peer-id} that the node dials at
	// start and redials whenever the connection drops.
	Peers []string `json:"peers,omitempty"`
	// MaxConnections caps the node's libp2p connections. Default: scaled
	// by libp2p to the machine's memory and file descriptors.
	MaxConnections int `json:"max_connections,omitempty"`
	// MaxInboundConnections caps connections peers open to the node.
	// Default: scaled by libp2p.
	MaxInboundConnections int `json:"max_inbound_connections,omitempty"`
	// MaxStreams caps libp2p streams over all connections. Default:
	// scaled by libp2p.
	MaxStreams int `json:"max_streams,omitempty"`
	// MaxMemory caps the bytes libp2p reserves for connections and
	// streams. Default: scaled by libp2p (1/8 of system memory).
	MaxMemory int64 `json:"max_memory,omitempty"`
	// CacheSize bounds, in bytes, the blocks fetched from peers and
	// origins that the node keeps (and seeds); past it the least recently
	// used are evicted. Content imported with `caddy pacman add` or
	// `import`, or pinned with `pin`, is kept in full on top of it and
	// never evicted. A block read or fetched in the last minute is never
	// evicted, so streams and readahead keep what they are about to
	// read. Default: 0, no bound — set it on any edge whose disk can
	// fill.
	CacheSize int64 `json:"cache_size,omitempty"`
	// UploadLimit caps, in bytes per second, the block data sent to all
	// peers together, over bitswap and to fleet members alike. Default:
	// 0, no cap.
	UploadLimit int64 `json:"upload_limit,omitempty"`
	// UploadLimitPerPeer caps, in bytes per second, the block data sent
	// to any one peer. Default: 0, no cap.
	UploadLimitPerPeer int64 `json:"upload_limit_per_peer,omitempty"`
	// UploadLimitPerAddress caps, in bytes per second, the block data
	// sent to all the peers at one IP address together: peer IDs are
	// free to make, so a per-peer cap alone does not bound one host.
	// Default: 0, no cap.
	UploadLimitPerAddress int64 `json:"upload_limit_per_address,omitempty"`
	// HTTPGateways are trustless gateways (base URLs answering
	// GET /ipfs/{cid}?format=raw: another pacman edge, or any IPFS
	// gateway) that bitswap asks for blocks alongside its peers. Every
	// block is checked against its CID. Plain http:// only for LAN and
	// loopback hosts; https:// needs HTTP/2.
	HTTPGateways []string `json:"http_gateways,omitempty"`
	// Routing finds providers beyond the static peers and announces what
	// the node holds. Default: none, only connected peers are asked.
	Routing *Routing `json:"routing,omitempty"`
	// LiveTrust are the peer IDs of the live publishers whose
	// announcements this node accepts, relays and serves; announcements
	// signed by any other key are dropped and counted. The node's own
	// key is always trusted, so a publisher needs none.
	LiveTrust []string `json:"live_trust,omitempty"`
	// SwarmKey is a swarm.key file (Kubo's format, libp2p pnet): with it
	// the node joins only the private swarm of the nodes that share the
	// key, over TCP (QUIC cannot carry the key). An operator's edges then
	// form a closed CDN that outside peers cannot join.
	SwarmKey string `json:"swarm_key,omitempty"`
	// NAT says how the node gets through NATs and firewalls: AutoNAT,
	// hole punching, relays, port mapping, the addresses it announces.
	// Default: see NAT.
	NAT *NAT `json:"nat,omitempty"`
	// Viewers turns viewer peers on: browsers that play this edge's
	// content trade blocks with each other, the edge their tracker and
	// signalling relay. Default: off.
	Viewers *Viewers `json:"viewers,omitempty"`

	edge    *edge.Edge
	metrics *nodeMetrics
	running *Running
	log     *zap.Logger
	routes  *edge.Routes
	ctx     caddy.Context
	ports   []string // the keys of the port locks this config holds
}

// CaddyModule returns the Caddy module information.
func (App) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "pacman",
		New: func() caddy.Module { return new(App) },
	}
}

// DefaultListen are the libp2p listen addresses used when none are set.
var DefaultListen = []string{"/ip4/0.0.0.0/tcp/4001", "/ip4/0.0.0.0/udp/4001/quic-v1", "/ip4/0.0.0.0/udp/4001/quic-v1/webtransport"}

// DefaultDataDir returns the data directory used when none is set.
func DefaultDataDir() string { return filepath.Join(caddy.AppDataDir(), "pacman") }

// Provision starts the node, or takes the one a previous config started on
// the same data directory.
func (a *App) Provision(ctx caddy.Context) error {
	a.log, a.ctx = ctx.Logger(), ctx
	a.routes = new(edge.Routes)
	if a.DataDir == "" {
		a.DataDir = DefaultDataDir()
	}
	if a.Listen == nil {
		a.Listen = DefaultListen
	}
	cfg, err := a.nodeConfig()
	if err != nil {
		return err
	}
	v, loaded, err := nodes.LoadOrNew(a.DataDir, func() (caddy.Destructor, error) {
		metrics := newNodeMetrics()
		e, err := edge.New(ctx, edge.Config{Node: cfg, Observer: metrics, Logger: a.log, Viewers: a.Viewers.config()})
		if err != nil {
			return nil, err
		}
		return &Running{edge: e, metrics: metrics, history: startHistory(metrics), settings: &settings{app: a.exported()}}, nil
	})
	if err != nil {
		// Said first, on its own line: Caddy reports it again at the end
		// of its chain of every module that was being provisioned.
		a.log.Error("the pacman node cannot start: "+err.Error(), zap.String("data_dir", a.DataDir))
		return fmt.Errorf("starting pacman node: %w", err)
	}
	a.running = v.(*Running)
	a.edge, a.metrics = a.running.edge, a.running.metrics
	trusted := make([]peer.ID, len(a.LiveTrust))
	for i, s := range a.LiveTrust {
		if trusted[i], err = peer.Decode(s); err != nil {
			return fmt.Errorf("live_trust: %q is not a peer ID: %w", s, err)
		}
	}
	a.edge.Live().SetTrusted(trusted)
	if err := a.metrics.register(ctx.GetMetricsRegistry(), a.edge.Node(), a.edge.Fleet()); err != nil {
		return fmt.Errorf("registering metrics: %w", err)
	}
	if loaded {
		a.log.Info("reusing running node", zap.String("data_dir", a.DataDir), zap.Stringer("peer_id", a.edge.Node().Host().ID()))
		a.running.settings.reload(a, a.log)
	}
	return nil
}

// nodeConfig parses the app's settings into a node configuration.
func (a *App) nodeConfig() (node.Config, error) {
	var psk pnet.PSK
	if a.SwarmKey != "" {
		f, err := os.Open(a.SwarmKey)
		if err != nil {
			return node.Config{}, fmt.Errorf("swarm_key: %w", err)
		}
		psk, err = pnet.DecodeV1PSK(f)
		f.Close()
		if err != nil {
			return node.Config{}, fmt.Errorf("swarm_key %s: not a swarm.key (/key/swarm/psk/1.0.0/): %w", a.SwarmKey, err)
		}
	}
	cfg := node.Config{
		DataDir: a.DataDir,
		Logger:  a.log,
		Limits: node.Limits{
			Conns:        a.MaxConnections,
			ConnsInbound: a.MaxInboundConnections,
			Streams:      a.MaxStreams,
			Memory:       a.MaxMemory,
		},
		CacheSize:    a.CacheSize,
		HTTPGateways: a.HTTPGateways,
		SwarmKey:     psk,
		Upload:       node.UploadLimits{Total: a.UploadLimit, PerPeer: a.UploadLimitPerPeer, PerAddress: a.UploadLimitPerAddress},
	}
	if a.MaxConnections < 0 || a.MaxInboundConnections < 0 || a.MaxStreams < 0 || a.MaxMemory < 0 {
		return cfg, fmt.Errorf("connection, stream and memory limits must not be negative")
	}
	if a.CacheSize < 0 || a.UploadLimit < 0 || a.UploadLimitPerPeer < 0 || a.UploadLimitPerAddress < 0 {
		return cfg, fmt.Errorf("cache_size and upload limits must not be negative")
	}
	var err error
	if cfg.Routing, err = a.Routing.nodeRouting(); err != nil {
		return cfg, err
	}
	if cfg.Reach, err = a.NAT.nodeReach(); err != nil {
		return cfg, err
	}
	for _, u := range a.HTTPGateways {
		if _, err := httpurl.Parse(u); err != nil {
			return cfg, fmt.Errorf("http_gateways: %w", err)
		}
	}
	for _, s := range a.Listen {
		ma, err := multiaddr.NewMultiaddr(s)
		if err != nil {
			return cfg, fmt.Errorf("listen address %q: %w", s, err)
		}
		cfg.ListenAddrs = append(cfg.ListenAddrs, ma)
	}
	for _, s := range a.Peers {
		info, err := peer.AddrInfoFromString(s)
		if err != nil {
			return cfg, fmt.Errorf("peer %q (want a multiaddr ending in /p2p/{peer-id}): %w", s, err)
		}
		cfg.Peers = append(cfg.Peers, *info)
	}
	return cfg, nil
}

// Routing configures how the node finds content and announces it.
type Routing struct {
	// DHT runs the Amino DHT: "client" (queries only), "server" (also
	// answers other nodes and stores their records: for reachable edges)
	// or "auto" (server once publicly reachable). Default: no DHT.
	DHT string `json:"dht,omitempty"`
	// Bootstrap are multiaddrs ending in /p2p/{peer-id} the DHT joins
	// through. Default: the Amino DHT's public bootstrap peers; set your
	// own edges here for a private DHT.
	Bootstrap []string `json:"bootstrap,omitempty"`
	// Delegated are delegated routing v1 HTTP endpoints asked for
	// providers in parallel with the DHT, e.g. an indexer.
	Delegated []string `json:"delegated,omitempty"`
	// Provide is what the node announces: "roots" (every imported root;
	// the default), "all" (every block held, fetched ones included) or
	// "none".
	Provide string `json:"provide,omitempty"`
	// ReprovideInterval is how often everything is announced again.
	// Default: 22h.
	ReprovideInterval caddy.Duration `json:"reprovide_interval,omitempty"`
}

// nodeRouting parses r into the node's routing configuration.
func (r *Routing) nodeRouting() (node.Routing, error) {
	var out node.Routing
	if r == nil {
		return out, nil
	}
	switch r.DHT {
	case "", "client", "server", "auto":
	default:
		return out, fmt.Errorf("routing dht: want client, server or auto, got %q", r.DHT)
	}
	switch r.Provide {
	case "", "roots", "all", "none":
	default:
		return out, fmt.Errorf("routing provide: want roots, all or none, got %q", r.Provide)
	}
	if r.ReprovideInterval < 0 {
		return out, fmt.Errorf("routing reprovide_interval must not be negative")
	}
	for _, u := range r.Delegated {
		if _, err := httpurl.Parse(u); err != nil {
			return out, fmt.Errorf("routing delegated: %w", err)
		}
	}
	out = node.Routing{DHT: r.DHT, Delegated: r.Delegated, Provide: r.Provide, ReprovideInterval: time.Duration(r.ReprovideInterval)}
	for _, s := range r.Bootstrap {
		info, err := peer.AddrInfoFromString(s)
		if err != nil {
			return out, fmt.Errorf("routing bootstrap %q (want a multiaddr ending in /p2p/{peer-id}): %w", s, err)
		}
		out.Bootstrap = append(out.Bootstrap, *info)
	}
	return out, nil
}

// Validate checks the settings without side effects.
func (a *App) Validate() error {
	_, err := a.nodeConfig()
	return err
}

// Stop is a no-op: the node stops in Cleanup once no config uses it.
func (a *App) Stop() error { return nil }

// Start makes this config's handlers the edge's routes: they answer fleet
// members' wants, and what they deny the node refuses to seed. Caddy
// starts a new config before it stops the old one, so members are never
// left unanswered across a reload.
func (a *App) Start() error {
	if err := a.holdPorts(); err != nil {
		a.log.Error("the pacman node cannot start: "+err.Error(), zap.String("data_dir", a.DataDir))
		return err
	}
	a.edge.Serve(a.routes)
	return nil
}

// AddRoute makes r one of this config's routes; the returned function
// removes it.
func (a *App) AddRoute(r edge.Route) func() { return a.routes.Add(r) }

// Blockstore returns the blocks the edge holds. Plugins read it; what
// they add is not kept by the cache's rules.
func (a *App) Blockstore() blockstore.Blockstore { return a.edge.Node().Blockstore() }

// PeerSession opens a bitswap session over the edge's peers; it ends with
// ctx.
func (a *App) PeerSession(ctx context.Context) hedge.Getter { return a.edge.Node().NewSession(ctx) }

// Names returns the IPNS records the edge keeps, looks up and announces.
func (a *App) Names() *names.Network { return a.edge.Names() }

// Live returns the edge's live relay.
func (a *App) Live() *live.Relay { return a.edge.Live() }

// Fleet returns the edges this one shares its origins with, for resolvers
// that share what they learn of an origin's names (origin_pull).
func (a *App) Fleet() *fleet.Fleet { return a.edge.Fleet() }

// AddPurger makes p mark stale what a resolver knows of names under a
// prefix when an operator purges them (caddy pacman purge), until the
// returned function is called.
func (a *App) AddPurger(p fleet.Purger) (remove func()) { return a.edge.AddPurger(p) }

// Observer is what the edge's metrics observe: the gateway's streams, the
// hedge's blocks, and what origin_pull takes from its origins (its
// Observer's methods).
type Observer interface {
	gateway.Observer
	hedge.Observer
	// OriginBytes counts body bytes from an origin, by reason.
	OriginBytes(reason string, n int64)
	// Pulled counts a pull as it starts (result "") and as it ends.
	Pulled(result string)
	// Changed counts a pulled file changed under the same validators.
	Changed()
	// KnownURLs counts the origin URLs whose records the data directory
	// keeps, as they come and go.
	KnownURLs(delta int)
	// Route returns the observer of one route's blocks: these metrics,
	// and the route's own delivered bytes by source.
	Route(name string) hedge.Observer
}

// Metrics returns the observer of the edge's blocks, streams and pulls,
// which live as long as the edge, across reloads.
func (a *App) Metrics() Observer { return a.metrics }

// AppFrom returns the pacman app of the config ctx belongs to, starting it
// if need be: plugins take what they use of the edge from it (Blockstore,
// PeerSession, Names, Live).
func AppFrom(ctx caddy.Context) (*App, error) {
	v, err := ctx.App("pacman")
	if err != nil {
		return nil, fmt.Errorf("loading pacman app: %w", err)
	}
	return v.(*App), nil
}

// Cleanup releases this config's use of the node; the last user stops it.
func (a *App) Cleanup() error {
	a.releasePorts()
	if a.edge == nil {
		return nil
	}
	_, err := nodes.Delete(a.DataDir)
	return err
}

// Interface guards.
var (
	_ caddy.App          = (*App)(nil)
	_ caddy.Provisioner  = (*App)(nil)
	_ caddy.Validator    = (*App)(nil)
	_ caddy.CleanerUpper = (*App)(nil)
)

// exported returns a's settings without its running state.
func (a *App) exported() App {
	c := *a
	c.edge, c.metrics, c.running, c.log, c.routes = nil, nil, nil, nil, nil
	c.Peers = slices.Clone(a.Peers)
	return c
}

// Running returns the running edge this config uses, for pacman's own
// dashboard; plugins take what they need through the methods above.
func (a *App) Running() *Running { return a.running }
