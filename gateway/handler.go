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
package gateway

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/pacman-cdn/pacman/dag"
	"github.com/pacman-cdn/pacman/gateway/headers"
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
	held, err := h.local.Has(ctx, c)
	return err == nil && held
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
		content.Serve.ServeHTTP(w, r)
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

// unixfsFile describes the UnixFS file t names, whose blocks req fetches;
// with readahead set, the leaves after each range are fetched too.
func (h *Handler) unixfsFile(ctx context.Context, w http.ResponseWriter, r *http.Request, t target, req *hedge.Request, readahead bool) (representation, error) {
	size, err := h.streamer.Index.Size(ctx, req, t.cid)
	if err != nil {
		return representation{}, err
	}
	name := t.name
	if q := r.URL.Query().Get("filename"); q != "" && name == "" {
		// As on other IPFS gateways: a bare CID can be given a file name,
		// for its media type and for browsers that save it.
		// With ?download=true browsers save it rather than show it.
		name = q
		disposition := "inline"
		if r.URL.Query().Get("download") == "true" {
			disposition = "attachment"
		}
		w.Header().Set("Content-Disposition", contentDisposition(disposition, q))
	}
	if name == "" {
		// A friendly name (a catalog's /videos/movie.mp4) gives its own
		// extension; a bare CID has none.
		name = path.Base(r.URL.Path)
	}
	etagCID := t.cid
	if t.dir {
		// A directory served by its index.html is named by the directory.
		etagCID = t.roots[len(t.roots)-1]
	}
	return representation{
		size: size,
		etag: `"` + etagCID.String() + `"`,
		contentType: func(ranges []headers.Range) (string, error) {
			return h.contentType(r, req, t.cid, name, size, ranges)
		},
		stream: func(ctx context.Context, spans []stream.Span, first *stream.FirstLeaf, begin func(int) (io.Writer, error)) error {
			return h.streamer.Stream(ctx, req, t.cid, spans, first, begin)
		},
		served: func(end int64) {
			if h.readahead != nil && readahead {
				h.readahead.Start(req, t.cid, end, size)
			}
		},
		cid: t.cid,
	}, nil
}

// representation is what a response carries, whatever its format: the
// metadata for headers and preconditions, and how to stream byte spans.
type representation struct {
	cid  cid.Cid
	size int64
	etag string
	// contentType returns the media type; it may look at the first bytes
	// when the response starts at byte 0.
	contentType func(ranges []headers.Range) (string, error)
	// stream writes spans, calling begin before each, and records how
	// the first leaf was obtained in first.
	stream func(ctx context.Context, spans []stream.Span, first *stream.FirstLeaf, begin func(int) (io.Writer, error)) error
	// served, if set, is called after a complete response that ended at
	// byte end.
	served func(end int64)
	// started is when the request arrived; resolved is how long finding
	// the content and its size took.
	started  time.Time
	resolved time.Duration
	// ttl is how long the name resolved may be cached; zero for a URL
	// that names the content itself.
	ttl time.Duration
	// cacheControl, if set, is the response's Cache-Control, for pages
	// the gateway renders (they change with the gateway, not the content).
	cacheControl string
	// status, unless zero or 200, is an error status the representation
	// is a custom page for: it is sent whole, without preconditions or
	// ranges.
	status int
}

