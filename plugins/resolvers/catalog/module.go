package catalog

import (
	"fmt"
	"net/http"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/pacman-cdn/pacman/gateway"
	"github.com/pacman-cdn/pacman/internal/caddyargs"
)

func init() {
	caddy.RegisterModule(Resolver{})
}

// Resolver serves content under friendly names: with a catalog line
// "videos/movie.mp4 /ipfs/bafy…", GET /videos/movie.mp4 serves that file,
// with full Range support and no CID in the URL; a name for a directory
// serves the paths below it too. The file is re-read within a second of a
// change. Responses carry Cache-Control max-age=TTL rather than
// immutable, and the resolved CID as their ETag, so a changed name
// changes the ETag and caches revalidate. Paths the catalog does not name
// are left to the next resolver.
type Resolver struct {
	// File is the catalog: lines "name /ipfs/{cid}[/path]" (or a bare
	// CID; # starts a comment), or a JSON object of names to paths.
	// Required.
	File string `json:"file,omitempty"`
	// TTL is how long a response may be cached before a cache asks
	// again. Default: 1m.
	TTL caddy.Duration `json:"ttl,omitempty"`

	catalog *Catalog
}

// CaddyModule returns the Caddy module information.
func (Resolver) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "pacman.resolvers.catalog",
		New: func() caddy.Module { return new(Resolver) },
	}
}

// Provision loads the catalog.
func (r *Resolver) Provision(ctx caddy.Context) error {
	if r.File == "" {
		return fmt.Errorf("catalog needs a file")
	}
	if r.TTL == 0 {
		r.TTL = caddy.Duration(time.Minute)
	}
	if r.TTL < caddy.Duration(time.Second) {
		return fmt.Errorf("catalog: ttl must be at least 1s")
	}
	c, err := Open(r.File, time.Duration(r.TTL), ctx.Logger())
	if err != nil {
		return fmt.Errorf("catalog: %w", err)
	}
	r.catalog = c
	return nil
}

// Resolve implements gateway.Resolver.
func (r *Resolver) Resolve(req *http.Request) (gateway.Content, bool, error) {
	return r.catalog.Resolve(req)
}

// UnmarshalCaddyfile reads
//
//	resolve catalog <file> {
//		ttl <duration>
//	}
func (r *Resolver) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // the module name
	if !d.Args(&r.File) || d.NextArg() {
		return d.ArgErr()
	}
	return caddyargs.Durations(d, map[string]*caddy.Duration{"ttl": &r.TTL})
}

// Interface guards.
var (
	_ gateway.Resolver      = (*Resolver)(nil)
	_ caddy.Provisioner     = (*Resolver)(nil)
	_ caddyfile.Unmarshaler = (*Resolver)(nil)
)
