package node

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/ipfs/boxo/blockstore"
	dshelp "github.com/ipfs/boxo/datastore/dshelp"
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	"github.com/ipfs/go-datastore"
	pebbleds "github.com/ipfs/go-ds-pebble"
	format "github.com/ipfs/go-ipld-format"
	"github.com/multiformats/go-multihash"
)

// Store is the node's persistent blockstore. It can be opened without a
// libp2p host, by the import and export commands.
type Store struct {
	// Blockstore holds the blocks. Identity CIDs are answered from the CID
	// itself and never stored. Blocks put through it count as imported:
	// they are kept for good, even if they were cached before.
	Blockstore blockstore.Blockstore
	base       blockstore.Blockstore // the blocks, without the cache's bookkeeping
	ds         *pebbleds.Datastore
	space      *diskSpace
	cache      *cache // tracks fetched blocks; nil until a node starts one
	hot        *hotValues
	// pinMu is held by an unpin, and for reading by each step of a
	// pin's walk (see Pin).
	pinMu sync.RWMutex
}

// memTableSize is the size of pebble's memtable: what a flush writes.
const memTableSize = 64 << 20

// OpenStore opens (creating if needed) the blockstore in dir. Only one
// process can hold a store open: a second gets an error that says so.
func OpenStore(dir string) (*Store, error) {
	if dir == "" {
		return nil, errors.New("opening store: no data directory configured")
	}
	path := filepath.Join(dir, "blocks")
	if err := os.MkdirAll(path, 0o700); err != nil {
		return nil, fmt.Errorf("opening store: %w", err)
	}
	opts := &pebble.Options{
		// Blocks are immutable and verified on arrival, so they skip the
		// write-ahead log, which would write every block twice: a crash
		// loses at most the memtable's last blocks, and with them their
		// bookkeeping. Fetched blocks are fetched again; imports call
		// Sync, which flushes, before reporting success.
		DisableWAL:   true,
		BytesPerSync: 4 << 20,
		MemTableSize: memTableSize,
		// Blocks (up to 1 MiB each) go to blob files once, and compactions
		// move only their small references: without this, every block is
		// rewritten by each compaction it takes part in.
		FormatMajorVersion: pebble.FormatValueSeparation,
	}
	// A flush cuts its output into files of the L0 target size, and each
	// file (an sstable and its blob file) is synced when it is finished.
	// At pebble's default of 2 MB a memtable of 1 MiB blocks became some
	// 30 file pairs and 60 syncs: flushes ran at 150 MB/s, writes stalled
	// on them, and a 256 MiB import ran at 140 MB/s. One file pair per
	// memtable flushes at the disk's pace (520–650 MB/s for that import).
	// Deeper levels double from it, but hold only the blocks' references.
	opts.TargetFileSizes[0] = int64(opts.MemTableSize)
	opts.Experimental.ValueSeparationPolicy = func() pebble.ValueSeparationPolicy {
		return pebble.ValueSeparationPolicy{
			Enabled:     true,
			MinimumSize: hotMinimum,
			// Blocks have random keys, so every flush's sstable spans
			// the whole key space and each adds one to the depth of
			// the blob files an sstable below refers to. At pebble's
			// usual 10, a compaction copied every block of the first
			// 640 MiB into new blob files once more: a 1 GiB import
			// wrote its blocks twice (7.7 s against 5.5 s). Point
			// reads open one blob file whatever the depth.
			MaxBlobReferenceDepth: 1000,
			// A blob file is rewritten without its evicted blocks
			// once it is 2 s old: a cache that keeps one hot block of
			// each 64 MiB flush would otherwise hold every flush's
			// whole file (768 MiB on disk behind a 16 MiB cache in
			// TestCacheBoundsTheDisk at an hour's age, 60 MiB at 2 s).
			RewriteMinimumAge:  2 * time.Second,
			TargetGarbageRatio: 0.2,
		}
	}
	// A block cache of 128 MiB (pebble's default is 8) keeps the leaves
	// players seek into in memory: a warm seek's first byte then costs no
	// read from disk (1.34 → 0.99 ms in BenchmarkWarmSeek).
	ds, err := pebbleds.NewDatastore(path, pebbleds.WithPebbleOpts(opts), pebbleds.WithCacheSize(128<<20))
	if err != nil {
		return nil, fmt.Errorf("opening store in %s (is another pacman using it?): %w", path, err)
	}
	bs := blockstore.NewBlockstore(indexedDatastore{ds}, blockstore.WriteThrough(false))
	s := &Store{base: blockstore.NewIdStore(bs), ds: ds, space: newDiskSpace(path, statDisk), hot: newHotValues(hotBytes)}
	s.Blockstore = storeBlockstore{s.base, s}
	return s, nil
}

