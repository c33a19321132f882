// Package node assembles the embedded IPFS node that pacman fetches and
// seeds content with: a libp2p host, a bitswap client and server, and a
// blockstore on a persistent embedded datastore.
//
// It knows nothing of HTTP or Caddy. A process runs one Node, shared by every
// request handler.
package node

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipfs/boxo/bitswap"
	bsclient "github.com/ipfs/boxo/bitswap/client"
	bsmsg "github.com/ipfs/boxo/bitswap/message"
	bsnetwork "github.com/ipfs/boxo/bitswap/network"
	bsnet "github.com/ipfs/boxo/bitswap/network/bsnet"
	"github.com/ipfs/boxo/bitswap/network/httpnet"
	"github.com/ipfs/boxo/bitswap/tracer"
	"github.com/ipfs/boxo/blockservice"
	"github.com/ipfs/boxo/blockstore"
	"github.com/ipfs/boxo/ipld/merkledag"
	"github.com/ipfs/boxo/peering"
	"github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"
	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/metrics"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/pnet"
	"github.com/libp2p/go-libp2p/core/routing"
	"github.com/libp2p/go-libp2p/p2p/muxer/yamux"
	"github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
	"github.com/pacman-cdn/pacman/dag"
	"github.com/pacman-cdn/pacman/node/internal/guard"
	"github.com/pacman-cdn/pacman/node/internal/outbox"
	"github.com/pacman-cdn/pacman/node/internal/scheduler"
	"github.com/pacman-cdn/pacman/node/internal/uploadcap"
	"go.uber.org/zap"
)

// Config describes a Node. The zero value of every field but DataDir is a
// usable default.
type Config struct {
	// DataDir holds the blockstore and the identity key. Required.
	DataDir string
	// ListenAddrs are the libp2p listen multiaddrs. Empty means no
	// listening: the node can fetch but peers cannot dial it.
	ListenAddrs []multiaddr.Multiaddr
	// Peers are dialled at start and redialled with back-off whenever the
	// connection drops.
	Peers []peer.AddrInfo
	// Routing finds providers of content beyond the connected peers and
	// announces what the node holds. The zero value is none: only
	// connected peers are asked.
	Routing Routing
	// Limits caps connections, streams and memory taken by peers.
	Limits Limits
	// HTTPGateways are trustless gateways (base URLs answering
	// GET /ipfs/{cid}?format=raw, such as another pacman edge) that
	// bitswap asks for blocks alongside its peers, over HTTP.
	HTTPGateways []string
	// Upload caps the block bytes sent to peers, in total and per peer.
	Upload UploadLimits
	// CacheSize bounds the bytes of fetched blocks kept in the store; the
	// least recently used are evicted past it. Pinned blocks (imports
	// are pinned) are not counted and never evicted. Zero means no bound.
	CacheSize int64
	// CacheGrace is how long a block read or stored is spared from
	// eviction, so blocks a stream or readahead just fetched stay until
	// they are read: up to twice CacheSize, and only while the disk has
	// room. Default 1m.
	CacheGrace time.Duration
	// SwarmKey, if set, makes the node's swarm private (libp2p pnet, the
	// swarm.key of Kubo): only peers with the same key can connect, over
	// TCP and WebSocket only (QUIC cannot carry a pre-shared key, so
	// UDP listen addresses are dropped).
	SwarmKey pnet.PSK
	// Reach says how the node gets through NATs and firewalls: port
	// mapping, AutoNAT, hole punching, relays, what addresses it tells.
	Reach Reach
	// Refuse, if set, reports blocks the node must never send to peers
	// (deny lists): they are refused as if not held.
	Refuse func(c cid.Cid) bool
	// Logger receives the node's logs. Nil means no logs.
	Logger *zap.Logger
}

// Node is a running libp2p host with bitswap over a persistent blockstore.
type Node struct {
	// noSpaceLogged is when a full disk was last logged (UnixNano).
	noSpaceLogged atomic.Int64
	host          host.Host
	bw            *metrics.BandwidthCounter
	store         *Store
	bitswap       *bitswap.Bitswap
	blocks        blockservice.BlockService
	peering       *peering.PeeringService
	guard         *guard.Guard
	wants         *scheduler.Scheduler
	cache         *cache
	router        *router
	net           bsnetwork.BitSwapNetwork
	out           *outbox.Outbox
	uploads       *uploadcap.Caps
	gate          *wantGate
	stop          context.CancelFunc // ends the node's background work
	background    sync.WaitGroup
	closeOnce     sync.Once
	closeErr      error
	log           *zap.Logger
}

