// Tests of the four policies together, through a gateway.
package policies_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/ipfs/boxo/blockservice"
	"github.com/ipfs/boxo/blockstore"
	"github.com/ipfs/boxo/ipld/merkledag"
	"github.com/ipfs/go-cid"
	"github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
	"github.com/pacman-cdn/pacman/gateway"
	"github.com/pacman-cdn/pacman/hedge"
	"github.com/pacman-cdn/pacman/ingest"
	"github.com/pacman-cdn/pacman/internal/testutil"
	"github.com/pacman-cdn/pacman/plugins/policies/allowlist"
	"github.com/pacman-cdn/pacman/plugins/policies/denylist"
	"github.com/pacman-cdn/pacman/plugins/policies/local"
	"github.com/pacman-cdn/pacman/plugins/policies/open"
	"go.uber.org/zap"
)

func newStore() blockstore.Blockstore {
	return blockstore.NewBlockstore(dssync.MutexWrap(datastore.NewMapDatastore()))
}

// listFile writes a CID list and returns its path.
func listFile(t *testing.T, cids ...cid.Cid) string {
	t.Helper()
	var b strings.Builder
	for _, c := range cids {
		b.WriteString(c.String() + "\n")
	}
	p := filepath.Join(t.TempDir(), "list.txt")
	if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// provisioned provisions a policy module as Caddy would.
func provisioned[T interface {
	gateway.Policy
	caddy.Provisioner
}](t *testing.T, p T) T {
	t.Helper()
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	t.Cleanup(cancel)
	if err := p.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestPolicies checks each policy and their combination: what a gateway
// fetches from the network for a visitor, what it serves from its store,
// and the 403/410 answers that name the setting.
func TestPolicies(t *testing.T) {
	ctx := context.Background()
	src := t.TempDir()
	video := testutil.Bytes("policy", 3<<20+5)
	small := []byte("held locally")
	if err := os.WriteFile(filepath.Join(src, "video.mp4"), video, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "small.txt"), small, 0o644); err != nil {
		t.Fatal(err)
	}
	network := newStore() // what peers hold: everything
	dag := merkledag.NewDAGService(blockservice.New(network, nil))
	dir, err := ingest.ImportDir(ctx, dag, src)
	if err != nil {
		t.Fatal(err)
	}
	videoCID, err := ingest.Import(ctx, dag, bytes.NewReader(video))
	if err != nil {
		t.Fatal(err)
	}
	smallCID, err := ingest.Import(ctx, dag, bytes.NewReader(small))
	if err != nil {
		t.Fatal(err)
	}
	held := newStore() // the edge holds only the small file
	blk, err := network.Get(ctx, smallCID)
	if err != nil {
		t.Fatal(err)
	}
	if err := held.Put(ctx, blk); err != nil {
		t.Fatal(err)
	}
	serve := func(policies ...gateway.Policy) string {
		h, err := gateway.NewHandler(gateway.Config{
			Resolvers: []gateway.Resolver{gateway.IPFSPaths{}},
			Policies:  policies,
			Sources:   []hedge.Source{testutil.PeerSessions(func(context.Context) hedge.Getter { return blockservice.New(network, nil) })},
			Local:     hedge.LocalBlockstore(held),
			Readahead: -1,
		})
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(h)
		t.Cleanup(srv.Close)
		return srv.URL + "/ipfs/"
	}
	allow := func(cids ...cid.Cid) gateway.Policy {
		return provisioned(t, &allowlist.Policy{File: listFile(t, cids...)})
	}
	deny := func(cids ...cid.Cid) gateway.Policy {
		p := &denylist.Policy{File: listFile(t, cids...)}
		if err := p.Init(network, zap.NewNop()); err != nil { // the DAGs the node holds
			t.Fatal(err)
		}
		return p
	}
	videoNode, err := dag.Get(ctx, videoCID)
	if err != nil {
		t.Fatal(err)
	}
	videoLeaf := videoNode.Links()[1].Cid
	cases := []struct {
		name     string
		policies []gateway.Policy
		path     string
		status   int
		says     string
	}{
		{"local serves what it holds", []gateway.Policy{local.Policy{}}, smallCID.String(), 200, ""},
		{"local refuses the rest", []gateway.Policy{local.Policy{}}, videoCID.String(), 403, "access local"},
		{"no policy is closed", nil, videoCID.String(), 403, "only content it, its fleet or its origin holds"},
		{"allow_list fetches listed roots", []gateway.Policy{allow(videoCID)}, videoCID.String(), 200, ""},
		{"allow_list refuses other roots", []gateway.Policy{allow(smallCID)}, videoCID.String(), 403, "allow list"},
		{"allow_list serves what it holds", []gateway.Policy{allow()}, smallCID.String(), 200, ""},
		{"open fetches anything", []gateway.Policy{open.Policy{}}, videoCID.String(), 200, ""},
		{"local wins over open", []gateway.Policy{open.Policy{}, local.Policy{}}, videoCID.String(), 403, "access local"},
		{"deny_list alone opens nothing", []gateway.Policy{deny()}, videoCID.String(), 403, "only content it, its fleet or its origin holds"},
		{"deny_list wins over open", []gateway.Policy{open.Policy{}, deny(videoCID)}, videoCID.String(), 410, "deny list"},
		{"deny_list applies to held content", []gateway.Policy{local.Policy{}, deny(smallCID)}, smallCID.String(), 410, "deny list"},
		{"deny_list applies to a file under a directory", []gateway.Policy{open.Policy{}, deny(videoCID)}, dir.String() + "/video.mp4", 410, "deny list"},
		{"deny_list applies to the directory on the path", []gateway.Policy{open.Policy{}, deny(dir)}, dir.String() + "/small.txt", 410, "deny list"},
		{"deny_list applies to a leaf of a denied file", []gateway.Policy{open.Policy{}, deny(videoCID)}, videoLeaf.String(), 410, "deny list"},
		{"deny_list applies to a raw block of a denied file", []gateway.Policy{open.Policy{}, deny(videoCID)}, videoLeaf.String() + "?format=raw", 410, "deny list"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := http.Get(serve(tc.policies...) + tc.path)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status || !strings.Contains(string(body), tc.says) {
				t.Errorf("status %d %q, want %d naming %q", resp.StatusCode, body, tc.status, tc.says)
			}
		})
	}
	// A CAR of the directory stops before the denied file's blocks.
	resp, err := http.Get(serve(open.Policy{}, deny(videoCID)) + dir.String() + "?format=car")
	if err != nil {
		t.Fatal(err)
	}
	car, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	leaf, err := network.Get(ctx, videoLeaf)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(car, leaf.RawData()[:4096]) {
		t.Error("a CAR of the directory carries a block of the denied file")
	}
}
