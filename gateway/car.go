package gateway

import (
	"context"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"

	"github.com/ipfs/boxo/ipld/merkledag"
	"github.com/ipfs/boxo/ipld/unixfs"
	unixfspb "github.com/ipfs/boxo/ipld/unixfs/pb"
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	carv2 "github.com/ipld/go-car/v2"
	"github.com/ipld/go-car/v2/storage"
	"github.com/pacman-cdn/pacman/dag"
	"github.com/pacman-cdn/pacman/gateway/headers"
	"go.uber.org/zap"
)

// carParams are the knobs of a trustless CAR request (IPIP-402).
type carParams struct {
	scope string // "all", "entity" or "block"
	// from and to are the entity-bytes bounds; to < 0 counts from the end
	// and hasTo false means "*".
	from, to    int64
	hasTo       bool
	entityBytes bool
	dups        bool
}

// parseCARParams reads dag-scope and entity-bytes from the query, and the
// CAR parameters (version, order, dups) from the Accept header and the
// car-version, car-order and car-dups query parameters.
func parseCARParams(r *http.Request) (carParams, error) {
	p := carParams{scope: "all"}
	q := r.URL.Query()
	switch s := q.Get("dag-scope"); s {
	case "", "all":
	case "entity", "block":
		p.scope = s
	default:
		return p, fmt.Errorf("%w: dag-scope must be all, entity or block", errBadCARRequest)
	}
	if eb := q.Get("entity-bytes"); eb != "" {
		from, to, ok := strings.Cut(eb, ":")
		var err error
		if p.from, err = strconv.ParseInt(from, 10, 64); !ok || err != nil {
			return p, fmt.Errorf("%w: entity-bytes must be from:to", errBadCARRequest)
		}
		if to != "*" {
			if p.to, err = strconv.ParseInt(to, 10, 64); err != nil {
				return p, fmt.Errorf("%w: entity-bytes must be from:to", errBadCARRequest)
			}
			p.hasTo = true
		}
		p.entityBytes = true
	}
	for _, part := range strings.Split(r.Header.Get("Accept"), ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil || mt != mediaCAR {
			continue
		}
		if v := params["version"]; v != "" && v != "1" {
			return p, fmt.Errorf("%w: only CAR version 1 is produced", errBadCARRequest)
		}
		if o := params["order"]; o != "" && o != "dfs" && o != "unk" {
			return p, fmt.Errorf("%w: order must be dfs or unk", errBadCARRequest)
		}
		p.dups = params["dups"] == "y"
		break
	}
	// IPIP-0523: the query parameters win over the Accept header's.
	if v := q.Get("car-version"); v != "" && v != "1" {
		return p, fmt.Errorf("%w: only CAR version 1 is produced", errBadCARRequest)
	}
	if o := q.Get("car-order"); o != "" && o != "dfs" && o != "unk" {
		return p, fmt.Errorf("%w: car-order must be dfs or unk", errBadCARRequest)
	}
	switch q.Get("car-dups") {
	case "":
	case "y":
		p.dups = true
	case "n":
		p.dups = false
	default:
		return p, fmt.Errorf("%w: car-dups must be y or n", errBadCARRequest)
	}
	return p, nil
}

// errBadCARRequest reports CAR parameters this gateway cannot honour.
var errBadCARRequest = errors.New("bad CAR request")

// recorder remembers the blocks a path resolution fetched, in order, so a
// CAR response can include them as the proof of the path.
type recorder struct {
	g      dag.BlockGetter
	mu     sync.Mutex // guards blocks: the HAMT reader may fetch concurrently
	blocks []blocks.Block
}

func (r *recorder) GetBlock(ctx context.Context, c cid.Cid) (blocks.Block, error) {
	b, err := r.g.GetBlock(ctx, c)
	if err == nil {
		r.mu.Lock()
		r.blocks = append(r.blocks, b)
		r.mu.Unlock()
	}
	return b, err
}

