package guard

import (
	"fmt"
	"testing"
	"time"

	bsmsg "github.com/ipfs/boxo/bitswap/message"
	pb "github.com/ipfs/boxo/bitswap/message/pb"
	blocks "github.com/ipfs/go-block-format"
	"github.com/libp2p/go-libp2p/core/peer"
	"go.uber.org/zap"
)

// TestMuteCheck: of three peers sent want-blocks, the one that delivers
// some of them (busy, slow to get to the rest) is kept, while the one that
// answers nothing and the one that sends only blocks nobody asked for are
// dropped and marked muted once the wants are older than muteAfter, but not
// refused.
func TestMuteCheck(t *testing.T) {
	g := New(zap.NewNop(), nil)
	var dropped []peer.ID
	g.drop = func(p peer.ID) { dropped = append(dropped, p) }
	busy, silent, junk := peer.ID("busy"), peer.ID("silent"), peer.ID("junk")
	a, b := blocks.NewBlock([]byte("a")), blocks.NewBlock([]byte("b"))
	for _, p := range []peer.ID{busy, silent, junk} {
		msg := bsmsg.New(false)
		msg.AddEntry(a.Cid(), 1, pb.Message_Wantlist_Block, true)
		msg.AddEntry(b.Cid(), 1, pb.Message_Wantlist_Block, true)
		g.wantsSent(p, msg)
	}
	start := time.Now()
	g.checkMute(start.Add(muteAfter / 2))
	if len(dropped) != 0 {
		t.Fatalf("dropped %v before muteAfter", dropped)
	}
	// The busy peer sends a block whose want to it was cancelled (another
	// peer was first): still progress, while b stays queued.
	late := blocks.NewBlock([]byte("wanted elsewhere"))
	g.Want(late.Cid())
	delivered := bsmsg.New(false)
	delivered.AddBlock(late)
	g.MessageReceived(busy, delivered)
	unasked := bsmsg.New(false)
	unasked.AddBlock(blocks.NewBlock([]byte("junk")))
	g.MessageReceived(junk, unasked)

	g.checkMute(start.Add(2 * muteAfter))
	want := map[peer.ID]bool{silent: true, junk: true}
	if len(dropped) != 2 || !want[dropped[0]] || !want[dropped[1]] {
		t.Fatalf("dropped %v, want the silent and the junk-only peer", dropped)
	}
	if !g.IsMuted(silent) || g.IsMuted(busy) {
		t.Errorf("muted: silent %v, busy %v", g.IsMuted(silent), g.IsMuted(busy))
	}
	if g.IsBanned(silent) {
		t.Error("a mute peer is refused; it should only be asked last")
	}
}

// TestJunkStrikes: a peer sending blocks nobody asked for is dropped at
// the third and refused; blocks that were asked for never count.
func TestJunkStrikes(t *testing.T) {
	g := New(zap.NewNop(), nil)
	var dropped []peer.ID
	done := make(chan struct{}, 1)
	g.drop = func(p peer.ID) { dropped = append(dropped, p); done <- struct{}{} }
	liar, honest := peer.ID("liar"), peer.ID("honest")
	for i := range 5 {
		wanted := blocks.NewBlock([]byte{byte(i)})
		g.Want(wanted.Cid())
		ok := bsmsg.New(false)
		ok.AddBlock(wanted)
		g.MessageReceived(honest, ok)
	}
	for i := range 3 {
		junk := bsmsg.New(false)
		junk.AddBlock(blocks.NewBlock([]byte{byte(100 + i)}))
		g.MessageReceived(liar, junk)
	}
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the liar was not dropped after 3 junk blocks")
	}
	if len(dropped) != 1 || dropped[0] != liar {
		t.Fatalf("dropped %v, want only the liar", dropped)
	}
	if !g.IsBanned(liar) || g.IsBanned(honest) {
		t.Errorf("banned: liar %v, honest %v", g.IsBanned(liar), g.IsBanned(honest))
	}
	if g.InterceptPeerDial(liar) {
		t.Error("the liar may be dialled again")
	}
}

// TestJunkGuardForgetsGonePeers: what the guard holds of peers that never
// come back (strikes, bans, mutes, answer times) is dropped once it has
// run out, so a churn of fake peers cannot grow it.
func TestJunkGuardForgetsGonePeers(t *testing.T) {
	g := New(zap.NewNop(), nil)
	g.drop = func(peer.ID) {}
	now := time.Now()
	for i := range 1000 {
		p := peer.ID(fmt.Sprintf("fake-%d", i))
		junk := bsmsg.New(false)
		junk.AddBlock(blocks.NewBlock([]byte(fmt.Sprintf("junk-%d", i))))
		if i%2 == 0 { // a ban for half of them
			junk.AddBlock(blocks.NewBlock([]byte(fmt.Sprintf("junk-%d-b", i))))
			junk.AddBlock(blocks.NewBlock([]byte(fmt.Sprintf("junk-%d-c", i))))
		}
		g.MessageReceived(p, junk)
		want := bsmsg.New(false)
		want.AddEntry(blocks.NewBlock([]byte(fmt.Sprintf("wanted-%d", i))).Cid(), 1, pb.Message_Wantlist_Block, true)
		g.wantsSent(p, want) // never answered: muted at the next check
	}
	g.checkMute(now.Add(muteAfter + time.Second))
	g.mu.Lock()
	held := len(g.strikes) + len(g.banned) + len(g.muted) + len(g.waiting) + len(g.answered)
	g.mu.Unlock()
	if held == 0 {
		t.Fatal("the guard holds nothing of the peers it just struck, banned and muted; nothing was tested")
	}
	g.checkMute(now.Add(banFor + time.Minute))
	g.mu.Lock()
	defer g.mu.Unlock()
	if n := len(g.strikes) + len(g.banned) + len(g.muted) + len(g.waiting) + len(g.answered); n != 0 {
		t.Errorf("after their marks ran out the guard still holds %d entries of 1 000 peers gone (strikes %d, banned %d, muted %d, waiting %d, answered %d)",
			n, len(g.strikes), len(g.banned), len(g.muted), len(g.waiting), len(g.answered))
	}
}
