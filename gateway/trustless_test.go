package gateway_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/ipfs/boxo/ipld/merkledag"
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	carv2 "github.com/ipld/go-car/v2"
	"github.com/ipld/go-ipld-prime/codec/dagcbor"
	"github.com/ipld/go-ipld-prime/datamodel"
	"github.com/ipld/go-ipld-prime/fluent/qp"
	cidlink "github.com/ipld/go-ipld-prime/linking/cid"
	"github.com/ipld/go-ipld-prime/node/basicnode"
	"github.com/pacman-cdn/pacman/dag"
	"github.com/pacman-cdn/pacman/gateway"
	"github.com/pacman-cdn/pacman/hedge"
)

// carBlocks reads a CAR body and returns its roots and block CIDs in order,
// failing the test if a block does not match its CID.
func carBlocks(t *testing.T, body []byte) ([]cid.Cid, []cid.Cid) {
	t.Helper()
	br, err := carv2.NewBlockReader(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("not a CAR: %v", err)
	}
	var got []cid.Cid
	for {
		b, err := br.Next()
		if errors.Is(err, io.EOF) {
			return br.Roots, got
		}
		if err != nil {
			t.Fatalf("reading CAR: %v", err)
		}
		got = append(got, b.Cid())
	}
}

// fileBlocks lists the file DAG under c depth-first: root, then children.
func fileBlocks(t *testing.T, f *fixture, c cid.Cid) []cid.Cid {
	t.Helper()
	out := []cid.Cid{c}
	if c.Prefix().Codec != cid.DagProtobuf {
		return out
	}
	nd, err := merkledag.NewDAGService(f.store).Get(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range nd.Links() {
		out = append(out, fileBlocks(t, f, l.Cid)...)
	}
	return out
}

func childCID(t *testing.T, f *fixture, name string) cid.Cid {
	t.Helper()
	return childOf(t, f.store, f.dir, name)
}

// TestCAR checks the trustless gateway CAR responses: the path's blocks
// first, then the scope's, depth-first, each verified by the reader.
func TestCAR(t *testing.T) {
	f := newFixture(t, gateway.Config{})
	video := childCID(t, f, "video.mp4")
	leaves := fileBlocks(t, f, video)[1:]
	cases := []struct {
		name, query, accept string
		want                []cid.Cid
	}{
		{"dag-scope=all of a file on a path", "?format=car", "", append([]cid.Cid{f.dir}, fileBlocks(t, f, video)...)},
		{"Accept header instead of format", "", "application/vnd.ipld.car", append([]cid.Cid{f.dir}, fileBlocks(t, f, video)...)},
		{"dag-scope=block", "?format=car&dag-scope=block", "", []cid.Cid{f.dir, video}},
		{"dag-scope=entity", "?format=car&dag-scope=entity", "", append([]cid.Cid{f.dir}, fileBlocks(t, f, video)...)},
		{"entity-bytes inside the second leaf", "?format=car&dag-scope=entity&entity-bytes=1048577:1048580", "", []cid.Cid{f.dir, video, leaves[1]}},
		{"entity-bytes suffix", "?format=car&dag-scope=entity&entity-bytes=-3:*", "", []cid.Cid{f.dir, video, leaves[3]}},
		{"entity-bytes negative end", "?format=car&dag-scope=entity&entity-bytes=0:-3145730", "", []cid.Cid{f.dir, video, leaves[0]}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var hdr []string
			if tc.accept != "" {
				hdr = []string{"Accept", tc.accept}
			}
			resp, body := do(t, "GET", f.url+"/video.mp4"+tc.query, hdr...)
			if resp.StatusCode != 200 {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/vnd.ipld.car; version=1; order=dfs; dups=n" {
				t.Errorf("Content-Type %q", ct)
			}
			wantHeader(t, resp, "Accept-Ranges", "none")
			wantHeader(t, resp, "X-Content-Type-Options", "nosniff")
			if !strings.HasPrefix(resp.Header.Get("Content-Disposition"), "attachment;") {
				t.Errorf("Content-Disposition %q", resp.Header.Get("Content-Disposition"))
			}
			roots, got := carBlocks(t, body)
			if len(roots) != 1 || roots[0] != f.dir {
				t.Errorf("roots %v, want the requested root %s", roots, f.dir)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("blocks\n got %v\nwant %v", got, tc.want)
			}
		})
	}
}

