package gateway

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	"github.com/pacman-cdn/pacman/chunker"
	"github.com/pacman-cdn/pacman/gateway/headers"
	"go.uber.org/zap"
)

// maxOriginLeaf bounds the bytes read from an origin for one leaf: no
// block exchanged between IPFS nodes is larger, so a DAG that claims a
// larger raw leaf is not fetched from the origin.
const maxOriginLeaf = 2 << 20

// ErrOriginMismatch reports origin bytes whose hash is not the leaf's CID:
// the origin serves a different file, or corrupted bytes. They are never
// served or stored.
var ErrOriginMismatch = errors.New("origin bytes do not match the leaf's CID")

// BlockStorer keeps a block fetched and verified outside the block
// sessions, so it is cached and seeded to peers like any other; took is
// how long fetching it took.
type BlockStorer interface {
	StoreBlock(ctx context.Context, blk blocks.Block, took time.Duration) error
}

// StoreFunc adapts a function to BlockStorer.
type StoreFunc func(ctx context.Context, blk blocks.Block, took time.Duration) error

// StoreBlock calls f.
func (f StoreFunc) StoreBlock(ctx context.Context, blk blocks.Block, took time.Duration) error {
	return f(ctx, blk, took)
}

// Origin is an HTTP server holding the same files as plain bytes: any web
// server or object store that honours Range. When peers do not deliver a
// leaf within After, the leaf's exact byte span is fetched from the origin
// too, and the first of the two answers wins. Origin bytes are accepted
// only if they hash to the leaf's CID, so the origin needs no more trust
// than a peer. Only raw leaves (CIDv1, codec raw) can be checked this
// way; other leaves come from peers alone.
type Origin struct {
	// Locate returns the URL of the file a request names on the origin,
	// or "" when the origin does not hold it.
	Locate func(r *http.Request) string
	// After is how long peers have to deliver a leaf before the origin is
	// asked as well. Zero asks the origin at once.
	After time.Duration
	// Client makes the origin requests. Nil means http.DefaultClient.
	Client *http.Client
	// Store keeps verified leaves. Required.
	Store BlockStorer
}

// originFile is the origin's copy of the file one request streams.
type originFile struct {
	*Origin
	url   string
	local chunker.BlockGetter // the node's stored blocks, nil if none
	obs   Observer
	log   *zap.Logger
}

// serves reports whether leaf can be fetched from the origin and checked.
func (o *originFile) serves(leaf chunker.Leaf) bool {
	return leaf.Data == nil && leaf.Cid.Prefix().Codec == cid.Raw && leaf.Size > 0 && leaf.Size <= maxOriginLeaf
}

// fetchLeaf fetches leaf through g, racing the origin when o is not nil.
func (o *originFile) fetchLeaf(ctx context.Context, g chunker.BlockGetter, leaf chunker.Leaf) (blocks.Block, error) {
	peers := func(ctx context.Context) (blocks.Block, error) { return g.GetBlock(ctx, leaf.Cid) }
	if o == nil || !o.serves(leaf) {
		return peers(ctx)
	}
	return o.race(ctx, leaf, peers)
}

