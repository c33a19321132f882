package hedge

import (
	"context"
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
)

// Getter is a block session: it returns verified blocks by CID, and keeps
// those it fetches (the hedge does not keep them again).
type Getter interface {
	GetBlock(ctx context.Context, c cid.Cid) (blocks.Block, error)
}

// Sessions is a Source over per-file block sessions, such as bitswap's: a
// player's consecutive requests for one file, and the readahead after
// them, share the session that has learnt which peers deliver the file.
type Sessions struct {
	rung  Rung
	cache *sessionCache
}

// NewSessions returns a Source that opens sessions with open (each lasts
// as long as its context), keeps up to size of them and ends those idle
// for idle.
func NewSessions(rung Rung, open func(ctx context.Context) Getter, size int, idle time.Duration) *Sessions {
	return &Sessions{rung: rung, cache: newSessionCache(open, size, idle)}
}

// Rung implements Source.
func (s *Sessions) Rung() Rung {
	r := s.rung
	r.Kept = true // a session stores what it fetches
	return r
}

// Open implements Source: the session cached for t.Root. Its node decides
// when a peer is late and asks another holder; a session is never
// abandoned for a fresh one.
func (s *Sessions) Open(t Target) (Fetcher, func(), error) {
	cs := s.cache.acquire(t.Root)
	return getterFetcher{cs.getter}, cs.release, nil
}

// Close ends every session once its users are done.
func (s *Sessions) Close() { s.cache.close() }

// getterFetcher fetches wants by their CID.
type getterFetcher struct{ g Getter }

func (f getterFetcher) Fetch(ctx context.Context, w Want) (blocks.Block, error) {
	return f.g.GetBlock(ctx, w.Cid)
}

// sessionCache keeps one block session per root CID for a while after its
// last use. A player's consecutive range requests for one file, and the
// readahead after them, then share a session that already knows which
// peers deliver that file's blocks: no request after the first pays the
// round trips of finding them again. Idle sessions are ended by a timer
// armed only while the cache holds any. A session in use is never ended
// under its users: eviction, idleness and close only mark it, and the last
// user's release ends it.
type sessionCache struct {
	open func(ctx context.Context) Getter
	idle time.Duration

	mu     sync.Mutex // guards lru, closed, sweep and every session's refs and dropped
	lru    *simplelru.LRU[cid.Cid, *cachedSession]
	closed bool
	sweep  *time.Timer // pending sweep of idle sessions, nil when none
}

// cachedSession is a shared session with its users.
type cachedSession struct {
	cache    *sessionCache
	getter   Getter
	cancel   context.CancelFunc
	lastUsed time.Time
	refs     int  // users holding it
	dropped  bool // out of the cache: end it when refs reach 0
}

func newSessionCache(open func(ctx context.Context) Getter, size int, idle time.Duration) *sessionCache {
	c := &sessionCache{open: open, idle: idle}
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
		s = &cachedSession{cache: c, getter: c.open(ctx), cancel: cancel}
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
