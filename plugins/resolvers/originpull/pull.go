// Package originpull is the pacman.resolvers.origin_pull module: it puts
// an edge in front of an existing HTTP origin (a bucket, a plain web
// server) with no CIDs to hand out and no import step.
//
// The life of a URL:
//   - cold: the edge knows no CID for it. The whole file is pulled once in
//     the background with the importer `caddy pacman add` uses, and the
//     cold requests, Range and all, are served from the pull's body as it
//     arrives (a spool), so viewers who start a file together cost the
//     origin one copy of it. A request the spool cannot serve soon (a seek
//     far past what has arrived, a conditional request, several ranges) is
//     proxied from the origin;
//   - warm: the pull has kept the file's CID and the origin's validators.
//     The URL is served like /ipfs/{cid}, from the store, with the CID as
//     its ETag and the origin's max-age;
//   - revalidated: at most every Revalidate, a conditional request asks
//     the origin whether the file changed. A changed file is cold again
//     until its new version is pulled, and a file gone from the origin is
//     404. A response is served from the CID it started with to its end,
//     so none mixes old and new bytes.
package originpull

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	"github.com/pacman-cdn/pacman/gateway"
	"github.com/pacman-cdn/pacman/httpurl"
	"go.uber.org/zap"
)

// Config configures a Puller.
type Config struct {
	// Origin is the origin's base URL: a request's path is appended to
	// it. Required.
	Origin string
	// Dir keeps the records of the URLs pulled, and the bodies of the
	// pulls under way. Required.
	Dir string
	// Records are the records of the URLs pulled, shared by the pullers
	// of one data directory; Close leaves them open. Default: the
	// puller's own, opened in Dir.
	Records *Records
	// Import stores a file's bytes as a UnixFS DAG and returns its root,
	// as `caddy pacman add` does. Required.
	Import func(ctx context.Context, r io.Reader) (cid.Cid, error)
	// Store is the edge's blockstore: a URL is warm once it holds the
	// file's root, and a record a member tells comes with the file's
	// index, fetched into it. Required.
	Store Store
	// Client makes the origin requests. Default: one that follows
	// redirects only on the origin's own host.
	Client *http.Client
	// Revalidate is how long the origin's word on a URL holds before it
	// is asked again. Default 1m.
	Revalidate time.Duration
	// MaxPulls bounds the files pulled at once; a URL that finds them all
	// busy is proxied, and pulled on a later request. Default 4.
	MaxPulls int
	// MaxPullSize is the largest file pulled; larger ones are only
	// proxied. Default 8 GiB.
	MaxPullSize int64
	// Fleet, if set, is the edges that share this one's origin: the
	// member that owns a URL pulls it once for all of them, and tells the
	// others its CID.
	Fleet Fleet
	// Observer, if set, learns what the puller takes from the origin.
	Observer Observer
	// Log says what the puller did. Default: nothing.
	Log *zap.Logger
}

// Observer learns what a puller takes from its origin, for metrics. Its
// methods are called on serving goroutines and must be quick.
type Observer interface {
	// OriginBytes counts body bytes from the origin, by reason: "proxy"
	// for cold responses, "pull" for pulls.
	OriginBytes(reason string, n int64)
	// Pulled counts a pull as it starts (result "") and as it ends, with
	// its result: "pulled", "not_kept" (private, no-store, too large) or
	// "failed".
	Pulled(result string)
	// Changed counts a pulled file the origin changed under the same
	// validators (a leaf fetched by range did not match its CID).
	Changed()
}

// nopObserver observes nothing.
type nopObserver struct{}

func (nopObserver) OriginBytes(string, int64) {}
func (nopObserver) Pulled(string)             {}
func (nopObserver) Changed()                  {}

// Store is the blocks an edge holds (boxo's blockstore.Blockstore).
type Store interface {
	Has(ctx context.Context, c cid.Cid) (bool, error)
	Get(ctx context.Context, c cid.Cid) (blocks.Block, error)
	Put(ctx context.Context, b blocks.Block) error
}

// Fleet is the edges that share an origin (package fleet's Fleet).
type Fleet interface {
	// Ask asks the member that owns name what it knows of it; mine is
	// true when this edge owns it (or is alone), and then the member
	// that owned it before this edge joined is asked instead. known is
	// false when the member asked does not know it.
	Ask(ctx context.Context, name string) (answer []byte, mine, known bool, err error)
	// Body asks the member that owns name for the body it is pulling,
	// as it arrives; found is false when it has none.
	Body(ctx context.Context, name string) (head []byte, body io.ReadCloser, asked, found bool, err error)
	// Tell tells every member this edge's word on name, signed: the
	// record of a URL it pulled.
	Tell(ctx context.Context, name string, answer []byte) (told int, err error)
}

