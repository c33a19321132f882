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

// hotValues keeps the values of the blocks read in place most recently,
// up to max bytes. pebble keeps a value of 4 KiB or more in a blob file
// and reads it whole, and checks its checksum, on every Get, without
// keeping it in its block cache: a stream reading a 1 MiB leaf 64 KiB at
// a time read it sixteen times (a warm full GET ran at 0.25× the
// session path's pace). The bound is the node's, whatever the number of
// streams; a value evicted is read again.
type hotValues struct {
	mu    sync.Mutex // guards lru and bytes
	max   int
	bytes int
	lru   *simplelru.LRU[string, []byte]
}

func newHotValues(max int) *hotValues {
	h := &hotValues{max: max}
	h.lru, _ = simplelru.NewLRU(1<<16, func(_ string, v []byte) { h.bytes -= len(v) }) // size > 0
	return h
}

// get returns the value kept under key. It must not be modified.
func (h *hotValues) get(key string) ([]byte, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.lru.Get(key)
}

// add keeps v under key, evicting the least recently read values past
// the bound.
func (h *hotValues) add(key string, v []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if old, ok := h.lru.Peek(key); ok {
		h.bytes -= len(old)
	}
	h.lru.Add(key, v)
	h.bytes += len(v)
	for h.bytes > h.max && h.lru.Len() > 0 {
		h.lru.RemoveOldest()
	}
}

// drop forgets key: its block was deleted.
func (h *hotValues) drop(key string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.lru.Remove(key)
}
