package node

import (
	"container/list"
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"sync"
	"time"

	dshelp "github.com/ipfs/boxo/datastore/dshelp"
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	"github.com/ipfs/go-datastore"
	"github.com/ipfs/go-datastore/query"
	"go.uber.org/zap"
)

// cachedPrefix namespaces the datastore keys that mark a stored block as
// fetched (evictable) rather than imported: /pacman/cached/{multihash},
// valued with the block's size and the time it was stored.
var cachedPrefix = datastore.NewKey("/pacman/cached")

func cachedKey(c cid.Cid) datastore.Key {
	return cachedPrefix.Child(dshelp.MultihashToDsKey(c.Hash()))
}

// cache bounds the bytes of fetched blocks in the store, evicting the least
// recently used. Pinned blocks (see Store.Pin) are not tracked and never
// evicted. A block read or stored within grace is not evicted either, so a
// stream's window and the readahead for a player's next request stay put:
// the limit is exceeded for a while rather than evicting what is about to
// be read. Grace yields, though, once fresh blocks reach twice the limit or
// the disk runs low: then the least recently used go whatever their age,
// and a block evicted too soon is only fetched again.
type cache struct {
	store *Store
	limit int64
	grace time.Duration
	log   *zap.Logger
	kick  chan struct{} // wakes the evictor; buffered, 1
	done  chan struct{} // closed to stop the evictor
	wg    sync.WaitGroup

	mu        sync.Mutex               // guards the fields below
	lru       *list.List               // of *cacheEntry, most recent first
	entries   map[string]*list.Element // by multihash
	bytes     int64
	evictions uint64
	// evicting are the blocks the evictor is deleting, by multihash;
	// evicted is signalled (on mu) as each deletion ends.
	evicting map[string]struct{}
	evicted  *sync.Cond
}

type cacheEntry struct {
	c    cid.Cid
	size int64
	used time.Time
}

// newCache loads the fetched blocks recorded in the store and starts the
// evictor. limit 0 means no bound: blocks are tracked, never evicted.
func newCache(ctx context.Context, store *Store, limit int64, grace time.Duration, log *zap.Logger) (*cache, error) {
	c := &cache{
		store:    store,
		limit:    limit,
		grace:    grace,
		log:      log,
		kick:     make(chan struct{}, 1),
		done:     make(chan struct{}),
		lru:      list.New(),
		entries:  map[string]*list.Element{},
		evicting: map[string]struct{}{},
	}
	c.evicted = sync.NewCond(&c.mu)
	res, err := store.ds.Query(ctx, query.Query{Prefix: cachedPrefix.String()})
	if err != nil {
		return nil, fmt.Errorf("loading cache index: %w", err)
	}
	var loaded []*cacheEntry
	for r := range res.Next() {
		if r.Error != nil {
			res.Close()
			return nil, fmt.Errorf("loading cache index: %w", r.Error)
		}
		mh, err := dshelp.DsKeyToMultihash(datastore.NewKey(datastore.NewKey(r.Key).BaseNamespace()))
		if err != nil || len(r.Value) != 16 {
			continue // not ours
		}
		loaded = append(loaded, &cacheEntry{
			c:    cid.NewCidV1(cid.Raw, mh),
			size: int64(binary.BigEndian.Uint64(r.Value)),
			used: time.Unix(0, int64(binary.BigEndian.Uint64(r.Value[8:]))),
		})
	}
	res.Close()
	// Oldest at the back: the order they were stored in, before restart.
	slices.SortFunc(loaded, func(a, b *cacheEntry) int { return b.used.Compare(a.used) })
	for _, e := range loaded {
		c.entries[string(e.c.Hash())] = c.lru.PushBack(e)
		c.bytes += e.size
	}
	c.wg.Go(c.evictor)
	c.wake()
	return c, nil
}

