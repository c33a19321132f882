package dag

import (
	"context"
	"fmt"
	"io"

	"github.com/ipfs/boxo/ipld/merkledag"
	"github.com/ipfs/go-cid"
	carv2 "github.com/ipld/go-car/v2"
	"github.com/ipld/go-car/v2/storage"
)

// ExportCAR writes the DAG under root as a CARv1 stream to w, blocks in
// depth-first order from the root. dag-pb links are followed; raw blocks are
// leaves. Other codecs are exported as blocks without their links.
func ExportCAR(ctx context.Context, g BlockGetter, root cid.Cid, w io.Writer) (int, error) {
	return exportCAR(ctx, g, root, w, false)
}

// ExportIndexCAR writes the DAG under root as ExportCAR does, but without
// the raw leaves linked from it: what remains is the index, about 1/20 000
// of the file's size with 1 MiB leaves. An edge that imports it can serve
// the file from an HTTP origin alone, checking every leaf it fetches
// against the CIDs the index holds.
func ExportIndexCAR(ctx context.Context, g BlockGetter, root cid.Cid, w io.Writer) (int, error) {
	return exportCAR(ctx, g, root, w, true)
}

func exportCAR(ctx context.Context, g BlockGetter, root cid.Cid, w io.Writer, skipRawLinks bool) (int, error) {
	// Only the Writer: handed a file, the CAR writer would seek in it,
	// and a pipe (export | …) cannot.
	car, err := storage.NewWritable(struct{ io.Writer }{w}, []cid.Cid{root}, carv2.WriteAsCarV1(true))
	if err != nil {
		return 0, fmt.Errorf("starting CAR: %w", err)
	}
	seen := map[cid.Cid]struct{}{}
	stack := []cid.Cid{root}
	n := 0
	for len(stack) > 0 {
		c := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if _, ok := seen[c]; ok {
			continue
		}
		seen[c] = struct{}{}
		blk, err := g.GetBlock(ctx, c)
		if err != nil {
			return n, fmt.Errorf("reading block %s: %w", c, err)
		}
		if err := car.Put(ctx, c.KeyString(), blk.RawData()); err != nil {
			return n, fmt.Errorf("writing block %s: %w", c, err)
		}
		n++
		if c.Prefix().Codec != cid.DagProtobuf {
			continue
		}
		nd, err := merkledag.DecodeProtobufBlock(blk)
		if err != nil {
			return n, fmt.Errorf("%w: decoding %s: %v", ErrMalformed, c, err)
		}
		links := nd.Links()
		for i := len(links) - 1; i >= 0; i-- {
			if skipRawLinks && links[i].Cid.Prefix().Codec == cid.Raw {
				continue
			}
			stack = append(stack, links[i].Cid)
		}
	}
	if err := car.Finalize(); err != nil {
		return n, fmt.Errorf("finishing CAR: %w", err)
	}
	return n, nil
}
