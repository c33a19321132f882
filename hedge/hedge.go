// Package hedge is the one place that says where a block comes from and
// when each source is asked. A request's blocks are read from the store
// first; on a miss one fetch per block per edge is in flight (concurrent
// streams, readahead jobs and fleet peers' wants share it), and that fetch
// asks the leaf's fleet owner and then the configured sources, each after
// its own delay, the first verified answer winning.
//
// Sources are plugins (pacman.sources.*); they implement Source. The
// package knows nothing of Caddy or of a concrete node type.
package hedge

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"
	"github.com/multiformats/go-multihash"
	"github.com/pacman-cdn/pacman/dag"
	"go.uber.org/zap"
)

// Reason says why a block is fetched, for the metrics of what the origin
// and the network carry.
type Reason string

const (
	// ForViewer is a leaf whose bytes a client waits for.
	ForViewer Reason = "viewer"
	// ForIndex is a block read to find a request's content and its
	// bytes: directories, index nodes, the bytes sniffed for a media
	// type. The client waits for it, but does not receive it as such.
	ForIndex Reason = "index"
	// ForReadahead is a block fetched ahead of a player's next request.
	ForReadahead Reason = "readahead"
	// ForFleet is a block a fleet peer asked this edge, its owner, for.
	ForFleet Reason = "fleet"
	// ForRefetch is a leaf read again for a client that fell behind:
	// its first copy went back to make room while the client was stuck.
	// It was delivered once already, and is not counted again.
	ForRefetch Reason = "refetch"
)

// Want is one block a request needs.
type Want struct {
	Cid cid.Cid
	// Offset and Size place a leaf's bytes in its file, for sources that
	// serve byte spans (an origin). Size is 0 for blocks that are not
	// leaves: index nodes, directories.
	Offset, Size int64
	// Reason is why the block is fetched. The zero value is ForViewer.
	Reason Reason
	// OriginURL, when set, is where the fleet's owner of the block can
	// fetch its bytes: the request's file on the origin.
	OriginURL string
	// Needed, if not nil, is closed when a viewer starts to wait for the
	// block: the sources' delays run from then. Nil means it is needed
	// now.
	Needed <-chan struct{}
	// Ahead marks a want made ahead of need, of a fleet member (its
	// readahead) or of an owner asking the members who holds a block
	// before it asks its origin: it is served from what the fleet holds,
	// never from the origin, and a member asked answers from its store.
	Ahead bool
	// Network says the request may fetch the block from the open network
	// (its policy lets it use non-trusted sources): a fleet owner asked
	// for it then fills it from its peers as well as its trusted
	// sources, so each block crosses from the swarm into the fleet about
	// once.
	Network bool
	// Progress, if not nil, is called by a fetcher each time it learns
	// that the block is on its way (a fleet owner filling it from the
	// origin says so while it works): the hedge then waits longer before
	// it asks the sources after that one (see maxPostpone).
	Progress func()
}

func (w Want) reason() Reason {
	if w.Reason == "" {
		return ForViewer
	}
	return w.Reason
}

// Fetcher fetches verified blocks. A block's bytes must have been checked
// against its CID (Verify) before Fetch returns it; the hedge keeps and
// labels it. A fetcher of a file on the origin is also an OriginFetcher.
type Fetcher interface {
	Fetch(ctx context.Context, w Want) (blocks.Block, error)
}

// OriginFetcher is a Fetcher of one file on the origin: OriginURL names the
// file, so the fleet's owner of a leaf can fetch it for this edge.
type OriginFetcher interface {
	Fetcher
	OriginURL() string
}

// FetcherFunc adapts a function to Fetcher.
type FetcherFunc func(ctx context.Context, w Want) (blocks.Block, error)

// Fetch calls f.
func (f FetcherFunc) Fetch(ctx context.Context, w Want) (blocks.Block, error) { return f(ctx, w) }

