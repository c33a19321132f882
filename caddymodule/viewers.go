package caddymodule

import (
	"fmt"
	"net/http"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/pacman-cdn/pacman/viewers"
)

func init() {
	caddy.RegisterModule(ViewersHandler{})
}

// Viewers turns viewer peers on: the browsers that play this edge's
// content trade verified blocks with each other over WebRTC, and the edge
// is only their tracker and signalling relay (package viewers). Pages
// load the script a pacman_viewers route serves. Absent: off.
type Viewers struct {
	// MaxViewers bounds the viewers tracked and relayed for at once.
	// Default: 1000.
	MaxViewers int `json:"max_viewers,omitempty"`
	// MaxPerAddress bounds the viewers at one IP address. Default: 8.
	MaxPerAddress int `json:"max_per_address,omitempty"`
	// RelayData bounds the bytes relayed each way on one connection
	// between two viewers: their WebRTC signalling, never media.
	// Default: 128 KiB.
	RelayData int64 `json:"relay_data,omitempty"`
	// RelayDuration bounds how long a relayed connection lasts.
	// Default: 2m.
	RelayDuration caddy.Duration `json:"relay_duration,omitempty"`
}

// config returns the service's configuration.
func (v *Viewers) config() *viewers.Config {
	if v == nil {
		return nil
	}
	return &viewers.Config{MaxViewers: v.MaxViewers, MaxPerAddress: v.MaxPerAddress,
		RelayData: v.RelayData, RelayDuration: time.Duration(v.RelayDuration)}
}

// parseViewersBlock parses the global option's viewers block:
//
//	viewers {
//		max_viewers     <n>
//		max_per_address <n>
//		relay_data      <size>
//		relay_duration  <duration>
//	}
func parseViewersBlock(d *caddyfile.Dispenser) (*Viewers, error) {
	v := new(Viewers)
	if d.NextArg() {
		return nil, d.ArgErr()
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		name := d.Val()
		var val string
		if !d.Args(&val) || d.NextArg() {
			return nil, d.ArgErr()
		}
		var err error
		switch name {
		case "max_viewers":
			v.MaxViewers, err = atLeastOne(parseCount(val))
		case "max_per_address":
			v.MaxPerAddress, err = atLeastOne(parseCount(val))
		case "relay_data":
			v.RelayData, err = parseSize(val)
			if err == nil && (v.RelayData == 0 || v.RelayData > 1<<30) {
				err = fmt.Errorf("%q is not between 1 byte and 1 GiB", val)
			}
		case "relay_duration":
			var dur time.Duration
			if dur, err = caddy.ParseDuration(val); err == nil && dur <= 0 {
				err = fmt.Errorf("%q is not a positive duration", val)
			}
			v.RelayDuration = caddy.Duration(dur)
		default:
			return nil, d.Errf("unknown viewers option %q; the options are max_viewers, max_per_address, relay_data and relay_duration", name)
		}
		if err != nil {
			return nil, d.Errf("viewers %s: %v", name, err)
		}
	}
	return v, nil
}

// atLeastOne refuses a count of 0, where a limit of none makes no sense.
func atLeastOne(n int, err error) (int, error) {
	if err == nil && n < 1 {
		err = fmt.Errorf("%d is not a count of at least 1", n)
	}
	return n, err
}

// ViewersHandler serves pages what viewer peers need from the edge: the
// script (/pacman/peer.js), its service worker, its licences and the
// edge's addresses (/pacman/viewers.json). The pacman global option's
// viewers block must turn viewer peers on.
type ViewersHandler struct {
	service *viewers.Service
}

// CaddyModule returns the Caddy module information.
func (ViewersHandler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.pacman_viewers",
		New: func() caddy.Module { return new(ViewersHandler) },
	}
}

// Provision finds the edge's service to viewers.
func (h *ViewersHandler) Provision(ctx caddy.Context) error {
	app, err := AppFrom(ctx)
	if err != nil {
		return err
	}
	if h.service = app.edge.Viewers(); h.service == nil {
		if app.Viewers != nil {
			// The running edge started without them: a reload turned them on.
			return fmt.Errorf("pacman_viewers: viewer peers start with the edge; restart Caddy to turn them on")
		}
		return fmt.Errorf("pacman_viewers: viewer peers are off; turn them on in the pacman global option: pacman { viewers }")
	}
	return nil
}

// ServeHTTP serves the script, its licences and the edge's addresses, and
// passes other paths on.
func (h *ViewersHandler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	switch r.URL.Path {
	case viewers.ScriptPath, viewers.WorkerPath, viewers.LicencesPath, viewers.InfoPath:
		h.service.ServeHTTP(w, r)
		return nil
	}
	return next.ServeHTTP(w, r)
}

// parseViewersHandler parses the pacman_viewers directive, which takes no
// arguments: it answers its three paths and passes every other request on.
func parseViewersHandler(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	h.Next()
	if h.NextArg() || h.NextBlock(0) {
		return nil, h.Err("pacman_viewers takes no arguments; its limits are in the pacman global option's viewers block")
	}
	return new(ViewersHandler), nil
}

// Interface guards.
var (
	_ caddy.Provisioner           = (*ViewersHandler)(nil)
	_ caddyhttp.MiddlewareHandler = (*ViewersHandler)(nil)
)
