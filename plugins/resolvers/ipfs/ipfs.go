// Package ipfs is the pacman.resolvers.ipfs module: the path gateway's
// /ipfs/{cid}[/path], whose URLs name the content itself.
package ipfs

import (
	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/pacman-cdn/pacman/gateway"
	"github.com/pacman-cdn/pacman/internal/caddyargs"
)

func init() {
	caddy.RegisterModule(Resolver{})
}

// Resolver serves /ipfs/{cid}[/path]: a CID and the path through its
// UnixFS directories. Responses are immutable. It has no settings.
type Resolver struct {
	gateway.IPFSPaths
}

// CaddyModule returns the Caddy module information.
func (Resolver) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "pacman.resolvers.ipfs",
		New: func() caddy.Module { return new(Resolver) },
	}
}

// UnmarshalCaddyfile reads `resolve ipfs`, which takes no arguments.
func (*Resolver) UnmarshalCaddyfile(d *caddyfile.Dispenser) error { return caddyargs.None(d) }

// Interface guards.
var (
	_ gateway.Resolver      = (*Resolver)(nil)
	_ caddyfile.Unmarshaler = (*Resolver)(nil)
)
