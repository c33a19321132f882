// Package denylist is the pacman.policies.deny_list module: never serve
// the CIDs an operator lists.
package denylist

import (
	"context"
	"fmt"
	"net/http"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/ipfs/boxo/blockstore"
	"github.com/ipfs/boxo/ipld/merkledag"
	"github.com/ipfs/go-cid"
	"github.com/pacman-cdn/pacman/caddymodule"
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
// policies say, and every block of a listed DAG the node holds: a leaf of a
// denied file is denied too, over HTTP and to bitswap peers alike. It has
// no opinion on anything else.
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

// maxExpand bounds the blocks of one listed DAG added to the list.
const maxExpand = 1 << 20

// Provision loads the list, with the blocks of the listed DAGs the node
// holds.
func (p *Policy) Provision(ctx caddy.Context) error {
	app, err := caddymodule.AppFrom(ctx)
	if err != nil {
		return err
	}
	return p.Init(app.Blockstore(), ctx.Logger())
}

// Init loads the list, expanding each listed DAG through the blocks store
// holds (it is never asked to fetch); Provision calls it.
func (p *Policy) Init(store blockstore.Blockstore, log *zap.Logger) error {
	if p.File == "" {
		return fmt.Errorf("deny_list needs a file")
	}
	expand := func(c cid.Cid) []cid.Cid { return heldBlocks(store, c) }
	l, err := cidlist.Open(p.File, cidlist.ByMultihash, expand, func(err error) { log.Error("reloading the deny list", zap.Error(err)) })
	if err != nil {
		return fmt.Errorf("deny_list: %w", err)
	}
	p.list = l
	return nil
}

// heldBlocks returns the CIDs below root that store holds, root's
// descendants through dag-pb links, at most maxExpand.
func heldBlocks(store blockstore.Blockstore, root cid.Cid) []cid.Cid {
	ctx := context.Background()
	var out []cid.Cid
	seen := map[cid.Cid]bool{}
	stack := []cid.Cid{root}
	for len(stack) > 0 && len(out) < maxExpand {
		c := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if seen[c] || c.Prefix().Codec != cid.DagProtobuf {
			continue
		}
		seen[c] = true
		blk, err := store.Get(ctx, c)
		if err != nil {
			continue // not held: nothing below it is known here
		}
		nd, err := merkledag.DecodeProtobufBlock(blk)
		if err != nil {
			continue
		}
		for _, l := range nd.Links() {
			out = append(out, l.Cid)
			stack = append(stack, l.Cid)
		}
	}
	return out
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