// Target is the content one request reads, as a source sees it.
type Target struct {
	// Root is the root CID the request resolved to.
	Root cid.Cid
	// Path is the client's request path as it was sent, escaped; "" when
	// a fleet peer asks.
	Path string
	// Expand replaces the request's placeholders in a URL template, for
	// sources that build their URLs from one (an origin); nil when a
	// fleet peer asks or the server has no placeholders.
	Expand func(template string) string
	// OriginURL is the file on the origin a fleet peer's want names; a
	// source that fetches from the origin may fetch only from URLs it
	// would have built itself.
	OriginURL string
	// StoreOnly reads the store alone, asking no source and no fleet
	// member (RFC 9111 only-if-cached).
	StoreOnly bool
	// Made, if set, is a block the request's resolver made (a live
	// playlist): it is read as if the store held it, and never stored.
	Made blocks.Block
}

// Rung says when the hedge asks a source.
type Rung struct {
	// Name labels the source in metrics and Server-Timing: "peers",
	// "http", "origin".
	Name string
	// After is how long the sources before it have before this one is
	// asked too. A source is asked at once when every source asked
	// before it has failed.
	After time.Duration
	// Trusted marks the operator's own sources (an origin), asked even
	// when the policy keeps a request off the open network.
	Trusted bool
	// Owned marks sources the fleet's owner of a block fills it from for
	// the whole fleet: the owner asks it at once, and other edges ask
	// the owner first and this source only after After.
	Owned bool
	// Kept marks sources that keep what they fetch themselves (the
	// node's block sessions); the hedge keeps every other source's
	// blocks in Config.Store.
	Kept bool
}

// Source is where blocks come from: bitswap, an HTTP gateway, an origin.
type Source interface {
	// Rung says when the source is asked.
	Rung() Rung
	// Open returns the fetcher for the blocks t needs, and the function
	// that ends its use; a nil fetcher means the source cannot serve t.
	Open(t Target) (Fetcher, func(), error)
}

// Fleet is the edges that share the work of one origin.
type Fleet interface {
	// Owner returns the live fleet member that owns c, or nil when this
	// edge owns it or has no fleet.
	Owner(c cid.Cid) Fetcher
	// Members returns the other live members, each able to serve the
	// blocks it holds.
	Members() []Fetcher
}

// Observer learns where blocks came from, for metrics. Its methods are
// called on fetching goroutines and must be quick.
type Observer interface {
	// Delivered reports a block handed to a viewer's stream, once per
	// delivery, or the bytes of a held block read in place (see
	// Request.ReadAt): source is "local" for the store, else the source
	// that supplied it; wait is how long the viewer waited.
	Delivered(source string, bytes int, wait time.Duration)
	// Fetched reports a block that crossed into this edge, once per
	// fetch, however many streams shared it.
	Fetched(source string, reason Reason, bytes int)
	// Rejected reports an answer from source whose bytes did not match
	// the block's CID.
	Rejected(source string)
}

// ErrMismatch reports bytes whose hash is not the block's CID. Sources
// wrap it, so the hedge counts and logs the liar.
var ErrMismatch = errors.New("bytes do not match the block's CID")

// errNoSource reports a want no source may be asked for.
var errNoSource = errors.New("no source may fetch this block")

// Storer keeps the verified blocks that sources other than the node's
// sessions deliver, so they are cached and seeded like any other.
type Storer interface {
	Keep(ctx context.Context, blk blocks.Block) error
}

// Config holds what a Hedge needs. Local is required.
type Config struct {
	// Local reads the blocks the edge holds; it answers not-found
	// (ipld.IsNotFound) for the others.
	Local Local
	// Sources are asked in the order of their rungs' delays.
	Sources []Source
	// Fleet, if set, is the edges this one shares the origin's work with.
	Fleet Fleet
	// Flights coalesces fetches of a block across every hedge of the
	// edge; nil means one of its own.
	Flights *Flights
	// Store keeps the blocks that fleet members and sources without
	// Rung.Kept deliver, once each source has checked them against
	// their CID (Verify); nil keeps none.
	Store Storer
	// Observer, if set, learns where blocks came from.
	Observer Observer
	// Logger receives warnings about lying sources. Nil means none.
	Logger *zap.Logger
}

// Hedge fetches blocks for requests, as Config says.
type Hedge struct {
	cfg Config
}