// indexedDatastore answers Has and GetSize from pebble's index alone.
// pebble's Get reads the whole value, and a block's value (up to 1 MiB) is
// in a blob file: the bitswap server asks GetSize for every want-have it
// answers, and readahead asks Has for every leaf it might fetch, neither
// of which needs the bytes.
type indexedDatastore struct {
	*pebbleds.Datastore
}

// Has reports whether key is stored.
func (d indexedDatastore) Has(_ context.Context, key datastore.Key) (bool, error) {
	_, ok, err := d.size(key)
	return ok, err
}

// GetSize returns the size of key's value, or datastore.ErrNotFound.
func (d indexedDatastore) GetSize(_ context.Context, key datastore.Key) (int, error) {
	n, ok, err := d.size(key)
	if err != nil {
		return -1, err
	}
	if !ok {
		return -1, datastore.ErrNotFound
	}
	return n, nil
}

// size looks key up with an iterator bounded to key itself, whose lazy
// value knows its length without fetching the value.
func (d indexedDatastore) size(key datastore.Key) (int, bool, error) {
	k := key.Bytes()
	// [k, k+"\x00") holds k and nothing else.
	it, err := d.DB.NewIter(&pebble.IterOptions{LowerBound: k, UpperBound: append(k[:len(k):len(k)], 0)})
	if err != nil {
		return 0, false, fmt.Errorf("looking up %s: %w", key, err)
	}
	found := it.First()
	var n int
	if found {
		lv := it.LazyValue()
		n = lv.Len()
	}
	if err := it.Close(); err != nil { // the iterator's error, if any
		return 0, false, fmt.Errorf("looking up %s: %w", key, err)
	}
	return n, found, nil
}

// storeBlockstore is the store's blockstore as its users see it: reads
// mark cached blocks as recently used, and puts (imports) take blocks out
// of the cache for good.
type storeBlockstore struct {
	blockstore.Blockstore
	s *Store
}

func (b storeBlockstore) Get(ctx context.Context, c cid.Cid) (blocks.Block, error) {
	blk, err := b.Blockstore.Get(ctx, c)
	if err == nil && b.s.cache != nil {
		b.s.cache.touch(c)
	}
	return blk, err
}

// DeleteBlock deletes c, and forgets the value of c that ReadAt kept.
func (b storeBlockstore) DeleteBlock(ctx context.Context, c cid.Cid) error {
	err := b.Blockstore.DeleteBlock(ctx, c)
	b.s.hot.drop(string(c.Hash()))
	return err
}

func (b storeBlockstore) Put(ctx context.Context, blk blocks.Block) error {
	return b.PutMany(ctx, []blocks.Block{blk})
}

func (b storeBlockstore) PutMany(ctx context.Context, blks []blocks.Block) error {
	var n int64
	for _, blk := range blks {
		n += int64(len(blk.RawData()))
	}
	if err := b.s.space.take(n); err != nil {
		return fmt.Errorf("storing %d blocks: %w", len(blks), err)
	}
	ids := make([]cid.Cid, len(blks))
	for i, blk := range blks {
		ids[i] = blk.Cid()
		if err := b.s.ds.Delete(ctx, cachedKey(blk.Cid())); err != nil {
			return fmt.Errorf("marking block %s imported: %w", blk.Cid(), err)
		}
	}
	if b.s.cache != nil {
		b.s.cache.forget(ids...)
	}
	return b.Blockstore.PutMany(ctx, blks)
}

// GetBlock returns the held block c, or an error for which
// ipld.IsNotFound holds.
func (s *Store) GetBlock(ctx context.Context, c cid.Cid) (blocks.Block, error) {
	return s.Blockstore.Get(ctx, c)
}