// New starts a node: it opens the store in cfg.DataDir, starts the libp2p
// host with the persisted identity and begins dialling cfg.Peers. The
// returned node runs until Close; ctx only bounds start-up.
func New(ctx context.Context, cfg Config) (_ *Node, err error) {
	log := cfg.Logger
	if log == nil {
		log = zap.NewNop()
	}
	listen := listenable(cfg, log)
	if err := claimListen(listen); err != nil {
		return nil, err
	}
	store, err := OpenStore(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			store.Close()
		}
	}()
	if cfg.CacheSize < 0 {
		return nil, fmt.Errorf("cache size must not be negative, got %d", cfg.CacheSize)
	}
	if cfg.CacheGrace <= 0 {
		cfg.CacheGrace = time.Minute
	}
	cache, err := newCache(ctx, store, cfg.CacheSize, cfg.CacheGrace, log)
	if err != nil {
		return nil, err
	}
	store.cache = cache
	defer func() {
		if err != nil {
			cache.close()
		}
	}()
	key, err := loadOrCreateIdentity(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	rm, err := cfg.Limits.resourceManager()
	if err != nil {
		return nil, err
	}
	var (
		gateways []peer.AddrInfo
		hosts    []string // the only hosts HTTP retrieval may dial
	)
	for _, u := range cfg.HTTPGateways {
		p, err := gatewayPeer(u)
		if err != nil {
			return nil, err
		}
		gateways = append(gateways, p)
		pu, _ := url.Parse(u) // gatewayPeer parsed it
		hosts = append(hosts, pu.Hostname())
	}
	junk := guard.New(log, gateways)
	// Blocks arrive one stream per message, and yamux lets a new stream
	// carry only 256 KiB before the receiver's first window update: a
	// 1 MiB leaf would wait several round trips. Granting 4 MiB up front
	// lets a leaf arrive in one.
	muxer := *yamux.DefaultTransport
	muxer.InitialStreamWindowSize = 4 << 20
	if len(cfg.ListenAddrs) == 0 {
		// Not listening means not reachable: not through relays either.
		cfg.Reach.RelayClient, cfg.Reach.RelayService = false, false
	}
	var built atomic.Pointer[host.Host]
	reach, err := cfg.Reach.options(&built)
	if err != nil {
		return nil, err
	}
	bw := metrics.NewBandwidthCounter()
	opts := []libp2p.Option{
		libp2p.Identity(key),
		libp2p.BandwidthReporter(bw),
		libp2p.Muxer(yamux.ID, &muxer),
		libp2p.ResourceManager(rm),
		libp2p.ConnectionGater(junk),
		libp2p.ListenAddrs(listen...),
		libp2p.UserAgent("pacman"),
	}
	opts = append(opts, reach...)
	if len(cfg.SwarmKey) > 0 {
		opts = append(opts, libp2p.PrivateNetwork(cfg.SwarmKey))
	}
	if len(cfg.ListenAddrs) == 0 {
		opts = append(opts, libp2p.NoListenAddrs)
	}
	h, err := libp2p.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("starting libp2p host: %w", err)
	}
	built.Store(&h)

	// The bitswap engine lives as long as the node, not as long as ctx.
	junk.SetDrop(func(p peer.ID) { _ = h.Network().ClosePeer(p) })
	var exchangeNet bsnetwork.BitSwapNetwork = bsnet.NewFromIpfsHost(h)
	if len(gateways) > 0 {
		exchangeNet = bsnetwork.New(h.Peerstore(), exchangeNet,
			// Providers found through routing may name any /http
			// address, internal services included: HTTP retrieval dials
			// only the gateways the operator named.
			httpnet.New(h, httpnet.WithUserAgent("pacman"), httpnet.WithMaxBlockSize(dag.MaxBlockSize), httpnet.WithAllowlist(hosts)))
	}
	up, err := uploadcap.New(cfg.Upload.Total, cfg.Upload.PerPeer, cfg.Upload.PerAddress, hostAddrs(h.Network()))
	if err != nil {
		_ = h.Close()
		return nil, err
	}
	bg, stop := context.WithCancel(context.Background())
	out := outbox.New(bg, junk.Network(exchangeNet), up,
		func(p peer.ID) bool { return h.Network().Connectedness(p) == network.Connected })
	h.Network().Notify(&network.NotifyBundle{DisconnectedF: out.Disconnected})
	gate := newWantGate(out, hostAddrs(h.Network()))
	net := bsnetwork.BitSwapNetwork(gate)
	rt, err := newRouter(ctx, h, store, cfg.Routing)
	if err != nil {
		stop()
		_ = h.Close()
		return nil, err
	}
	var finder routing.ContentDiscovery
	if rt.routing != nil {
		finder = rt.routing
	}
	wants := scheduler.New(bg, net, junk, log)
	bs := bitswap.New(context.Background(), net, finder, store.Blockstore,
		bitswap.WithTracer(tracers{junk, wants}),
		bitswap.ProviderSearchDelay(time.Second),
		// Index nodes (up to ~41 KB for 1024 links) are sent in answer to
		// a want-have, saving a fetching peer the round trip of a
		// want-block: a cold seek's root arrives in one round trip.
		bitswap.WithWantHaveReplaceSize(64<<10),
		bitswap.WithClientOption(bsclient.WithDontHaveTimeoutConfig(scheduler.DontHaveTimeouts())),
		bitswap.MaxOutstandingBytesPerPeer(8<<20),
		bitswap.EngineBlockstoreWorkerCount(32),
		bitswap.WithPeerBlockRequestFilter(func(_ peer.ID, c cid.Cid) bool {
			return cfg.Refuse == nil || !cfg.Refuse(c)
		}),
		bitswap.TaskWorkerCount(16),
	)
	n := &Node{
		stop:    stop,
		host:    h,
		bw:      bw,
		store:   store,
		bitswap: bs,
		blocks:  blockservice.New(store.Blockstore, junk.Exchange(bs)),
		peering: peering.NewPeeringService(h),
		guard:   junk,
		wants:   wants,
		cache:   cache,
		router:  rt,
		net:     net,
		out:     out,
		uploads: up,
		gate:    gate,
		log:     log,
	}
	h.Network().Notify(&network.NotifyBundle{DisconnectedF: wants.Disconnected})
	if err := n.peering.Start(); err != nil {
		// The deferred cleanup closes the cache and the store.
		stop()
		_ = errors.Join(rt.close(), bs.Close(), h.Close())
		return nil, fmt.Errorf("starting peering: %w", err)
	}
	for _, p := range cfg.Peers {
		n.AddPeer(p)
	}
	for _, p := range gateways {
		n.background.Go(func() { n.keepGatewayConnected(bg, p) })
	}
	n.background.Go(func() { junk.Watch(bg) })
	if cfg.Reach.HolePunching {
		n.background.Go(func() { n.retryPunches(bg) })
	}
	n.background.Go(func() { n.resumePins(bg) })
	log.Info("node started",
		zap.Stringer("peer_id", h.ID()),
		zap.Any("listen", h.Addrs()),
		zap.Int("static_peers", len(cfg.Peers)))
	return n, nil
}

