package node

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/dustin/go-humanize"
)

// ErrNoSpace says the store's disk has too little room left to take a
// write: imports fail with it, fetched blocks are served without being
// kept, and what the store holds is still served.
var ErrNoSpace = errors.New("not enough free disk for the store")

const (
	// maxReserve is the most free disk the store keeps back: room for a
	// memtable to flush and for pebble's own files, so the store never
	// meets ENOSPC, which pebble cannot recover from without a restart.
	maxReserve = 2*memTableSize + 64<<20
	// spaceCheckEvery bounds how often the filesystem is asked for its
	// free space; in between, the bytes written are subtracted.
	spaceCheckEvery = 100 * time.Millisecond
)

// diskSpace keeps back a reserve of the store's filesystem.
type diskSpace struct {
	mu      sync.Mutex // guards the fields below
	dir     string
	reserve int64
	stat    func(dir string) (free, total int64, err error)
	free    int64 // bytes free at checked, less those written since
	checked time.Time
}

// newDiskSpace keeps back the smaller of maxReserve and a quarter of the
// filesystem of dir, or nothing where free space cannot be read.
func newDiskSpace(dir string, stat func(string) (int64, int64, error)) *diskSpace {
	d := &diskSpace{dir: dir, stat: stat}
	if _, total, err := stat(dir); err == nil {
		d.reserve = min(maxReserve, total/4)
	}
	return d
}

// take counts n bytes about to be written, or returns an error wrapping
// ErrNoSpace if they would eat into the reserve.
func (d *diskSpace) take(n int64) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.reserve == 0 {
		return nil
	}
	if !d.refresh(d.free-n < d.reserve) {
		return nil // unknown: let the write find out
	}
	if d.free-n < d.reserve {
		return fmt.Errorf("%w: %s free in %s, %s kept back", ErrNoSpace,
			humanize.IBytes(uint64(max(d.free, 0))), d.dir, humanize.IBytes(uint64(d.reserve)))
	}
	d.free -= n
	return nil
}

// low reports whether the disk has less than twice the reserve free: time
// for the cache to make room before writes are refused.
func (d *diskSpace) low() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.reserve > 0 && d.refresh(false) && d.free < 2*d.reserve
}

// refresh asks the filesystem for its free space if the last answer is
// older than spaceCheckEvery, or if force. It reports whether free is
// known. d.mu must be held.
func (d *diskSpace) refresh(force bool) bool {
	now := time.Now()
	if !force && now.Sub(d.checked) <= spaceCheckEvery {
		return true
	}
	free, _, err := d.stat(d.dir)
	if err != nil {
		return false
	}
	d.free, d.checked = free, now
	return true
}