// TestCARDuplicates: with dups=y (Accept or car-dups, which wins), a block
// linked twice is sent twice; by default once.
func TestCARDuplicates(t *testing.T) {
	f := newFixture(t, gateway.Config{})
	// page/index.html and the empty file are distinct; make a DAG with a
	// repeated child: the same leaf under two names.
	ctx := context.Background()
	dag := merkledag.NewDAGService(f.store)
	leaf := merkledag.NewRawNode([]byte("same"))
	if err := dag.Add(ctx, leaf); err != nil {
		t.Fatal(err)
	}
	dir := merkledag.NodeWithData([]byte{0x08, 0x01}) // UnixFS Directory
	dir.SetCidBuilder(cid.V1Builder{Codec: cid.DagProtobuf, MhType: 0x12})
	for _, name := range []string{"a", "b"} {
		if err := dir.AddNodeLink(name, leaf); err != nil {
			t.Fatal(err)
		}
	}
	if err := dag.Add(ctx, dir); err != nil {
		t.Fatal(err)
	}
	url := f.url[:len(f.url)-len(f.dir.String())] + dir.Cid().String()
	for _, tc := range []struct {
		name, query, accept string
		want                int
	}{
		{"default", "?format=car", "", 2},
		{"dups=y", "", "application/vnd.ipld.car; version=1; order=dfs; dups=y", 3},
		{"car-dups=y wins over dups=n", "?format=car&car-dups=y", "application/vnd.ipld.car; dups=n", 3},
	} {
		resp, body := do(t, "GET", url+tc.query, "Accept", tc.accept)
		_, got := carBlocks(t, body)
		if len(got) != tc.want {
			t.Errorf("%s: %d blocks, want %d", tc.name, len(got), tc.want)
		}
		if tc.want == 3 && !strings.Contains(resp.Header.Get("Content-Type"), "dups=y") {
			t.Errorf("%s: Content-Type %q lacks dups=y", tc.name, resp.Header.Get("Content-Type"))
		}
	}
}

// TestRawBlock checks application/vnd.ipld.raw responses: the exact block
// bytes, with ranges, for a file and for a directory named by a path.
func TestRawBlock(t *testing.T) {
	f := newFixture(t, gateway.Config{})
	blk, err := f.store.GetBlock(context.Background(), f.dir)
	if err != nil {
		t.Fatal(err)
	}
	resp, body := do(t, "GET", f.url+"/?format=raw")
	if resp.StatusCode != 200 || !bytes.Equal(body, blk.RawData()) {
		t.Fatalf("directory as raw block: status %d, %d bytes", resp.StatusCode, len(body))
	}
	wantHeader(t, resp, "Content-Type", "application/vnd.ipld.raw")
	wantHeader(t, resp, "X-Content-Type-Options", "nosniff")
	wantHeader(t, resp, "Content-Disposition", `attachment; filename="`+f.dir.String()+`.bin"`)
	wantHeader(t, resp, "Etag", `"`+f.dir.String()+`.raw"`)
	wantHeader(t, resp, "Cache-Control", "public, max-age=29030400, immutable")

	leaf := fileBlocks(t, f, childCID(t, f, "video.mp4"))[2]
	raw, _ := f.store.GetBlock(context.Background(), leaf)
	resp, body = do(t, "GET", f.url[:len(f.url)-len(f.dir.String())]+leaf.String()+"?filename=x.bin", "Accept", "application/vnd.ipld.raw", "Range", "bytes=10-19")
	if resp.StatusCode != 206 || !bytes.Equal(body, raw.RawData()[10:20]) {
		t.Errorf("range of a raw block: status %d, %d bytes", resp.StatusCode, len(body))
	}
	wantHeader(t, resp, "Content-Disposition", `attachment; filename="x.bin"`)
	if resp, _ := do(t, "GET", f.url+"/video.mp4?format=zip"); resp.StatusCode != 400 {
		t.Errorf("unsupported format: status %d, want 400", resp.StatusCode)
	}
}

// TestPathHeaders checks X-Ipfs-Path, X-Ipfs-Roots and the ETag of a
// directory served by its index.html (the directory's CID).
func TestPathHeaders(t *testing.T) {
	f := newFixture(t, gateway.Config{})
	page := childCID(t, f, "page")
	resp, _ := do(t, "GET", f.url+"/page/")
	wantHeader(t, resp, "X-Ipfs-Path", "/ipfs/"+f.dir.String()+"/page/")
	wantHeader(t, resp, "X-Ipfs-Roots", f.dir.String()+","+page.String())
	wantHeader(t, resp, "Etag", `"`+page.String()+`"`)

	nd, _ := merkledag.NewDAGService(f.store).Get(context.Background(), page)
	index, _, _ := nd.ResolveLink([]string{"index.html"})
	resp, _ = do(t, "GET", f.url+"/page/index.html")
	wantHeader(t, resp, "X-Ipfs-Roots", f.dir.String()+","+page.String()+","+index.Cid.String())
	wantHeader(t, resp, "Etag", `"`+index.Cid.String()+`"`)
}

