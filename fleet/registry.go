package fleet

import (
	"slices"
	"sync"
)

// registry is a list of handlers that are tried in turn, each removable
// by the function its add returned.
type registry[T any] struct {
	mu   sync.RWMutex // guards list
	list []*T
}

// add appends h; the returned function removes it.
func (r *registry[T]) add(h T) (remove func()) {
	p := &h
	r.mu.Lock()
	r.list = append(r.list, p)
	r.mu.Unlock()
	return func() {
		r.mu.Lock()
		r.list = slices.DeleteFunc(r.list, func(q *T) bool { return q == p })
		r.mu.Unlock()
	}
}

// all returns the handlers, in the order they were added.
func (r *registry[T]) all() []T {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]T, len(r.list))
	for i, p := range r.list {
		out[i] = *p
	}
	return out
}
