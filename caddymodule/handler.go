package caddymodule

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/ipfs/boxo/blockservice"
	blocks "github.com/ipfs/go-block-format"
	"github.com/pacman-cdn/pacman/chunker"
	"github.com/pacman-cdn/pacman/gateway"
	"github.com/pacman-cdn/pacman/node"
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
	// Window is the number of 1 MiB leaves in flight per stream at its
	// start. The window then adapts: it grows while more leaves in flight
	// bring more throughput (high-latency links, many peers) and shrinks
	// back when they do not. Default: 16.
	Window int `json:"window,omitempty"`
	// MaxWindow bounds the adaptive window; a stream holds at most
	// max_window × the leaf size (1 MiB) of memory. Default: 64.
	MaxWindow int `json:"max_window,omitempty"`
	// MaxLeavesInFlight bounds the leaves fetched or held at once over
	// all of this route's streams, and so their memory together (1 MiB
	// each). Streams wait for room beyond it. Default: 512.
	MaxLeavesInFlight int `json:"max_leaves_in_flight,omitempty"`
	// Readahead is the number of leaves past the end of each served range
	// made local for the player's next request: those not stored yet are
	// fetched into the blockstore. Default: 8. A negative value disables
	// readahead.
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
	// Origin is an HTTP server holding the same files as plain bytes (any
	// web server or object store that honours Range). A leaf peers do not
	// deliver within OriginAfter is fetched from it by its exact byte
	// span and served only if it hashes to the leaf's CID; it is then kept
	// and seeded like any block. The value is the URL of the requested
	// file on the origin, with placeholders expanded per request; without
	// a placeholder the request path is appended, so
	// "https://origin.example.com" fetches /videos/a.mp4 from
	// https://origin.example.com/videos/a.mp4. Only raw leaves (CIDv1, as
	// `caddy pacman add` makes) can be checked and fetched this way.
	Origin string `json:"origin,omitempty"`
	// OriginAfter is how long peers have to deliver a leaf before the
	// origin is asked too: the longest a viewer waits on slow peers.
	// Default: 1s.
	OriginAfter caddy.Duration `json:"origin_after,omitempty"`

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
	app := v.(*App)
	n := app.Node()
	policy, err := h.policy(ctx.Logger())
	if err != nil {
		return err
	}
	h.gw, err = gateway.NewHandler(gateway.SessionsFunc(func(ctx context.Context) chunker.BlockGetter {
		return n.NewSession(ctx)
	}), gateway.Config{
		Window:            h.Window,
		MaxWindow:         h.MaxWindow,
		MaxLeavesInFlight: h.MaxLeavesInFlight,
		Readahead:         h.Readahead,
		MaxRanges:         h.MaxRanges,
		ResolveTimeout:    time.Duration(h.ResolveTimeout),
		StallTimeout:      time.Duration(h.StallTimeout),
		SessionIdle:       time.Duration(h.SessionIdle),
		ReaskAfter:        time.Duration(h.ReaskAfter),
		Local:             blockservice.New(n.Blockstore(), nil),
		Policy:            policy,
		Origin:            h.origin(n),
		Observer:          app.metrics,
		Logger:            ctx.Logger(),
	})
	return err
}

// origin returns the origin fallback, nil when none is configured.
func (h *Handler) origin(n *node.Node) *gateway.Origin {
	if h.Origin == "" {
		return nil
	}
	tmpl := h.Origin
	if !strings.Contains(tmpl, "{") {
		tmpl = strings.TrimSuffix(tmpl, "/") + "{http.request.uri.path}"
	}
	after := time.Duration(h.OriginAfter)
	if after == 0 {
		after = time.Second
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.MaxIdleConnsPerHost = 64 // a window of leaves per stream
	return &gateway.Origin{
		Locate: func(r *http.Request) string {
			repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
			if !ok {
				return ""
			}
			return repl.ReplaceAll(tmpl, "")
		},
		After:  after,
		Client: &http.Client{Transport: transport},
		Store: gateway.StoreFunc(func(ctx context.Context, blk blocks.Block, took time.Duration) error {
			return n.Keep(ctx, blk, node.SourceOrigin, took)
		}),
	}
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
	if h.Window < 0 || h.MaxWindow < 0 || h.MaxLeavesInFlight < 0 {
		return fmt.Errorf("window, max_window and max_leaves_in_flight must not be negative")
	}
	if h.MaxRanges < 0 {
		return fmt.Errorf("max_ranges must not be negative, got %d", h.MaxRanges)
	}
	if h.ResolveTimeout < 0 || h.StallTimeout < 0 || h.SessionIdle < 0 || h.ReaskAfter < 0 {
		return fmt.Errorf("timeouts must not be negative")
	}
	if h.OriginAfter < 0 {
		return fmt.Errorf("origin_after must not be negative")
	}
	if h.Origin != "" {
		u, err := url.Parse(strings.SplitN(h.Origin, "{", 2)[0])
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("origin %q: want an http:// or https:// URL", h.Origin)
		}
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