// keep stores a fetched block and tracks it as evictable.
func (c *cache) keep(ctx context.Context, blk blocks.Block) error {
	now := time.Now()
	size := int64(len(blk.RawData()))
	if err := c.store.space.take(size); err != nil {
		c.wake() // evicting may make room
		return fmt.Errorf("keeping block %s: %w", blk.Cid(), err)
	}
	var v [16]byte
	binary.BigEndian.PutUint64(v[:], uint64(size))
	binary.BigEndian.PutUint64(v[8:], uint64(now.UnixNano()))
	// The mark first: a crash between the two writes leaves a mark
	// without a block, which eviction shrugs off, never an untracked
	// fetched block that would stay forever.
	if err := c.store.ds.Put(ctx, cachedKey(blk.Cid()), v[:]); err != nil {
		return fmt.Errorf("recording cached block %s: %w", blk.Cid(), err)
	}
	if err := c.store.base.Put(ctx, blk); err != nil {
		return fmt.Errorf("storing block %s: %w", blk.Cid(), err)
	}
	c.track(blk.Cid(), size, now)
	return nil
}

// track tracks a stored block as evictable, used at t.
func (c *cache) track(id cid.Cid, size int64, t time.Time) {
	c.mu.Lock()
	k := string(id.Hash())
	if el, ok := c.entries[k]; ok {
		el.Value.(*cacheEntry).used = t
		c.lru.MoveToFront(el)
	} else {
		c.entries[k] = c.lru.PushFront(&cacheEntry{c: id, size: size, used: t})
		c.bytes += size
	}
	over := c.limit > 0 && c.bytes > c.limit
	c.mu.Unlock()
	if over {
		c.wake()
	}
}

// touch marks a block as just used, if it is a cached one.
func (c *cache) touch(id cid.Cid) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.entries[string(id.Hash())]; ok {
		el.Value.(*cacheEntry).used = time.Now()
		c.lru.MoveToFront(el)
	}
}

// forget stops tracking blocks that were imported or pinned: they are kept
// for good. It waits for the evictor to finish deleting any of them, so
// that a block written or found held after is not deleted by it.
func (c *cache) forget(ids ...cid.Cid) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, id := range ids {
		k := string(id.Hash())
		if el, ok := c.entries[k]; ok {
			c.bytes -= el.Value.(*cacheEntry).size
			c.lru.Remove(el)
			delete(c.entries, k)
		}
		for {
			if _, ok := c.evicting[k]; !ok {
				break
			}
			c.evicted.Wait()
		}
	}
}

func (c *cache) wake() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// evictor evicts when woken, and on a tick a fraction of grace long, since
// blocks too recent to evict now will not be later.
func (c *cache) evictor() {
	t := time.NewTicker(max(c.grace/4, 250*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-c.done:
			return
		case <-c.kick:
		case <-t.C:
		}
		c.evict()
	}
}

// evict removes least recently used blocks until the cache is within its
// limit, or the oldest block is within grace while the cache is below
// twice its limit and the disk has room.
func (c *cache) evict() {
	if c.limit <= 0 {
		return
	}
	ctx := context.Background()
	low := c.store.space.low()
	for {
		c.mu.Lock()
		el := c.lru.Back()
		fresh := el != nil && time.Since(el.Value.(*cacheEntry).used) < c.grace
		if c.bytes <= c.limit || el == nil || fresh && c.bytes <= 2*c.limit && !low {
			c.mu.Unlock()
			return
		}
		e := el.Value.(*cacheEntry)
		k := string(e.c.Hash())
		c.lru.Remove(el)
		delete(c.entries, k)
		c.bytes -= e.size
		c.evictions++
		c.evicting[k] = struct{}{}
		c.mu.Unlock()
		// A block fetched again meanwhile is deleted anyway: it is
		// fetched again when next needed. One imported or pinned
		// meanwhile waits in forget until the delete is done.
		if err := c.store.base.DeleteBlock(ctx, e.c); err != nil {
			c.log.Warn("evicting block", zap.Stringer("cid", e.c), zap.Error(err))
		}
		c.store.hot.drop(string(e.c.Hash()))
		if err := c.store.ds.Delete(ctx, cachedKey(e.c)); err != nil {
			c.log.Warn("evicting block", zap.Stringer("cid", e.c), zap.Error(err))
		}
		c.mu.Lock()
		delete(c.evicting, k)
		c.evicted.Broadcast()
		c.mu.Unlock()
	}
}

// stats returns the bytes of fetched blocks held and the evictions so far.
func (c *cache) stats() (bytes int64, evictions uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.bytes, c.evictions
}

// close stops the evictor.
func (c *cache) close() {
	close(c.done)
	c.wg.Wait()
}
