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
// round trips of finding them again. Idle sessions are ended by a timer
// armed only while the cache holds any. A session in use is never ended
// under its users: eviction, idleness and close only mark it, and the last
// user's release ends it.
type sessionCache struct {
	sessions Sessions
	idle     time.Duration

	mu     sync.Mutex // guards lru, closed, sweep and every session's refs and dropped
	lru    *simplelru.LRU[cid.Cid, *cachedSession]
	closed bool
	sweep  *time.Timer // pending sweep of idle sessions, nil when none
}

// cachedSession is a shared session with its users.
type cachedSession struct {
	cache    *sessionCache
	getter   chunker.BlockGetter
	cancel   context.CancelFunc
	lastUsed time.Time
	refs     int  // users holding it
	dropped  bool // out of the cache: end it when refs reach 0
}

func newSessionCache(sessions Sessions, size int, idle time.Duration) *sessionCache {
	c := &sessionCache{sessions: sessions, idle: idle}
	c.lru, _ = simplelru.NewLRU(size, func(_ cid.Cid, s *cachedSession) { s.drop() }) // size > 0
	return c
}

// acquire returns the session for root, starting one if none is cached.
// The caller must release it. Each GetBlock call carries the request's own
// context, which bounds that call; the session outlives the request.
func (c *sessionCache) acquire(root cid.Cid) *cachedSession {
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.dropIdle(now)
	s, ok := c.lru.Get(root)
	if !ok {
		ctx, cancel := context.WithCancel(context.Background())
		s = &cachedSession{cache: c, getter: c.sessions.NewSession(ctx), cancel: cancel}
		if c.closed {
			s.dropped = true // a request racing close: a session of its own
		} else {
			c.lru.Add(root, s)
			if c.sweep == nil {
				c.sweep = time.AfterFunc(c.idle, c.sweepIdle)
			}
		}
	}
	s.lastUsed = now
	s.refs++
	return s
}

// dropIdle ends the sessions idle since before now-idle, oldest first; the
// caller holds c.mu.
func (c *sessionCache) dropIdle(now time.Time) {
	for {
		_, oldest, ok := c.lru.GetOldest()
		if !ok || now.Sub(oldest.lastUsed) < c.idle {
			return
		}
		c.lru.RemoveOldest()
	}
}

// sweepIdle runs on the timer: it ends idle sessions and re-arms itself
// while sessions remain.
func (c *sessionCache) sweepIdle() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sweep = nil
	if c.closed {
		return
	}
	c.dropIdle(time.Now())
	if _, oldest, ok := c.lru.GetOldest(); ok {
		c.sweep = time.AfterFunc(time.Until(oldest.lastUsed.Add(c.idle)), c.sweepIdle)
	}
}

// drop takes s out of use; the caller holds c.mu.
func (s *cachedSession) drop() {
	s.dropped = true
	if s.refs == 0 {
		s.cancel()
	}
}

// release ends one use of s.
func (s *cachedSession) release() {
	s.cache.mu.Lock()
	defer s.cache.mu.Unlock()
	s.refs--
	if s.refs == 0 && s.dropped {
		s.cancel()
	}
}

// close ends every session once its users are done.
func (c *sessionCache) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	if c.sweep != nil {
		c.sweep.Stop()
		c.sweep = nil
	}
	c.lru.Purge()
}
