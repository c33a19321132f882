// Package dag is the read side of pacman's UnixFS DAGs: the one
// BlockGetter, the byte-range → leaf index and its one range descent
// (Index.Leaves for streams, Index.Blocks for CAR entity bytes), the one
// bounded, visit-once, cancellable Walk (pins, live prefetch), and CAR
// export. Package ingest writes the DAGs. It knows nothing of HTTP,
// libp2p or Caddy.
package dag

import (
	"context"
	"errors"
	"fmt"
	"iter"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/ipfs/boxo/ipld/merkledag"
	"github.com/ipfs/boxo/ipld/unixfs"
	unixfspb "github.com/ipfs/boxo/ipld/unixfs/pb"
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
)

// maxDepth bounds how deep Leaves descends, so a hostile DAG cannot make a
// request walk forever. A balanced DAG of 1024-link nodes over 1 MiB leaves
// is 4 levels deep at 1 PiB.
const maxDepth = 32

var (
	// ErrNotFile reports a CID that names something other than a UnixFS
	// file (a directory, a symlink, another codec).
	ErrNotFile = errors.New("not a UnixFS file")
	// ErrMalformed reports a DAG whose nodes contradict each other: sizes
	// that do not add up, too deep a tree, undecodable nodes.
	ErrMalformed = errors.New("malformed UnixFS DAG")
)

// MaxBlockSize bounds a block's bytes: no block exchanged between IPFS
// nodes is larger (bitswap's own limit), so a source offering more, or a
// DAG claiming a larger leaf, is refused.
const MaxBlockSize = 2 << 20

// BlockGetter fetches one block whose bytes have been checked against its CID.
type BlockGetter interface {
	GetBlock(ctx context.Context, c cid.Cid) (blocks.Block, error)
}

// Leaf is a contiguous span of file bytes stored in one block.
type Leaf struct {
	// Cid names the block holding the bytes.
	Cid cid.Cid
	// Offset is the file offset of the leaf's first byte.
	Offset int64
	// Size is the number of file bytes in the leaf.
	Size int64
	// Data holds the leaf's bytes when the index already had to fetch the
	// block to find them (dag-pb leaves); it is nil for raw leaves, whose
	// block is the data and is fetched by the caller.
	Data []byte
}

// Index maps byte ranges of UnixFS files to their leaves. It descends only
// into the subtrees that overlap a range, using the blocksizes recorded in
// each node, so a seek costs O(depth) block fetches; decoded internal nodes
// are cached and shared by every caller. An Index is safe for concurrent use.
type Index struct {
	nodes *lru.Cache[cid.Cid, *fileNode]
}

// NewIndex returns an Index caching up to cacheEntries internal nodes. One
// entry of a full 1024-link node costs about 60 KiB.
func NewIndex(cacheEntries int) (*Index, error) {
	c, err := lru.New[cid.Cid, *fileNode](cacheEntries)
	if err != nil {
		return nil, fmt.Errorf("creating node cache: %w", err)
	}
	return &Index{nodes: c}, nil
}

// Cached reports whether the index holds c decoded: then c is a UnixFS
// file, known without reading it.
func (ix *Index) Cached(c cid.Cid) bool { return ix.nodes.Contains(c) }

// fileNode is a decoded UnixFS file node: its own bytes, then its children.
type fileNode struct {
	data     []byte
	children []child
	size     int64
}

type child struct {
	cid  cid.Cid
	size int64
}

// Size returns the length in bytes of the file rooted at root.
func (ix *Index) Size(ctx context.Context, g BlockGetter, root cid.Cid) (int64, error) {
	if root.Prefix().Codec == cid.Raw {
		blk, err := g.GetBlock(ctx, root)
		if err != nil {
			return 0, err
		}
		return int64(len(blk.RawData())), nil
	}
	n, err := ix.node(ctx, g, root)
	if err != nil {
		return 0, err
	}
	return n.size, nil
}

// Leaves yields, in file order, the leaves overlapping bytes [start, end) of
// the file rooted at root. Leaves are found lazily: a caller that stops
// early fetches nothing further. Raw leaves are not fetched.
func (ix *Index) Leaves(ctx context.Context, g BlockGetter, root cid.Cid, start, end int64) iter.Seq2[Leaf, error] {
	return func(yield func(Leaf, error) bool) {
		if start >= end {
			return
		}
		if root.Prefix().Codec == cid.Raw {
			size, err := ix.Size(ctx, g, root)
			if err != nil {
				yield(Leaf{}, err)
				return
			}
			yield(Leaf{Cid: root, Size: size}, nil)
			return
		}
		n, err := ix.node(ctx, g, root)
		if err != nil {
			yield(Leaf{}, err)
			return
		}
		w := walk{ix: ix, ctx: ctx, g: g, start: start, end: end, yield: yield}
		if err := w.node(root, n, 0, 0); err != nil && !errors.Is(err, errStopped) {
			yield(Leaf{}, err)
		}
	}
}

// Blocks yields, depth first in file order, the CID of every block of the
// file under root that holds bytes of [start, end): each node before its
// children, found by the same descent as Leaves. An empty range yields the
// root alone, from which a client can still check the file's size. skip,
// if not nil, is asked of each block below the root: true leaves it and
// what is under it out (a CAR without duplicates skips what it has sent).
func (ix *Index) Blocks(ctx context.Context, g BlockGetter, root cid.Cid, start, end int64, skip func(cid.Cid) bool) iter.Seq2[cid.Cid, error] {
	return func(yield func(cid.Cid, error) bool) {
		emit := func(l Leaf, err error) bool { return yield(l.Cid, err) }
		if root.Prefix().Codec == cid.Raw {
			emit(Leaf{Cid: root}, nil)
			return
		}
		n, err := ix.node(ctx, g, root)
		if err != nil {
			emit(Leaf{}, err)
			return
		}
		w := walk{ix: ix, ctx: ctx, g: g, start: start, end: end, yield: emit, nodes: true, skip: skip}
		if err := w.node(root, n, 0, 0); err != nil && !errors.Is(err, errStopped) {
			emit(Leaf{}, err)
		}
	}
}

