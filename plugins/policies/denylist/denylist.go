// Package denylist is the pacman.policies.deny_list module: never serve
// the CIDs an operator lists.
package denylist

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

// errDenied is the answer for listed content.
var errDenied = gateway.Errorf(http.StatusGone, "this content is blocked by the gateway's deny list")

// Policy refuses, with 410 Gone, every request whose root, any directory
// on its path or the file it names is listed in File, whatever the other
// policies say. It has no opinion on anything else.
type Policy struct {
	// File lists, one per line, the CIDs never served (# starts a
	// comment). It is re-read when it changes. Required.
	File string `json:"file,omitempty"`

	list *cidlist.List
}

// CaddyModule returns the Caddy module information.
func (Policy) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "pacman.policies.deny_list",
		New: func() caddy.Module { return new(Policy) },
	}
}

// Provision loads the list.
func (p *Policy) Provision(ctx caddy.Context) error {
	if p.File == "" {
		return fmt.Errorf("deny_list needs a file")
	}
	log := ctx.Logger()
	l, err := cidlist.Open(p.File, cidlist.ByMultihash, func(err error) { log.Error("reloading the deny list", zap.Error(err)) })
	if err != nil {
		return fmt.Errorf("deny_list: %w", err)
	}
	p.list = l
	return nil
}

// Decide denies listed CIDs.
func (p *Policy) Decide(c cid.Cid) gateway.Decision {
	if p.list.Contains(c) {
		return gateway.Decision{Verdict: gateway.Deny, Reason: errDenied}
	}
	return gateway.Decision{Verdict: gateway.Pass}
}

// UnmarshalCaddyfile reads `policy deny_list <file>`.
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