// UploadLimits caps the block bytes the node sends to peers, in bytes per
// second. Zero means no cap.
type UploadLimits struct {
	// Total caps the upload to all peers together.
	Total int64
	// PerPeer caps the upload to each peer ID.
	PerPeer int64
	// PerAddress caps the upload to all the peers at one IP address
	// together: peer IDs cost nothing to make, addresses do.
	PerAddress int64
}

// WaitUpload returns once size bytes to p are within the node's upload
// caps (upload_limit, per peer and per address), or ctx is done. What
// the node sends peers over its other protocols (the fleet's blocks)
// waits on it, so a cap caps every block byte the node uploads.
func (n *Node) WaitUpload(ctx context.Context, p peer.ID, size int) error {
	return n.uploads.Wait(ctx, p, size)
}

// DAG returns a DAG service over the node's blocks, fetching from peers what
// is not local.
func (n *Node) DAG() ipld.DAGService { return merkledag.NewDAGService(n.blocks) }

// BlockService returns the node's block service: the blockstore backed by
// bitswap. Benchmarks use it to run other gateways on the same node.
func (n *Node) BlockService() blockservice.BlockService { return n.blocks }

// Verify checks every stored block against its CID, as Store.Verify does,
// while the node runs.
func (n *Node) Verify(ctx context.Context, repair bool) (VerifyReport, error) {
	return n.store.Verify(ctx, repair)
}

// Blockstore returns the node's persistent blockstore.
func (n *Node) Blockstore() blockstore.Blockstore { return n.store.Blockstore }

// Store returns the node's store, which hedges read held blocks from.
func (n *Node) Store() *Store { return n.store }

// Host returns the node's libp2p host.
func (n *Node) Host() host.Host { return n.host }

// AddrInfo returns the peer ID and addresses other nodes dial this one at.
func (n *Node) AddrInfo() peer.AddrInfo {
	return peer.AddrInfo{ID: n.host.ID(), Addrs: n.host.Addrs()}
}

