// Package gateway serves UnixFS content over plain HTTP with the semantics
// of RFC 9110: GET and HEAD of whatever its resolvers name, single, suffix,
// open-ended and multi-range requests, conditional requests on a strong
// ETag derived from the CID, and long-lived immutable caching.
//
// Bytes are streamed leaf by leaf through a per-request hedge.Request (see
// stream.RangeStreamer); held leaves are read in place, and nothing
// buffers a whole file. The package uses plain net/http and must never
// import Caddy or a concrete node type: it depends only on small
// interfaces (Resolver, Policy, hedge.Local, hedge.Source).
//
// handler.go takes a request from its path to a representation; file.go
// describes a UnixFS file as one; serve.go answers with a representation
// as RFC 9110 says (ranges, preconditions, multipart).
package gateway

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/pacman-cdn/pacman/dag"
	"github.com/pacman-cdn/pacman/hedge"
	"github.com/pacman-cdn/pacman/stream"
	"go.uber.org/zap"
)

// Config holds the settings of a Handler. Zero values take the defaults
// documented on each field.
type Config struct {
	// Resolvers turn requests into content, tried in order until one
	// claims the request. Required: a request none claims gets 404.
	Resolvers []Resolver
	// Policies decide what may be served and fetched; every one must
	// allow a request. With none, nothing is fetched from the open
	// network: only what the edge, its fleet and trusted sources hold is
	// served.
	Policies []Policy
	// Sources are where blocks not held come from, asked by the hedge in
	// the order of their delays.
	Sources []hedge.Source
	// Fleet, if set, is the edges sharing the origin's work with this one:
	// each leaf's owner is asked first.
	Fleet hedge.Fleet
	// Flights coalesces the fetches of a block over every handler of the
	// edge; nil means the handler's own.
	Flights *hedge.Flights
	// Window is the number of leaves in flight per stream at its start;
	// it then adapts to the throughput the peers give, up to MaxWindow.
	// Default 16.
	Window int
	// MaxWindow bounds the adaptive window, and with the leaf size the
	// memory of a stream. Default 64, and never below Window.
	MaxWindow int
	// MaxLeavesInFlight bounds the leaves fetched or held at once over
	// all streams, and with the leaf size the memory of all streams
	// together. Default 512 (512 MiB with 1 MiB leaves).
	MaxLeavesInFlight int
	// BudgetWait is how long a stream waits for room among
	// MaxLeavesInFlight before it is answered 503 with Retry-After.
	// Default 5s.
	BudgetWait time.Duration
	// MaxStreamsPerClient bounds the requests one client address has in
	// progress at once; more get 429 with Retry-After. Default 64.
	MaxStreamsPerClient int
	// MaxNetworkRequests bounds the requests resolving content the edge
	// does not hold that a policy lets on the open network: each costs
	// peer searches and sessions until it resolves or times out, and
	// nothing else bounds what a flood of unknown CIDs costs. A request
	// counts until its path is resolved (to the end for CAR and TAR), so
	// slow readers do not hold the count. More get 503 with Retry-After.
	// Requests for held content are never counted. Default 128.
	MaxNetworkRequests int
	// Readahead is the number of leaves past the end of a served range
	// made local for the player's next request: those the edge does not
	// store yet are fetched. Default 8; negative disables readahead.
	Readahead int
	// MaxRanges caps the ranges of one multi-range request. Default 32.
	MaxRanges int
	// ResolveTimeout bounds the time to resolve the path and learn the
	// file's size, after which the client gets 504. Default 60s.
	ResolveTimeout time.Duration
	// StallTimeout bounds the wait for any one leaf while streaming, and
	// for a client to take each leaf written to it, after which the
	// response is cut short. Default 30s.
	StallTimeout time.Duration
	// IndexCacheEntries is the number of internal DAG nodes cached.
	// Default 4096 (about 256 MiB at most for full 1024-link nodes).
	IndexCacheEntries int
	// Local reads only blocks already stored, never the network. It
	// answers requests with Cache-Control: only-if-cached, and the hedge
	// reads it before asking any source. Required.
	Local hedge.Local
	// Observer, if set, learns of first bytes, stalls and leaves in
	// flight, for metrics.
	Observer Observer
	// Store keeps the blocks that the fleet and sources other than block
	// sessions deliver (hedge.Config.Store); nil keeps none.
	Store hedge.Storer
	// Expander, if set, returns a request's placeholder expansion, which
	// sources that build URLs from templates use (an origin). The Caddy
	// module sets it to the request's Caddy replacer; the gateway itself
	// knows no placeholders.
	Expander func(r *http.Request) func(template string) string
	// Blocks, if set, learns where every block came from, for metrics.
	Blocks hedge.Observer
	// Logger receives logs of failed and slow requests. Nil means none.
	Logger *zap.Logger
	// Subdomains are the hostnames (no port) of a subdomain gateway:
	// {cid}.ipfs.{host} and {name}.ipns.{host} each serve their content
	// at the root of an origin of its own, and {host}/ipfs/… and
	// {host}/ipns/… redirect there. Other hosts are path gateways.
	Subdomains []string
}

