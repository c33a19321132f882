package outbox

import (
	"context"
	"errors"
	"testing"
	"time"

	bsmsg "github.com/ipfs/boxo/bitswap/message"
	bsnetwork "github.com/ipfs/boxo/bitswap/network"
	blocks "github.com/ipfs/go-block-format"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/pacman-cdn/pacman/node/internal/uploadcap"
)

// net opens senders that write at once, except to the peer "stuck", whose
// writes never finish before their deadline.
type net struct{ bsnetwork.BitSwapNetwork }

func (net) NewMessageSender(_ context.Context, p peer.ID, _ *bsnetwork.MessageSenderOpts) (bsnetwork.MessageSender, error) {
	return sender{p}, nil
}

type sender struct{ p peer.ID }

func (s sender) SendMsg(ctx context.Context, _ bsmsg.BitSwapMessage) error {
	if s.p == "stuck" {
		<-ctx.Done()
		return ctx.Err()
	}
	return nil
}
func (sender) Close() error       { return nil }
func (sender) Reset() error       { return nil }
func (sender) SupportsHave() bool { return true }

func message(i int) bsmsg.BitSwapMessage {
	data := make([]byte, 1<<20)
	data[0] = byte(i)
	msg := bsmsg.New(false)
	msg.AddBlock(blocks.NewBlock(data))
	return msg
}

// TestCappedReaderLosesNothing: a peer that reads, behind an upload cap
// far slower than the messages come, has every message written: the
// time a message waits for the cap is this node's, not the peer's. The
// old outbox dropped what did not fit its backlog within two seconds of
// a write finishing (and at once for a peer none had finished for), and
// a dropped block is one the peer waits for until it gives up.
func TestCappedReaderLosesNothing(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	caps, err := uploadcap.New(4<<20, 0, 0, func(peer.ID) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	o := New(ctx, net{}, caps, func(peer.ID) bool { return true })
	defer o.Close()
	defer cancel()

	const messages = 16 // 16 MiB at 4 MiB/s: twice the backlog
	for i := range messages {
		if err := o.SendMessage(ctx, "reader", message(i)); err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		if bytes, n := o.Sent(); bytes == messages<<20 && n == messages {
			break
		}
		if time.Now().After(deadline) {
			bytes, n := o.Sent()
			t.Fatalf("sent %d bytes in %d blocks, want %d MiB", bytes, n, messages)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if o.Dropped() != 0 {
		t.Errorf("dropped %d messages for a peer that reads", o.Dropped())
	}
}

// TestPeerThatDoesNotReadHoldsNoCaller: messages for a peer that reads
// nothing are queued up to its backlog and then dropped, each call
// returning at once, while another peer's messages are written and
// counted as they cross.
func TestPeerThatDoesNotReadHoldsNoCaller(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	o := New(ctx, net{}, nil, func(peer.ID) bool { return true })
	defer o.Close()
	defer cancel()

	start := time.Now()
	var dropped int
	for i := range 16 {
		err := o.SendMessage(ctx, "stuck", message(i))
		if errors.Is(err, errBacklogged) {
			dropped++
		} else if err != nil {
			t.Fatal(err)
		}
	}
	// Telling a peer that reads nothing from one that reads slowly takes
	// stuckAfter, once.
	if d := time.Since(start); d > stuckAfter+time.Second {
		t.Errorf("16 messages for a peer that reads nothing took %v to hand over", d)
	}
	if dropped == 0 || o.Dropped() != int64(dropped) {
		t.Errorf("dropped %d, counted %d; want the messages past the backlog dropped", dropped, o.Dropped())
	}
	if dropped > 16-peerBacklog/(1<<20) {
		t.Errorf("dropped %d of 16: the backlog of %d MiB was not used", dropped, peerBacklog>>20)
	}

	for i := range 3 {
		if err := o.SendMessage(ctx, "reader", message(i)); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		bytes, n := o.Sent()
		if bytes == 3<<20 && n == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("sent %d bytes in %d blocks, want 3 MiB in 3: the reader waited on the stuck peer", bytes, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
