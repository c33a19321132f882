package gateway

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/ipfs/boxo/ipld/merkledag"
	"github.com/ipfs/boxo/ipld/unixfs"
	"github.com/ipfs/boxo/ipld/unixfs/hamt"
	unixfspb "github.com/ipfs/boxo/ipld/unixfs/pb"
	"github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"
	"github.com/ipld/go-ipld-prime/codec/dagcbor"
	"github.com/ipld/go-ipld-prime/codec/dagjson"
	"github.com/ipld/go-ipld-prime/datamodel"
	cidlink "github.com/ipld/go-ipld-prime/linking/cid"
	"github.com/ipld/go-ipld-prime/node/basicnode"
	"github.com/pacman-cdn/pacman/dag"
)

// maxPathSegments bounds the directory walk of one request.
const maxPathSegments = 64

var (
	// errNoLink reports a path segment absent from its directory.
	errNoLink = errors.New("no such file or directory")
)

// target is what a content path resolves to.
type target struct {
	cid cid.Cid
	// name is the file name the content is served under, for its
	// extension; empty when the path names the root CID itself.
	name string
	// dir is set when the path named a directory and target is its
	// index.html.
	dir bool
	// listing is set when the path named a directory without index.html;
	// cid is then the directory's.
	listing bool
	// symlink is the target of the UnixFS symbolic link the path names,
	// or nil; links are served as they are, never followed.
	symlink []byte
	// roots are the CIDs the path went through, from the root CID to the
	// last one the path names (a directory served by its index.html ends
	// the list, not the index.html).
	roots []cid.Cid
}

// resolvePath walks segments from root through UnixFS directories (plain and
// HAMT-sharded) and returns what they name. With index set, a directory
// resolves to its index.html, as a web server would serve it; without, to
// the directory itself (for raw block and CAR responses). files, if not
// nil, holds file nodes already decoded: a path that ends at one of them
// resolves without reading it again (a warm range request of a file costs
// no decoding of its root).
func resolvePath(ctx context.Context, g dag.BlockGetter, root cid.Cid, segments []string, index bool, files *dag.Index) (target, error) {
	t := target{cid: root, roots: []cid.Cid{root}}
	if len(segments) > maxPathSegments {
		return t, fmt.Errorf("%w: more than %d path segments", errBadPath, maxPathSegments)
	}
	for i := 0; ; i++ {
		if codec := t.cid.Prefix().Codec; (codec == cid.DagCBOR || codec == cid.DagJSON) && i < len(segments) {
			next, used, err := dagLink(ctx, g, t.cid, segments[i:])
			if err != nil {
				return t, err
			}
			i += used - 1
			t.cid, t.name = next, segments[i]
			t.roots = append(t.roots, next)
			continue
		}
		if i == len(segments) && files != nil && files.Cached(t.cid) {
			return t, nil // a file, and a symbolic link is never cached
		}
		if t.cid.Prefix().Codec != cid.DagProtobuf {
			if i < len(segments) {
				return t, fmt.Errorf("%w: %q is inside a file", errNoLink, segments[i])
			}
			return t, nil
		}
		blk, err := g.GetBlock(ctx, t.cid)
		if err != nil {
			return t, err
		}
		nd, err := merkledag.DecodeProtobufBlock(blk)
		if err != nil {
			return t, fmt.Errorf("%w: decoding %s: %v", dag.ErrMalformed, t.cid, err)
		}
		fsn, err := unixfs.FSNodeFromBytes(nd.(*merkledag.ProtoNode).Data())
		if err != nil {
			return t, fmt.Errorf("%w: decoding UnixFS data of %s: %v", dag.ErrMalformed, t.cid, err)
		}
		var name string
		switch fsn.Type() {
		case unixfspb.Data_Directory, unixfspb.Data_HAMTShard:
			if i == len(segments) {
				if !index {
					return t, nil
				}
				name, t.dir = "index.html", true
			} else {
				name = segments[i]
			}
		default:
			if i < len(segments) {
				return t, fmt.Errorf("%w: %q is inside a file", errNoLink, segments[i])
			}
			if fsn.Type() == unixfspb.Data_Symlink {
				t.symlink = fsn.Data()
			}
			return t, nil
		}
		next, err := findLink(ctx, g, nd, fsn, name)
		if err != nil {
			if t.dir && errors.Is(err, errNoLink) {
				t.dir, t.listing = false, true
				return t, nil
			}
			return t, err
		}
		t.cid, t.name = next, name
		if t.dir {
			return t, nil
		}
		t.roots = append(t.roots, next)
	}
}