// AddPeer dials p now and keeps reconnecting to it, with back-off, until
// the node closes.
func (n *Node) AddPeer(p peer.AddrInfo) {
	n.peering.AddPeer(p)
	// The peering service waits its initial back-off before the first
	// dial; a gateway should not start cold for that long.
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := n.host.Connect(ctx, p); err != nil {
			n.log.Warn("dialling static peer", zap.Stringer("peer", p.ID), zap.Error(err))
		}
	}()
}

// Close stops serving peers, closes connections and the store. Calls
// after the first return its result.
func (n *Node) Close() error {
	n.closeOnce.Do(func() { n.closeErr = n.close() })
	return n.closeErr
}

func (n *Node) close() error {
	n.stop()
	n.background.Wait()
	n.wants.Wait()
	n.out.Close()
	n.peering.Stop()
	errs := []error{n.router.close(), n.bitswap.Close(), n.host.Close()}
	n.cache.close()
	errs = append(errs, n.store.Close())
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("closing node: %w", err)
	}
	n.log.Info("node stopped")
	return nil
}

// listenable returns the listen addresses the node can use: in a private
// swarm, only TCP ones.
func listenable(cfg Config, log *zap.Logger) []multiaddr.Multiaddr {
	if len(cfg.SwarmKey) == 0 {
		return cfg.ListenAddrs
	}
	var out []multiaddr.Multiaddr
	for _, a := range cfg.ListenAddrs {
		if _, err := a.ValueForProtocol(multiaddr.P_UDP); err == nil {
			log.Info("not listening on a UDP address in a private swarm: QUIC cannot carry its key", zap.Stringer("addr", a))
			continue
		}
		out = append(out, a)
	}
	return out
}

// Stats is a snapshot of what the node is doing.
type Stats struct {
	// Peers is the number of connected peers.
	Peers int
	// BytesSeeded is the block data bitswap has written to peers.
	BytesSeeded uint64
	// BlocksSeeded is the number of blocks bitswap has written to peers.
	BlocksSeeded uint64
	// StoreBytes is the blockstore's size on disk.
	StoreBytes uint64
	// CacheBytes is the size of the fetched blocks held, which CacheSize
	// bounds.
	CacheBytes int64
	// Evictions is the number of fetched blocks evicted since start.
	Evictions uint64
	// SeedDropped is the number of answers to peers dropped because the
	// peer was not reading them.
	SeedDropped uint64
	// WantsCut is the number of peers' wants the bitswap server never
	// saw: past their peer's or address's rate.
	WantsCut uint64
	// DuplicateBytes is the block data bitswap received that the node
	// already had: bytes a peer sent for nothing.
	DuplicateBytes uint64
	// Reprovides is the number of full announcement rounds completed;
	// LastReprovide is when the last one ran (zero if none has).
	Reprovides    uint64
	LastReprovide time.Time
}

// Stats returns the node's current figures.
func (n *Node) Stats(ctx context.Context) (Stats, error) {
	st := Stats{Peers: len(n.host.Network().Peers())}
	st.CacheBytes, st.Evictions = n.cache.stats()
	st.SeedDropped = uint64(n.out.Dropped())
	st.WantsCut = uint64(n.gate.cut.Load())
	if ps, err := n.router.provider.Stat(); err == nil {
		st.Reprovides, st.LastReprovide = ps.TotalReprovides, ps.LastRun
	}
	// Bitswap's own DataSent counts an answer when it is queued; the
	// outbox counts it when it is written.
	st.BytesSeeded, st.BlocksSeeded = n.out.Sent()
	if cs, err := n.bitswap.Client.Stat(); err == nil {
		st.DuplicateBytes = cs.DupDataReceived
	}
	var err error
	if st.StoreBytes, err = n.store.ds.DiskUsage(ctx); err != nil {
		return st, fmt.Errorf("reading store size: %w", err)
	}
	return st, nil
}

// tracers shows bitswap's messages to each tracer in turn.
type tracers []tracer.Tracer

func (ts tracers) MessageReceived(p peer.ID, msg bsmsg.BitSwapMessage) {
	for _, t := range ts {
		t.MessageReceived(p, msg)
	}
}

func (ts tracers) MessageSent(p peer.ID, msg bsmsg.BitSwapMessage) {
	for _, t := range ts {
		t.MessageSent(p, msg)
	}
}

// hostAddrs returns the IP address of p's first connection on h's
// network, or "".
func hostAddrs(net network.Network) func(peer.ID) string {
	return func(p peer.ID) string {
		for _, c := range net.ConnsToPeer(p) {
			if ip, err := manet.ToIP(c.RemoteMultiaddr()); err == nil {
				return ip.String()
			}
		}
		return ""
	}
}