// serveCAR streams a CARv1 with the path's blocks and then the blocks the
// requested scope covers, depth-first. Headers are sent before the blocks
// are fetched; a failure after that ends the stream early, which CAR
// clients detect by the missing blocks.
func (h *Handler) serveCAR(w http.ResponseWriter, r *http.Request, g dag.BlockGetter, root cid.Cid, path []blocks.Block, t target, p carParams) {
	hdr := w.Header()
	dups := "n"
	if p.dups {
		dups = "y"
	}
	hdr.Set("Content-Type", mediaCAR+"; version=1; order=dfs; dups="+dups)
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("Cache-Control", "public, max-age=29030400, immutable")
	// A CAR is generated as it streams: byte ranges of it are not stable.
	// Partial retrieval uses entity-bytes instead.
	hdr.Set("Accept-Ranges", "none")
	hdr.Set("Content-Disposition", contentDisposition("attachment", t.cid.String()+".car"))
	hdr.Set("Etag", fmt.Sprintf(`W/"%s.car.%s.%d.%d.%t.%s"`, t.cid, p.scope, p.from, p.to, p.hasTo, dups))
	hdr.Add("Vary", "Accept")
	if inm := r.Header.Get("If-None-Match"); inm != "" && headers.ETagMatch(inm, hdr.Get("Etag"), true) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return
	}
	car, err := storage.NewWritable(w, []cid.Cid{root},
		carv2.WriteAsCarV1(true), carv2.AllowDuplicatePuts(p.dups),
		// Identity CIDs carry their data inline: never a block to send.
		carv2.StoreIdentityCIDs(false), carv2.UseWholeCIDs(true))
	if err != nil {
		h.log.Warn("starting CAR", zap.Error(err))
		return
	}
	cw := &carWalk{h: h, ctx: r.Context(), g: g, car: car, p: p, seen: map[cid.Cid]bool{}}
	err = cw.run(path, t)
	if err == nil {
		err = car.Finalize()
	}
	if err != nil && r.Context().Err() == nil {
		h.log.Warn("CAR stream cut short", zap.Stringer("cid", t.cid), zap.Error(err))
	}
}

// maxCARBlocks bounds the blocks of one CAR response, duplicates
// included: a DAG whose subtrees are shared many times over would
// otherwise make a dups=y walk exponential.
const maxCARBlocks = 1 << 20

// errCARTooLarge reports a CAR past maxCARBlocks; the stream ends there.
var errCARTooLarge = fmt.Errorf("the CAR would hold more than %d blocks", maxCARBlocks)

// carWalk writes the blocks of one CAR response. Without duplicates it
// visits each CID once, so its work is linear in the DAG's distinct
// blocks, however often subtrees are shared; every step checks that the
// client is still there.
type carWalk struct {
	h    *Handler
	ctx  context.Context
	g    dag.BlockGetter
	car  storage.WritableCar
	p    carParams
	seen map[cid.Cid]bool // blocks written
	n    int              // blocks written, duplicates included
}

// visit reports whether c's block and subtree are to be written: always
// with duplicates, else only the first time.
func (cw *carWalk) visit(c cid.Cid) bool {
	return cw.p.dups || !cw.seen[c]
}

func (cw *carWalk) put(b blocks.Block) error {
	if err := cw.ctx.Err(); err != nil {
		return err
	}
	if cw.n++; cw.n > maxCARBlocks {
		return errCARTooLarge
	}
	// Every block the CAR carries is policed, not only the path's.
	if err := deny(cw.h.cfg.Policies, []cid.Cid{b.Cid()}); err != nil {
		return err
	}
	cw.seen[b.Cid()] = true
	return cw.car.Put(cw.ctx, b.Cid().KeyString(), b.RawData())
}

func (cw *carWalk) get(c cid.Cid) (blocks.Block, error) {
	if err := cw.ctx.Err(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(cw.ctx, cw.h.cfg.StallTimeout)
	defer cancel()
	return cw.g.GetBlock(ctx, c)
}

// GetBlock is get, for the index's descent: dag.BlockGetter.
func (cw *carWalk) GetBlock(_ context.Context, c cid.Cid) (blocks.Block, error) {
	return cw.get(c)
}

func (cw *carWalk) run(path []blocks.Block, t target) error {
	for _, b := range path {
		if b.Cid() == t.cid {
			continue // the target comes with its scope below
		}
		if err := cw.put(b); err != nil {
			return err
		}
	}
	blk, err := cw.get(t.cid)
	if err != nil {
		return err
	}
	switch cw.p.scope {
	case "block":
		return cw.put(blk)
	case "entity":
		return cw.entity(blk)
	default:
		return cw.all(blk)
	}
}

// putDecoded writes blk and, if it is dag-pb, returns it decoded; other
// codecs are leaves of the walk and give nil.
func (cw *carWalk) putDecoded(blk blocks.Block) (*merkledag.ProtoNode, error) {
	if err := cw.put(blk); err != nil {
		return nil, err
	}
	if blk.Cid().Prefix().Codec != cid.DagProtobuf {
		return nil, nil
	}
	nd, err := merkledag.DecodeProtobufBlock(blk)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", dag.ErrMalformed, err)
	}
	return nd.(*merkledag.ProtoNode), nil
}

