package caddymodule

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/ipfs/boxo/blockservice"
	"github.com/pacman-cdn/pacman/chunker"
	"github.com/pacman-cdn/pacman/gateway"
	"github.com/pacman-cdn/pacman/plugins/cidlist"
	"go.uber.org/zap"
)

func init() {
	caddy.RegisterModule(Handler{})
}

// Handler serves GET and HEAD of /ipfs/{cid}[/path] from the pacman node,
// with full HTTP Range support: single, suffix, open-ended and multi-range
// requests, conditional requests on a strong ETag derived from the CID, and
// immutable caching headers. Blocks are fetched in parallel from peers,
// verified, streamed in order, kept in the blockstore and seeded back.
type Handler struct {
	// Window is the number of 1 MiB leaves in flight per stream. Larger
	// windows keep more peers busy on high-latency links at the cost of
	// window × chunk size of memory per stream. Default: 16.
	Window int `json:"window,omitempty"`
	// Readahead is the number of leaves fetched into the blockstore past
	// the end of each served range, for the player's next request.
	// Default: 8. A negative value disables readahead.
	Readahead int `json:"readahead,omitempty"`
	// MaxRanges caps the number of ranges in one request; requests with
	// more get 416. Default: 32.
	MaxRanges int `json:"max_ranges,omitempty"`
	// ResolveTimeout bounds the time to find the content and its size,
	// after which the client gets 504. Default: 60s.
	ResolveTimeout caddy.Duration `json:"resolve_timeout,omitempty"`
	// StallTimeout bounds the wait for any one block while streaming,
	// after which the response is cut short (the client sees fewer bytes
	// than Content-Length, never wrong ones). Default: 30s.
	StallTimeout caddy.Duration `json:"stall_timeout,omitempty"`
	// ReaskAfter is how long a block may take before it is asked for
	// again through a fresh session, racing the first ask, so a peer that
	// claims blocks and never sends them stalls no viewer. Default: 2s.
	ReaskAfter caddy.Duration `json:"reask_after,omitempty"`
	// SessionIdle is how long a file's block session (which knows the
	// peers that deliver it) is kept after its last request. Default: 1m.
	SessionIdle caddy.Duration `json:"session_idle,omitempty"`
	// Access says what the gateway fetches from the network for its
	// visitors: "local" (only content the node already holds: imported,
	// pinned or cached), "allowlist" (also the root CIDs listed in
	// AllowFile) or "open" (anything). Default: "local" — an open gateway
	// on your domain can be used to host anyone's content under it.
	Access string `json:"access,omitempty"`
	// AllowFile lists, one per line, the root CIDs "allowlist" fetches.
	// The file is re-read when it changes.
	AllowFile string `json:"allow_file,omitempty"`
	// DenyFile lists, one per line, CIDs never served (410 Gone), under
	// any access setting. The file is re-read when it changes.
	DenyFile string `json:"deny_file,omitempty"`

	gw *gateway.Handler
}

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.pacman",
		New: func() caddy.Module { return new(Handler) },
	}
}

// Provision connects the handler to the pacman app's node.
func (h *Handler) Provision(ctx caddy.Context) error {
	v, err := ctx.App("pacman")
	if err != nil {
		return fmt.Errorf("loading pacman app: %w", err)
	}
	n := v.(*App).Node()
	policy, err := h.policy(ctx.Logger())
	if err != nil {
		return err
	}
	h.gw, err = gateway.NewHandler(gateway.SessionsFunc(func(ctx context.Context) chunker.BlockGetter {
		return n.NewSession(ctx)
	}), gateway.Config{
		Window:         h.Window,
		Readahead:      h.Readahead,
		MaxRanges:      h.MaxRanges,
		ResolveTimeout: time.Duration(h.ResolveTimeout),
		StallTimeout:   time.Duration(h.StallTimeout),
		SessionIdle:    time.Duration(h.SessionIdle),
		ReaskAfter:     time.Duration(h.ReaskAfter),
		Local:          blockservice.New(n.Blockstore(), nil),
		Policy:         policy,
		Logger:         ctx.Logger(),
	})
	return err
}

// policy builds the access policy, loading the allow and deny lists.
func (h *Handler) policy(log *zap.Logger) (gateway.Policy, error) {
	var p gateway.Policy
	access := h.Access
	if access == "" {
		access = "local"
	}
	var err error
	if p.Access, err = gateway.ParseAccess(access); err != nil {
		return p, err
	}
	onError := func(err error) { log.Error("reloading CID list", zap.Error(err)) }
	if h.AllowFile != "" {
		l, err := cidlist.Open(h.AllowFile, onError)
		if err != nil {
			return p, fmt.Errorf("allow_file: %w", err)
		}
		p.Allowed = l
	}
	if h.DenyFile != "" {
		l, err := cidlist.Open(h.DenyFile, onError)
		if err != nil {
			return p, fmt.Errorf("deny_file: %w", err)
		}
		p.Denied = l
	}
	return p, nil
}

// Cleanup ends the block sessions the handler kept between requests.
func (h *Handler) Cleanup() error {
	if h.gw != nil {
		h.gw.Close()
	}
	return nil
}

// Validate checks the settings.
func (h *Handler) Validate() error {
	if h.Window < 0 {
		return fmt.Errorf("window must not be negative, got %d", h.Window)
	}
	if h.MaxRanges < 0 {
		return fmt.Errorf("max_ranges must not be negative, got %d", h.MaxRanges)
	}
	if h.ResolveTimeout < 0 || h.StallTimeout < 0 || h.SessionIdle < 0 || h.ReaskAfter < 0 {
		return fmt.Errorf("timeouts must not be negative")
	}
	if h.Access != "" {
		if _, err := gateway.ParseAccess(h.Access); err != nil {
			return err
		}
	}
	if h.Access == "allowlist" && h.AllowFile == "" {
		return fmt.Errorf("access allowlist needs an allow_file")
	}
	return nil
}

// ServeHTTP serves the request; the gateway writes its own precise error
// responses, so nothing is passed to next.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, _ caddyhttp.Handler) error {
	h.gw.ServeHTTP(w, r)
	return nil
}

// Interface guards.
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddy.Validator             = (*Handler)(nil)
	_ caddy.CleanerUpper          = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
)
