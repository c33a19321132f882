package live

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/pacman-cdn/pacman/caddymodule"
	"github.com/pacman-cdn/pacman/gateway"
	"github.com/pacman-cdn/pacman/live"
)

func init() {
	caddy.RegisterModule(Resolver{})
}

// Resolver serves the live streams the node relays: GET
// {prefix}{stream}/index.m3u8 is the stream's playlist, built on this node
// from the announcements of the publishers in live_trust, listing only
// segments the node holds (it fetches each as soon as it is announced);
// {prefix}{stream}/{seq}.ts are the segments, under immutable URLs. A
// request with _HLS_msn is held until that segment is listed (LL-HLS
// blocking playlist reload). A stream is followed from the first request
// for it, or from start when listed in Streams.
type Resolver struct {
	// Prefix is the URL path streams are under. Default: /live/.
	Prefix string `json:"prefix,omitempty"`
	// Window is how many segments a live playlist lists. Default: 6.
	Window int `json:"window,omitempty"`
	// History lists every segment of the event so far
	// (EXT-X-PLAYLIST-TYPE:EVENT, for DVR) instead of a window.
	History bool `json:"history,omitempty"`
	// Streams are followed from start, so the first viewer's segments
	// are local already.
	Streams []string `json:"streams,omitempty"`

	streams *Streams
}

// CaddyModule returns the Caddy module information.
func (Resolver) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "pacman.resolvers.live",
		New: func() caddy.Module { return new(Resolver) },
	}
}

// Provision sets the resolver up over the pacman app's relay and joins
// the streams listed.
func (r *Resolver) Provision(ctx caddy.Context) error {
	app, err := caddymodule.AppFrom(ctx)
	if err != nil {
		return err
	}
	if r.Prefix == "" {
		r.Prefix = "/live/"
	}
	if r.Window == 0 {
		r.Window = 6
	}
	relay := app.Live()
	for _, s := range r.Streams {
		if err := relay.Join(s); err != nil {
			return fmt.Errorf("live: %w", err)
		}
	}
	r.streams = New(relay, Options{
		Prefix:   r.Prefix,
		Playlist: live.PlaylistOptions{Window: r.Window, History: r.History},
		MaxHold:  3,
	})
	return nil
}

// Validate checks the settings.
func (r *Resolver) Validate() error {
	switch {
	case !strings.HasPrefix(r.Prefix, "/") || !strings.HasSuffix(r.Prefix, "/"):
		return fmt.Errorf("live: prefix %q must begin and end with /", r.Prefix)
	case r.Window < 1:
		return fmt.Errorf("live: window must be at least 1")
	}
	return nil
}

// Resolve implements gateway.Resolver.
func (r *Resolver) Resolve(req *http.Request) (gateway.Content, bool, error) {
	return r.streams.Resolve(req)
}

// UnmarshalCaddyfile reads
//
//	resolve live [<prefix>] {
//		window  <segments>
//		history
//		streams <name...>
//	}
func (r *Resolver) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // the module name
	if d.NextArg() {
		r.Prefix = d.Val()
	}
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		switch d.Val() {
		case "window":
			var v string
			if !d.Args(&v) || d.NextArg() {
				return d.ArgErr()
			}
			n, err := strconv.Atoi(v)
			if err != nil {
				return d.Errf("window: %q is not a count", v)
			}
			r.Window = n
		case "history":
			if d.NextArg() {
				return d.ArgErr()
			}
			r.History = true
		case "streams":
			args := d.RemainingArgs()
			if len(args) == 0 {
				return d.ArgErr()
			}
			r.Streams = append(r.Streams, args...)
		default:
			return d.Errf("unknown live option %q", d.Val())
		}
	}
	return nil
}

// Interface guards.
var (
	_ gateway.Resolver      = (*Resolver)(nil)
	_ caddy.Provisioner     = (*Resolver)(nil)
	_ caddy.Validator       = (*Resolver)(nil)
	_ caddyfile.Unmarshaler = (*Resolver)(nil)
)
