package scheduler

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	bsmsg "github.com/ipfs/boxo/bitswap/message"
	pb "github.com/ipfs/boxo/bitswap/message/pb"
	bsnetwork "github.com/ipfs/boxo/bitswap/network"
	blocks "github.com/ipfs/go-block-format"
	"github.com/libp2p/go-libp2p/core/peer"
	"go.uber.org/zap"
)

// recordingSender stands for a peer's message stream: it records every
// entry sent.
type recordingSender struct {
	p    peer.ID
	sent chan<- sentEntry
}

type sentEntry struct {
	to    peer.ID
	entry bsmsg.Entry
}

func (r recordingSender) SendMsg(_ context.Context, msg bsmsg.BitSwapMessage) error {
	for _, e := range msg.Wantlist() {
		r.sent <- sentEntry{r.p, e}
	}
	return nil
}

func (recordingSender) Reset() error       { return nil }
func (recordingSender) SupportsHave() bool { return true }

// mutes is a Guard that bans nobody and mutes the peers it is told to.
type mutes struct {
	mu    sync.Mutex
	muted map[peer.ID]bool
}

func (g *mutes) mute(p peer.ID) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.muted == nil {
		g.muted = map[peer.ID]bool{}
	}
	g.muted[p] = true
}

func (*mutes) IsBanned(peer.ID) bool { return false }

func (g *mutes) IsMuted(p peer.ID) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.muted[p]
}

// schedulerBed is a scheduler over two recorded holders: a fast one (a
// block every 10 ms, 20 ms away: room for 4 want-blocks) and a slow one
// (100 ms per block, 120 ms away: room for 3).
type schedulerBed struct {
	ctx        context.Context // ends with the test
	s          *Scheduler
	h          *Holders
	guard      *mutes
	fast, slow peer.ID
	sent       chan sentEntry
}

func newSchedulerBed(t *testing.T) *schedulerBed {
	ctx, cancel := context.WithCancel(context.Background())
	b := &schedulerBed{ctx: ctx, h: &Holders{}, guard: &mutes{}, fast: "fast", slow: "slow", sent: make(chan sentEntry, 1024)}
	b.s = newSchedulerOver(ctx, b.guard, zap.NewNop(),
		func(_ context.Context, p peer.ID) (bsnetwork.MessageSender, error) {
			return recordingSender{p, b.sent}, nil
		},
		func() []peer.ID { return []peer.ID{b.fast, b.slow} },
		func(peer.ID) bool { return true })
	t.Cleanup(func() { cancel(); b.s.Wait() })
	b.h.has(b.fast, true)
	b.h.has(b.slow, true)
	b.h.lastProbe = time.Now() // both known: nothing to probe
	b.pace()
	fast, slow := b.s.lines[b.fast], b.s.lines[b.slow]
	if fast.room() != 4 || slow.room() != 3 {
		t.Fatalf("room: fast %d, slow %d; want 4 and 3", fast.room(), slow.room())
	}
	return b
}

// pace sets what the scheduler knows of the holders' pace back to the
// bed's, whatever the test's own timing taught it, and dispatches again.
func (b *schedulerBed) pace() {
	b.s.mu.Lock()
	defer b.s.mu.Unlock()
	fast, slow := b.s.line(b.fast), b.s.line(b.slow)
	fast.perBlock, fast.roundTrip = 10*time.Millisecond, 20*time.Millisecond
	slow.perBlock, slow.roundTrip = 100*time.Millisecond, 120*time.Millisecond
	b.s.dispatch()
}

// fetch starts fetching blk in the background, once the previous fetches
// are asked or queued, and returns where the result will arrive.
func (b *schedulerBed) fetch(t *testing.T, blk blocks.Block, fallback func(context.Context) (blocks.Block, error)) (*want, <-chan error) {
	t.Helper()
	w := b.s.join(blk.Cid(), b.h)
	done := make(chan error, 1)
	go func() {
		got, err := b.s.fetch(b.ctx, w, b.h, fallback)
		if err == nil && string(got.RawData()) != string(blk.RawData()) {
			err = fmt.Errorf("got %q, want %q", got.RawData(), blk.RawData())
		}
		b.s.leave(w, b.h)
		done <- err
	}()
	b.waitFor(t, "the want to be asked or queued", func() bool { return len(w.asked) > 0 || w.queued || w.stuck })
	return w, done
}

// waitFor polls cond, under the scheduler's lock, for up to 5 s.
func (b *schedulerBed) waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		b.s.mu.Lock()
		ok := cond()
		b.s.mu.Unlock()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// askedOf reports whether w is asked of p, under the scheduler's lock.