// Puller resolves the URLs of one origin: warm ones to their CIDs, cold
// ones to a proxy of the origin while it pulls them.
type Puller struct {
	cfg        Config
	base       string   // the origin's URL, ending in /
	origin     *url.URL // its scheme and host
	records    *Records
	ownRecords bool          // opened by New, closed by Close
	spools     string        // the directory of the pulls' spooled bodies
	pulls      chan struct{} // one token per pull running

	ctx    context.Context // ends at Close, and with it every pull
	cancel context.CancelFunc
	wg     sync.WaitGroup // the pulls

	mu sync.Mutex // guards the maps below
	// pulling are the pulls under way, each with its body as it
	// arrives, which cold requests for the URL read.
	pulling map[string]*spool
	// relays are the bodies streamed from the URLs' owners as they pull
	// them, which cold requests here read; relaying holds one token
	// per relay.
	relays   map[string]*spool
	relaying chan struct{}
	checking map[string]*check
	// indexing holds one token per told file whose index is fetched.
	indexing chan struct{}
	// unpulled are URLs the origin said not to keep (no-store, private,
	// too large), and when it said so: they are proxied until
	// Revalidate has passed.
	unpulled map[string]time.Time
}

// check is one revalidation of a URL that requests wait on.
type check struct {
	done chan struct{}
	rec  Record
	ok   bool
	err  error
}

// errGone says the origin no longer has a URL's file.
var errGone = errors.New("gone from the origin")

// New returns a puller of cfg.Origin.
func New(cfg Config) (*Puller, error) {
	u, err := httpurl.Parse(cfg.Origin)
	if err != nil {
		return nil, fmt.Errorf("origin_pull: %w", err)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("origin_pull: %q: the origin is a base URL, with no query or fragment", cfg.Origin)
	}
	if cfg.Dir == "" || cfg.Import == nil || cfg.Store == nil {
		return nil, fmt.Errorf("origin_pull: a records directory, an importer and the store are required")
	}
	if cfg.Revalidate == 0 {
		cfg.Revalidate = time.Minute
	}
	if cfg.MaxPulls == 0 {
		cfg.MaxPulls = 4
	}
	if cfg.MaxPullSize == 0 {
		cfg.MaxPullSize = 8 << 30
	}
	if cfg.Revalidate < 0 || cfg.MaxPulls < 0 || cfg.MaxPullSize < 0 {
		return nil, fmt.Errorf("origin_pull: revalidate, max_pulls and max_pull_size must not be negative")
	}
	if cfg.Log == nil {
		cfg.Log = zap.NewNop()
	}
	if cfg.Observer == nil {
		cfg.Observer = nopObserver{}
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if req.URL.Scheme != u.Scheme || req.URL.Host != u.Host || len(via) >= 5 {
				return fmt.Errorf("the origin redirected to %s: only its own host is followed", req.URL.Redacted())
			}
			return nil
		}}
	}
	rs, own := cfg.Records, cfg.Records == nil
	if own {
		var err error
		if rs, err = OpenRecords(cfg.Dir, nil); err != nil {
			return nil, err
		}
	}
	spools, err := spoolDir(cfg.Dir)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Puller{
		cfg: cfg, base: strings.TrimSuffix(u.String(), "/") + "/", origin: u, records: rs, ownRecords: own, spools: spools,
		pulls: make(chan struct{}, cfg.MaxPulls), ctx: ctx, cancel: cancel,
		pulling: map[string]*spool{}, relays: map[string]*spool{}, relaying: make(chan struct{}, cfg.MaxPulls), indexing: make(chan struct{}, cfg.MaxPulls), checking: map[string]*check{}, unpulled: map[string]time.Time{},
	}, nil
}

// Close stops the pulls under way and waits for them; what they stored is
// the cache's to evict.
func (p *Puller) Close() {
	p.cancel()
	p.wg.Wait()
	if p.ownRecords {
		p.records.Close()
	}
}

