package gateway

import (
	"context"
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
	"github.com/ipfs/go-cid"
	"github.com/pacman-cdn/pacman/chunker"
)

// sessionCache keeps one block session per root CID for a while after its
// last use. A player's consecutive range requests for one file, and the
// readahead after them, then share a session that already knows which
// peers deliver that file's blocks: no request after the first pays the
// round trips of finding them again. It runs no goroutine: idle sessions
// are ended as later requests pass by.
type sessionCache struct {
	sessions Sessions
	idle     time.Duration

	mu  sync.Mutex // guards lru
	lru *simplelru.LRU[cid.Cid, *cachedSession]
}

// cachedSession is a session with the function that ends it.
type cachedSession struct {
	getter   chunker.BlockGetter
	cancel   context.CancelFunc
	lastUsed time.Time
}

func newSessionCache(sessions Sessions, size int, idle time.Duration) *sessionCache {
	lru, _ := simplelru.NewLRU(size, func(_ cid.Cid, s *cachedSession) { s.cancel() }) // size > 0
	return &sessionCache{sessions: sessions, idle: idle, lru: lru}
}

// get returns the session for root, starting one if none is cached. The
// session outlives the request: each GetBlock call carries the request's
// own context, which bounds that call.
func (c *sessionCache) get(root cid.Cid) chunker.BlockGetter {
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	// End the sessions idle for too long, oldest first.
	for {
		_, oldest, ok := c.lru.GetOldest()
		if !ok || now.Sub(oldest.lastUsed) < c.idle {
			break
		}
		c.lru.RemoveOldest()
	}
	if s, ok := c.lru.Get(root); ok {
		s.lastUsed = now
		return s.getter
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &cachedSession{getter: c.sessions.NewSession(ctx), cancel: cancel, lastUsed: now}
	c.lru.Add(root, s)
	return s.getter
}

// close ends every cached session.
func (c *sessionCache) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lru.Purge()
}
