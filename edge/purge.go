package edge

import (
	"context"
	"slices"
	"sync"

	"github.com/pacman-cdn/pacman/fleet"
)

// purgers are what mark stale the names this edge knows (origin_pull's
// records), and the purges the fleet's members ask for.
type purgers struct {
	mu   sync.Mutex // guards list
	list []*fleet.Purger
}

// AddPurger makes p one of the edge's purgers until the returned function
// is called.
func (e *Edge) AddPurger(p fleet.Purger) (remove func()) {
	ptr := &p
	e.purgers.mu.Lock()
	e.purgers.list = append(e.purgers.list, ptr)
	e.purgers.mu.Unlock()
	return func() {
		e.purgers.mu.Lock()
		e.purgers.list = slices.DeleteFunc(e.purgers.list, func(q *fleet.Purger) bool { return q == ptr })
		e.purgers.mu.Unlock()
	}
}

// purgeHere marks stale the names under prefix this edge knows, and
// returns how many.
func (e *Edge) purgeHere(prefix string) int {
	e.purgers.mu.Lock()
	list := slices.Clone(e.purgers.list)
	e.purgers.mu.Unlock()
	n := 0
	for _, p := range list {
		n += (*p)(prefix)
	}
	return n
}

// Purge marks stale the names under prefix on this edge and on every live
// fleet member at once: the next request for each revalidates it. It
// returns the names marked here, the members told, and the names they
// marked.
func (e *Edge) Purge(ctx context.Context, prefix string) (here, members, there int) {
	here = e.purgeHere(prefix)
	members, there = e.fleet.Purge(ctx, prefix)
	return here, members, there
}
