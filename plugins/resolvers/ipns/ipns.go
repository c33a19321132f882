// Package ipns is the pacman.resolvers.ipns module: the path gateway's
// /ipns/{name}[/path], through the IPNS records the node keeps.
package ipns

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/ipfs/boxo/ipns"
	"github.com/ipfs/boxo/path"
	"github.com/pacman-cdn/pacman/caddymodule"
	"github.com/pacman-cdn/pacman/gateway"
	"github.com/pacman-cdn/pacman/gateway/contentpath"
	"github.com/pacman-cdn/pacman/internal/caddyargs"
	"github.com/pacman-cdn/pacman/names"
)

func init() {
	caddy.RegisterModule(Resolver{})
}

// Records resolves IPNS names to paths and gives their records;
// names.Network (the store, then routing) and names.Store are.
type Records interface {
	Resolve(ctx context.Context, name ipns.Name) (path.Path, time.Duration, error)
	Raw(ctx context.Context, name ipns.Name) ([]byte, error)
}

// Names serves /ipns/{name}[/path] from records: a record's value, with
// the rest of the path after it; responses may be cached for the record's
// TTL. A name that is not an IPNS key (a DNSLink domain) is left to the
// next resolver.
type Names struct {
	Records Records
}

// Resolve implements gateway.Resolver.
func (n Names) Resolve(r *http.Request) (gateway.Content, bool, error) {
	name, rest, err := contentpath.ParseName(r.URL, "ipns")
	if err != nil {
		return gateway.Content{}, false, nil
	}
	if _, err := ipns.NameFromString(name); err != nil {
		return gateway.Content{}, false, nil // a domain: DNSLink's
	}
	p, err := path.NewPath("/ipns/" + name)
	if err != nil {
		return gateway.Content{}, true, gateway.Errorf(http.StatusBadRequest, err.Error())
	}
	p, ttl, err := names.Follow(r.Context(), n.Records, p, time.Duration(1<<63-1))
	switch {
	case errors.Is(err, names.ErrNoRecord):
		return gateway.Content{}, true, gateway.Errorf(http.StatusNotFound, fmt.Sprintf("no IPNS record is known for %s", name))
	case err != nil:
		return gateway.Content{}, true, gateway.Errorf(http.StatusBadGateway, err.Error())
	}
	ip, err := path.NewImmutablePath(p)
	if err != nil {
		return gateway.Content{}, true, gateway.Errorf(http.StatusBadGateway, fmt.Sprintf("%s leads to %s, not to content", name, p))
	}
	return gateway.Content{
		Root:     ip.RootCid(),
		Segments: append(ip.Segments()[2:], rest...),
		TTL:      ttl,
		Path:     r.URL.EscapedPath(),
	}, true, nil
}

// Record implements gateway.RecordResolver: the verified record of the
// name, for clients that check it themselves.
func (n Names) Record(r *http.Request) (gateway.Record, bool, error) {
	name, _, err := contentpath.ParseName(r.URL, "ipns")
	if err != nil {
		return gateway.Record{}, false, nil
	}
	key, err := ipns.NameFromString(name)
	if err != nil {
		return gateway.Record{}, false, nil
	}
	data, err := n.Records.Raw(r.Context(), key)
	switch {
	case errors.Is(err, names.ErrNoRecord):
		return gateway.Record{}, true, gateway.Errorf(http.StatusNotFound, fmt.Sprintf("no IPNS record is known for %s", key))
	case err != nil:
		return gateway.Record{}, true, gateway.Errorf(http.StatusBadGateway, err.Error())
	}
	// The TTL from the bytes in hand: a second lookup could ask routing
	// again.
	ttl := time.Minute
	if rec, err := ipns.UnmarshalRecord(data); err == nil {
		if t, err := rec.TTL(); err == nil {
			ttl = t
		}
	}
	return gateway.Record{Data: data, Name: key.String(), TTL: ttl}, true, nil
}

// Resolver is the Caddy module over the pacman app's record store.
type Resolver struct {
	Names `json:"-"`
}

// CaddyModule returns the Caddy module information.
func (Resolver) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "pacman.resolvers.ipns",
		New: func() caddy.Module { return new(Resolver) },
	}
}

// Provision takes the app's record store.
func (r *Resolver) Provision(ctx caddy.Context) error {
	app, err := caddymodule.AppFrom(ctx)
	if err != nil {
		return err
	}
	r.Records = app.Names()
	return nil
}

// UnmarshalCaddyfile reads `resolve ipns`, which takes no arguments.
func (*Resolver) UnmarshalCaddyfile(d *caddyfile.Dispenser) error { return caddyargs.None(d) }

// Interface guards.
var (
	_ gateway.Resolver       = (*Resolver)(nil)
	_ gateway.RecordResolver = (*Resolver)(nil)
	_ caddy.Provisioner      = (*Resolver)(nil)
	_ caddyfile.Unmarshaler  = (*Resolver)(nil)
)
