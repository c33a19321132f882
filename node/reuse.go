package node

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
	bsmsg "github.com/ipfs/boxo/bitswap/message"
	bsnetwork "github.com/ipfs/boxo/bitswap/network"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

const (
	// keptStreams bounds the peers whose answer streams are kept open;
	// the least recently served peer's is closed first.
	keptStreams = 1024
	// keptStreamWait is how long a message waits for its peer's kept
	// stream to be free before it takes a stream of its own. A write
	// goes at the connection's pace (upload caps are applied before), so
	// the wait is short unless the peer reads slowly.
	keptStreamWait = 50 * time.Millisecond
)

// errStreamClosed says a kept stream was closed while a message waited
// for it.
var errStreamClosed = errors.New("kept stream closed")

// reusedNetwork sends the bitswap server's messages to each peer over one
// stream kept open, where bitswap opens a new stream per message. A new
// yamux stream may carry only 256 KiB until the receiver's first window
// update comes back, so on a fresh stream a 1 MiB leaf took a round trip
// more than on one already open: a cold seek's leaf arrived after two
// round trips instead of one. A message sent while the peer's stream is
// busy takes a stream of its own, so a slow peer never holds up the
// server's workers.
type reusedNetwork struct {
	bsnetwork.BitSwapNetwork

	mu      sync.Mutex // guards streams
	streams *simplelru.LRU[peer.ID, *keptStream]
}

// keptStream is the stream kept open to one peer; its token is taken while
// a message is written.
type keptStream struct {
	token  chan struct{} // holds one token when the stream is free
	ms     bsnetwork.MessageSender
	closed bool // evicted: messages take streams of their own
}

func newKeptStream() *keptStream {
	k := &keptStream{token: make(chan struct{}, 1)}
	k.token <- struct{}{}
	return k
}

// take waits up to wait for the stream to be free, and reports whether it
// got it; release must follow a take that did.
func (k *keptStream) take(wait time.Duration) bool {
	select {
	case <-k.token:
		return true
	default:
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-k.token:
		return true
	case <-t.C:
		return false
	}
}

func (k *keptStream) release() { k.token <- struct{}{} }

func reuseStreams(net bsnetwork.BitSwapNetwork) *reusedNetwork {
	n := &reusedNetwork{BitSwapNetwork: net}
	n.streams, _ = simplelru.NewLRU(keptStreams, func(_ peer.ID, k *keptStream) { go k.close() }) // size > 0
	return n
}

// SendMessage writes msg on p's kept stream, opening it if needed, or on a
// stream of its own when the kept one is busy or fails.
func (n *reusedNetwork) SendMessage(ctx context.Context, p peer.ID, msg bsmsg.BitSwapMessage) error {
	n.mu.Lock()
	k, ok := n.streams.Get(p)
	if !ok {
		k = newKeptStream()
		n.streams.Add(p, k)
	}
	n.mu.Unlock()
	if !k.take(keptStreamWait) {
		return n.BitSwapNetwork.SendMessage(ctx, p, msg)
	}
	err := k.send(ctx, n.BitSwapNetwork, p, msg)
	k.release()
	if err != nil {
		return n.BitSwapNetwork.SendMessage(ctx, p, msg)
	}
	return nil
}

// send writes msg on the kept stream, opening it first if needed; a
// failed stream is reset and forgotten. The caller holds the token.
func (k *keptStream) send(ctx context.Context, net bsnetwork.BitSwapNetwork, p peer.ID, msg bsmsg.BitSwapMessage) error {
	if k.closed {
		return errStreamClosed
	}
	if k.ms == nil {
		ms, err := net.NewMessageSender(ctx, p, &bsnetwork.MessageSenderOpts{
			MaxRetries: 1, SendTimeout: time.Minute, SendErrorBackoff: time.Millisecond,
		})
		if err != nil {
			return err
		}
		k.ms = ms
	}
	if err := k.ms.SendMsg(ctx, msg); err != nil {
		_ = k.ms.Reset()
		k.ms = nil
		return err
	}
	return nil
}

// close resets the kept stream once no message is being written on it.
func (k *keptStream) close() {
	<-k.token
	defer k.release()
	k.closed = true
	if k.ms != nil {
		_ = k.ms.Reset()
		k.ms = nil
	}
}

// disconnected is a libp2p network notification: a peer whose last
// connection closed loses its kept stream.
func (n *reusedNetwork) disconnected(net network.Network, conn network.Conn) {
	p := conn.RemotePeer()
	if net.Connectedness(p) == network.Connected {
		return
	}
	n.mu.Lock()
	n.streams.Remove(p) // the eviction callback closes it
	n.mu.Unlock()
}
