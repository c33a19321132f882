package edge

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"

	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"
	"github.com/pacman-cdn/pacman/hedge"
)

// Route is one way the edge serves content (a gateway handler): what it
// denies, and the hedge its blocks come through.
type Route interface {
	// Denies reports whether the route's policies refuse c.
	Denies(c cid.Cid) bool
	// Hedge returns the route's hedge over its trusted sources.
	Hedge() *hedge.Hedge
}

// Routes are the routes of one configuration. The zero value is empty and
// ready; Add may be called while the edge serves them.
type Routes struct {
	mu   sync.Mutex // guards list
	list []Route
}

// Add adds r; the returned function removes it.
func (rs *Routes) Add(r Route) (remove func()) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	rs.list = append(rs.list, r)
	return func() {
		rs.mu.Lock()
		defer rs.mu.Unlock()
		rs.list = slices.DeleteFunc(rs.list, func(x Route) bool { return x == r })
	}
}

func (rs *Routes) all() []Route {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return slices.Clone(rs.list)
}

// Serve makes rs the routes the edge serves: what any of them denies, the
// node refuses to seed, and fleet members' wants are answered through
// their hedges. A reload serves the new configuration's routes before the
// old one stops, so members are never left unanswered.
func (e *Edge) Serve(rs *Routes) { e.serving.routes.Store(rs) }

// serving holds the routes served now.
type serving struct {
	routes atomic.Pointer[Routes]
}

// refuses reports whether a route served now denies c: the node's
// bitswap server asks before it sends c to a peer.
func (s *serving) refuses(c cid.Cid) bool {
	rs := s.routes.Load()
	if rs == nil {
		return false
	}
	for _, r := range rs.all() {
		if r.Denies(c) {
			return true
		}
	}
	return false
}

// serveFleet answers a member's want through the first route whose
// sources have the block: the store, then the origin it serves, and the
// open network when the member's route may use it (Want.Network) and
// this one does not deny the block. A want made ahead of need (Want.Ahead: a member's readahead, or an
// owner asking who holds a block before its origin) is answered from the
// store alone, at once. Until a configuration is served, wants are not
// found.
func (s *serving) serveFleet(ctx context.Context, w hedge.Want) (blocks.Block, error) {
	err := error(ipld.ErrNotFound{Cid: w.Cid})
	rs := s.routes.Load()
	if rs == nil {
		return nil, err
	}
	var notHeld error
	if w.Ahead {
		notHeld = ipld.ErrNotFound{Cid: w.Cid}
	}
	for _, r := range rs.all() {
		// The member's route may use the open network: so may this
		// one, for a block it does not deny.
		network := w.Network && !r.Denies(w.Cid)
		req, oerr := r.Hedge().Open(hedge.Target{OriginURL: w.OriginURL, StoreOnly: w.Ahead}, network, notHeld)
		if oerr != nil {
			err = oerr
			continue
		}
		blk, gerr := req.Get(ctx, w)
		req.Release()
		if gerr == nil {
			return blk, nil
		}
		err = gerr
	}
	return nil, err
}