// race returns leaf from the store if it is there. Else it fetches it from
// peers, and from the origin once peers have had After or have failed; the
// first verified answer wins and the other is cancelled. An origin failure
// is logged and leaves the peers to answer; when both fail, the error is
// the last one.
func (o *originFile) race(ctx context.Context, leaf chunker.Leaf, peers func(context.Context) (blocks.Block, error)) (blocks.Block, error) {
	if o.local != nil {
		if blk, err := o.local.GetBlock(ctx, leaf.Cid); err == nil {
			return fromStore{blk}, nil
		}
	}
	type answer struct {
		blk    blocks.Block
		err    error
		origin bool
	}
	answers := make(chan answer, 2) // buffered: the loser never blocks
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // runs before wg.Wait
	wg.Go(func() {
		blk, err := peers(ctx)
		answers <- answer{blk, err, false}
	})
	askOrigin := func() {
		wg.Go(func() {
			blk, err := o.fetch(ctx, leaf)
			answers <- answer{blk, err, true}
		})
	}
	timer := time.NewTimer(o.After)
	defer timer.Stop()
	pending, asked := 1, false
	var lastErr error
	for pending > 0 {
		select {
		case <-timer.C:
			if !asked {
				asked = true
				pending++
				askOrigin()
			}
		case a := <-answers:
			pending--
			if a.err == nil {
				return a.blk, nil
			}
			if a.origin {
				o.failed(leaf, a.err)
			}
			lastErr = a.err
			if !asked && ctx.Err() == nil {
				// Peers failed before their time was up: ask now.
				asked = true
				pending++
				askOrigin()
			}
		}
	}
	return nil, lastErr
}

// failed logs and counts an origin answer that was not used.
func (o *originFile) failed(leaf chunker.Leaf, err error) {
	if errors.Is(err, context.Canceled) {
		return
	}
	if errors.Is(err, ErrOriginMismatch) {
		if o.obs != nil {
			o.obs.OriginRejected()
		}
		o.log.Warn("origin sent bytes that do not match the leaf CID; not served",
			zap.String("url", o.url), zap.Stringer("cid", leaf.Cid), zap.Int64("offset", leaf.Offset), zap.Int64("size", leaf.Size))
		return
	}
	o.log.Debug("origin fetch failed", zap.String("url", o.url), zap.Int64("offset", leaf.Offset), zap.Error(err))
}

// fetch reads the leaf's byte span from the origin and checks it against
// the leaf's CID before storing it.
func (o *originFile) fetch(ctx context.Context, leaf chunker.Leaf) (blocks.Block, error) {
	start := time.Now()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, o.url, nil)
	if err != nil {
		return nil, fmt.Errorf("origin request: %w", err)
	}
	last := leaf.Offset + leaf.Size - 1
	req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", leaf.Offset, last))
	client := o.Client
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("origin request: %w", err)
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusPartialContent:
		start, end, ok := headers.ParseContentRange(resp.Header.Get("Content-Range"))
		if !ok || start != leaf.Offset || end != last {
			return nil, fmt.Errorf("origin answered bytes %q, not %d-%d", resp.Header.Get("Content-Range"), leaf.Offset, last)
		}
	case http.StatusOK:
		// The origin ignored Range: its body starts at byte 0, which is
		// only of use for the first leaf.
		if leaf.Offset != 0 {
			return nil, fmt.Errorf("origin ignored the Range request")
		}
	default:
		return nil, fmt.Errorf("origin answered %s", resp.Status)
	}
	data := make([]byte, leaf.Size)
	if _, err := io.ReadFull(resp.Body, data); err != nil {
		return nil, fmt.Errorf("reading origin body: %w", err)
	}
	sum, err := leaf.Cid.Prefix().Sum(data)
	if err != nil {
		return nil, fmt.Errorf("hashing origin bytes: %w", err)
	}
	if !bytes.Equal(sum.Hash(), leaf.Cid.Hash()) {
		return nil, fmt.Errorf("%w: %s at offset %d", ErrOriginMismatch, leaf.Cid, leaf.Offset)
	}
	blk, err := blocks.NewBlockWithCid(data, leaf.Cid)
	if err != nil {
		return nil, err
	}
	if err := o.Store.StoreBlock(ctx, blk, time.Since(start)); err != nil {
		return nil, fmt.Errorf("storing origin leaf: %w", err)
	}
	return fromOrigin{blk}, nil
}

// fromStore is a block the node already held.
type fromStore struct{ blocks.Block }

func (fromStore) Source() string { return "local" }

// fromOrigin is a block the origin delivered.
type fromOrigin struct{ blocks.Block }

func (fromOrigin) Source() string { return "origin" }
