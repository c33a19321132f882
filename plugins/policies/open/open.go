// Package open is the pacman.policies.open module: fetch any CID from the
// open network, as a public gateway does.
package open

import (
	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/ipfs/go-cid"
	"github.com/pacman-cdn/pacman/gateway"
)

func init() {
	caddy.RegisterModule(Policy{})
}

// Policy lets every request fetch from the open network, for a public
// gateway. Deny lists still apply.
type Policy struct{}

// CaddyModule returns the Caddy module information.
func (Policy) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "pacman.policies.open",
		New: func() caddy.Module { return new(Policy) },
	}
}

// Decide lets c be fetched.
func (Policy) Decide(cid.Cid) gateway.Decision {
	return gateway.Decision{Verdict: gateway.Fetch}
}

// UnmarshalCaddyfile reads `policy open`, which takes no arguments.
func (*Policy) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // the module name
	if d.NextArg() {
		return d.ArgErr()
	}
	return nil
}

// Interface guards.
var (
	_ gateway.Policy        = (*Policy)(nil)
	_ caddyfile.Unmarshaler = (*Policy)(nil)
)