// findLink looks name up in the directory nd.
func findLink(ctx context.Context, g dag.BlockGetter, nd ipld.Node, fsn *unixfs.FSNode, name string) (cid.Cid, error) {
	if fsn.Type() == unixfspb.Data_HAMTShard {
		shard, err := hamt.NewHamtFromDag(merkledag.NewReadOnlyDagService(nodeGetter{g}), nd)
		if err != nil {
			return cid.Undef, fmt.Errorf("%w: reading sharded directory %s: %v", dag.ErrMalformed, nd.Cid(), err)
		}
		l, err := shard.Find(ctx, name)
		if errors.Is(err, os.ErrNotExist) {
			return cid.Undef, fmt.Errorf("%w: %q", errNoLink, name)
		}
		if err != nil {
			return cid.Undef, err
		}
		return l.Cid, nil
	}
	for _, l := range nd.Links() {
		if l.Name == name {
			return l.Cid, nil
		}
	}
	return cid.Undef, fmt.Errorf("%w: %q", errNoLink, name)
}

// nodeGetter adapts a BlockGetter to the ipld.NodeGetter that boxo's HAMT
// reader needs.
type nodeGetter struct{ g dag.BlockGetter }

func (n nodeGetter) Get(ctx context.Context, c cid.Cid) (ipld.Node, error) {
	blk, err := n.g.GetBlock(ctx, c)
	if err != nil {
		return nil, err
	}
	switch c.Prefix().Codec {
	case cid.DagProtobuf:
		return merkledag.DecodeProtobufBlock(blk)
	case cid.Raw:
		return merkledag.DecodeRawBlock(blk)
	default:
		return nil, fmt.Errorf("%w: codec 0x%x inside a directory", dag.ErrMalformed, c.Prefix().Codec)
	}
}

func (n nodeGetter) GetMany(ctx context.Context, cids []cid.Cid) <-chan *ipld.NodeOption {
	out := make(chan *ipld.NodeOption, len(cids))
	go func() {
		defer close(out)
		for _, c := range cids {
			nd, err := n.Get(ctx, c)
			out <- &ipld.NodeOption{Node: nd, Err: err}
			if err != nil {
				return
			}
		}
	}()
	return out
}

// dagLink follows segments through the maps and lists of the DAG-CBOR or
// DAG-JSON block c until one names a link, and returns the link's CID with
// the number of segments used. Paths that end inside the block name no
// file.
func dagLink(ctx context.Context, g dag.BlockGetter, c cid.Cid, segments []string) (cid.Cid, int, error) {
	blk, err := g.GetBlock(ctx, c)
	if err != nil {
		return cid.Undef, 0, err
	}
	decode := dagcbor.Decode
	if c.Prefix().Codec == cid.DagJSON {
		decode = dagjson.Decode
	}
	nb := basicnode.Prototype.Any.NewBuilder()
	if err := decode(nb, bytes.NewReader(blk.RawData())); err != nil {
		return cid.Undef, 0, fmt.Errorf("%w: decoding %s: %v", dag.ErrMalformed, c, err)
	}
	n := nb.Build()
	for i, seg := range segments {
		next, err := n.LookupBySegment(datamodel.ParsePathSegment(seg))
		if err != nil {
			return cid.Undef, 0, fmt.Errorf("%w: %q", errNoLink, seg)
		}
		if next.Kind() == datamodel.Kind_Link {
			l, err := next.AsLink()
			if err != nil {
				return cid.Undef, 0, fmt.Errorf("%w: %v", dag.ErrMalformed, err)
			}
			cl, ok := l.(cidlink.Link)
			if !ok {
				return cid.Undef, 0, fmt.Errorf("%w: link of unknown kind", dag.ErrMalformed)
			}
			return cl.Cid, i + 1, nil
		}
		n = next
	}
	return cid.Undef, 0, fmt.Errorf("%w: the path ends inside block %s", dag.ErrNotFile, c)
}
