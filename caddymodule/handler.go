package caddymodule

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/pacman-cdn/pacman/gateway"
	"github.com/pacman-cdn/pacman/hedge"
)

func init() {
	caddy.RegisterModule(Handler{})
}

// Handler serves GET and HEAD of the content its resolvers name (by
// default /ipfs/{cid}[/path]) from the pacman node, with full HTTP Range
// support: single, suffix, open-ended and multi-range requests,
// conditional requests on a strong ETag derived from the CID, and caching
// headers. Blocks are read from the store, or fetched through the hedge:
// the fleet owner of each leaf first, then the sources, each after its
// delay; they are verified, streamed in order, kept and seeded back.
type Handler struct {
	// Route names the route in the per-route metrics
	// (pacman_route_delivered_bytes_total). The Caddyfile sets it to the
	// directive's path matcher (`pacman /videos/*` is "/videos/*")
	// unless a `route` subdirective names it. Default: "".
	Route string `json:"route,omitempty"`
	// Resolvers turn a request into content, tried in order until one
	// claims it (modules in pacman.resolvers). Default: [ipfs].
	ResolversRaw []json.RawMessage `json:"resolvers,omitempty" caddy:"namespace=pacman.resolvers inline_key=resolver"`
	// Sources are where blocks not held come from (modules in
	// pacman.sources), asked in the order of their delays; fleet members
	// are asked before any of them. Default: [bitswap].
	SourcesRaw []json.RawMessage `json:"sources,omitempty" caddy:"namespace=pacman.sources inline_key=source"`
	// Policies decide what may be served and fetched (modules in
	// pacman.policies); every one must allow a request. Default: [local]:
	// only what the edge, its fleet and its origin hold is served.
	PoliciesRaw []json.RawMessage `json:"policies,omitempty" caddy:"namespace=pacman.policies inline_key=policy"`
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
	// BudgetWait is how long a request waits for room among
	// max_leaves_in_flight before it gets 503 with Retry-After.
	// Default: 5s.
	BudgetWait caddy.Duration `json:"budget_wait,omitempty"`
	// MaxStreamsPerClient bounds the requests one client address has in
	// progress at once; more get 429 with Retry-After. Default: 64.
	MaxStreamsPerClient int `json:"max_streams_per_client,omitempty"`
	// MaxNetworkRequests bounds the requests resolving content the edge
	// does not hold that a policy lets on the open network; more get 503
	// with Retry-After. A request counts until its path is resolved (to
	// its end for CAR and TAR). Default 128.
	MaxNetworkRequests int `json:"max_network_requests,omitempty"`
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
	// StallTimeout bounds the wait for any one block while streaming, and
	// for the client to take each block written to it, after which the
	// response is cut short (the client sees fewer bytes than
	// Content-Length, never wrong ones). Default: 30s.
	StallTimeout caddy.Duration `json:"stall_timeout,omitempty"`
	// SubdomainHosts makes this route a subdomain gateway for these
	// hostnames (no port): {cid}.ipfs.{host} and {name}.ipns.{host} serve
	// each CID and name at the root of an origin of its own, as browsers
	// need to keep sites apart, and {host}/ipfs/… and /ipns/… redirect
	// there. Other hosts are served as a path gateway. Default: none.
	SubdomainHosts []string `json:"subdomain_hosts,omitempty"`

	gw      *gateway.Handler
	closers []func()
}

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.pacman",
		New: func() caddy.Module { return new(Handler) },
	}
}