// Handler serves the content its resolvers name, fetching blocks through
// the hedge.
type Handler struct {
	clients    *clientLimit
	network    chan struct{} // a token per request let on the open network
	hedge      *hedge.Hedge
	local      hedge.Local
	streamer   *stream.RangeStreamer
	readahead  *stream.Readahead
	subdomains subdomains
	cfg        Config
	log        *zap.Logger
}

// NewHandler returns a Handler.
func NewHandler(cfg Config) (*Handler, error) {
	if cfg.Window <= 0 {
		cfg.Window = 16
	}
	if cfg.MaxWindow <= 0 {
		cfg.MaxWindow = 64
	}
	cfg.MaxWindow = max(cfg.MaxWindow, cfg.Window)
	if cfg.MaxLeavesInFlight <= 0 {
		cfg.MaxLeavesInFlight = 512
	}
	if cfg.Readahead == 0 {
		cfg.Readahead = 8
	}
	if cfg.MaxRanges <= 0 {
		cfg.MaxRanges = 32
	}
	if cfg.ResolveTimeout <= 0 {
		cfg.ResolveTimeout = 60 * time.Second
	}
	if cfg.StallTimeout <= 0 {
		cfg.StallTimeout = 30 * time.Second
	}
	if cfg.IndexCacheEntries <= 0 {
		cfg.IndexCacheEntries = 4096
	}
	if cfg.BudgetWait <= 0 {
		cfg.BudgetWait = 5 * time.Second
	}
	if cfg.MaxStreamsPerClient <= 0 {
		cfg.MaxStreamsPerClient = 64
	}
	if cfg.MaxNetworkRequests <= 0 {
		cfg.MaxNetworkRequests = 128
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.Observer == nil {
		cfg.Observer = nopObserver{}
	}
	if len(cfg.Resolvers) == 0 {
		return nil, fmt.Errorf("a gateway needs at least one resolver")
	}
	if cfg.Local == nil {
		return nil, fmt.Errorf("a gateway needs its local store")
	}
	sub, err := newSubdomains(cfg.Subdomains)
	if err != nil {
		return nil, err
	}
	hg, err := hedge.New(hedge.Config{
		Local:    cfg.Local,
		Sources:  cfg.Sources,
		Fleet:    cfg.Fleet,
		Flights:  cfg.Flights,
		Store:    cfg.Store,
		Observer: cfg.Blocks,
		Logger:   cfg.Logger,
	})
	if err != nil {
		return nil, err
	}
	idx, err := dag.NewIndex(cfg.IndexCacheEntries)
	if err != nil {
		return nil, err
	}
	h := &Handler{
		clients: &clientLimit{max: cfg.MaxStreamsPerClient, n: map[string]int{}},
		network: make(chan struct{}, cfg.MaxNetworkRequests),
		hedge:   hg,
		local:   cfg.Local,
		streamer: &stream.RangeStreamer{
			Index:        idx,
			Window:       cfg.Window,
			MinWindow:    min(4, cfg.Window),
			MaxWindow:    cfg.MaxWindow,
			StallTimeout: cfg.StallTimeout,
			Observer:     cfg.Observer,
			Budget:       make(chan struct{}, cfg.MaxLeavesInFlight),
			BudgetWait:   cfg.BudgetWait,
		},
		subdomains: sub,
		cfg:        cfg,
		log:        cfg.Logger,
	}
	if cfg.Readahead > 0 {
		h.readahead = stream.NewReadahead(idx, cfg.Readahead, cfg.StallTimeout)
	}
	return h, nil
}

// Hedge returns the handler's hedge, through which a fleet peer's want is
// served.
func (h *Handler) Hedge() *hedge.Hedge { return h.hedge }

// Denies reports whether a policy denies c: the node refuses to seed it.
func (h *Handler) Denies(c cid.Cid) bool { return deny(h.cfg.Policies, []cid.Cid{c}) != nil }

// serveRecord answers with the signed record behind the name r names.
func (h *Handler) serveRecord(w http.ResponseWriter, r *http.Request, start time.Time) {
	for _, res := range h.cfg.Resolvers {
		rr, ok := res.(RecordResolver)
		if !ok {
			continue
		}
		rec, ok, err := rr.Record(r)
		if err != nil {
			h.fail(w, r, err)
			return
		}
		if !ok {
			continue
		}
		name := r.URL.Query().Get("filename")
		if name == "" {
			name = rec.Name + ".ipns-record"
		}
		hdr := w.Header()
		hdr.Set("Content-Disposition", contentDisposition("attachment", name))
		hdr.Set("X-Content-Type-Options", "nosniff")
		hdr.Add("Vary", "Accept")
		sum := sha256.Sum256(rec.Data)
		rep := blockRepresentation(cid.Undef, rec.Data, `"`+hex.EncodeToString(sum[:16])+`.ipns-record"`, mediaIPNSRecord)
		rep.cacheControl = fmt.Sprintf("public, max-age=%d", int64(max(rec.TTL, time.Second)/time.Second))
		rep.started, rep.resolved = start, time.Since(start)
		h.serve(w, r, rep)
		return
	}
	writeError(w, http.StatusBadRequest, "format=ipns-record is for /ipns/{name} paths of names with records")
}

// holds reports whether the local store has block c.
func (h *Handler) holds(ctx context.Context, c cid.Cid) bool {
	_, err := h.local.Size(ctx, c)
	return err == nil
}

// resolve asks the resolvers in turn for the content r names.
func (h *Handler) resolve(r *http.Request) (Content, error) {
	for _, res := range h.cfg.Resolvers {
		c, ok, err := res.Resolve(r)
		if err != nil || ok {
			return c, err
		}
	}
	return Content{}, errNoContent
}

// Close stops the handler's background work (readahead) and waits for it.
func (h *Handler) Close() {
	if h.readahead != nil {
		h.readahead.Close()
	}
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	setCORS(w.Header())
	switch r.Method {
	case http.MethodGet, http.MethodHead:
	case http.MethodOptions:
		// A CORS preflight: the headers above are the answer.
		w.WriteHeader(http.StatusOK)
		return
	case http.MethodConnect:
		if h.subdomains.tunnel(r) {
			// RFC 9110 §9.3.6: the tunnel leads back here, where the
			// client then asks for a subdomain origin by its Host.
			w.WriteHeader(http.StatusOK)
			return
		}
		fallthrough
	default:
		w.Header().Set("Allow", "GET, HEAD, OPTIONS")
		writeError(w, http.StatusMethodNotAllowed, "method not allowed: use GET or HEAD")
		return
	}
	release, ok := h.clients.acquire(r.RemoteAddr)
	if !ok {
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusTooManyRequests, "too many requests in progress from this address")
		return
	}
	defer release()
	named, ok := h.subdomains.route(w, r)
	if !ok {
		return
	}
	if wantsRecord(named) {
		h.serveRecord(w, named, start)
		return
	}
	content, err := h.resolve(named)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if content.Serve != nil {
		h.serveElsewhere(w, r, content.Serve)
		return
	}
	if named != r {
		content.Site = true // a subdomain origin
	}
	root, segments := content.Root, content.Segments
	format, err := responseFormat(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	network, notHeld, err := decide(h.cfg.Policies, root)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	target := hedge.Target{Root: root, Path: r.URL.EscapedPath(), Made: content.Block}
	if h.cfg.Expander != nil {
		target.Expand = h.cfg.Expander(r)
	}
	if onlyIfCached(r) {
		// RFC 9111 §5.2.1.7: answer from what is stored, or not at all.
		target.StoreOnly, notHeld = true, errNotCached
	}
	resolving := func() {} // gives back the network token, once
	if network && !target.StoreOnly && target.Made == nil && !h.holds(r.Context(), root) {
		select {
		case h.network <- struct{}{}:
			var once sync.Once
			resolving = func() { once.Do(func() { <-h.network }) }
			defer resolving()
		default:
			w.Header().Set("Retry-After", "1")
			writeError(w, http.StatusServiceUnavailable, "too many requests for content this edge does not hold: try again shortly")
			return
		}
	}
	req, err := h.hedge.Open(target, network, notHeld)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	defer req.Release()

	var (
		rec      *recorder
		carP     carParams
		resolver dag.BlockGetter = req
	)
	if format == formatCAR {
		if carP, err = parseCARParams(r); err != nil {
			h.fail(w, r, err)
			return
		}
		rec = &recorder{g: req}
		resolver = rec
	}

	rctx, cancel := context.WithTimeout(r.Context(), h.cfg.ResolveTimeout)
	defer cancel()
	var files *dag.Index // a CAR response records every block the path reads
	if format == formatFile {
		files = h.streamer.Index
	}
	t, err := resolvePath(rctx, resolver, root, segments, format == formatFile, files)
	status := 0 // or, after a _redirects rule, the status it gives
	if errors.Is(err, errNoLink) && format == formatFile {
		// Only a path not found looks for a site's _redirects.
		if prefix, ok := sitePrefix(r, content); ok {
			var done bool
			if t, status, done, err = h.siteRedirects(rctx, w, r, resolver, root, prefix, err); done {
				return
			}
		}
	}
	if err == nil && status == 0 && (t.dir || t.listing) && !strings.HasSuffix(r.URL.Path, "/") {
		// Relative links inside index.html need the trailing slash.
		u := *r.URL
		u.Path += "/"
		u.RawPath = ""
		http.Redirect(w, r, u.String(), http.StatusMovedPermanently)
		return
	}
	if err == nil {
		err = deny(h.cfg.Policies, t.roots[1:])
		if err == nil && t.cid != t.roots[len(t.roots)-1] {
			err = deny(h.cfg.Policies, []cid.Cid{t.cid})
		}
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	hdr := w.Header()
	if content.Path != "" {
		hdr.Set("X-Ipfs-Path", content.Path)
	} else {
		hdr.Set("X-Ipfs-Path", named.URL.EscapedPath())
	}
	hdr.Set("X-Ipfs-Roots", joinCIDs(t.roots))

	var rep representation
	switch format {
	case formatCAR:
		cancel()
		h.serveCAR(w, r, rec.g, root, rec.blocks, t, carP)
		return
	case formatRaw:
		rep, err = h.rawBlock(rctx, w, r, resolver, t)
	case formatDAG:
		rep, err = h.serveDAG(rctx, w, r, resolver, t.cid)
	case formatTAR:
		cancel()
		if err := h.serveTAR(r.Context(), w, r, resolver, t); err != nil {
			h.fail(w, r, err)
		}
		return
	case formatFile:
		if _, doc := codecFamily(t.cid.Prefix().Codec); doc {
			rep, err = h.serveDAG(rctx, w, r, resolver, t.cid)
			break
		}
		if t.symlink != nil {
			rep = blockRepresentation(t.cid, t.symlink, `"`+t.cid.String()+`"`, "inode/symlink")
			break
		}
		if t.listing {
			links := listingLinks{contentPath: hdr.Get("X-Ipfs-Path")}
			switch {
			case named != r:
				links.gateway = "//" + named.Host
			case content.Site:
				links.site = "//" + r.Host
			}
			err = h.serveListing(rctx, w, r, resolver, t, links)
			if err != nil {
				h.fail(w, r, err)
			}
			return
		}
		rep, err = h.unixfsFile(rctx, w, r, t, req, !target.StoreOnly)
	}
	cancel()
	if err != nil {
		h.fail(w, r, err)
		return
	}
	rep.started, rep.resolved, rep.ttl, rep.status = start, time.Since(start), content.TTL, status
	// Resolved: from here the leaf budget and the client's share of
	// streams bound what the response costs, so a slow reader does not
	// keep the token. (CAR and TAR responses walk the DAG from the
	// network to their end, and keep it.)
	resolving()
	h.serve(w, r, rep)
}

// fail answers a request that failed before its headers were sent.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	if r.Context().Err() != nil {
		return // the client is gone
	}
	status, msg := statusOf(err)
	if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	if status >= 500 {
		h.log.Warn("request failed", zap.String("path", r.URL.Path), zap.Int("status", status), zap.Error(err))
	}
	writeError(w, status, msg)
}

// serveElsewhere answers r with a resolver's own handler (a URL that names
// no CID yet, proxied from its origin), and counts its body as delivered
// from the origin, even when it is cut short.
func (h *Handler) serveElsewhere(w http.ResponseWriter, r *http.Request, serve http.Handler) {
	if h.cfg.Blocks == nil {
		serve.ServeHTTP(w, r)
		return
	}
	c := &bodyCounter{ResponseWriter: w}
	defer func() { h.cfg.Blocks.Delivered("origin", int(c.n), 0) }()
	serve.ServeHTTP(c, r)
}

// bodyCounter counts the body bytes written through it.
type bodyCounter struct {
	http.ResponseWriter
	n int64
}

// Write implements http.ResponseWriter.
func (c *bodyCounter) Write(b []byte) (int, error) {
	n, err := c.ResponseWriter.Write(b)
	c.n += int64(n)
	return n, err
}

// Flush implements http.Flusher.
func (c *bodyCounter) Flush() { _ = http.NewResponseController(c.ResponseWriter).Flush() }

// Unwrap lets http.ResponseController reach the writer underneath.
func (c *bodyCounter) Unwrap() http.ResponseWriter { return c.ResponseWriter }
