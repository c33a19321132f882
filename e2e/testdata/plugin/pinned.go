// Package pacmanplugin is a third-party pacman resolver, built into Caddy
// with `xcaddy build --with example.com/pacmanplugin` as any plugin would
// be: it serves one fixed CID at one path.
package pacmanplugin

import (
	"fmt"
	"net/http"

	"github.com/caddyserver/caddy/v2"
	"github.com/ipfs/go-cid"
	"github.com/pacman-cdn/pacman/gateway"
)

func init() {
	caddy.RegisterModule(Pinned{})
}

// Pinned serves the content CID at Path.
type Pinned struct {
	Path string `json:"path"`
	CID  string `json:"cid"`

	root cid.Cid
}

// CaddyModule returns the Caddy module information.
func (Pinned) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "pacman.resolvers.pinned",
		New: func() caddy.Module { return new(Pinned) },
	}
}

// Provision parses the CID.
func (p *Pinned) Provision(caddy.Context) error {
	c, err := cid.Decode(p.CID)
	if err != nil {
		return fmt.Errorf("pinned: %w", err)
	}
	p.root = c
	return nil
}

// Resolve claims Path.
func (p *Pinned) Resolve(r *http.Request) (gateway.Content, bool, error) {
	if r.URL.Path != p.Path {
		return gateway.Content{}, false, nil
	}
	return gateway.Content{Root: p.root}, true, nil
}

var (
	_ gateway.Resolver  = (*Pinned)(nil)
	_ caddy.Provisioner = (*Pinned)(nil)
)
