package admin

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/pacman-cdn/pacman/caddymodule"
	"github.com/pacman-cdn/pacman/internal/caddyargs"
)

func init() {
	caddy.RegisterModule(Stats{})
	httpcaddyfile.RegisterHandlerDirective("pacman_stats", func(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
		s := new(Stats)
		return s, s.UnmarshalCaddyfile(h.Dispenser)
	})
	httpcaddyfile.RegisterDirectiveOrder("pacman_stats", httpcaddyfile.Before, "file_server")
}

// Stats serves the operator's dashboard (http.handlers.pacman_stats): to a
// browser (Accept: text/html) a page that charts the bytes fetched by
// source and shows the offload, peers, streams, cache and live streams;
// to anything else the same figures as JSON, which the page and the
// demo's landing page read each second. Mount it on a site route behind
// Caddy's own auth: Caddy's admin endpoint refuses browsers.
type Stats struct {
	dataDir string
	running *caddymodule.Running
}

// CaddyModule returns the Caddy module information.
func (Stats) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.pacman_stats",
		New: func() caddy.Module { return new(Stats) },
	}
}

// Provision finds the pacman app.
func (s *Stats) Provision(ctx caddy.Context) error {
	app, err := caddymodule.AppFrom(ctx)
	if err != nil {
		return err
	}
	s.dataDir, s.running = app.DataDir, app.Running()
	return nil
}

// ServeHTTP implements caddyhttp.MiddlewareHandler; it answers every
// request it is routed.
func (s *Stats) ServeHTTP(w http.ResponseWriter, r *http.Request, _ caddyhttp.Handler) error {
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	if wantsPage(r) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Content-Security-Policy", "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'")
		w.Header().Set("Vary", "Accept")
		_, err := w.Write(dashboardPage)
		return err
	}
	out, err := dashboardOf(ctx, s.dataDir, s.running)
	if err != nil {
		return caddyhttp.Error(http.StatusInternalServerError, err)
	}
	w.Header().Set("Vary", "Accept")
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	return json.NewEncoder(w).Encode(out)
}

// wantsPage reports whether a browser asks for a page rather than JSON.
func wantsPage(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept"), ",") {
		if strings.TrimSpace(strings.SplitN(part, ";", 2)[0]) == "text/html" {
			return true
		}
	}
	return false
}

// UnmarshalCaddyfile reads `pacman_stats`, which takes no arguments.
func (s *Stats) UnmarshalCaddyfile(d *caddyfile.Dispenser) error { return caddyargs.None(d) }

// Interface guards.
var (
	_ caddyhttp.MiddlewareHandler = (*Stats)(nil)
	_ caddy.Provisioner           = (*Stats)(nil)
	_ caddyfile.Unmarshaler       = (*Stats)(nil)
)
