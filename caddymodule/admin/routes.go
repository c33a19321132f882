// Package admin serves pacman on Caddy's admin endpoint (/pacman/stat and
// the store's routes, through which the `caddy pacman` commands work in a
// running Caddy) and the operator's dashboard (http.handlers.pacman_stats).
// It reads the edges the pacman app runs.
package admin

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/pacman-cdn/pacman/caddymodule"
	"github.com/pacman-cdn/pacman/live"
	"github.com/pacman-cdn/pacman/node"
)

func init() {
	caddy.RegisterModule(adminStat{})
}

// adminStat serves the running node's status at /pacman/stat on Caddy's
// admin endpoint, which listens on localhost only unless configured
// otherwise (and then with Caddy's own access control), and the store's
// routes (storeRoutes). `caddy pacman stat`, `add`, `import`, `export` and
// `verify` use them.
type adminStat struct{}

// CaddyModule returns the Caddy module information.
func (adminStat) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "admin.api.pacman",
		New: func() caddy.Module { return new(adminStat) },
	}
}

// Routes returns the /pacman/stat route and the store's routes.
func (adminStat) Routes() []caddy.AdminRoute {
	return append(storeRoutes(), caddy.AdminRoute{Pattern: "/pacman/stat", Handler: caddy.AdminHandlerFunc(serveStat)})
}

// Status is one node's status as /pacman/stat reports it.
type Status struct {
	DataDir     string   `json:"data_dir"`
	PeerID      string   `json:"peer_id"`
	Listen      []string `json:"listen"`
	Peers       []string `json:"peers"`
	StoreBytes  uint64   `json:"store_bytes"`
	CacheBytes  int64    `json:"cache_bytes"`
	Evictions   uint64   `json:"evictions"`
	BytesSeeded uint64   `json:"bytes_seeded"`
	// FleetReceived and FleetSent are the block bytes received from and
	// sent to fleet members (seeding counts bitswap's alone).
	FleetReceived int64 `json:"fleet_received"`
	FleetSent     int64 `json:"fleet_sent"`
	// Reprovides counts completed announcement rounds; LastReprovide is
	// when the last ran, zero if none has.
	Reprovides    uint64    `json:"reprovides"`
	LastReprovide time.Time `json:"last_reprovide"`
	// Live are the live streams the node follows or publishes.
	Live []live.Info `json:"live,omitempty"`
	// URLsKnown are the origin URLs whose CID the node knows
	// (origin_pull), and RouteOffload each route's offload: the share of
	// its viewers' bytes that did not come from the origin.
	URLsKnown    float64            `json:"urls_known"`
	RouteOffload map[string]float64 `json:"route_offload,omitempty"`
}

func serveStat(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodGet {
		return caddy.APIError{HTTPStatus: http.StatusMethodNotAllowed}
	}
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	var out []Status
	var err error
	caddymodule.EachRunning(func(dataDir string, r *caddymodule.Running) bool {
		e := r.Edge()
		n := e.Node()
		var st node.Stats
		if st, err = n.Stats(ctx); err != nil {
			return false
		}
		s := Status{DataDir: dataDir, PeerID: n.Host().ID().String(), StoreBytes: st.StoreBytes, CacheBytes: st.CacheBytes, Evictions: st.Evictions, BytesSeeded: st.BytesSeeded,
			Reprovides: st.Reprovides, LastReprovide: st.LastReprovide}
		for _, a := range n.Host().Addrs() {
			s.Listen = append(s.Listen, a.String())
		}
		for _, p := range n.Host().Network().Peers() {
			s.Peers = append(s.Peers, p.String())
		}
		s.FleetReceived, s.FleetSent = e.Fleet().Counts()
		s.Live = e.Live().Streams().List()
		var f caddymodule.Figures
		if f, err = r.Figures(ctx); err != nil {
			return false
		}
		s.URLsKnown, s.RouteOffload = f.URLsKnown, f.RouteOffload
		out = append(out, s)
		return true
	})
	if err != nil {
		return caddy.APIError{HTTPStatus: http.StatusInternalServerError, Err: err}
	}
	w.Header().Set("Content-Type", "application/json")
	return json.NewEncoder(w).Encode(out)
}

// Interface guard.
var _ caddy.AdminRouter = adminStat{}
