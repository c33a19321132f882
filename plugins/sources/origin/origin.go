// Package origin is the pacman.sources.origin module: an HTTP server
// holding the same files as plain bytes, from which leaves are fetched by
// their exact byte span and served only if they hash to their CID.
package origin

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	"github.com/pacman-cdn/pacman/dag"
	"github.com/pacman-cdn/pacman/gateway/headers"
	"github.com/pacman-cdn/pacman/hedge"
	"github.com/pacman-cdn/pacman/httpurl"
	"github.com/pacman-cdn/pacman/internal/caddyargs"
)

func init() {
	caddy.RegisterModule(Source{})
}

// bodyTimeout bounds one leaf's request to the origin, which is not
// cancelled when the hedge stops needing the leaf.
const bodyTimeout = 30 * time.Second

// Source is an origin: any web server or object store that honours Range
// and holds the files the gateway serves. A leaf is fetched from it by its
// exact byte span and accepted only if it hashes to the leaf's CID, so
// the origin needs no more trust than a peer; it is then kept and seeded
// like any block. Only raw leaves (CIDv1, as `caddy pacman add` makes)
// can be checked this way. The origin is the operator's own: it is asked
// under every policy, and in a fleet each leaf's owner fetches it once for
// all the edges.
type Source struct {
	// URL is the requested file on the origin, with placeholders
	// expanded per request; without a placeholder the request path is
	// appended, so "https://origin.example.com" fetches /videos/a.mp4
	// from https://origin.example.com/videos/a.mp4. Required.
	URL string `json:"url,omitempty"`
	// After is how long a viewer waits for a leaf from the sources before
	// the origin (the fleet, peers) before the origin is asked too: the
	// longest a viewer waits on them. It runs from when the viewer needs
	// the leaf, not from when the leaf entered the stream's window. The
	// fleet's owner of a leaf asks at once. Default: 1s.
	After caddy.Duration `json:"after,omitempty"`

	// Client makes the origin requests.
	Client *http.Client `json:"-"`

	tmpl string
	// base is what every origin URL starts with: the scheme, the host
	// and the path up to the first placeholder.
	base string
	// appendPath is set when URL has no placeholder: the request's
	// escaped path is appended to it.
	appendPath bool
	origin     *url.URL // the scheme and host every URL must keep
}

// CaddyModule returns the Caddy module information.
func (Source) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "pacman.sources.origin",
		New: func() caddy.Module { return new(Source) },
	}
}

// Provision sets the defaults.
func (s *Source) Provision(caddy.Context) error {
	return s.Init()
}

// Init checks the URL and sets the defaults; Provision calls it, and a
// Source used without Caddy must call it once.
func (s *Source) Init() error {
	base, _, templated := strings.Cut(s.URL, "{")
	u, err := httpurl.Parse(base)
	if err != nil {
		return fmt.Errorf("origin %q: %w", s.URL, err)
	}
	if templated && !strings.HasPrefix(u.Path, "/") {
		// A placeholder in the authority would let a request choose the
		// host, or the port, the edge connects to.
		return fmt.Errorf("origin %q: placeholders may stand only in the path, after the host's /", s.URL)
	}
	s.tmpl, s.base, s.origin = s.URL, base, u
	if !templated {
		s.appendPath = true
		s.base = strings.TrimSuffix(base, "/") + "/"
	}
	if s.After == 0 {
		s.After = caddy.Duration(time.Second)
	}
	if s.After < 0 {
		return fmt.Errorf("origin: after must not be negative")
	}
	if s.Client == nil {
		transport := http.DefaultTransport.(*http.Transport).Clone()
		transport.MaxIdleConnsPerHost = 64 // a window of leaves per stream
		s.Client = &http.Client{Transport: transport}
	}
	return nil
}

// Rung implements hedge.Source.
func (s *Source) Rung() hedge.Rung {
	return hedge.Rung{Name: "origin", After: time.Duration(s.After), Trusted: true, Owned: true}
}

