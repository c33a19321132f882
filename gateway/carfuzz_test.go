package gateway_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/ipfs/boxo/blockservice"
	"github.com/ipfs/boxo/ipld/merkledag"
	"github.com/ipfs/boxo/ipld/unixfs"
	"github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"
	carv2 "github.com/ipld/go-car/v2"
	"github.com/pacman-cdn/pacman/gateway"
	"github.com/pacman-cdn/pacman/hedge"
	"github.com/pacman-cdn/pacman/ingest"
	"github.com/pacman-cdn/pacman/internal/testutil"
)

// FuzzCARSelectors requests CARs of crafted DAGs (a directory holding a
// file of 40 small leaves and a directory whose every level links its child
// twice) with arbitrary dag-scope and entity-bytes values, with and without
// duplicates. Whatever the parameters, the answer is a precise status
// within seconds, and a 200 is a CAR whose every block matches its CID,
// with each block once unless duplicates were asked for.
func FuzzCARSelectors(f *testing.F) {
	for _, seed := range []struct {
		path, scope, bytes string
		dups               bool
	}{
		{"", "all", "", false},
		{"file", "entity", "0:*", false},
		{"file", "entity", "1000:2047", false},
		{"file", "entity", "-1000:-1", false},
		{"file", "entity", "30000:10", false},
		{"file", "block", "", false},
		{"shared", "all", "", true},
		{"shared/a/b", "entity", "", false},
		{"file", "entity", "9223372036854775807:*", false},
		{"file", "entity", "-9223372036854775808:*", false},
		{"nope", "all", "", false},
		{"file", "bogus", "x:y", false},
	} {
		f.Add(seed.path, seed.scope, seed.bytes, seed.dups)
	}
	ctx := context.Background()
	bs, shared := sharedDAG(f, 10)
	dag := merkledag.NewDAGService(blockservice.New(bs, nil))
	file, err := ingest.Import(ctx, dag, bytes.NewReader(testutil.Bytes("car-fuzz", 40<<10)), ingest.WithChunkSize(1<<10))
	if err != nil {
		f.Fatal(err)
	}
	dir := unixfs.EmptyDirNode()
	for name, c := range map[string]cid.Cid{"file": file, "shared": shared} {
		if err := dir.AddRawLink(name, &ipld.Link{Cid: c, Size: 1}); err != nil {
			f.Fatal(err)
		}
	}
	if err := dag.Add(ctx, dir); err != nil {
		f.Fatal(err)
	}
	stored, err := bs.AllKeysChan(ctx)
	if err != nil {
		f.Fatal(err)
	}
	distinct := 0
	for range stored {
		distinct++
	}
	h, err := gateway.NewHandler(gateway.Config{
		Resolvers:      []gateway.Resolver{gateway.IPFSPaths{}},
		Policies:       []gateway.Policy{testutil.OpenPolicy{}},
		Local:          hedge.LocalBlockstore(bs),
		ResolveTimeout: 2 * time.Second,
	})
	if err != nil {
		f.Fatal(err)
	}

	f.Fuzz(func(t *testing.T, path, scope, entityBytes string, dups bool) {
		q := url.Values{"format": {"car"}, "dag-scope": {scope}}
		if entityBytes != "" {
			q.Set("entity-bytes", entityBytes)
		}
		target := "/ipfs/" + dir.Cid().String() + "/" + (&url.URL{Path: path}).EscapedPath() + "?" + q.Encode()
		r, err := http.NewRequest("GET", target, nil)
		if err != nil {
			return // not a request a client could send
		}
		if dups {
			r.Header.Set("Accept", "application/vnd.ipld.car; version=1; order=dfs; dups=y")
		}
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		w := httptest.NewRecorder()
		start := time.Now()
		h.ServeHTTP(w, r.WithContext(rctx))
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("%s: answered after %v", target, d)
		}
		switch w.Code {
		case http.StatusBadRequest, http.StatusNotFound, http.StatusMovedPermanently:
			return
		case http.StatusOK:
		default:
			t.Fatalf("%s: status %d: %s", target, w.Code, w.Body.String())
		}
		cr, err := carv2.NewBlockReader(w.Body)
		if err != nil {
			t.Fatalf("%s: not a CAR: %v", target, err)
		}
		seen := map[cid.Cid]bool{}
		for {
			blk, err := cr.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%s: reading the CAR: %v", target, err)
			}
			got, err := blk.Cid().Prefix().Sum(blk.RawData())
			if err != nil || !got.Equals(blk.Cid()) {
				t.Fatalf("%s: block %s does not match its bytes", target, blk.Cid())
			}
			if seen[blk.Cid()] && !dups {
				t.Fatalf("%s: block %s sent twice without dups=y", target, blk.Cid())
			}
			seen[blk.Cid()] = true
		}
		if len(seen) > distinct {
			t.Fatalf("%s: %d distinct blocks, the store holds %d", target, len(seen), distinct)
		}
	})
}