// TestCORS checks that players on other origins can read responses and
// that preflights are answered.
func TestCORS(t *testing.T) {
	f := newFixture(t, gateway.Config{})
	for _, method := range []string{"GET", "OPTIONS"} {
		resp, _ := do(t, method, f.url+"/video.mp4", "Origin", "https://player.example", "Access-Control-Request-Method", "GET")
		if resp.StatusCode != 200 {
			t.Errorf("%s: status %d", method, resp.StatusCode)
		}
		wantHeader(t, resp, "Access-Control-Allow-Origin", "*")
		for _, h := range []string{"Content-Range", "Content-Length", "X-Ipfs-Path", "X-Ipfs-Roots"} {
			if !strings.Contains(resp.Header.Get("Access-Control-Expose-Headers"), h) {
				t.Errorf("%s: %s not exposed", method, h)
			}
		}
		if !strings.Contains(resp.Header.Get("Access-Control-Allow-Headers"), "Range") {
			t.Errorf("%s: Range not allowed", method)
		}
	}
}

// TestOnlyIfCached: RFC 9111 §5.2.1.7 — stored content is served, anything
// else gets 412 without touching the network.
func TestOnlyIfCached(t *testing.T) {
	f := newFixture(t, gateway.Config{})
	resp, _ := do(t, "HEAD", f.url+"/video.mp4", "Cache-Control", "only-if-cached")
	if resp.StatusCode != 412 {
		t.Errorf("no local store: status %d, want 412", resp.StatusCode)
	}
	g := newFixture(t, gateway.Config{})
	local := newFixtureWithLocal(t, g)
	resp, body := do(t, "GET", local+"/video.mp4", "Cache-Control", "only-if-cached")
	if resp.StatusCode != 200 || !bytes.Equal(body, g.video) {
		t.Errorf("stored content: status %d, %d bytes", resp.StatusCode, len(body))
	}
	missing := "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy"
	resp, _ = do(t, "GET", local[:len(local)-len(g.dir.String())]+missing, "Cache-Control", "only-if-cached")
	if resp.StatusCode != 412 {
		t.Errorf("missing content: status %d, want 412", resp.StatusCode)
	}
}

// newFixtureWithLocal serves f's store with it also as the local store.
func newFixtureWithLocal(t *testing.T, f *fixture) string {
	t.Helper()
	h, err := newSessionHandler(func(context.Context) dag.BlockGetter {
		t.Error("an only-if-cached request opened a network session")
		return f.getter
	}, gateway.Config{Local: hedge.LocalBlockstore(f.store.Blockstore())})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptestServer(t, h)
	return srv + "/ipfs/" + f.dir.String()
}

// TestDagCBORPath follows a path through the maps of a DAG-CBOR root to the
// UnixFS file its link names, for the file and for a CAR of the path.
func TestDagCBORPath(t *testing.T) {
	f := newFixture(t, gateway.Config{})
	video := childCID(t, f, "video.mp4")
	doc, err := qp.BuildMap(basicnode.Prototype.Any, 1, func(ma datamodel.MapAssembler) {
		qp.MapEntry(ma, "files", qp.Map(1, func(ma datamodel.MapAssembler) {
			qp.MapEntry(ma, "single", qp.Link(cidlink.Link{Cid: video}))
		}))
	})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := dagcbor.Encode(doc, &buf); err != nil {
		t.Fatal(err)
	}
	c, err := cid.Prefix{Version: 1, Codec: cid.DagCBOR, MhType: 0x12, MhLength: -1}.Sum(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := blocks.NewBlockWithCid(buf.Bytes(), c)
	if err := f.store.AddBlock(context.Background(), blk); err != nil {
		t.Fatal(err)
	}
	base := f.url[:len(f.url)-len(f.dir.String())] + c.String()
	resp, body := do(t, "GET", base+"/files/single", "Range", "bytes=0-99")
	if resp.StatusCode != 206 || !bytes.Equal(body, f.video[:100]) {
		t.Errorf("file under a DAG-CBOR path: status %d, %d bytes", resp.StatusCode, len(body))
	}
	_, body = do(t, "GET", base+"/files/single?format=car")
	_, got := carBlocks(t, body)
	if want := append([]cid.Cid{c}, fileBlocks(t, f, video)...); !slices.Equal(got, want) {
		t.Errorf("CAR blocks\n got %v\nwant %v", got, want)
	}
	if resp, _ := do(t, "GET", base+"/files/nope"); resp.StatusCode != 404 {
		t.Errorf("missing key: status %d, want 404", resp.StatusCode)
	}
	if resp, _ := do(t, "GET", base+"/files"); resp.StatusCode != 501 {
		t.Errorf("path ending inside the block: status %d, want 501", resp.StatusCode)
	}
}