// New returns a Hedge.
func New(cfg Config) (*Hedge, error) {
	if cfg.Local == nil {
		return nil, fmt.Errorf("hedge needs a local store")
	}
	if cfg.Flights == nil {
		cfg.Flights = NewFlights()
	}
	if cfg.Observer == nil {
		cfg.Observer = nopObserver{}
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	return &Hedge{cfg: cfg}, nil
}

// Open prepares the fetch of t's blocks. With network false, only the
// store, the fleet and trusted sources are asked; notHeld is then the
// error for a block none of them has. The caller must Release the
// request.
func (h *Hedge) Open(t Target, network bool, notHeld error) (*Request, error) {
	r := &Request{h: h, target: t, notHeld: notHeld, network: network, refs: 1}
	if t.StoreOnly {
		return r, nil
	}
	for _, src := range h.cfg.Sources {
		rung := src.Rung()
		if !network && !rung.Trusted {
			continue
		}
		f, release, err := src.Open(t)
		if err != nil {
			r.Release()
			return nil, fmt.Errorf("opening source %s: %w", rung.Name, err)
		}
		if f == nil {
			continue
		}
		r.rungs = append(r.rungs, opened{rung: rung, fetcher: f, release: release, src: src})
		if o, ok := f.(OriginFetcher); ok && r.originURL == "" {
			r.originURL = o.OriginURL()
		}
	}
	return r, nil
}

// Request fetches the blocks of one request: a BlockGetter for the DAG
// walks, and Get for leaves with their byte spans.
type Request struct {
	h       *Hedge
	target  Target
	notHeld error
	network bool // non-trusted sources may be asked
	rungs   []opened
	// originURL is the request's file on the origin, which the fleet's
	// owner of a leaf fetches it from.
	originURL string

	mu   sync.Mutex // guards refs
	refs int
}

// opened is a source opened for a request.
type opened struct {
	rung    Rung
	fetcher Fetcher
	release func()
	src     Source
}

// Retain adds a user of r, such as a readahead job outliving the request;
// each Retain needs a Release.
func (r *Request) Retain() {
	r.mu.Lock()
	r.refs++
	r.mu.Unlock()
}

// Release ends one use of r; the last ends its sources' fetchers.
func (r *Request) Release() {
	r.mu.Lock()
	r.refs--
	last := r.refs == 0
	r.mu.Unlock()
	if !last {
		return
	}
	for _, o := range r.rungs {
		if o.release != nil {
			o.release()
		}
	}
}

// Has reports whether the edge holds c, without reading it.
func (r *Request) Has(ctx context.Context, c cid.Cid) bool {
	_, err := r.size(ctx, c)
	return err == nil
}

// made returns the target's Made block if it is c.
func (r *Request) made(c cid.Cid) (blocks.Block, bool) {
	if m := r.target.Made; m != nil && m.Cid().Equals(c) {
		return m, true
	}
	return nil, false
}

// ReadAt copies into p the bytes of the block w names from byte off on,
// if the edge holds it, without reading it whole: see Local.ReadAt. For a
// viewer's want the bytes copied count as delivered from the store. An
// empty p reads nothing: it checks that the block is held, and, when
// w.Size is set, that it is that long (else an error wrapping
// dag.ErrMalformed).
func (r *Request) ReadAt(ctx context.Context, w Want, p []byte, off int64) (n int, err error) {
	if len(p) == 0 {
		return 0, r.held(ctx, w)
	}
	if m, ok := r.made(w.Cid); ok {
		if data := m.RawData(); off < int64(len(data)) {
			n = copy(p, data[off:])
		}
	} else if n, err = r.h.cfg.Local.ReadAt(ctx, w.Cid, p, off); err != nil {
		return 0, err
	}
	if n > 0 && w.reason() == ForViewer {
		r.h.cfg.Observer.Delivered(SourceLocal, n, 0)
	}
	return n, nil
}

// held checks that the edge holds the block w names, as long as w.Size
// says if it says, without reading it.
func (r *Request) held(ctx context.Context, w Want) error {
	size, err := r.size(ctx, w.Cid)
	if err != nil {
		return err
	}
	if w.Size > 0 && int64(size) != w.Size {
		return fmt.Errorf("%w: block %s holds %d bytes, its parent says %d", dag.ErrMalformed, w.Cid, size, w.Size)
	}
	return nil
}

// size returns the length of the held block c, without reading it.
func (r *Request) size(ctx context.Context, c cid.Cid) (int, error) {
	if m, ok := r.made(c); ok {
		return len(m.RawData()), nil
	}
	return r.h.cfg.Local.Size(ctx, c)
}

// GetBlock returns the block c for the DAG walks: dag.BlockGetter.
func (r *Request) GetBlock(ctx context.Context, c cid.Cid) (blocks.Block, error) {
	return r.Get(ctx, Want{Cid: c, Reason: ForIndex})
}

// Get returns the block w names, from the store or through the one
// in-flight fetch of it. The block's Source says where it came from.
func (r *Request) Get(ctx context.Context, w Want) (blocks.Block, error) {
	start := time.Now()
	if w.OriginURL == "" {
		w.OriginURL = r.originURL
	}
	obs := r.h.cfg.Observer
	if w.Cid.Prefix().MhType == multihash.IDENTITY {
		// The multihash is the data itself: no store or peer holds it.
		dm, err := multihash.Decode(w.Cid.Hash())
		if err != nil {
			return nil, fmt.Errorf("%w: identity CID %s: %v", dag.ErrMalformed, w.Cid, err)
		}
		blk, err := blocks.NewBlockWithCid(dm.Digest, w.Cid)
		if err != nil {
			return nil, err
		}
		return Sourced{blk, SourceLocal}, nil
	}
	blk, ok := r.made(w.Cid)
	var err error
	if !ok {
		blk, err = r.h.cfg.Local.GetBlock(ctx, w.Cid)
	}
	if err == nil {
		if w.reason() == ForViewer {
			obs.Delivered(SourceLocal, len(blk.RawData()), time.Since(start))
		}
		return Sourced{blk, SourceLocal}, nil
	}
	if !ipld.IsNotFound(err) {
		return nil, fmt.Errorf("reading block %s: %w", w.Cid, err)
	}
	if r.target.StoreOnly {
		return nil, fmt.Errorf("%w: %s", r.notHeld, w.Cid)
	}
	w.Ahead = r.ahead(w)
	w.Network = w.Network || r.network
	key := flightKey{w.Cid, w.Ahead, w.Network}
	blk, err = r.h.cfg.Flights.do(ctx, key, func(ctx context.Context) (blocks.Block, error) {
		return r.race(ctx, w)
	})
	if err != nil {
		return nil, err
	}
	if w.reason() == ForViewer {
		obs.Delivered(SourceOf(blk), len(blk.RawData()), time.Since(start))
	}
	return blk, nil
}

// SourceLocal names the store as a block's source.
const SourceLocal = "local"

// SourceFleet names a fleet member as a block's source.
const SourceFleet = "fleet"

// Sourced is a block with the name of the source that supplied it.
type Sourced struct {
	blocks.Block
	From string
}

// Source names where the block came from.
func (b Sourced) Source() string { return b.From }

// Labelled is a block that names the source that supplied it, as Sourced
// does; sources outside this package (the node's sessions) label theirs
// with a type of their own.
type Labelled interface {
	blocks.Block
	Source() string
}

// SourceOf names where blk came from if it is Labelled, or "".
func SourceOf(blk blocks.Block) string {
	if s, ok := blk.(Labelled); ok {
		return s.Source()
	}
	return ""
}

type nopObserver struct{}

func (nopObserver) Delivered(string, int, time.Duration) {}
func (nopObserver) Fetched(string, Reason, int)          {}
func (nopObserver) Rejected(string)                      {}

// Verify returns data as the block c if it hashes to c, and an error
// wrapping ErrMismatch if not: every source that is handed bytes checks
// them here before keeping them.
func Verify(c cid.Cid, data []byte) (blocks.Block, error) {
	sum, err := c.Prefix().Sum(data)
	if err != nil {
		return nil, fmt.Errorf("hashing a block: %w", err)
	}
	if !bytes.Equal(sum.Hash(), c.Hash()) {
		return nil, fmt.Errorf("%w: %s", ErrMismatch, c)
	}
	return blocks.NewBlockWithCid(data, c)
}
