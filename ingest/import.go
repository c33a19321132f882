// Package ingest turns files, directories, CAR streams and live segments
// into content-addressed UnixFS DAGs: the write side of pacman's DAGs
// (package dag is the read side).
//
// Imports follow Kubo's unixfs-v1-2025 profile (CIDv1, sha2-256, raw leaves,
// 1 MiB fixed-size chunks, balanced layout, 1024 links per node), so the same
// bytes get the same CID here as in any IPFS implementation using it.
//
// The package knows nothing of HTTP, libp2p or Caddy.
package ingest

import (
	"context"
	"fmt"
	"io"

	bschunker "github.com/ipfs/boxo/chunker"
	"github.com/ipfs/boxo/ipld/unixfs/importer/balanced"
	"github.com/ipfs/boxo/ipld/unixfs/importer/helpers"
	"github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"
	mh "github.com/multiformats/go-multihash"
)

const (
	// DefaultChunkSize is the leaf size of the unixfs-v1-2025 profile: 1 MiB,
	// large enough that a video stream needs few blocks per second and small
	// enough that a seek fetches little it does not need.
	DefaultChunkSize = 1 << 20
	// DefaultMaxLinks is the fan-out of internal nodes in the unixfs-v1-2025
	// profile. One internal node indexes 1 GiB of 1 MiB leaves.
	DefaultMaxLinks = 1024
)

// importConfig holds the settings an Option changes.
type importConfig struct {
	chunkSize int64
	maxLinks  int
	progress  func(imported int64)
}

// Option changes how Import builds a DAG.
type Option func(*importConfig)

// WithChunkSize sets the leaf size in bytes (default DefaultChunkSize).
// A different size gives different CIDs than the unixfs-v1-2025 profile.
func WithChunkSize(n int64) Option { return func(c *importConfig) { c.chunkSize = n } }

// WithMaxLinks sets the number of children per internal node (default
// DefaultMaxLinks).
func WithMaxLinks(n int) Option { return func(c *importConfig) { c.maxLinks = n } }

// WithProgress calls fn with the running count of bytes read from the
// source. fn is called from the importing goroutine and must be quick.
func WithProgress(fn func(imported int64)) Option { return func(c *importConfig) { c.progress = fn } }

// Import reads r to its end, stores the blocks of the resulting UnixFS file
// DAG in dag and returns the root CID. Blocks are written in batches.
func Import(ctx context.Context, dag ipld.DAGService, r io.Reader, opts ...Option) (cid.Cid, error) {
	nd, err := importNode(ctx, dag, r, opts)
	if err != nil {
		return cid.Undef, err
	}
	return nd.Cid(), nil
}

func importNode(ctx context.Context, dag ipld.DAGService, r io.Reader, opts []Option) (ipld.Node, error) {
	cfg := importConfig{chunkSize: DefaultChunkSize, maxLinks: DefaultMaxLinks}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.chunkSize <= 0 || cfg.chunkSize > int64(bschunker.ChunkSizeLimit) {
		return nil, fmt.Errorf("chunk size %d out of range (1..%d)", cfg.chunkSize, bschunker.ChunkSizeLimit)
	}
	if cfg.maxLinks < 2 {
		return nil, fmt.Errorf("max links %d must be at least 2", cfg.maxLinks)
	}
	if cfg.progress != nil {
		r = &progressReader{r: r, fn: cfg.progress}
	}

	batch := ipld.NewBufferedDAG(ctx, dag)
	params := helpers.DagBuilderParams{
		Dagserv:    batch,
		Maxlinks:   cfg.maxLinks,
		RawLeaves:  true,
		CidBuilder: cid.V1Builder{Codec: cid.DagProtobuf, MhType: mh.SHA2_256},
	}
	db, err := params.New(bschunker.NewSizeSplitter(r, cfg.chunkSize))
	if err != nil {
		return nil, fmt.Errorf("starting import: %w", err)
	}
	root, err := balanced.Layout(db)
	if err != nil {
		return nil, fmt.Errorf("building DAG: %w", err)
	}
	if err := batch.Commit(); err != nil {
		return nil, fmt.Errorf("storing blocks: %w", err)
	}
	return root, nil
}

// progressReader reports the bytes read through it.
type progressReader struct {
	r  io.Reader
	n  int64
	fn func(int64)
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	if n > 0 {
		p.n += int64(n)
		p.fn(p.n)
	}
	return n, err
}
