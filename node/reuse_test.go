package node

import (
	"context"
	"errors"
	"sync"
	"testing"

	bsmsg "github.com/ipfs/boxo/bitswap/message"
	bsnetwork "github.com/ipfs/boxo/bitswap/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

// countingNetwork counts the streams a bitswap network opens: one per
// SendMessage, one per message sender. Its senders fail while failing is
// set, and wait for hold to close while it is set.
type countingNetwork struct {
	bsnetwork.BitSwapNetwork // nil: only the methods below are called

	mu                     sync.Mutex
	fresh, senders, onKept int
	resets                 int
	failing                bool
	hold                   chan struct{}
	entered                chan struct{} // receives when a sender waits for hold
}

func (n *countingNetwork) SendMessage(context.Context, peer.ID, bsmsg.BitSwapMessage) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.fresh++
	return nil
}

func (n *countingNetwork) NewMessageSender(context.Context, peer.ID, *bsnetwork.MessageSenderOpts) (bsnetwork.MessageSender, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.senders++
	return countingSender{n}, nil
}

type countingSender struct{ n *countingNetwork }

func (s countingSender) SendMsg(context.Context, bsmsg.BitSwapMessage) error {
	s.n.mu.Lock()
	hold := s.n.hold
	s.n.mu.Unlock()
	if hold != nil {
		s.n.entered <- struct{}{}
		<-hold
	}
	s.n.mu.Lock()
	defer s.n.mu.Unlock()
	if s.n.failing {
		return errors.New("stream reset by peer")
	}
	s.n.onKept++
	return nil
}

func (s countingSender) Reset() error {
	s.n.mu.Lock()
	defer s.n.mu.Unlock()
	s.n.resets++
	return nil
}

func (countingSender) SupportsHave() bool { return true }

func (n *countingNetwork) counts() (fresh, senders, onKept, resets int) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.fresh, n.senders, n.onKept, n.resets
}

// TestReusedStreams: the server's messages to a peer share one stream; a
// message that finds it busy past keptStreamWait, or sent after it failed,
// takes a fresh stream and is not lost; a failed stream is reset and
// replaced; a closed one is never reopened.
func TestReusedStreams(t *testing.T) {
	inner := &countingNetwork{}
	n := reuseStreams(inner)
	ctx := context.Background()
	p := peer.ID("peer")
	msg := bsmsg.New(false)

	for range 10 {
		if err := n.SendMessage(ctx, p, msg); err != nil {
			t.Fatal(err)
		}
	}
	if fresh, senders, onKept, _ := inner.counts(); fresh != 0 || senders != 1 || onKept != 10 {
		t.Fatalf("10 messages: %d fresh streams, %d kept, %d messages on it; want 0, 1, 10", fresh, senders, onKept)
	}

	// Busy: a message sent while another is being written takes its own.
	hold := make(chan struct{})
	inner.mu.Lock()
	inner.hold, inner.entered = hold, make(chan struct{})
	inner.mu.Unlock()
	done := make(chan error)
	go func() { done <- n.SendMessage(ctx, p, msg) }()
	<-inner.entered // the first message holds the kept stream
	if err := n.SendMessage(ctx, p, msg); err != nil {
		t.Fatal(err)
	}
	inner.mu.Lock()
	inner.hold = nil
	inner.mu.Unlock()
	close(hold)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if fresh, _, onKept, _ := inner.counts(); fresh != 1 || onKept != 11 {
		t.Fatalf("while busy: %d fresh streams, %d messages kept; want 1, 11", fresh, onKept)
	}

	// Failing: the message goes out on a fresh stream, the kept one is
	// reset, and the next message opens a new kept stream.
	inner.mu.Lock()
	inner.failing = true
	inner.mu.Unlock()
	if err := n.SendMessage(ctx, p, msg); err != nil {
		t.Fatal(err)
	}
	inner.mu.Lock()
	inner.failing = false
	inner.mu.Unlock()
	if err := n.SendMessage(ctx, p, msg); err != nil {
		t.Fatal(err)
	}
	if fresh, senders, onKept, resets := inner.counts(); fresh != 2 || senders != 2 || onKept != 12 || resets != 1 {
		t.Fatalf("after a failure: %d fresh, %d kept streams, %d kept messages, %d resets; want 2, 2, 12, 1", fresh, senders, onKept, resets)
	}

	// Closed (evicted while a message waited for it): the message takes
	// a fresh stream, and the closed one is not opened again.
	n.mu.Lock()
	k, _ := n.streams.Peek(p)
	n.mu.Unlock()
	k.close()
	if err := n.SendMessage(ctx, p, msg); err != nil {
		t.Fatal(err)
	}
	if fresh, senders, _, resets := inner.counts(); fresh != 3 || senders != 2 || resets != 2 {
		t.Fatalf("after close: %d fresh, %d kept streams, %d resets; want 3, 2, 2", fresh, senders, resets)
	}
}
