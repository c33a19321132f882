package ingest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/ipfs/boxo/ipld/merkledag"
	ft "github.com/ipfs/boxo/ipld/unixfs"
	uio "github.com/ipfs/boxo/ipld/unixfs/io"
	"github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"
	mh "github.com/multiformats/go-multihash"
)

// ImportDir imports the directory tree at path as a UnixFS directory DAG
// and returns its root CID. Files are imported as Import does; directories
// become plain UnixFS directories, sharded (HAMT, fan-out 256) once their
// serialized block would pass 256 KiB, as in the unixfs-v1-2025 profile.
// Symbolic links and special files are refused rather than skipped, so an
// import never silently differs from the tree on disk.
func ImportDir(ctx context.Context, dag ipld.DAGService, path string, opts ...Option) (cid.Cid, error) {
	nd, err := importDir(ctx, dag, path, opts)
	if err != nil {
		return cid.Undef, err
	}
	return nd.Cid(), nil
}

// Directory stores a UnixFS directory of the named DAGs, which dag must
// hold, and returns its CID: a directory of content already imported, such
// as a live event's playlist and segments. It is built as ImportDir builds
// one.
func Directory(ctx context.Context, dag ipld.DAGService, entries map[string]cid.Cid) (cid.Cid, error) {
	dir, err := newDirectory(dag)
	if err != nil {
		return cid.Undef, err
	}
	for name, c := range entries {
		nd, err := dag.Get(ctx, c)
		if err != nil {
			return cid.Undef, fmt.Errorf("reading %s for the directory: %w", name, err)
		}
		if err := dir.AddChild(ctx, name, nd); err != nil {
			return cid.Undef, fmt.Errorf("adding %s: %w", name, err)
		}
	}
	nd, err := dir.GetNode()
	if err != nil {
		return cid.Undef, fmt.Errorf("building the directory: %w", err)
	}
	if err := dag.Add(ctx, nd); err != nil {
		return cid.Undef, fmt.Errorf("storing the directory: %w", err)
	}
	return nd.Cid(), nil
}

// newDirectory returns an empty directory of the unixfs-v1-2025 profile.
func newDirectory(dag ipld.DAGService) (uio.Directory, error) {
	dir, err := uio.NewDirectory(dag,
		uio.WithCidBuilder(cid.V1Builder{Codec: cid.DagProtobuf, MhType: mh.SHA2_256}),
		uio.WithMaxHAMTFanout(256),
		uio.WithSizeEstimationMode(uio.SizeEstimationBlock),
	)
	if err != nil {
		return nil, fmt.Errorf("creating a directory: %w", err)
	}
	return dir, nil
}

func importDir(ctx context.Context, dag ipld.DAGService, path string, opts []Option) (ipld.Node, error) {
	entries, err := os.ReadDir(path)
	if err != nil {
		return nil, fmt.Errorf("reading directory: %w", err)
	}
	dir, err := newDirectory(dag)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	for _, e := range entries {
		child := filepath.Join(path, e.Name())
		var nd ipld.Node
		switch {
		case e.IsDir():
			nd, err = importDir(ctx, dag, child, opts)
		case e.Type().IsRegular():
			nd, err = importFileNode(ctx, dag, child, opts)
		default:
			err = fmt.Errorf("%s: only regular files and directories can be imported", child)
		}
		if err != nil {
			return nil, err
		}
		if err := dir.AddChild(ctx, e.Name(), nd); err != nil {
			return nil, fmt.Errorf("adding %s: %w", child, err)
		}
	}
	nd, err := dir.GetNode()
	if err != nil {
		return nil, fmt.Errorf("building directory %s: %w", path, err)
	}
	if err := dag.Add(ctx, nd); err != nil {
		return nil, fmt.Errorf("storing directory %s: %w", path, err)
	}
	return nd, nil
}

func importFileNode(ctx context.Context, dag ipld.DAGService, path string, opts []Option) (ipld.Node, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	nd, err := importNode(ctx, dag, f, opts)
	if err != nil {
		return nil, fmt.Errorf("importing %s: %w", path, err)
	}
	return nd, nil
}

// Piece is a UnixFS file already stored: its CID and its size in bytes.
type Piece struct {
	CID  cid.Cid
	Size uint64
}

// Concat stores the UnixFS file made of pieces, in order, and returns its
// CID. Its blocks are the pieces' own, so a node holding the pieces needs
// only the new root: a live segment made of the parts it was cut into.
func Concat(ctx context.Context, dag ipld.DAGService, pieces []Piece) (cid.Cid, error) {
	if len(pieces) == 0 || len(pieces) > DefaultMaxLinks {
		return cid.Undef, fmt.Errorf("a file of %d pieces: 1 to %d are taken", len(pieces), DefaultMaxLinks)
	}
	fsn := ft.NewFSNode(ft.TFile)
	nd := new(merkledag.ProtoNode)
	if err := nd.SetCidBuilder(cid.V1Builder{Codec: cid.DagProtobuf, MhType: mh.SHA2_256}); err != nil {
		return cid.Undef, err
	}
	for _, p := range pieces {
		child, err := dag.Get(ctx, p.CID)
		if err != nil {
			return cid.Undef, fmt.Errorf("reading piece %s: %w", p.CID, err)
		}
		tsize, err := child.Size()
		if err != nil {
			return cid.Undef, fmt.Errorf("sizing piece %s: %w", p.CID, err)
		}
		if err := nd.AddRawLink("", &ipld.Link{Cid: p.CID, Size: tsize}); err != nil {
			return cid.Undef, err
		}
		fsn.AddBlockSize(p.Size)
	}
	data, err := fsn.GetBytes()
	if err != nil {
		return cid.Undef, fmt.Errorf("encoding the file node: %w", err)
	}
	nd.SetData(data)
	if err := dag.Add(ctx, nd); err != nil {
		return cid.Undef, fmt.Errorf("storing the file node: %w", err)
	}
	return nd.Cid(), nil
}
