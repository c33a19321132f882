package trustlessgateway

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	blocks "github.com/ipfs/go-block-format"
	ipld "github.com/ipfs/go-ipld-format"
	"github.com/pacman-cdn/pacman/hedge"
)

// TestTrustlessGateway: blocks are asked of every gateway with
// ?format=raw; the first that hashes to the CID is served, a
// gateway's other bytes are rejected as a mismatch, and absence is
// not-found.
func TestTrustlessGateway(t *testing.T) {
	good := blocks.NewBlock([]byte("the block"))
	missing := blocks.NewBlock([]byte("held by no one"))
	serve := func(data map[string][]byte) *httptest.Server {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Query().Get("format") != "raw" || r.Header.Get("Accept") != "application/vnd.ipld.raw" {
				http.Error(w, "not a raw block request", http.StatusBadRequest)
				return
			}
			b, ok := data[r.URL.Path]
			if !ok {
				http.NotFound(w, r)
				return
			}
			_, _ = w.Write(b)
		}))
		t.Cleanup(srv.Close)
		return srv
	}
	liar := serve(map[string][]byte{"/ipfs/" + good.Cid().String(): []byte("other bytes")})
	honest := serve(map[string][]byte{"/ipfs/" + good.Cid().String(): good.RawData()})

	s := &Source{URLs: []string{liar.URL, honest.URL + "/"}}
	if err := s.init(http.DefaultClient); err != nil {
		t.Fatal(err)
	}
	f, _, err := s.Open(hedge.Target{})
	if err != nil || f == nil {
		t.Fatalf("open: %v", err)
	}
	blk, err := f.Fetch(context.Background(), hedge.Want{Cid: good.Cid()})
	if err != nil || string(blk.RawData()) != "the block" {
		t.Fatalf("fetch from a liar and an honest gateway: %v, %v", blk, err)
	}

	alone := &Source{URLs: []string{liar.URL}}
	if err := alone.init(http.DefaultClient); err != nil {
		t.Fatal(err)
	}
	fa, _, _ := alone.Open(hedge.Target{})
	if _, err := fa.Fetch(context.Background(), hedge.Want{Cid: good.Cid()}); !errors.Is(err, hedge.ErrMismatch) {
		t.Errorf("a lying gateway alone: %v, want a mismatch", err)
	}
	if _, err := fa.Fetch(context.Background(), hedge.Want{Cid: missing.Cid()}); !ipld.IsNotFound(err) {
		t.Errorf("a block no gateway holds: %v, want not found", err)
	}
	for _, bad := range [][]string{nil, {"ftp://x"}, {"http://"}} {
		if err := (&Source{URLs: bad}).init(http.DefaultClient); err == nil {
			t.Errorf("URLs %q accepted", bad)
		}
	}
}
