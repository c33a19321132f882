package fleet

import (
	"fmt"
	"testing"

	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
)

// TestOwnerRendezvous: each member owns about its share of blocks, and a
// member leaving moves only the blocks it owned (highest random weight).
func TestOwnerRendezvous(t *testing.T) {
	ids := []peer.ID{"edge-a", "edge-b", "edge-c"}
	const n = 3000
	cids := make([]cid.Cid, n)
	for i := range cids {
		cids[i] = blocks.NewBlock(fmt.Appendf(nil, "leaf %d", i)).Cid()
	}
	owned := map[peer.ID]int{}
	before := make([]peer.ID, n)
	for i, c := range cids {
		before[i] = owner(ids, c.Hash())
		owned[before[i]]++
	}
	for _, id := range ids {
		if got := owned[id]; got < n/3*3/4 || got > n/3*5/4 {
			t.Errorf("%s owns %d of %d blocks, want about a third", id, got, n)
		}
	}
	moved := 0
	for i, c := range cids {
		after := owner(ids[:2], c.Hash())
		if before[i] != ids[2] && after != before[i] {
			t.Fatalf("block %d moved from %s to %s though its owner stayed", i, before[i], after)
		}
		if before[i] == ids[2] {
			moved++
		}
	}
	if moved != owned[ids[2]] {
		t.Errorf("%d blocks moved, want the %d edge-c owned", moved, owned[ids[2]])
	}
}