// Resolve implements gateway.Resolver: every request is the origin's.
func (p *Puller) Resolve(r *http.Request) (gateway.Content, bool, error) {
	path := r.URL.EscapedPath()
	if !httpurl.SafePath(path) {
		return gateway.Content{}, true, gateway.Errorf(http.StatusBadRequest, "the path names a file outside the origin's")
	}
	u := p.base + strings.TrimPrefix(path, "/")
	rec, ok := p.records.get(u)
	if ok && time.Since(rec.Checked) >= p.cfg.Revalidate {
		var err error
		if rec, ok, err = p.revalidate(r.Context(), rec); errors.Is(err, errGone) {
			return gateway.Content{}, true, gateway.Errorf(http.StatusNotFound, "not found at the origin")
		}
	}
	held := ok && p.has(r.Context(), rec.Root)
	pullHere := true
	if !held && p.cfg.Fleet != nil {
		// The URL's owner may have pulled it for the fleet (it
		// revalidates what it tells): its blocks then come from the
		// members that hold them.
		var told bool
		rec, told, pullHere = p.ask(r.Context(), u)
		ok, held = told, told
	}
	if ok && held {
		ttl := p.cfg.Revalidate
		if rec.MaxAge > 0 {
			ttl = rec.MaxAge
		}
		return gateway.Content{Root: rec.Root, TTL: max(ttl, time.Second), Path: "/ipfs/" + rec.Root.String()}, true, nil
	}
	if r.Method == http.MethodGet {
		if pullHere {
			p.pull(u)
		} else {
			p.relay(u) // the owner pulls it
		}
	}
	return gateway.Content{Serve: p.cold(u)}, true, nil
}

// cold answers a request for u, which the edge does not hold: from the
// body of u's pull as it arrives (the pull here, or the owner's relayed),
// if one is under way and can serve the request soon, else from the
// origin.
func (p *Puller) cold(u string) http.Handler {
	proxy := p.proxy(u)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		sp := p.pulling[u]
		if sp == nil {
			sp = p.relays[u]
		}
		if sp != nil {
			sp.acquire()
		}
		p.mu.Unlock()
		if sp != nil {
			defer sp.release()
			if sp.serve(w, r) {
				return
			}
		}
		proxy.ServeHTTP(w, r)
	})
}

// askTimeout bounds the question to a URL's owner, which a cold request
// waits on.
const askTimeout = 2 * time.Second

// ask asks the fleet member that owns u for its record. told reports a
// record it has pulled; pullHere that this edge must pull u itself: it
// owns u (and the member that owned it before did not know it), or the
// owner did not answer. An owner that does not know u pulls it, for the
// fleet.
func (p *Puller) ask(ctx context.Context, u string) (rec Record, told, pullHere bool) {
	ctx, cancel := context.WithTimeout(ctx, askTimeout)
	defer cancel()
	answer, mine, known, err := p.cfg.Fleet.Ask(ctx, u)
	switch {
	case err != nil:
		p.cfg.Log.Debug("the URL's owner did not answer: pulling it here", zap.String("url", u), zap.Error(err))
		return Record{}, false, true
	case !known:
		return Record{}, false, mine
	}
	if json.Unmarshal(answer, &rec) != nil || rec.URL != u || !rec.Root.Defined() || rec.Size < 0 {
		p.cfg.Log.Warn("a fleet member answered a URL with a malformed record: pulling it here", zap.String("url", u))
		return Record{}, false, true
	}
	if err := p.records.put(rec); err != nil {
		p.cfg.Log.Warn("keeping a fleet member's record", zap.Error(err))
	}
	return rec, true, false
}

// Purge marks stale the records of this origin's URLs that start with
// prefix (a URL, or a part of one), so that the next request for each
// revalidates it, and returns how many it marked.
func (p *Puller) Purge(prefix string) int {
	if !strings.HasPrefix(prefix, p.base) && !strings.HasPrefix(p.base, prefix) {
		return 0
	}
	n, err := p.records.stale(prefix)
	if err != nil {
		p.cfg.Log.Warn("purging", zap.String("prefix", prefix), zap.Error(err))
	}
	return n
}

// Answer answers a fleet member's question about a URL of this origin:
// its record, revalidated if stale, once the file is pulled and held
// here. A URL not known yet, or changed, is pulled, for the fleet, when
// fill says the asker leaves it to this edge; a member that took the URL
// over from this edge (handover) pulls it itself.
func (p *Puller) Answer(ctx context.Context, u string, fill bool) ([]byte, bool) {
	path, ok := strings.CutPrefix(u, p.base)
	if !ok || !httpurl.SafePath("/"+path) {
		return nil, false
	}
	if rec, ok := p.records.get(u); ok {
		if time.Since(rec.Checked) >= p.cfg.Revalidate {
			rec, ok, _ = p.revalidate(ctx, rec)
		}
		if ok && p.has(ctx, rec.Root) {
			data, err := json.Marshal(rec)
			return data, err == nil
		}
	}
	if fill {
		p.pull(u)
	}
	return nil, false
}

