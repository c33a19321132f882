package gateway_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	"github.com/pacman-cdn/pacman/gateway"
	"github.com/pacman-cdn/pacman/hedge"
	"github.com/pacman-cdn/pacman/internal/testutil"
)

// silentNetwork is an open network where no block is ever found: each
// fetch waits until it is given up.
type silentNetwork struct{}

func (silentNetwork) GetBlock(ctx context.Context, _ cid.Cid) (blocks.Block, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

// TestNetworkRequestCap: under an open policy, requests for content the
// edge does not hold are bounded: past MaxNetworkRequests in progress the
// next is answered 503 with Retry-After at once, instead of joining the
// flood of searches, while held content is still served; once the first
// give up, a new one is let on the network again.
func TestNetworkRequestCap(t *testing.T) {
	data := testutil.Bytes("cap-held", 300<<10)
	bs, held := memFile(t, data)
	h, err := gateway.NewHandler(gateway.Config{
		Resolvers:          []gateway.Resolver{gateway.IPFSPaths{}},
		Policies:           []gateway.Policy{testutil.OpenPolicy{}},
		Sources:            []hedge.Source{testutil.PeerSessions(func(context.Context) hedge.Getter { return silentNetwork{} })},
		Local:              hedge.LocalBlockstore(bs),
		ResolveTimeout:     time.Second,
		MaxNetworkRequests: 2,
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	unknown := func(i int) string {
		return srv.URL + "/ipfs/" + blocks.NewBlock([]byte{byte(i), 'x'}).Cid().String()
	}

	pending := make(chan int, 2)
	for i := range 2 {
		go func() {
			resp, err := http.Get(unknown(i))
			if err != nil {
				pending <- 0
				return
			}
			resp.Body.Close()
			pending <- resp.StatusCode
		}()
	}
	time.Sleep(200 * time.Millisecond) // both are searching

	start := time.Now()
	resp, err := http.Get(unknown(3))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Errorf("third unknown CID: status %d, Retry-After %q; want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Errorf("third unknown CID answered after %v, want at once", d)
	}
	resp, body := do(t, "GET", srv.URL+"/ipfs/"+held.String())
	if resp.StatusCode != 200 || !bytes.Equal(body, data) {
		t.Errorf("held content while the cap is full: status %d, equal %v", resp.StatusCode, bytes.Equal(body, data))
	}

	for range 2 {
		if code := <-pending; code != http.StatusGatewayTimeout {
			t.Errorf("an unknown CID given up: status %d, want 504", code)
		}
	}
	resp, err = http.Get(unknown(4))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusGatewayTimeout {
		t.Errorf("after the first gave up: status %d, want 504 (let on the network)", resp.StatusCode)
	}
}
