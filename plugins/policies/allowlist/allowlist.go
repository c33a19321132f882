// Package allowlist is the pacman.policies.allow_list module: fetch from
// the open network only the root CIDs an operator lists.
package allowlist

import (
	"fmt"
	"net/http"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/ipfs/go-cid"
	"github.com/pacman-cdn/pacman/gateway"
	"github.com/pacman-cdn/pacman/internal/cidlist"
	"go.uber.org/zap"
)

func init() {
	caddy.RegisterModule(Policy{})
}

// errNotAllowed is the answer for a root off the list that is not held.
var errNotAllowed = gateway.Errorf(http.StatusForbidden, "this CID is not on the gateway's allow list and not held locally (access allowlist)")

// Policy fetches from the open network for the root CIDs listed in File,
// and otherwise serves what the edge holds, as pacman.policies.local does.
type Policy struct {
	// File lists, one per line, the root CIDs that may be fetched (#
	// starts a comment). It is re-read when it changes. Required.
	File string `json:"file,omitempty"`

	list *cidlist.List
}

// CaddyModule returns the Caddy module information.
func (Policy) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "pacman.policies.allow_list",
		New: func() caddy.Module { return new(Policy) },
	}
}

// Provision loads the list.
func (p *Policy) Provision(ctx caddy.Context) error {
	if p.File == "" {
		return fmt.Errorf("allow_list needs a file")
	}
	log := ctx.Logger()
	l, err := cidlist.Open(p.File, cidlist.ByCID, nil, func(err error) { log.Error("reloading the allow list", zap.Error(err)) })
	if err != nil {
		return fmt.Errorf("allow_list: %w", err)
	}
	p.list = l
	return nil
}

// Decide lets listed roots be fetched.
func (p *Policy) Decide(c cid.Cid) gateway.Decision {
	if p.list.Contains(c) {
		return gateway.Decision{Verdict: gateway.Fetch}
	}
	return gateway.Decision{Verdict: gateway.Local, Reason: errNotAllowed}
}

// UnmarshalCaddyfile reads `policy allow_list <file>`.
func (p *Policy) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // the module name
	if !d.Args(&p.File) || d.NextArg() {
		return d.ArgErr()
	}
	return nil
}

// Interface guards.
var (
	_ gateway.Policy        = (*Policy)(nil)
	_ caddy.Provisioner     = (*Policy)(nil)
	_ caddyfile.Unmarshaler = (*Policy)(nil)
)