func (b *schedulerBed) askedOf(w *want, p peer.ID) bool {
	b.s.mu.Lock()
	defer b.s.mu.Unlock()
	_, ok := w.asked[p]
	return ok
}

// receive hands the scheduler a message from a holder, as bitswap's tracer
// does, keeping the holders' pace the bed's.
func (b *schedulerBed) receive(from peer.ID, blks []blocks.Block, dontHaves ...blocks.Block) {
	defer b.pace()
	msg := bsmsg.New(false)
	for _, blk := range blks {
		msg.AddBlock(blk)
	}
	for _, blk := range dontHaves {
		msg.AddDontHave(blk.Cid())
	}
	b.s.MessageReceived(from, msg)
}

func testBlocks(n int) []blocks.Block {
	bs := make([]blocks.Block, n)
	for i := range bs {
		bs[i] = blocks.NewBlock(fmt.Appendf(nil, "leaf %d", i))
	}
	return bs
}

func noFallback(context.Context) (blocks.Block, error) {
	return nil, fmt.Errorf("asked bitswap, though holders were left")
}

// TestSchedulerFillsRoomSoonestFirst: ten wants over a fast and a slow
// holder go to the one expected to deliver soonest while it has room (4
// to the fast, 3 to the slow), the rest wait; a delivered block frees room
// for the most urgent waiting want; a DONT_HAVE moves the want to the
// other holder.
func TestSchedulerFillsRoomSoonestFirst(t *testing.T) {
	b := newSchedulerBed(t)
	blks := testBlocks(10)
	var ws []*want
	var dones []<-chan error
	for _, blk := range blks {
		w, done := b.fetch(t, blk, noFallback)
		ws, dones = append(ws, w), append(dones, done)
	}
	b.s.mu.Lock()
	fast, slow, queued := b.s.lines[b.fast].outstanding, b.s.lines[b.slow].outstanding, len(b.s.queue)
	b.s.mu.Unlock()
	if fast != 4 || slow != 3 || queued != 3 {
		t.Fatalf("outstanding fast %d, slow %d, queued %d; want 4, 3, 3", fast, slow, queued)
	}
	if !b.askedOf(ws[0], b.fast) {
		t.Error("the most urgent want was not asked of the fast holder")
	}
	for _, w := range ws[7:] {
		if b.askedOf(w, b.fast) || b.askedOf(w, b.slow) {
			t.Errorf("want %s asked while both holders are full", w.c)
		}
	}

	// The fast holder delivers the first block: its room goes to the most
	// urgent waiting want, the eighth.
	b.receive(b.fast, blks[:1])
	if err := <-dones[0]; err != nil {
		t.Fatal(err)
	}
	b.waitFor(t, "the eighth want to be asked", func() bool { return len(ws[7].asked) > 0 })
	if !b.askedOf(ws[7], b.fast) {
		t.Error("the eighth want was not given the room the fast holder freed")
	}

	// The slow holder refuses one of its wants: it goes to the fast
	// holder once that has room, and the slow one's room to the ninth.
	var refused int
	for i, w := range ws {
		if b.askedOf(w, b.slow) {
			refused = i
			break
		}
	}
	b.receive(b.slow, nil, blks[refused])
	b.waitFor(t, "the ninth want to be asked", func() bool { return len(ws[8].asked) > 0 })
	if !b.askedOf(ws[8], b.slow) {
		t.Error("the ninth want was not given the room the slow holder freed")
	}
	var fastOnes []blocks.Block
	for i, w := range ws {
		if i != refused && b.askedOf(w, b.fast) {
			fastOnes = append(fastOnes, blks[i])
		}
	}
	b.receive(b.fast, fastOnes)
	b.waitFor(t, "the refused want to be asked of the fast holder", func() bool { _, ok := ws[refused].asked[b.fast]; return ok })
	b.receive(b.fast, blks[refused:refused+1])
	if err := <-dones[refused]; err != nil {
		t.Fatal(err)
	}

	// Cancels reach the holders for blocks delivered by the other, and
	// every want-block sent went to one holder only.
	seen := map[string]peer.ID{}
	for {
		select {
		case e := <-b.sent:
			if e.entry.Cancel || e.entry.WantType != pb.Message_Wantlist_Block {
				continue
			}
			k := string(e.entry.Cid.Hash())
			if prev, ok := seen[k]; ok && prev != e.to && k != string(blks[refused].Cid().Hash()) {
				t.Errorf("want-block %s sent to %s and %s", e.entry.Cid, prev, e.to)
			}
			seen[k] = e.to
			continue
		default:
		}
		break
	}
}