// serve answers a GET or HEAD of rep, following RFC 9110: preconditions in
// the order of §13.2.2, then Range (§14.2) unless If-Range fails (§13.1.5).
func (h *Handler) serve(w http.ResponseWriter, r *http.Request, rep representation) {
	hdr := w.Header()
	hdr.Set("Etag", rep.etag)
	switch {
	case rep.cacheControl != "":
		hdr.Set("Cache-Control", rep.cacheControl)
	case rep.ttl > 0:
		// A mutable name: caches revalidate it by its ETag, the CID.
		hdr.Set("Cache-Control", fmt.Sprintf("public, max-age=%d", int64(rep.ttl/time.Second)))
	default:
		hdr.Set("Cache-Control", "public, max-age=29030400, immutable")
	}

	page := rep.status != 0 && rep.status != http.StatusOK
	// §13.1.1 If-Match: strong comparison; 412 when nothing matches.
	if im := r.Header.Get("If-Match"); !page && im != "" && !headers.ETagMatch(im, rep.etag, false) {
		writeError(w, http.StatusPreconditionFailed, "If-Match does not match the content's ETag")
		return
	}
	// §13.1.2 If-None-Match: weak comparison; 304 for GET and HEAD.
	if inm := r.Header.Get("If-None-Match"); !page && inm != "" && headers.ETagMatch(inm, rep.etag, true) {
		w.WriteHeader(http.StatusNotModified)
		return
	}

	var ranges []headers.Range
	var err error
	if !page {
		hdr.Set("Accept-Ranges", "bytes")
		ranges, err = h.ranges(r, rep)
	}
	if err != nil {
		hdr.Set("Content-Range", fmt.Sprintf("bytes */%d", rep.size))
		writeError(w, http.StatusRequestedRangeNotSatisfiable, err.Error())
		return
	}

	ctype, err := rep.contentType(ranges)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if scriptable(ctype) {
		// Every page a path gateway serves shares its origin: content
		// that runs scripts gets an opaque origin of its own, so it
		// cannot read the gateway's cookies or storage, nor another
		// page's.
		hdr.Set("Content-Security-Policy", sandboxPolicy)
	}

	// Each write must be taken within StallTimeout: a client that stops
	// reading gives back the leaves it holds instead of keeping them.
	out := &deadlineWriter{w: w, rc: http.NewResponseController(w), timeout: h.cfg.StallTimeout}
	defer out.clear()
	var (
		spans  []stream.Span
		status = http.StatusOK
		length = rep.size
		begin  func(i int) (io.Writer, error)
		finish = func() error { return nil }
	)
	if page {
		status = rep.status
	}
	switch len(ranges) {
	case 0:
		spans = []stream.Span{{Start: 0, End: rep.size}}
		hdr.Set("Content-Type", ctype)
		begin = func(int) (io.Writer, error) { return out, nil }
	case 1:
		ra := ranges[0]
		spans = []stream.Span{{Start: ra.Start, End: ra.Start + ra.Length}}
		status, length = http.StatusPartialContent, ra.Length
		hdr.Set("Content-Type", ctype)
		hdr.Set("Content-Range", ra.ContentRange(rep.size))
		begin = func(int) (io.Writer, error) { return out, nil }
	default:
		status = http.StatusPartialContent
		mw := multipart.NewWriter(out)
		length = multipartSize(ranges, mw.Boundary(), ctype, rep.size)
		hdr.Set("Content-Type", "multipart/byteranges; boundary="+mw.Boundary())
		for _, ra := range ranges {
			spans = append(spans, stream.Span{Start: ra.Start, End: ra.Start + ra.Length})
		}
		begin = func(i int) (io.Writer, error) { return mw.CreatePart(ranges[i].MIMEHeader(ctype, rep.size)) }
		finish = mw.Close
	}
	hdr.Set("Content-Length", strconv.FormatInt(length, 10))
	if r.Method == http.MethodHead {
		w.WriteHeader(status)
		return
	}

	// Headers go out with the first byte, so a first leaf that never
	// arrives is answered with a clean error status.
	sent := false
	var first stream.FirstLeaf
	err = rep.stream(r.Context(), spans, &first, func(i int) (io.Writer, error) {
		if !sent {
			sent = true
			// Server-Timing (W3C): where the time to first byte went,
			// down to the source of the first leaf. Headers leave with
			// the first byte, so later leaves cannot be reported here.
			ttfb := time.Since(rep.started)
			timing := fmt.Sprintf("resolve;dur=%.1f, first-byte;dur=%.1f", ms(rep.resolved), ms(ttfb))
			if first.Source != "" {
				timing += fmt.Sprintf(", %s;dur=%.1f;desc=\"first leaf\"", first.Source, ms(first.Wait))
			}
			hdr.Set("Server-Timing", timing)
			h.cfg.Observer.FirstByte(ttfb)
			w.WriteHeader(status)
		}
		return begin(i)
	})
	if err == nil {
		err = finish()
	}
	if err != nil && !sent {
		for _, k := range []string{"Content-Length", "Content-Range", "Content-Disposition", "Etag", "Accept-Ranges", "Cache-Control"} {
			hdr.Del(k)
		}
		h.fail(w, r, err)
		return
	}
	if err != nil {
		// Headers are sent: the client detects the failure by a body
		// shorter than Content-Length.
		if r.Context().Err() == nil {
			h.log.Warn("stream cut short",
				zap.Stringer("cid", rep.cid), zap.String("range", r.Header.Get("Range")), zap.Error(err))
		}
		return
	}
	if rep.served != nil {
		rep.served(spans[len(spans)-1].End)
	}
}

