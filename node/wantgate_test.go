package node

import (
	"testing"
	"time"

	bsmsg "github.com/ipfs/boxo/bitswap/message"
	pb "github.com/ipfs/boxo/bitswap/message/pb"
	blocks "github.com/ipfs/go-block-format"
	"github.com/libp2p/go-libp2p/core/peer"
)

// TestWantGate: a peer's wants past its burst are cut, its cancels,
// blocks and presences pass; another peer at the same address keeps its
// own budget, up to the address's.
func TestWantGate(t *testing.T) {
	g := newWantGate(nil, func(peer.ID) string { return "192.0.2.1" })
	now := time.Now()
	if n := g.admit("flooder", 3*wantBurst, now); n != wantBurst {
		t.Errorf("a flooder's %d wants: %d admitted, want the burst, %d", 3*wantBurst, n, wantBurst)
	}
	if n := g.admit("flooder", 10, now); n != 0 {
		t.Errorf("more at once: %d admitted, want 0", n)
	}
	if n := g.admit("honest", 100, now); n != 100 {
		t.Errorf("another peer at the address: %d of 100 admitted", n)
	}
	if n := g.admit("flooder", 10, now.Add(time.Second)); n != 10 {
		t.Errorf("a second later: %d of 10 admitted, want the rate's", n)
	}

	msg := bsmsg.New(true)
	blk := blocks.NewBlock([]byte("a block"))
	for i := range 5 {
		msg.AddEntry(blocks.NewBlock([]byte{byte(i)}).Cid(), 1, pb.Message_Wantlist_Have, true)
	}
	msg.Cancel(blocks.NewBlock([]byte("cancelled")).Cid())
	msg.AddBlock(blk)
	msg.AddHave(blocks.NewBlock([]byte("had")).Cid())
	kept := keepWants(msg, 2)
	var wants, cancels int
	for _, e := range kept.Wantlist() {
		if e.Cancel {
			cancels++
		} else {
			wants++
		}
	}
	if wants != 2 || cancels != 1 || len(kept.Blocks()) != 1 || len(kept.Haves()) != 1 || !kept.Full() {
		t.Errorf("kept %d wants, %d cancels, %d blocks, %d haves, full %v; want 2, 1, 1, 1, true", wants, cancels, len(kept.Blocks()), len(kept.Haves()), kept.Full())
	}
}
