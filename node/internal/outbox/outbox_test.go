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
	if d := time.Since(start); d > time.Second {
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
