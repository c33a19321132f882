package edge

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"
	"github.com/pacman-cdn/pacman/ingest"
	"github.com/pacman-cdn/pacman/live"
	"github.com/pacman-cdn/pacman/node"
	"go.uber.org/zap"
)

// ImportSegment imports a live segment an encoder uploads. It is on disk
// before ImportSegment returns, so a publisher that crashes after
// announcing it still has it; one cut short (too big, or the encoder
// gone) gives back what it wrote. A full disk is live.ErrNoSpace.
func (e *Edge) ImportSegment(ctx context.Context, r io.Reader) (cid.Cid, error) {
	dag := &recordingDAG{DAGService: e.node.DAG()}
	c, err := ingest.Import(ctx, dag, r)
	if err != nil {
		if _, derr := e.node.Discard(context.WithoutCancel(ctx), dag.added...); derr != nil {
			e.log.Warn("discarding a segment cut short", zap.Error(derr))
		}
	}
	if errors.Is(err, node.ErrNoSpace) {
		return c, fmt.Errorf("%w: %w", live.ErrNoSpace, err)
	}
	if err != nil {
		return c, err
	}
	return c, e.node.Sync(ctx)
}

// ImportPart imports a part of a live segment as it is cut: not synced, as
// the segment made of its parts is (JoinParts) before it is announced.
func (e *Edge) ImportPart(ctx context.Context, r io.Reader) (cid.Cid, error) {
	c, err := ingest.Import(ctx, e.node.DAG(), r)
	if errors.Is(err, node.ErrNoSpace) {
		return c, fmt.Errorf("%w: %w", live.ErrNoSpace, err)
	}
	return c, err
}

// JoinParts stores the live segment made of its parts, whose blocks are
// theirs, and syncs it and them to disk.
func (e *Edge) JoinParts(ctx context.Context, parts []live.Piece) (cid.Cid, error) {
	pieces := make([]ingest.Piece, len(parts))
	for i, p := range parts {
		pieces[i] = ingest.Piece{CID: p.CID, Size: p.Size}
	}
	c, err := ingest.Concat(ctx, e.node.DAG(), pieces)
	if errors.Is(err, node.ErrNoSpace) {
		return c, fmt.Errorf("%w: %w", live.ErrNoSpace, err)
	}
	if err != nil {
		return c, err
	}
	return c, e.node.Sync(ctx)
}

// DiscardSegment gives back a segment imported and never announced.
func (e *Edge) DiscardSegment(ctx context.Context, c cid.Cid) {
	if _, err := e.node.Discard(ctx, c); err != nil {
		e.log.Warn("discarding an upload never announced", zap.Stringer("cid", c), zap.Error(err))
	}
}

// Record makes the directory of an event's segments and pins it: listed
// by `caddy pacman ls`, and freed by `unpin` when no longer wanted.
func (e *Edge) Record(ctx context.Context, entries map[string]cid.Cid) (cid.Cid, error) {
	dir, err := ingest.Directory(ctx, e.node.DAG(), entries)
	if err != nil {
		return dir, err
	}
	_, err = e.node.PinHeld(ctx, dir)
	return dir, err
}

// recordingDAG notes the CIDs of the nodes added through it: what an
// import cut short leaves behind.
type recordingDAG struct {
	ipld.DAGService
	mu    sync.Mutex // guards added
	added []cid.Cid
}

// Add implements ipld.DAGService.
func (d *recordingDAG) Add(ctx context.Context, nd ipld.Node) error {
	d.note(nd)
	return d.DAGService.Add(ctx, nd)
}

// AddMany implements ipld.DAGService.
func (d *recordingDAG) AddMany(ctx context.Context, nds []ipld.Node) error {
	d.note(nds...)
	return d.DAGService.AddMany(ctx, nds)
}

func (d *recordingDAG) note(nds ...ipld.Node) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, nd := range nds {
		d.added = append(d.added, nd.Cid())
	}
}
