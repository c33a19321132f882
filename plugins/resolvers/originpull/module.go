package originpull

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/dustin/go-humanize"
	"github.com/ipfs/boxo/blockservice"
	"github.com/ipfs/boxo/ipld/merkledag"
	"github.com/ipfs/go-cid"
	"github.com/pacman-cdn/pacman/caddymodule"
	"github.com/pacman-cdn/pacman/gateway"
	"github.com/pacman-cdn/pacman/hedge"
	"github.com/pacman-cdn/pacman/ingest"
	"github.com/pacman-cdn/pacman/internal/caddyargs"
	"github.com/pacman-cdn/pacman/plugins/sources/origin"
)

func init() {
	caddy.RegisterModule(Resolver{})
}

// pullers holds the running puller of each origin, data directory and
// settings: a config reload provisions the new config before it cleans
// up the old, so pulls under way, and the cold responses read from them,
// go on across a reload that leaves the route's origin_pull as it was.
var pullers = caddy.NewUsagePool()

// recordDirs holds the records of each data directory, which its
// pullers share, so that they count the URLs known once.
var recordDirs = caddy.NewUsagePool()

// pooledRecords is a Records in the pool.
type pooledRecords struct{ *Records }

// Destruct takes the records' count back from the metrics once no puller
// uses them.
func (r pooledRecords) Destruct() error {
	r.Close()
	return nil
}

// pooled is a Puller in the pool.
type pooled struct {
	*Puller
	release func() // its use of its data directory's records
}

// Destruct stops the pulls under way once no config uses the puller.
func (p pooled) Destruct() error {
	p.Close()
	p.release()
	return nil
}

// Resolver is pacman.resolvers.origin_pull: every URL of the route is the
// file at the same path on Origin, served from the first request with no
// import step (see the package's doc for the life of a URL). The route
// also fetches the leaves of a pulled file that the cache has evicted
// from Origin, by their byte range, each checked against its CID. In a
// fleet, the member that owns a URL pulls it for all and tells the others
// its CID, in a record it signs; they take the blocks from the members
// that hold them.
type Resolver struct {
	// Origin is the origin's base URL; the request's path is appended to
	// it. Required.
	Origin string `json:"origin,omitempty"`
	// Revalidate is how long the origin's word on a URL holds before a
	// conditional request asks again. Default: 1m.
	Revalidate caddy.Duration `json:"revalidate,omitempty"`
	// MaxPulls bounds the files pulled at once. Default: 4.
	MaxPulls int `json:"max_pulls,omitempty"`
	// MaxPullSize is the largest file pulled, in bytes; larger ones are
	// only proxied. Default: 8 GiB.
	MaxPullSize int64 `json:"max_pull_size,omitempty"`

	puller *Puller
	key    string // the puller's in pullers
	source leafSource
	remove func() // stops answering the fleet's questions and purges
}

// CaddyModule returns the Caddy module information.
func (Resolver) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "pacman.resolvers.origin_pull",
		New: func() caddy.Module { return new(Resolver) },
	}
}

// Provision starts the puller on the app's store.
func (r *Resolver) Provision(ctx caddy.Context) error {
	app, err := caddymodule.AppFrom(ctx)
	if err != nil {
		return err
	}
	bs := app.Blockstore()
	dag := merkledag.NewDAGService(blockservice.New(bs, nil))
	dir := filepath.Join(app.DataDir, "origin_pull")
	r.key = fmt.Sprintf("%s\x00%s\x00%d\x00%d\x00%d", dir, r.Origin, r.Revalidate, r.MaxPulls, r.MaxPullSize)
	v, _, err := pullers.LoadOrNew(r.key, func() (caddy.Destructor, error) {
		rs, _, err := recordDirs.LoadOrNew(dir, func() (caddy.Destructor, error) {
			rs, err := OpenRecords(dir, app.Metrics().KnownURLs)
			return pooledRecords{rs}, err
		})
		if err != nil {
			return nil, err
		}
		p, err := New(Config{
			Origin:  r.Origin,
			Dir:     dir,
			Records: rs.(pooledRecords).Records,
			Import: func(ctx context.Context, body io.Reader) (cid.Cid, error) {
				return ingest.Import(ctx, dag, body)
			},
			Store:       bs,
			Revalidate:  time.Duration(r.Revalidate),
			MaxPulls:    r.MaxPulls,
			MaxPullSize: r.MaxPullSize,
			Fleet:       app.Fleet(),
			Observer:    app.Metrics(),
			Log:         ctx.Logger(),
		})
		if err != nil {
			_, _ = recordDirs.Delete(dir)
			return nil, err
		}
		return pooled{p, func() { _, _ = recordDirs.Delete(dir) }}, nil
	})
	if err != nil {
		return err
	}
	r.puller = v.(pooled).Puller
	unanswer, unpurge := app.Fleet().AddAnswerer(r.puller.Answer), app.AddPurger(r.puller.Purge)
	unserve, unlearn := app.Fleet().AddBodyServer(r.puller.ServeBody), app.Fleet().AddLearner(r.puller.Learn)
	r.remove = func() { unanswer(); unpurge(); unserve(); unlearn() }
	src := &origin.Source{URL: r.Origin}
	r.source = leafSource{src, r.puller}
	return src.Init()
}

// Resolve implements gateway.Resolver.
func (r *Resolver) Resolve(req *http.Request) (gateway.Content, bool, error) {
	return r.puller.Resolve(req)
}

// Source is the origin the route fetches evicted leaves from.
func (r *Resolver) Source() hedge.Source { return r.source }

// Cleanup releases this config's use of the puller; the last user stops
// the pulls under way.
func (r *Resolver) Cleanup() error {
	if r.remove != nil {
		r.remove()
	}
	if r.puller != nil {
		if _, err := pullers.Delete(r.key); err != nil {
			return fmt.Errorf("origin_pull: %w", err)
		}
	}
	return nil
}

// UnmarshalCaddyfile reads
//
//	resolve origin_pull <url> {
//		revalidate    <duration>
//		max_pulls     <n>
//		max_pull_size <size, e.g. 4GiB>
//	}
func (r *Resolver) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // the module name
	if !d.Args(&r.Origin) || d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		name := d.Val()
		switch name {
		case "revalidate":
			if err := caddyargs.Duration(d, &r.Revalidate); err != nil {
				return err
			}
			continue
		case "max_pulls", "max_pull_size":
		default:
			return caddyargs.Unknown(d, name)
		}
		var v string
		if !d.Args(&v) || d.NextArg() {
			return d.ArgErr()
		}
		if name == "max_pulls" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				return d.Errf("max_pulls: want a count of at least 1, got %q", v)
			}
			r.MaxPulls = n
			continue
		}
		n, err := humanize.ParseBytes(v)
		if err != nil || n == 0 || n > 1<<62 {
			return d.Errf("max_pull_size: want a size such as 4GiB, got %q", v)
		}
		r.MaxPullSize = int64(n)
	}
	return nil
}

// Interface guards; the app's metrics observe what pullers take.
var (
	_ Observer              = caddymodule.Observer(nil)
	_ gateway.Resolver      = (*Resolver)(nil)
	_ caddy.Provisioner     = (*Resolver)(nil)
	_ caddy.CleanerUpper    = (*Resolver)(nil)
	_ caddyfile.Unmarshaler = (*Resolver)(nil)
)
