package node

import (
	"sync"

	"github.com/hashicorp/golang-lru/v2/simplelru"
)

// hotBytes bounds the block values ReadAt keeps in memory, and
// hotMinimum is the least a value kept must weigh: pebble's value
// separation threshold (smaller values sit in its cached sstable blocks).
const (
	hotBytes   = 64 << 20
	hotMinimum = 4 << 10
)

// hotValues keeps the values of blocks being read in pieces, up to max
// bytes. pebble keeps a value of 4 KiB or more in a blob file and reads
// it whole, and checks its checksum, on every Get, without keeping it in
// its block cache: a stream reading a 1 MiB leaf 64 KiB at a time read it
// sixteen times (a warm full GET ran at 0.25× the pace of reading each
// leaf once). A value is kept when a read continues the last read of the
// same block: the reader is going through it. Random ranges, each one
// piece of some leaf, keep nothing (keeping every value read made 64 KiB
// random ranges a third slower). The bound is the node's, whatever the
// number of streams; a value evicted is read again, into the buffer of
// one evicted before it.
type hotValues struct {
	mu    sync.Mutex // guards everything below, and the values' bytes
	max   int
	bytes int
	lru   *simplelru.LRU[string, []byte]
	free  [][]byte // buffers of evicted values, for the next misses
	// ends is where the last read of each block lately read stopped.
	ends *simplelru.LRU[string, int64]
}

func newHotValues(max int) *hotValues {
	h := &hotValues{max: max}
	h.lru, _ = simplelru.NewLRU(1<<16, func(_ string, v []byte) { // size > 0
		h.bytes -= len(v)
		if len(h.free) < 8 {
			h.free = append(h.free, v[:0])
		}
	})
	h.ends, _ = simplelru.NewLRU[string, int64](4096, nil) // size > 0
	return h
}

// continues notes a read of n bytes of key's value from off, and
// reports whether it starts where the last read of it stopped.
func (h *hotValues) continues(key string, off int64, n int) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	end, ok := h.ends.Get(key)
	h.ends.Add(key, off+int64(n))
	return ok && end == off
}

// readAt copies into p the bytes of the value kept under key from off on,
// and reports whether one is kept.
func (h *hotValues) readAt(key string, p []byte, off int64) (int, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	v, ok := h.lru.Get(key)
	if !ok {
		return 0, false
	}
	return copyFrom(v, p, off), true
}

// add keeps a copy of v under key, evicting the least recently read
// values past the bound. The copy is made outside the lock: readers of
// other values do not wait for it.
func (h *hotValues) add(key string, v []byte) {
	h.mu.Lock()
	if h.lru.Contains(key) {
		h.mu.Unlock()
		return
	}
	buf := h.takeFree(len(v))
	h.mu.Unlock()
	if buf == nil {
		buf = make([]byte, 0, len(v))
	}
	buf = append(buf[:0], v...)
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.lru.Contains(key) {
		if len(h.free) < 8 {
			h.free = append(h.free, buf[:0])
		}
		return
	}
	h.lru.Add(key, buf)
	h.bytes += len(buf)
	for h.bytes > h.max && h.lru.Len() > 1 {
		h.lru.RemoveOldest()
	}
}

// takeFree returns a free buffer of at least size bytes, or nil. The
// caller holds h.mu.
func (h *hotValues) takeFree(size int) []byte {
	for i, b := range h.free {
		if cap(b) >= size {
			h.free = append(h.free[:i], h.free[i+1:]...)
			return b
		}
	}
	return nil
}

// drop forgets key: its block was deleted.
func (h *hotValues) drop(key string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.lru.Remove(key)
	h.ends.Remove(key)
}