// all writes blk and everything under it, depth-first.
func (cw *carWalk) all(blk blocks.Block) error {
	nd, err := cw.putDecoded(blk)
	if nd == nil || err != nil {
		return err
	}
	for _, l := range nd.Links() {
		if !cw.visit(l.Cid) {
			continue
		}
		child, err := cw.get(l.Cid)
		if err != nil {
			return err
		}
		if err := cw.all(child); err != nil {
			return err
		}
	}
	return nil
}

// entity writes what it takes to read the entity blk roots: a file's
// blocks (those covering entity-bytes, when given), a directory's own
// block, a sharded directory's shards.
func (cw *carWalk) entity(blk blocks.Block) error {
	if blk.Cid().Prefix().Codec != cid.DagProtobuf {
		return cw.put(blk)
	}
	nd, err := merkledag.DecodeProtobufBlock(blk)
	if err != nil {
		return fmt.Errorf("%w: %v", dag.ErrMalformed, err)
	}
	fsn, err := unixfs.FSNodeFromBytes(nd.(*merkledag.ProtoNode).Data())
	if err != nil {
		return cw.put(blk)
	}
	switch fsn.Type() {
	case unixfspb.Data_File, unixfspb.Data_Raw:
		start, end := int64(0), int64(fsn.FileSize())
		if cw.p.entityBytes {
			start, end = cw.p.resolve(int64(fsn.FileSize()))
		}
		return cw.fileRange(blk.Cid(), start, end)
	case unixfspb.Data_HAMTShard:
		if err := cw.put(blk); err != nil {
			return err
		}
		for _, l := range nd.Links() {
			// Shard links are named by a two-hex-digit prefix; longer
			// names point at entries, which are not part of the entity.
			if len(l.Name) != 2 || !cw.visit(l.Cid) {
				continue
			}
			child, err := cw.get(l.Cid)
			if err != nil {
				return err
			}
			if err := cw.entity(child); err != nil {
				return err
			}
		}
		return nil
	default:
		return cw.put(blk)
	}
}

// resolve turns entity-bytes into [start, end) of a file of size bytes.
func (p carParams) resolve(size int64) (int64, int64) {
	start := p.from
	if start < 0 {
		start = max(size+start, 0)
	}
	end := size
	if p.hasTo {
		if p.to < 0 {
			end = size + p.to + 1
		} else {
			end = min(p.to+1, size)
		}
	}
	return start, max(end, start)
}

// fileRange writes the blocks of the file root that hold bytes of
// [start, end), depth first, by the index's descent. An empty range writes
// only the root, from which the client can still verify the file's size.
func (cw *carWalk) fileRange(root cid.Cid, start, end int64) error {
	for c, err := range cw.h.streamer.Index.Blocks(cw.ctx, cw, root, start, end, func(c cid.Cid) bool { return !cw.visit(c) }) {
		if err != nil {
			return err
		}
		blk, err := cw.get(c)
		if err != nil {
			return err
		}
		if err := cw.put(blk); err != nil {
			return err
		}
	}
	return nil
}

// contentDisposition formats a Content-Disposition value with the file
// name quoted, and as RFC 8187 UTF-8 too when it is not plain ASCII.
func contentDisposition(kind, name string) string {
	ascii := true
	for i := 0; i < len(name); i++ {
		if name[i] < 0x20 || name[i] > 0x7e {
			ascii = false
			break
		}
	}
	quoted := strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(name)
	if ascii {
		return fmt.Sprintf(`%s; filename="%s"`, kind, quoted)
	}
	// RFC 6266 §4.3: an ASCII fallback (each other character a "_") for
	// old clients, and the name itself in filename* (RFC 8187).
	var fallback strings.Builder
	for _, r := range name {
		if r < 0x20 || r > 0x7e || r == '"' || r == '\\' {
			r = '_'
		}
		fallback.WriteRune(r)
	}
	return fmt.Sprintf(`%s; filename="%s"; filename*=UTF-8''%s`, kind, fallback.String(), url.PathEscape(name))
}
