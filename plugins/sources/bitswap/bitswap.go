// Package bitswap is the pacman.sources.bitswap module: blocks from the
// node's libp2p peers over bitswap, one session per file.
package bitswap

import (
	"fmt"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/pacman-cdn/pacman/caddymodule"
	"github.com/pacman-cdn/pacman/hedge"
	"github.com/pacman-cdn/pacman/internal/caddyargs"
)

func init() {
	caddy.RegisterModule(Source{})
}

// sessions is how many files' sessions are kept at once.
const sessions = 1024

// Source fetches blocks from the node's peers over bitswap. A file's
// session learns which peers hold it and sends each leaf's want-block to
// the one expected to deliver it soonest; a player's consecutive requests
// and their readahead share it. It is on the open network: policies decide
// which requests may use it.
type Source struct {
	// SessionIdle is how long a file's session (which knows the peers
	// that deliver it) is kept after its last request. Default: 1m.
	SessionIdle caddy.Duration `json:"session_idle,omitempty"`

	*hedge.Sessions
}

// CaddyModule returns the Caddy module information.
func (Source) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "pacman.sources.bitswap",
		New: func() caddy.Module { return new(Source) },
	}
}

// Provision opens sessions on the pacman app's node.
func (s *Source) Provision(ctx caddy.Context) error {
	app, err := caddymodule.AppFrom(ctx)
	if err != nil {
		return err
	}
	if s.SessionIdle == 0 {
		s.SessionIdle = caddy.Duration(time.Minute)
	}
	s.Sessions = hedge.NewSessions(hedge.Rung{Name: "peers", Owned: true},
		app.PeerSession,
		sessions, time.Duration(s.SessionIdle))
	return nil
}

// Validate checks the settings.
func (s *Source) Validate() error {
	if s.SessionIdle < 0 {
		return fmt.Errorf("bitswap: session_idle must not be negative")
	}
	return nil
}

// Cleanup ends the sessions once their users are done.
func (s *Source) Cleanup() error {
	if s.Sessions != nil {
		s.Sessions.Close()
	}
	return nil
}

// UnmarshalCaddyfile reads
//
//	source bitswap {
//		session_idle <duration>
//	}
func (s *Source) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // the module name
	if d.NextArg() {
		return d.ArgErr()
	}
	return caddyargs.Durations(d, map[string]*caddy.Duration{"session_idle": &s.SessionIdle})
}

// Interface guards.
var (
	_ hedge.Source          = (*Source)(nil)
	_ caddy.Provisioner     = (*Source)(nil)
	_ caddy.Validator       = (*Source)(nil)
	_ caddy.CleanerUpper    = (*Source)(nil)
	_ caddyfile.Unmarshaler = (*Source)(nil)
)