// Provision loads the resolvers, sources and policies and connects the
// handler to the pacman app's node.
func (h *Handler) Provision(ctx caddy.Context) error {
	app, err := AppFrom(ctx)
	if err != nil {
		return err
	}
	resolvers, err := loadModules[gateway.Resolver](ctx, h, "ResolversRaw", "pacman.resolvers.ipfs")
	if err != nil {
		return err
	}
	sources, err := loadModules[hedge.Source](ctx, h, "SourcesRaw", "pacman.sources.bitswap")
	if err != nil {
		return err
	}
	policies, err := loadModules[gateway.Policy](ctx, h, "PoliciesRaw", "pacman.policies.local")
	if err != nil {
		return err
	}
	for _, r := range resolvers {
		if o, ok := r.(originResolver); ok {
			sources = append(sources, o.Source())
		}
	}
	e := app.edge
	h.gw, err = gateway.NewHandler(gateway.Config{
		Resolvers:           resolvers,
		Sources:             sources,
		Policies:            policies,
		Fleet:               e.Fleet(),
		Flights:             e.Flights(),
		Window:              h.Window,
		MaxWindow:           h.MaxWindow,
		MaxLeavesInFlight:   h.MaxLeavesInFlight,
		BudgetWait:          time.Duration(h.BudgetWait),
		MaxStreamsPerClient: h.MaxStreamsPerClient,
		MaxNetworkRequests:  h.MaxNetworkRequests,
		Readahead:           h.Readahead,
		MaxRanges:           h.MaxRanges,
		ResolveTimeout:      time.Duration(h.ResolveTimeout),
		StallTimeout:        time.Duration(h.StallTimeout),
		Local:               e.Node().Store(),
		Store:               e.Node(),
		Observer:            app.Metrics(),
		Blocks:              app.Metrics().Route(h.Route),
		Logger:              ctx.Logger(),
		Subdomains:          h.SubdomainHosts,
		Expander:            placeholders,
	})
	if err != nil {
		return err
	}
	h.closers = append(h.closers, app.AddRoute(h.gw))
	return nil
}

// originResolver is a resolver whose files are also on an origin, from
// which the route fetches their leaves (origin_pull).
type originResolver interface {
	// Source returns the origin.
	Source() hedge.Source
}

// loadModules loads the list of modules in field, or the module def when
// the list is empty, and checks that each is a T.
func loadModules[T any](ctx caddy.Context, h *Handler, field, def string) ([]T, error) {
	var mods []any
	raw := map[string][]json.RawMessage{"ResolversRaw": h.ResolversRaw, "SourcesRaw": h.SourcesRaw, "PoliciesRaw": h.PoliciesRaw}[field]
	if len(raw) > 0 {
		v, err := ctx.LoadModule(h, field)
		if err != nil {
			return nil, fmt.Errorf("loading %s: %w", field, err)
		}
		mods = v.([]any)
	} else {
		m, err := ctx.LoadModuleByID(def, nil)
		if err != nil {
			return nil, fmt.Errorf("loading %s: %w", def, err)
		}
		mods = []any{m}
	}
	out := make([]T, len(mods))
	for i, m := range mods {
		t, ok := m.(T)
		if !ok {
			return nil, fmt.Errorf("%s: module %T is not a %T", field, m, *new(T))
		}
		out[i] = t
	}
	return out, nil
}

// Cleanup stops answering fleet members through this handler.
func (h *Handler) Cleanup() error {
	for _, c := range h.closers {
		c()
	}
	if h.gw != nil {
		h.gw.Close()
	}
	return nil
}

// Validate checks the settings.
func (h *Handler) Validate() error {
	if h.Window < 0 || h.MaxWindow < 0 || h.MaxLeavesInFlight < 0 || h.MaxStreamsPerClient < 0 || h.MaxNetworkRequests < 0 {
		return fmt.Errorf("window, max_window, max_leaves_in_flight, max_streams_per_client and max_network_requests must not be negative")
	}
	if h.MaxRanges < 0 {
		return fmt.Errorf("max_ranges must not be negative, got %d", h.MaxRanges)
	}
	if h.ResolveTimeout < 0 || h.StallTimeout < 0 || h.BudgetWait < 0 {
		return fmt.Errorf("timeouts must not be negative")
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

// placeholders expands Caddy's placeholders for r, as its replacer has them.
func placeholders(r *http.Request) func(string) string {
	repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	if !ok {
		return nil
	}
	return func(s string) string { return repl.ReplaceAll(s, "") }
}