// revalidate asks the origin whether rec still holds, once for all the
// requests that find it stale together. It returns the record that holds
// now and true, false if the file changed, or errGone. An origin that
// cannot answer leaves the record as it is for another Revalidate.
func (p *Puller) revalidate(ctx context.Context, rec Record) (Record, bool, error) {
	p.mu.Lock()
	if c, ok := p.checking[rec.URL]; ok {
		p.mu.Unlock()
		select {
		case <-c.done:
			return c.rec, c.ok, c.err
		case <-ctx.Done():
			return rec, true, nil
		}
	}
	c := &check{done: make(chan struct{})}
	p.checking[rec.URL] = c
	p.mu.Unlock()
	c.rec, c.ok, c.err = p.conditional(ctx, rec)
	p.mu.Lock()
	delete(p.checking, rec.URL)
	p.mu.Unlock()
	close(c.done)
	return c.rec, c.ok, c.err
}

// conditional sends rec's conditional request.
func (p *Puller) conditional(ctx context.Context, rec Record) (Record, bool, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rec.URL, nil)
	if err != nil {
		return rec, true, err
	}
	if rec.ETag != "" {
		req.Header.Set("If-None-Match", rec.ETag)
	} else if rec.LastModified != "" {
		req.Header.Set("If-Modified-Since", rec.LastModified)
	}
	req.Header.Set("Accept-Encoding", "identity")
	resp, err := p.cfg.Client.Do(req)
	if err != nil {
		p.cfg.Log.Warn("origin did not answer a revalidation: serving what the edge holds", zap.String("url", rec.URL), zap.Error(err))
		return p.keep(rec)
	}
	resp.Body.Close() // a changed file is pulled afresh
	switch {
	case resp.StatusCode == http.StatusNotModified,
		resp.StatusCode == http.StatusOK && sameValidators(rec, resp.Header):
		if ma, ok := maxAge(resp.Header); ok {
			rec.MaxAge = ma
		}
		return p.keep(rec)
	case resp.StatusCode == http.StatusOK:
		p.cfg.Log.Info("origin file changed: pulling it again", zap.String("url", rec.URL), zap.Stringer("was", rec.Root))
		return rec, false, p.records.drop(rec.URL)
	case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusGone:
		p.cfg.Log.Info("origin file gone", zap.String("url", rec.URL), zap.Stringer("was", rec.Root))
		return rec, false, errors.Join(errGone, p.records.drop(rec.URL))
	default:
		p.cfg.Log.Warn("origin answered a revalidation with an error: serving what the edge holds", zap.String("url", rec.URL), zap.Int("status", resp.StatusCode))
		return p.keep(rec)
	}
}

// keep records that rec held when asked now.
func (p *Puller) keep(rec Record) (Record, bool, error) {
	rec.Checked = time.Now()
	if err := p.records.put(rec); err != nil {
		p.cfg.Log.Warn("keeping a revalidated record", zap.Error(err))
	}
	return rec, true, nil
}

// sameValidators reports whether h names the bytes rec was pulled from: an
// origin that ignores conditional requests answers 200 for them.
func sameValidators(rec Record, h http.Header) bool {
	if etag := h.Get("ETag"); etag != "" || rec.ETag != "" {
		return etag == rec.ETag && !strings.HasPrefix(etag, "W/")
	}
	return rec.LastModified != "" && h.Get("Last-Modified") == rec.LastModified
}

// maxAge returns the max-age of h's Cache-Control.
func maxAge(h http.Header) (time.Duration, bool) {
	for _, d := range strings.Split(h.Get("Cache-Control"), ",") {
		name, value, _ := strings.Cut(strings.TrimSpace(d), "=")
		if strings.EqualFold(name, "max-age") {
			if s, err := strconv.ParseUint(strings.Trim(value, `"`), 10, 32); err == nil {
				return time.Duration(s) * time.Second, true
			}
		}
	}
	return 0, false
}