// Open implements hedge.Source: the request's file on the origin. A fleet
// member's want names its URL, which must be one this source would build:
// the edge fetches from no other host for a member.
func (s *Source) Open(t hedge.Target) (hedge.Fetcher, func(), error) {
	u := t.OriginURL
	switch {
	case t.Path != "" && s.appendPath:
		// The path as the client sent it, escaped: an escaped ? or #
		// in a name stays in the path.
		if !httpurl.SafePath(t.Path) {
			return nil, nil, nil
		}
		u = s.base + strings.TrimPrefix(t.Path, "/")
	case t.Path != "":
		if t.Expand == nil {
			return nil, nil, nil
		}
		u = t.Expand(s.tmpl)
	}
	if !s.builds(u) {
		return nil, nil, nil
	}
	return file{s, u}, nil, nil
}

// builds reports whether u is a URL this source could have built: on the
// origin's scheme and host, under its base, with a safe path.
func (s *Source) builds(u string) bool {
	if !strings.HasPrefix(u, s.base) {
		return false
	}
	pu, err := url.Parse(u)
	return err == nil && pu.Scheme == s.origin.Scheme && pu.Host == s.origin.Host && httpurl.SafePath(pu.EscapedPath())
}

// file is the origin's copy of the file one request streams.
type file struct {
	*Source
	url string
}

// OriginURL returns the file's URL, which a fleet member that owns a leaf
// fetches it from.
func (f file) OriginURL() string { return f.url }

var _ hedge.OriginFetcher = file{}

// Fetch reads the leaf's byte span from the origin and checks it against
// the leaf's CID before storing it.
func (f file) Fetch(ctx context.Context, w hedge.Want) (blocks.Block, error) {
	if w.Cid.Prefix().Codec != cid.Raw || w.Size <= 0 || w.Size > dag.MaxBlockSize {
		return nil, hedge.ErrNotServed
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	// Once asked, the origin sends the leaf whatever happens here: it is
	// read whole even if the hedge no longer needs it (another source
	// won, the viewer left), so its bytes are kept and counted, not
	// wasted, within a bound of their own.
	reqCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), bodyTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(reqCtx, http.MethodGet, f.url, nil)
	if err != nil {
		return nil, fmt.Errorf("origin request: %w", err)
	}
	last := w.Offset + w.Size - 1
	req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", w.Offset, last))
	resp, err := f.Client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("origin request: %w", err)
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusPartialContent:
		start, end, ok := headers.ParseContentRange(resp.Header.Get("Content-Range"))
		if !ok || start != w.Offset || end != last {
			return nil, fmt.Errorf("origin answered bytes %q, not %d-%d", resp.Header.Get("Content-Range"), w.Offset, last)
		}
	case http.StatusOK:
		// The origin ignored Range: its body starts at byte 0, which is
		// only of use for the first leaf.
		if w.Offset != 0 {
			return nil, fmt.Errorf("origin ignored the Range request")
		}
	default:
		return nil, fmt.Errorf("origin answered %s", resp.Status)
	}
	data := make([]byte, w.Size)
	if _, err := io.ReadFull(resp.Body, data); err != nil {
		return nil, fmt.Errorf("reading origin body: %w", err)
	}
	blk, err := hedge.Verify(w.Cid, data)
	if err != nil {
		return nil, fmt.Errorf("origin %s at offset %d: %w", f.url, w.Offset, err)
	}
	return blk, nil
}

// UnmarshalCaddyfile reads
//
//	source origin <url> {
//		after <duration>
//	}
func (s *Source) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // the module name
	if !d.Args(&s.URL) || d.NextArg() {
		return d.ArgErr()
	}
	return caddyargs.Durations(d, map[string]*caddy.Duration{"after": &s.After})
}

// Interface guards.
var (
	_ hedge.Source          = (*Source)(nil)
	_ caddy.Provisioner     = (*Source)(nil)
	_ caddyfile.Unmarshaler = (*Source)(nil)
)
