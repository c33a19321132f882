package node

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ipfs/boxo/exchange"
	"github.com/ipfs/boxo/verifcid"
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"
	"github.com/pacman-cdn/pacman/node/internal/scheduler"
	"go.uber.org/zap"
)

// Source says where a session found a block.
type Source string

const (
	// SourceLocal is the node's blockstore: imported, pinned or cached.
	SourceLocal Source = "local"
	// SourcePeers is bitswap: the block crossed the network, verified.
	SourcePeers Source = "peers"
	// SourceHTTP is a trustless HTTP gateway, asked by bitswap like a
	// peer; the block was checked against its CID.
	SourceHTTP Source = "http"
)

// Session fetches the blocks of one piece of content: from the blockstore
// when held, else from the peers it has learnt hold the content, each
// want-block sent to the one expected to deliver it soonest (see
// scheduler), and over a
// bitswap session (which looks for providers) until it knows any or when
// all refuse. Blocks fetched are stored, so the node seeds them.
type Session struct {
	n       *Node
	fetch   exchange.Fetcher
	holders scheduler.Holders
}

// NewSession returns a session that lasts as long as ctx. Every GetBlock
// call is bounded by its own context as well.
func (n *Node) NewSession(ctx context.Context) *Session {
	return &Session{n: n, fetch: n.bitswap.NewSession(ctx)}
}

// GetBlock returns the block c, whose bytes are checked against c by
// bitswap when they come from a peer.
func (s *Session) GetBlock(ctx context.Context, c cid.Cid) (blocks.Block, error) {
	if err := verifcid.ValidateCid(verifcid.DefaultAllowlist, c); err != nil {
		return nil, err
	}
	blk, err := s.n.store.Blockstore.Get(ctx, c)
	if err == nil {
		return SourcedBlock{blk, SourceLocal}, nil
	}
	if !ipld.IsNotFound(err) {
		return nil, fmt.Errorf("reading block %s: %w", c, err)
	}
	s.n.guard.Want(c)
	blk, err = s.n.wants.Get(ctx, c, &s.holders, func(ctx context.Context) (blocks.Block, error) {
		return s.fetch.GetBlock(ctx, c)
	})
	if err != nil {
		return nil, err
	}
	src := SourcePeers
	if s.n.guard.CameViaHTTP(c) {
		src = SourceHTTP
	}
	if err := s.n.Keep(ctx, blk); err != nil {
		return nil, err
	}
	return SourcedBlock{blk, src}, nil
}

// Has reports whether block c is in the local store, without reading it.
func (s *Session) Has(ctx context.Context, c cid.Cid) (bool, error) {
	ok, err := s.n.store.Blockstore.Has(ctx, c)
	if err != nil {
		return false, fmt.Errorf("looking up block %s: %w", c, err)
	}
	return ok, nil
}

// SourcedBlock is a block a session delivered, with where it came from.
type SourcedBlock struct {
	blocks.Block
	From Source
}

// Source names where the block came from: local, peers or http.
func (b SourcedBlock) Source() string { return string(b.From) }

// Keep stores a fetched block, whose bytes the caller has checked against
// its CID, and announces it to peers waiting for it. The cache may evict
// it later. When the disk has no room to spare, the block is served
// without being kept (see ErrNoSpace).
func (n *Node) Keep(ctx context.Context, blk blocks.Block) error {
	err := n.cache.keep(ctx, blk)
	if errors.Is(err, ErrNoSpace) {
		// Said at most once a minute: every fetched block meets it.
		if last := n.noSpaceLogged.Load(); time.Since(time.Unix(0, last)) > time.Minute && n.noSpaceLogged.CompareAndSwap(last, time.Now().UnixNano()) {
			n.log.Error("the disk is full: fetched blocks are served, not kept", zap.Error(err))
		}
		return nil
	}
	if err != nil {
		return err
	}
	if n.router.all {
		if err := n.router.provider.Provide(ctx, blk.Cid(), true); err != nil {
			n.log.Debug("queueing a block to announce failed", zap.Error(err))
		}
	}
	// Tell the bitswap server, so peers waiting for the block get it.
	if err := n.bitswap.NotifyNewBlocks(ctx, blk); err != nil {
		n.log.Debug("announcing a new block failed", zap.Error(err))
	}
	return nil
}
