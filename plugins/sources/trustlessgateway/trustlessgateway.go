// Package trustlessgateway is the pacman.sources.trustless_gateway module:
// blocks from HTTP trustless gateways (GET /ipfs/{cid}?format=raw), each
// checked against its CID.
package trustlessgateway

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	blocks "github.com/ipfs/go-block-format"
	ipld "github.com/ipfs/go-ipld-format"
	"github.com/pacman-cdn/pacman/dag"
	"github.com/pacman-cdn/pacman/hedge"
	"github.com/pacman-cdn/pacman/httpurl"
	"github.com/pacman-cdn/pacman/internal/caddyargs"
)

func init() {
	caddy.RegisterModule(Source{})
}

// Source asks HTTP trustless gateways (another pacman edge, or any gateway
// that answers ?format=raw) for blocks, all of them at once, and keeps the
// first answer that hashes to the block's CID. They may hold anything, so
// they are on the open network: policies decide which requests may use
// them. Only the hosts named here are ever dialled.
type Source struct {
	// URLs are the gateways' base URLs: GET {url}/ipfs/{cid}?format=raw
	// is asked. Required.
	URLs []string `json:"urls,omitempty"`
	// After is how long the sources before these gateways have before
	// they are asked too. Default: 0, at once.
	After caddy.Duration `json:"after,omitempty"`

	client *http.Client
}

// CaddyModule returns the Caddy module information.
func (Source) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "pacman.sources.trustless_gateway",
		New: func() caddy.Module { return new(Source) },
	}
}

// Provision checks the URLs.
func (s *Source) Provision(caddy.Context) error {
	return s.init(&http.Client{Timeout: time.Minute})
}

func (s *Source) init(client *http.Client) error {
	if len(s.URLs) == 0 {
		return fmt.Errorf("trustless_gateway needs at least one URL")
	}
	for i, raw := range s.URLs {
		if _, err := httpurl.Parse(raw); err != nil {
			return fmt.Errorf("trustless_gateway %w", err)
		}
		s.URLs[i] = strings.TrimSuffix(raw, "/")
	}
	if s.After < 0 {
		return fmt.Errorf("trustless_gateway: after must not be negative")
	}
	s.client = client
	return nil
}

// Rung implements hedge.Source.
func (s *Source) Rung() hedge.Rung { return hedge.Rung{Name: "http", After: time.Duration(s.After)} }

// Open implements hedge.Source: every gateway is asked at once, the
// first block that hashes to its CID wins.
func (s *Source) Open(hedge.Target) (hedge.Fetcher, func(), error) {
	fs := make([]hedge.Fetcher, len(s.URLs))
	for i, base := range s.URLs {
		fs[i] = hedge.FetcherFunc(func(ctx context.Context, w hedge.Want) (blocks.Block, error) { return s.fetchFrom(ctx, base, w) })
	}
	return hedge.FirstOf(fs...), nil, nil
}

func (s *Source) fetchFrom(ctx context.Context, base string, w hedge.Want) (blocks.Block, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/ipfs/"+w.Cid.String()+"?format=raw", nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/vnd.ipld.raw")
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("asking gateway %s: %w", base, err)
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNotFound, http.StatusGone, http.StatusForbidden, http.StatusPreconditionFailed:
		return nil, ipld.ErrNotFound{Cid: w.Cid}
	default:
		return nil, fmt.Errorf("gateway %s answered %s", base, resp.Status)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, dag.MaxBlockSize+1))
	if err != nil {
		return nil, fmt.Errorf("reading gateway %s: %w", base, err)
	}
	if len(data) > dag.MaxBlockSize {
		return nil, fmt.Errorf("gateway %s sent a block over %d bytes", base, dag.MaxBlockSize)
	}
	blk, err := hedge.Verify(w.Cid, data)
	if err != nil {
		return nil, fmt.Errorf("gateway %s: %w", base, err)
	}
	return blk, nil
}

// UnmarshalCaddyfile reads
//
//	source trustless_gateway <url...> {
//		after <duration>
//	}
func (s *Source) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // the module name
	s.URLs = d.RemainingArgs()
	if len(s.URLs) == 0 {
		return d.ArgErr()
	}
	return caddyargs.Durations(d, map[string]*caddy.Duration{"after": &s.After})
}

// Interface guards.
var (
	_ hedge.Source          = (*Source)(nil)
	_ caddy.Provisioner     = (*Source)(nil)
	_ caddyfile.Unmarshaler = (*Source)(nil)
)