// TestSchedulerFallsBackWhenAllRefuse: a block every holder refuses is
// asked of bitswap, which looks for other providers.
func TestSchedulerFallsBackWhenAllRefuse(t *testing.T) {
	b := newSchedulerBed(t)
	blk := testBlocks(1)[0]
	viaBitswap := make(chan struct{})
	_, done := b.fetch(t, blk, func(context.Context) (blocks.Block, error) {
		close(viaBitswap)
		return blk, nil
	})
	b.receive(b.fast, nil, blk)
	b.receive(b.slow, nil, blk)
	select {
	case <-viaBitswap:
	case <-time.After(5 * time.Second):
		t.Fatal("bitswap was never asked")
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestSchedulerAsksAnotherWhenLate: a holder that keeps a want-block past
// its patience does not stall the viewer: another holder is asked too,
// and the first answer wins.
func TestSchedulerAsksAnotherWhenLate(t *testing.T) {
	b := newSchedulerBed(t)
	blk := testBlocks(1)[0]
	w, done := b.fetch(t, blk, noFallback)
	if !b.askedOf(w, b.fast) {
		t.Fatal("not asked of the fast holder first")
	}
	b.waitFor(t, "the slow holder to be asked as well", func() bool { _, ok := w.asked[b.slow]; return ok })
	b.receive(b.slow, []blocks.Block{blk})
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestSchedulerAsksMutedLast: a holder lately mute is not asked while
// another has room, even though it is expected sooner; once it is the only
// holder left, it is asked rather than given up on.
func TestSchedulerAsksMutedLast(t *testing.T) {
	b := newSchedulerBed(t)
	b.guard.mute(b.fast)
	blks := testBlocks(2)
	w, done := b.fetch(t, blks[0], noFallback)
	if b.askedOf(w, b.fast) || !b.askedOf(w, b.slow) {
		t.Fatalf("asked the muted fast holder %v, the slow one %v; want only the slow one", b.askedOf(w, b.fast), b.askedOf(w, b.slow))
	}
	b.receive(b.slow, nil, blks[0]) // the slow holder lacks it
	b.waitFor(t, "the muted holder to be asked", func() bool { _, ok := w.asked[b.fast]; return ok })
	b.receive(b.fast, []blocks.Block{blks[0]})
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestSchedulerSkipsLateHolder: once an ask of the fast holder misses its
// time, the next want goes to the slow one although the fast one has room
// and is expected sooner; when the fast one delivers, it is asked again.
func TestSchedulerSkipsLateHolder(t *testing.T) {
	b := newSchedulerBed(t)
	blks := testBlocks(3)
	w0, done0 := b.fetch(t, blks[0], noFallback)
	if !b.askedOf(w0, b.fast) {
		t.Fatal("the first want did not go to the fast holder")
	}
	b.s.mu.Lock()
	w0.asked[b.fast] = time.Now().Add(-time.Minute) // its time is long past
	b.s.mu.Unlock()
	b.s.missed(w0)

	w1, done1 := b.fetch(t, blks[1], noFallback)
	if b.askedOf(w1, b.fast) || !b.askedOf(w1, b.slow) {
		t.Fatalf("after a missed ask: fast asked %v, slow asked %v; want the slow one only", b.askedOf(w1, b.fast), b.askedOf(w1, b.slow))
	}
	b.receive(b.fast, []blocks.Block{blks[0]})
	b.receive(b.slow, []blocks.Block{blks[1]})
	w2, done2 := b.fetch(t, blks[2], noFallback)
	if !b.askedOf(w2, b.fast) {
		t.Fatal("the fast holder delivered and was not asked again")
	}
	b.receive(b.fast, []blocks.Block{blks[2]})
	for _, done := range []<-chan error{done0, done1, done2} {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}

// TestSchedulerCancelsWhatWasRefused: a holder that answers a want-block
// DONT_HAVE is sent a cancel for it at once. Bitswap's server keeps such
// a want in its ledger and sends the block as soon as it has it, by then
// a duplicate of what another holder sent.
func TestSchedulerCancelsWhatWasRefused(t *testing.T) {
	b := newSchedulerBed(t)
	blk := testBlocks(1)[0]
	w, done := b.fetch(t, blk, noFallback)
	if !b.askedOf(w, b.fast) {
		t.Fatal("not asked of the fast holder first")
	}
	b.receive(b.fast, nil, blk)
	b.waitFor(t, "the slow holder to be asked", func() bool { _, ok := w.asked[b.slow]; return ok })
	deadline := time.After(5 * time.Second)
	for cancelled := false; !cancelled; {
		select {
		case e := <-b.sent:
			cancelled = e.to == b.fast && e.entry.Cancel && e.entry.Cid == blk.Cid()
		case <-deadline:
			t.Fatal("the holder that answered DONT_HAVE was never sent a cancel")
		}
	}
	b.receive(b.slow, []blocks.Block{blk})
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