// errStopped ends a walk whose consumer stopped iterating.
var errStopped = errors.New("iteration stopped")

// walk is the state of one Leaves call.
type walk struct {
	ix         *Index
	ctx        context.Context
	g          BlockGetter
	start, end int64
	yield      func(Leaf, error) bool
	// nodes makes the walk yield every block, nodes included, rather
	// than the leaves' bytes; skip, if set, prunes blocks below the root.
	nodes bool
	skip  func(cid.Cid) bool
}

func (w *walk) emit(l Leaf) error {
	if !w.yield(l, nil) {
		return errStopped
	}
	return nil
}

// node visits n, whose first byte is at file offset off.
func (w *walk) node(c cid.Cid, n *fileNode, off int64, depth int) error {
	if depth > maxDepth {
		return fmt.Errorf("%w: deeper than %d levels", ErrMalformed, maxDepth)
	}
	switch {
	case w.nodes:
		if err := w.emit(Leaf{Cid: c, Offset: off, Size: n.size}); err != nil {
			return err
		}
	case len(n.data) > 0 && overlaps(off, int64(len(n.data)), w.start, w.end):
		if err := w.emit(Leaf{Cid: c, Offset: off, Size: int64(len(n.data)), Data: n.data}); err != nil {
			return err
		}
	}
	off += int64(len(n.data))
	for _, ch := range n.children {
		if off >= w.end {
			return nil
		}
		if overlaps(off, ch.size, w.start, w.end) {
			if err := w.child(ch, off, depth); err != nil {
				return err
			}
		}
		off += ch.size
	}
	return nil
}

func (w *walk) child(ch child, off int64, depth int) error {
	if w.skip != nil && w.skip(ch.cid) {
		return nil
	}
	if ch.cid.Prefix().Codec == cid.Raw {
		return w.emit(Leaf{Cid: ch.cid, Offset: off, Size: ch.size})
	}
	n, err := w.ix.node(w.ctx, w.g, ch.cid)
	if err != nil {
		return err
	}
	if n.size != ch.size {
		return fmt.Errorf("%w: child %s holds %d bytes, parent says %d", ErrMalformed, ch.cid, n.size, ch.size)
	}
	return w.node(ch.cid, n, off, depth+1)
}

func overlaps(off, size, start, end int64) bool {
	return size > 0 && off < end && off+size > start
}

// node returns the decoded dag-pb file node c, from the cache when it is an
// internal node seen before.
func (ix *Index) node(ctx context.Context, g BlockGetter, c cid.Cid) (*fileNode, error) {
	if n, ok := ix.nodes.Get(c); ok {
		return n, nil
	}
	if c.Prefix().Codec != cid.DagProtobuf {
		return nil, fmt.Errorf("%w: codec 0x%x", ErrNotFile, c.Prefix().Codec)
	}
	blk, err := g.GetBlock(ctx, c)
	if err != nil {
		return nil, err
	}
	n, err := decodeFileNode(blk)
	if err != nil {
		return nil, err
	}
	if len(n.children) > 0 {
		ix.nodes.Add(c, n)
	}
	return n, nil
}

func decodeFileNode(blk blocks.Block) (*fileNode, error) {
	pn, err := merkledag.DecodeProtobufBlock(blk)
	if err != nil {
		return nil, fmt.Errorf("%w: decoding %s: %v", ErrMalformed, blk.Cid(), err)
	}
	fsn, err := unixfs.FSNodeFromBytes(pn.(*merkledag.ProtoNode).Data())
	if err != nil {
		return nil, fmt.Errorf("%w: decoding UnixFS data of %s: %v", ErrMalformed, blk.Cid(), err)
	}
	switch fsn.Type() {
	case unixfspb.Data_File, unixfspb.Data_Raw:
	default:
		return nil, fmt.Errorf("%w: %s is a UnixFS %s", ErrNotFile, blk.Cid(), fsn.Type())
	}
	links := pn.Links()
	sizes := fsn.BlockSizes()
	if len(sizes) != len(links) {
		return nil, fmt.Errorf("%w: %s has %d links but %d block sizes", ErrMalformed, blk.Cid(), len(links), len(sizes))
	}
	n := &fileNode{data: fsn.Data(), size: int64(len(fsn.Data()))}
	if len(links) > 0 {
		n.children = make([]child, len(links))
	}
	for i, l := range links {
		if sizes[i] > 1<<62 {
			return nil, fmt.Errorf("%w: %s declares a child of %d bytes", ErrMalformed, blk.Cid(), sizes[i])
		}
		n.children[i] = child{cid: l.Cid, size: int64(sizes[i])}
		n.size += int64(sizes[i])
		if n.size > 1<<62 {
			return nil, fmt.Errorf("%w: %s is larger than 2^62 bytes", ErrMalformed, blk.Cid())
		}
	}
	if len(links) > 0 && fsn.FileSize() != uint64(n.size) {
		return nil, fmt.Errorf("%w: %s declares %d bytes but holds %d", ErrMalformed, blk.Cid(), fsn.FileSize(), n.size)
	}
	return n, nil
}