// unkept reports a response the origin says must not be kept for others.
func unkept(h http.Header) bool {
	for _, d := range strings.Split(h.Get("Cache-Control"), ",") {
		switch strings.ToLower(strings.TrimSpace(strings.SplitN(d, "=", 2)[0])) {
		case "no-store", "private":
			return true
		}
	}
	return false
}

// pull starts pulling u in the background, unless it is being pulled,
// the origin said not to, or every pull is busy.
func (p *Puller) pull(u string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if at, ok := p.unpulled[u]; ok {
		if time.Since(at) < p.cfg.Revalidate {
			return
		}
		delete(p.unpulled, u)
	}
	if p.pulling[u] != nil || p.ctx.Err() != nil {
		return
	}
	sp := p.newSpool(p.pulls, u) // all busy: a later request pulls it
	if sp == nil {
		return
	}
	p.pulling[u] = sp
	p.wg.Add(1)
	p.cfg.Observer.Pulled("")
	go func() {
		defer p.wg.Done()
		rec, err := p.fetch(u, sp)
		sp.end(err)
		p.mu.Lock()
		delete(p.pulling, u)
		sp.release()
		if errors.Is(err, errUnkept) {
			if len(p.unpulled) >= rememberedRecords {
				clear(p.unpulled)
			}
			p.unpulled[u] = time.Now()
		}
		p.mu.Unlock()
		<-p.pulls
		switch {
		case errors.Is(err, errUnkept):
			p.cfg.Observer.Pulled("not_kept")
			p.cfg.Log.Info("not pulled: only proxied", zap.String("url", u), zap.Error(err))
		case err != nil:
			p.cfg.Observer.Pulled("failed")
			p.cfg.Log.Warn("pulling from the origin failed: the URL stays proxied", zap.String("url", u), zap.Error(err))
		default:
			p.cfg.Observer.Pulled("pulled")
			p.cfg.Log.Info("pulled from the origin", zap.String("url", u), zap.Stringer("cid", rec.Root), zap.Int64("bytes", rec.Size))
			p.tell(rec)
		}
	}()
}

// errUnkept says the origin's file is one not to pull.
var errUnkept = errors.New("the origin's file is not to be kept")

// fetch pulls u whole into sp and the store, and records it.
func (p *Puller) fetch(u string, sp *spool) (Record, error) {
	req, err := http.NewRequestWithContext(p.ctx, http.MethodGet, u, nil)
	if err != nil {
		return Record{}, err
	}
	req.Header.Set("Accept-Encoding", "identity")
	asked := time.Now()
	resp, err := p.cfg.Client.Do(req)
	if err != nil {
		return Record{}, err
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode != http.StatusOK:
		return Record{}, fmt.Errorf("origin answered %s", resp.Status)
	case unkept(resp.Header):
		return Record{}, fmt.Errorf("%w: Cache-Control %q", errUnkept, resp.Header.Get("Cache-Control"))
	case resp.ContentLength > p.cfg.MaxPullSize:
		return Record{}, fmt.Errorf("%w: %d bytes, over max_pull_size %d", errUnkept, resp.ContentLength, p.cfg.MaxPullSize)
	}
	sp.open(resp.Header, resp.ContentLength, time.Since(asked))
	rest := newResumingBody(p.ctx, p, u, resp)
	defer rest.Close()
	body := &countingReader{r: io.TeeReader(io.LimitReader(rest, p.cfg.MaxPullSize+1), sp)}
	root, err := p.cfg.Import(p.ctx, body)
	p.cfg.Observer.OriginBytes("pull", body.n)
	switch {
	case err != nil:
		// A body shorter than its Content-Length, that could not be
		// resumed, ends here too (io.ErrUnexpectedEOF): nothing is
		// recorded.
		return Record{}, fmt.Errorf("importing %d bytes: %w", body.n, err)
	case body.n > p.cfg.MaxPullSize:
		return Record{}, fmt.Errorf("%w: over max_pull_size %d", errUnkept, p.cfg.MaxPullSize)
	case resp.ContentLength >= 0 && body.n != resp.ContentLength:
		return Record{}, fmt.Errorf("the origin sent %d bytes of the %d it announced", body.n, resp.ContentLength)
	}
	rec := Record{URL: u, Root: root, ETag: resp.Header.Get("ETag"), LastModified: resp.Header.Get("Last-Modified"), Size: body.n, Checked: time.Now()}
	rec.MaxAge, _ = maxAge(resp.Header)
	return rec, p.records.put(rec)
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.n += int64(n)
	return n, err
}

// Interface guard.
var _ gateway.Resolver = (*Puller)(nil)