// ranges returns the ranges to serve: none for a full response.
func (h *Handler) ranges(r *http.Request, rep representation) ([]headers.Range, error) {
	rh := r.Header.Get("Range")
	if rh == "" {
		return nil, nil
	}
	// §13.1.5 If-Range: serve the full content unless the validator is a
	// strong match. We send no Last-Modified, so a date never matches.
	if ir := r.Header.Get("If-Range"); ir != "" && !(strings.HasPrefix(ir, `"`) && ir == rep.etag) {
		return nil, nil
	}
	ranges, ignore, err := headers.ParseRange(rh, rep.size, h.cfg.MaxRanges)
	if err != nil {
		return nil, err
	}
	if ignore {
		return nil, nil
	}
	if len(ranges) > 1 && headers.SumLength(ranges) > rep.size {
		// As net/http does: requests for more bytes than the content in
		// many small pieces are an amplification attack; send it once.
		return nil, nil
	}
	return ranges, nil
}

// contentType picks the media type from the file name's extension, and else
// sniffs the first 512 bytes, but only when the response starts at byte 0:
// sniffing a mid-file seek would fetch a leaf the client did not ask for.
func (h *Handler) contentType(r *http.Request, g stream.Getter, c cid.Cid, name string, size int64, ranges []headers.Range) (string, error) {
	if ct := typeByName(name); ct != "" {
		return ct, nil
	}
	if size == 0 || (len(ranges) > 0 && ranges[0].Start != 0) {
		return "application/octet-stream", nil
	}
	ctx, cancel := context.WithTimeout(r.Context(), h.cfg.ResolveTimeout)
	defer cancel()
	var head []byte
	for leaf, err := range h.streamer.Index.Leaves(ctx, g, c, 0, 1) {
		if err != nil {
			return "", err
		}
		head = leaf.Data
		if head == nil {
			blk, err := g.Get(ctx, hedge.Want{Cid: leaf.Cid, Offset: leaf.Offset, Size: leaf.Size, Reason: hedge.ForIndex})
			if err != nil {
				return "", err
			}
			head = blk.RawData()
		}
	}
	ctype := http.DetectContentType(head[:min(len(head), 512)])
	if strings.HasPrefix(ctype, "text/plain") && int64(len(head)) == size && json.Valid(head) {
		// Much JSON is stored as plain UnixFS files without a name.
		ctype = "application/json"
	}
	return ctype, nil
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

// multipartSize returns the exact body length of a multipart/byteranges
// response, so it can be sent as Content-Length.
func multipartSize(ranges []headers.Range, boundary, ctype string, size int64) int64 {
	var cw countingWriter
	mw := multipart.NewWriter(&cw)
	_ = mw.SetBoundary(boundary) // a boundary multipart.NewWriter chose is valid
	for _, ra := range ranges {
		_, _ = mw.CreatePart(ra.MIMEHeader(ctype, size))
		cw += countingWriter(ra.Length)
	}
	_ = mw.Close()
	return int64(cw)
}

// countingWriter counts the bytes written to it.
type countingWriter int64

func (w *countingWriter) Write(p []byte) (int, error) {
	*w += countingWriter(len(p))
	return len(p), nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

var _ http.Handler = (*Handler)(nil)