// Has reports whether the store holds c, from pebble's index alone.
func (s *Store) Has(ctx context.Context, c cid.Cid) (bool, error) {
	return s.Blockstore.Has(ctx, c)
}

// Size returns the length of the held block c from pebble's index,
// without reading it: hedge.Local.
func (s *Store) Size(ctx context.Context, c cid.Cid) (int, error) {
	return s.Blockstore.GetSize(ctx, c)
}

// ReadAt copies into p the bytes of the held block c from byte off on,
// and returns how many it copied: fewer than len(p) only at the block's
// end. It reads the block in place, in pebble's block cache, so a 64 KiB
// range of a 1 MiB leaf costs a 64 KiB copy, not a whole one. A block not
// held gives an error for which ipld.IsNotFound holds.
func (s *Store) ReadAt(_ context.Context, c cid.Cid, p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("reading block %s at %d: negative offset", c, off)
	}
	if c.Prefix().MhType == multihash.IDENTITY {
		dm, err := multihash.Decode(c.Hash())
		if err != nil {
			return 0, fmt.Errorf("reading identity block %s: %w", c, err)
		}
		return copyFrom(dm.Digest, p, off), nil
	}
	if n, ok := s.hot.readAt(string(c.Hash()), p, off); ok {
		if s.cache != nil {
			s.cache.touch(c)
		}
		return n, nil
	}
	key := blockstore.BlockPrefix.Child(dshelp.MultihashToDsKey(c.Hash())).Bytes()
	v, closer, err := s.ds.DB.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return 0, format.ErrNotFound{Cid: c}
	}
	if err != nil {
		return 0, fmt.Errorf("reading block %s: %w", c, err)
	}
	n := copyFrom(v, p, off)
	if s.hot.continues(string(c.Hash()), off, n) && len(v) >= hotMinimum {
		// Read whole from a blob file by a reader going through it:
		// kept, so the rest of it is not read again.
		s.hot.add(string(c.Hash()), v)
	}
	if err := closer.Close(); err != nil {
		return 0, fmt.Errorf("reading block %s: %w", c, err)
	}
	if s.cache != nil {
		s.cache.touch(c)
	}
	return n, nil
}

// copyFrom copies into p the bytes of b from off on.
func copyFrom(b, p []byte, off int64) int {
	if off >= int64(len(b)) {
		return 0
	}
	return copy(p, b[off:])
}

// Sync flushes all written blocks to disk.
func (s *Store) Sync(context.Context) error {
	// Without a write-ahead log, flushing the memtable to sstables and
	// blob files (which pebble syncs) is what makes writes durable.
	if err := s.ds.DB.Flush(); err != nil {
		return fmt.Errorf("syncing store: %w", err)
	}
	return nil
}

// Close closes the store.
func (s *Store) Close() error {
	if err := s.ds.Close(); err != nil {
		return fmt.Errorf("closing store: %w", err)
	}
	return nil
}

// VerifyReport is the outcome of Store.Verify.
type VerifyReport struct {
	// Checked is the number of blocks read and hashed.
	Checked int
	// Bad lists the blocks whose bytes do not match their CID.
	Bad []cid.Cid
}

// Verify reads every stored block and checks its bytes against its CID.
// With repair set, blocks that fail are deleted, so they are fetched again
// from peers when next needed.
func (s *Store) Verify(ctx context.Context, repair bool) (VerifyReport, error) {
	var rep VerifyReport
	keys, err := s.Blockstore.AllKeysChan(ctx)
	if err != nil {
		return rep, fmt.Errorf("listing blocks: %w", err)
	}
	for c := range keys {
		// Keys are multihashes: c is a raw CID of one, and the check is
		// whether the bytes hash to it.
		blk, err := s.Blockstore.Get(ctx, c)
		if err != nil {
			return rep, fmt.Errorf("reading block %s: %w", c, err)
		}
		rep.Checked++
		sum, err := c.Prefix().Sum(blk.RawData())
		if err == nil && bytes.Equal(sum.Hash(), c.Hash()) {
			continue
		}
		rep.Bad = append(rep.Bad, c)
		if repair {
			if err := s.Blockstore.DeleteBlock(ctx, c); err != nil {
				return rep, fmt.Errorf("deleting corrupt block %s: %w", c, err)
			}
		}
	}
	return rep, ctx.Err()
}
