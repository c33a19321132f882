// Package caddymodule is the thin Caddy glue of pacman: the pacman app that
// owns the embedded IPFS node, the http.handlers.pacman handler that serves
// content through package gateway, their Caddyfile syntax, and the
// `caddy pacman` subcommands. It holds no business logic.
package caddymodule

import (
	"context"
	"errors"
	"fmt"
	"github.com/pacman-cdn/pacman/httpurl"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/pnet"
	"github.com/multiformats/go-multiaddr"
	"github.com/pacman-cdn/pacman/fleet"
	"github.com/pacman-cdn/pacman/gateway"
	"github.com/pacman-cdn/pacman/hedge"
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
// The node is kept across config reloads. Changes to its settings take
// effect when the data directory changes or Caddy restarts.
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
	// peers together. Default: 0, no cap.
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

	node    *node.Node
	metrics *nodeMetrics
	running *nodeDestructor
	log     *zap.Logger

	gateways *gatewaySet
}

// gatewaySet is the handlers of one config that answer fleet members.
type gatewaySet struct {
	mu   sync.Mutex // guards list
	list []*gateway.Handler
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
	a.log = ctx.Logger()
	a.gateways = new(gatewaySet)
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
		serving := new(atomic.Pointer[gatewaySet])
		cfg.Refuse = func(c cid.Cid) bool {
			set := serving.Load()
			if set == nil {
				return false
			}
			set.mu.Lock()
			defer set.mu.Unlock()
			for _, gw := range set.list {
				if gw.Denies(c) {
					return true
				}
			}
			return false
		}
		n, err := node.New(ctx, cfg)
		if err != nil {
			return nil, err
		}
		members := make([]peer.ID, len(cfg.Peers))
		for i, p := range cfg.Peers {
			members[i] = p.ID
		}
		f, err := fleet.New(fleet.Config{Host: n.Host(), Members: members, Logger: a.log})
		if err != nil {
			return nil, errors.Join(err, n.Close())
		}
		metrics, flights := newNodeMetrics(), hedge.NewFlights()
		fetch, peers, err := liveFetcher(n, f, flights, metrics)
		if err != nil {
			f.Close()
			return nil, errors.Join(err, n.Close())
		}
		h := n.Host()
		relay, err := live.NewRelay(h, h.Peerstore().PrivKey(h.ID()), fetch, metrics, a.log.Named("live"))
		if err != nil {
			peers.Close()
			f.Close()
			return nil, errors.Join(err, n.Close())
		}
		// What this node announced survives a restart: its streams'
		// numbering goes on, and recordings list every segment.
		journal, err := live.NewFileJournal(filepath.Join(a.DataDir, "live"))
		if err == nil {
			err = relay.Restore(journal)
		}
		if err != nil {
			_ = relay.Close()
			peers.Close()
			f.Close()
			return nil, errors.Join(err, n.Close())
		}
		store, err := names.Open(filepath.Join(a.DataDir, "ipns"))
		if err != nil {
			_ = relay.Close()
			peers.Close()
			f.Close()
			return nil, errors.Join(err, n.Close())
		}
		d := &nodeDestructor{Node: n, metrics: metrics, fleet: f, flights: flights, serving: serving, live: relay, livePeers: peers,
			names: &names.Network{Store: store}, settings: &settings{app: a.exported()}}
		if n.HasRouting() {
			d.names.Routing = n
			actx, cancel := context.WithCancel(context.Background())
			d.stopAnnouncing = cancel
			go announceNames(actx, d.names, a.log.Named("ipns"))
		}
		return d, nil
	})
	if err != nil {
		return fmt.Errorf("starting pacman node: %w", err)
	}
	a.running = v.(*nodeDestructor)
	a.node, a.metrics = a.running.Node, a.running.metrics
	trusted := make([]peer.ID, len(a.LiveTrust))
	for i, s := range a.LiveTrust {
		if trusted[i], err = peer.Decode(s); err != nil {
			return fmt.Errorf("live_trust: %q is not a peer ID: %w", s, err)
		}
	}
	a.running.live.SetTrusted(trusted)
	if err := a.metrics.register(ctx.GetMetricsRegistry(), a.node, a.running.fleet); err != nil {
		return fmt.Errorf("registering metrics: %w", err)
	}
	if loaded {
		a.log.Info("reusing running node", zap.String("data_dir", a.DataDir), zap.Stringer("peer_id", a.node.Host().ID()))
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

// Start makes this config's handlers answer fleet members' wants. Caddy
// starts a new config before it stops the old one, so members are never
// left unanswered across a reload.
func (a *App) Start() error {
	a.running.fleet.SetServe(a.serveFleet)
	// What this config's handlers deny, the node refuses to seed.
	a.running.serving.Store(a.gateways)
	return nil
}

// AddGateway makes gw one of the handlers that answer fleet members'
// wants; the returned function removes it.
func (a *App) AddGateway(gw *gateway.Handler) func() {
	set := a.gateways
	set.mu.Lock()
	defer set.mu.Unlock()
	set.list = append(set.list, gw)
	return func() {
		set.mu.Lock()
		defer set.mu.Unlock()
		set.list = slices.DeleteFunc(set.list, func(g *gateway.Handler) bool { return g == gw })
	}
}

// serveFleet answers a member's want through the first handler whose
// trusted sources have the block: its store, then the origin it serves.
func (a *App) serveFleet(ctx context.Context, w hedge.Want) (blocks.Block, error) {
	a.gateways.mu.Lock()
	gws := slices.Clone(a.gateways.list)
	a.gateways.mu.Unlock()
	err := error(ipld.ErrNotFound{Cid: w.Cid})
	for _, gw := range gws {
		req, oerr := gw.Hedge().Open(hedge.Target{OriginURL: w.OriginURL}, false, nil)
		if oerr != nil {
			err = oerr
			continue
		}
		blk, gerr := req.Get(ctx, w)
		req.Release()
		if gerr == nil {
			return blk, nil
		}
		err = gerr
	}
	return nil, err
}

// Fleet returns the edges this one shares its origin's work with.
func (a *App) Fleet() hedge.Fleet { return a.running.fleet }

// Flights returns the fetches in flight on this edge, shared by its
// handlers.
func (a *App) Flights() *hedge.Flights { return a.running.flights }

// Metrics returns the observer of the edge's blocks and streams.
func (a *App) Metrics() interface {
	gateway.Observer
	hedge.Observer
} {
	return a.metrics
}

// AppFrom returns the pacman app of the config ctx belongs to, starting it
// if need be: plugins take the node from it.
func AppFrom(ctx caddy.Context) (*App, error) {
	v, err := ctx.App("pacman")
	if err != nil {
		return nil, fmt.Errorf("loading pacman app: %w", err)
	}
	return v.(*App), nil
}

// Cleanup releases this config's use of the node; the last user stops it.
func (a *App) Cleanup() error {
	if a.node == nil {
		return nil
	}
	_, err := nodes.Delete(a.DataDir)
	return err
}

// Names returns the IPNS records the node keeps, in its data directory.
func (a *App) Names() *names.Network { return a.running.names }

// Live returns the node's live relay.
func (a *App) Live() *live.Relay { return a.running.live }

// Node returns the running node.
func (a *App) Node() *node.Node { return a.node }

// nodeDestructor lets the usage pool stop a node; it carries what lives
// as long as the node: its metrics, its fleet and its fetches in flight.
type nodeDestructor struct {
	*node.Node
	// settings are what the node was started with, for reloads.
	settings *settings
	metrics  *nodeMetrics
	fleet    *fleet.Fleet
	flights  *hedge.Flights
	// serving is the handlers of the config that runs, whose deny lists
	// the bitswap server obeys.
	serving *atomic.Pointer[gatewaySet]
	// live follows the live streams; livePeers are its bitswap
	// sessions.
	live      *live.Relay
	livePeers *hedge.Sessions
	// names are the IPNS records kept, looked up and announced through
	// the node's routing; stopAnnouncing ends their announcing.
	names          *names.Network
	stopAnnouncing context.CancelFunc
}

func (d *nodeDestructor) Destruct() error {
	if d.stopAnnouncing != nil {
		d.stopAnnouncing()
	}
	err := d.live.Close()
	d.livePeers.Close()
	d.fleet.Close()
	return errors.Join(err, d.Close())
}

// announceInterval is how often records kept are looked at for ones to
// announce; every record is announced again each republishInterval, as
// DHT records expire (after 48h, by default).
const (
	announceInterval  = time.Minute
	republishInterval = 4 * time.Hour
)

// announceNames announces the IPNS records kept through routing: all of
// them at start and every republishInterval, and in between each one kept
// or published (by 'caddy pacman name publish', say) since the last pass.
func announceNames(ctx context.Context, n *names.Network, log *zap.Logger) {
	var lastAll time.Time
	tick := time.NewTicker(announceInterval)
	defer tick.Stop()
	for {
		all := time.Since(lastAll) >= republishInterval
		if all {
			lastAll = time.Now()
		}
		told, err := n.Announce(ctx, all)
		if err != nil && ctx.Err() == nil {
			log.Warn("announcing IPNS records", zap.Error(err))
		}
		if told > 0 {
			log.Debug("announced IPNS records", zap.Int("records", told))
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// liveFetcher returns how the relay makes announced segments local:
// through a hedge over the node's peers and the fleet (live.HedgeFetcher).
func liveFetcher(n *node.Node, f *fleet.Fleet, flights *hedge.Flights, obs hedge.Observer) (live.Fetcher, *hedge.Sessions, error) {
	peers := live.PeerSessions(func(ctx context.Context) hedge.Getter { return n.NewSession(ctx) })
	h, err := hedge.New(hedge.Config{
		Local:    n.Store(),
		Sources:  []hedge.Source{peers},
		Fleet:    f,
		Flights:  flights,
		Store:    n,
		Observer: obs,
	})
	if err != nil {
		peers.Close()
		return nil, nil, err
	}
	return live.HedgeFetcher(h), peers, nil
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
	c.node, c.metrics, c.running, c.log, c.gateways = nil, nil, nil, nil, nil
	c.Peers = slices.Clone(a.Peers)
	return c
}
