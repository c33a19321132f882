package gateway_test

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ipfs/boxo/blockservice"
	"github.com/ipfs/boxo/blockstore"
	"github.com/ipfs/go-cid"
	"github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
	"github.com/pacman-cdn/pacman/chunker"
	"github.com/pacman-cdn/pacman/gateway"
)

type cidSet map[cid.Cid]bool

func (s cidSet) Contains(c cid.Cid) bool { return s[c] }

// TestPolicy checks each access policy: what a gateway fetches from the
// network for a visitor, what it serves from its store, and the 403/410
// answers that name the setting.
func TestPolicy(t *testing.T) {
	f := newFixture(t, gateway.Config{}) // the "network": f's store
	video := childCID(t, f, "video.mp4")
	// The node holds only the empty file, in its own store.
	local := blockservice.New(blockstore.NewBlockstore(dssync.MutexWrap(datastore.NewMapDatastore())), nil)
	emptyCID := childCID(t, f, "empty.txt")
	blk, err := f.store.GetBlock(context.Background(), emptyCID)
	if err != nil {
		t.Fatal(err)
	}
	if err := local.AddBlock(context.Background(), blk); err != nil {
		t.Fatal(err)
	}
	sessions := gateway.SessionsFunc(func(context.Context) chunker.BlockGetter { return f.getter })
	serve := func(p gateway.Policy) string {
		h, err := gateway.NewHandler(sessions, gateway.Config{Local: local, Policy: p, Readahead: -1})
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(h)
		t.Cleanup(srv.Close)
		return srv.URL + "/ipfs/"
	}
	cases := []struct {
		name   string
		policy gateway.Policy
		cid    cid.Cid
		status int
		says   string
	}{
		{"local serves what it holds", gateway.Policy{}, emptyCID, 200, ""},
		{"local refuses the rest", gateway.Policy{}, video, 403, "access local"},
		{"allowlist fetches listed roots", gateway.Policy{Access: gateway.AccessAllowList, Allowed: cidSet{video: true}}, video, 200, ""},
		{"allowlist refuses other roots", gateway.Policy{Access: gateway.AccessAllowList, Allowed: cidSet{}}, video, 403, "access allowlist"},
		{"allowlist serves what it holds", gateway.Policy{Access: gateway.AccessAllowList}, emptyCID, 200, ""},
		{"open fetches anything", gateway.Policy{Access: gateway.AccessOpen}, video, 200, ""},
		{"deny list wins over open", gateway.Policy{Access: gateway.AccessOpen, Denied: cidSet{video: true}}, video, 410, "deny list"},
		{"deny list applies to held content", gateway.Policy{Denied: cidSet{emptyCID: true}}, emptyCID, 410, "deny list"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := do(t, "GET", serve(tc.policy)+tc.cid.String())
			if resp.StatusCode != tc.status || !strings.Contains(string(body), tc.says) {
				t.Errorf("status %d %q, want %d naming %q", resp.StatusCode, body, tc.status, tc.says)
			}
		})
	}
	// A denied target is refused even when reached through an allowed path.
	resp, _ := do(t, "GET", serve(gateway.Policy{Access: gateway.AccessOpen, Denied: cidSet{video: true}})+f.dir.String()+"/video.mp4")
	if resp.StatusCode != 410 {
		t.Errorf("denied file under a directory: status %d, want 410", resp.StatusCode)
	}
}
