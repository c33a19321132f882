// Package local is the pacman.policies.local module: serve only what the
// edge, its fleet and the operator's origin hold. It is the default.
package local

import (
	"net/http"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/ipfs/go-cid"
	"github.com/pacman-cdn/pacman/gateway"
)

func init() {
	caddy.RegisterModule(Policy{})
}

// errNotHeld is the answer for content kept off the open network.
var errNotHeld = gateway.Errorf(http.StatusForbidden, "this edge serves only content it, its fleet or its origin holds (access local, the default); access allowlist or access open lets it fetch other content from peers")

// Policy keeps every request off the open network: content the node holds
// (imported, pinned or cached), its fleet holds, or its origin serves is
// answered; anything else gets 403. An open gateway on your domain can be
// used to host anyone's content under it, so this is the default.
type Policy struct{}

// CaddyModule returns the Caddy module information.
func (Policy) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "pacman.policies.local",
		New: func() caddy.Module { return new(Policy) },
	}
}

// Decide keeps c off the open network.
func (Policy) Decide(cid.Cid) gateway.Decision {
	return gateway.Decision{Verdict: gateway.Local, Reason: errNotHeld}
}

// UnmarshalCaddyfile reads `policy local`, which takes no arguments.
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
