package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync/atomic"

	"github.com/ipfs/boxo/files"
	"github.com/ipfs/boxo/ipld/merkledag"
	unixfile "github.com/ipfs/boxo/ipld/unixfs/file"
	"github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"
	"github.com/pacman-cdn/pacman/dag"
)

// mediaTAR is the media type of TAR responses.
const mediaTAR = "application/x-tar"

// maxTarNodes bounds the nodes one TAR response reads: a DAG whose
// subtrees are shared names exponentially many paths, each a TAR entry.
const maxTarNodes = 1 << 20

// errTarTooLarge ends a TAR past maxTarNodes.
var errTarTooLarge = errors.New("the TAR would hold more than 2^20 entries and blocks")

// countingGetter is a node getter that refuses to read more than its
// budget of nodes.
type countingGetter struct {
	nodeGetter
	left *atomic.Int64
}

func (c countingGetter) Get(ctx context.Context, k cid.Cid) (ipld.Node, error) {
	if c.left.Add(-1) < 0 {
		return nil, errTarTooLarge
	}
	return c.nodeGetter.Get(ctx, k)
}

// serveTAR answers t as a TAR archive (the path gateway spec's
// application/x-tar): the file or directory tree under the CID's name.
// Symbolic links pointing outside the tree are refused, as the spec says.
// The archive is streamed, so a failure after the first byte cuts it
// short; the client notices the TAR is incomplete.
func (h *Handler) serveTAR(ctx context.Context, w http.ResponseWriter, r *http.Request, g dag.BlockGetter, t target) error {
	etag := `W/"` + t.cid.String() + `.x-tar"`
	hdr := w.Header()
	hdr.Set("Etag", etag)
	hdr.Set("Cache-Control", "public, max-age=29030400, immutable")
	name := r.URL.Query().Get("filename")
	if name == "" {
		name = t.cid.String() + ".tar"
	}
	hdr.Set("Content-Disposition", contentDisposition("attachment", name))
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Add("Vary", "Accept")
	left := new(atomic.Int64)
	left.Store(maxTarNodes)
	ds := merkledag.NewReadOnlyDagService(countingGetter{nodeGetter{g}, left})
	nd, err := ds.Get(ctx, t.cid)
	if err != nil {
		return err
	}
	f, err := unixfile.NewUnixfsFile(ctx, ds, nd)
	if err != nil {
		return fmt.Errorf("%w: %v", dag.ErrMalformed, err)
	}
	defer f.Close()
	if sl, ok := f.(*files.Symlink); ok && (len(sl.Target) == 0 || sl.Target[0] == '/' || sl.Target == ".." || len(sl.Target) > 2 && sl.Target[:3] == "../") {
		return Errorf(http.StatusBadRequest, files.ErrUnixFSPathOutsideRoot.Error())
	}
	hdr.Set("Content-Type", mediaTAR)
	if r.Method == http.MethodHead {
		w.WriteHeader(http.StatusOK)
		return nil
	}
	tw, err := files.NewTarWriter(w)
	if err != nil {
		return err
	}
	if err := tw.WriteFile(f, t.cid.String()); err != nil {
		if errors.Is(err, files.ErrUnixFSPathOutsideRoot) {
			// Headers may be out already; if not, the client gets 400.
			return Errorf(http.StatusBadRequest, err.Error())
		}
		return err
	}
	return tw.Close()
}
