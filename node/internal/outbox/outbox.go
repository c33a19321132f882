// Package outbox writes the bitswap server's messages to peers from
// goroutines of its own, each peer within a backlog and every write under
// a deadline and the upload caps, so a peer that does not read holds no
// server worker.
package outbox

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	bsmsg "github.com/ipfs/boxo/bitswap/message"
	bsnetwork "github.com/ipfs/boxo/bitswap/network"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/pacman-cdn/pacman/node/internal/uploadcap"
)

const (
	// writersPerPeer is how many messages to one peer are written at
	// once, each on a stream kept open between messages.
	writersPerPeer = 2
	// peerBacklog bounds the bytes queued or being written to one peer;
	// totalBacklog bounds them over all peers.
	peerBacklog  = 8 << 20
	totalBacklog = 128 << 20
	// stuckAfter: a peer one of whose writes has been on the wire this
	// long without finishing is not reading. A message for a peer whose
	// backlog is full waits for room while the peer reads, however long
	// the upload caps make that; for a peer that does not, it is dropped
	// at once.
	stuckAfter = time.Second
	// writeBase and minWriteRate make a write's deadline: writeBase plus
	// the message's bytes at minWriteRate.
	writeBase    = 5 * time.Second
	minWriteRate = 256 << 10
)

// errBacklogged says a message was dropped because its peer is not reading
// what it was sent.
var errBacklogged = errors.New("peer is not reading its messages: dropped")

// Outbox sends the bitswap server's messages. Bitswap's server writes each
// message synchronously from one of its 16 workers, so a peer that asks for
// blocks and never reads held a worker per message until the write timed
// out, after a minute or more: three such peers stalled a seeder for
// everyone. The outbox queues each peer's messages and writes them from at
// most writersPerPeer goroutines of its own, each write under a deadline,
// on streams kept open between messages (a fresh yamux stream carries little
// before its first window update). A server worker only ever queues: a peer
// that reads is kept as busy as it reads, and a peer that does not has its
// messages dropped, within its backlog and the node's.
type Outbox struct {
	bsnetwork.BitSwapNetwork
	uploads *uploadcap.Caps    // the upload caps
	live    func(peer.ID) bool // whether a peer is connected
	ctx     context.Context    // ends when the node closes
	wg      sync.WaitGroup     // the writers
	drops   atomic.Int64       // messages dropped
	// sentBytes and sentBlocks are the block bytes and blocks written to
	// peers: seeding, counted as it crosses, not as it is queued.
	sentBytes, sentBlocks atomic.Uint64
	mu                    sync.Mutex           // guards everything below
	boxes                 map[peer.ID]*peerBox //
	queued                int                  // bytes queued or being written, all peers
	closed                bool                 // no more writers start
}

// peerBox is one peer's queue.
type peerBox struct {
	queue   []bsmsg.BitSwapMessage
	bytes   int // queued or being written
	writers int
	idle    []bsnetwork.MessageSender // kept streams not being written
	// onWire is how many writes are on the wire (past the upload caps),
	// and moved when one last went on it or came off.
	onWire int
	moved  time.Time
	room   chan struct{} // closed, and replaced, when bytes fall
}

// stuck reports whether b's peer has stopped reading: a write has been on
// the wire for stuckAfter with nothing coming off it. Time spent waiting
// for the upload caps is this node's, not the peer's. The caller holds
// o.mu.
func (b *peerBox) stuck() bool {
	return b.onWire > 0 && time.Since(b.moved) > stuckAfter
}

// New returns an outbox over net, writing under the caps up (nil: none)
// to peers while live says they are connected, until ctx ends.
func New(ctx context.Context, net bsnetwork.BitSwapNetwork, up *uploadcap.Caps, live func(peer.ID) bool) *Outbox {
	return &Outbox{BitSwapNetwork: net, uploads: up, live: live, ctx: ctx, boxes: map[peer.ID]*peerBox{}}
}

// SendMessage queues msg for p and returns; it is written later, or
// dropped with errBacklogged when p does not read.
func (o *Outbox) SendMessage(ctx context.Context, p peer.ID, msg bsmsg.BitSwapMessage) error {
	size := msg.Size()
	var recheck *time.Timer
	defer func() {
		if recheck != nil {
			recheck.Stop()
		}
	}()
	o.mu.Lock()
	for {
		if o.closed {
			o.mu.Unlock()
			return fmt.Errorf("sending to %s: node closed", p)
		}
		b := o.boxes[p]
		if b == nil {
			b = &peerBox{room: make(chan struct{})}
			o.boxes[p] = b
		}
		// An empty backlog takes any message, so no message is too large.
		if b.bytes == 0 || b.bytes+size <= peerBacklog && o.queued+size <= totalBacklog {
			b.queue = append(b.queue, msg)
			b.bytes += size
			o.queued += size
			if b.writers < writersPerPeer {
				b.writers++
				o.wg.Go(func() { o.write(p, b) })
			}
			o.mu.Unlock()
			return nil
		}
		if b.stuck() {
			break
		}
		// The peer reads: wait for room, looking again every stuckAfter
		// in case it stops.
		room := b.room
		o.mu.Unlock()
		if recheck == nil {
			recheck = time.NewTimer(stuckAfter)
		} else {
			recheck.Reset(stuckAfter)
		}
		select {
		case <-room:
		case <-recheck.C:
		case <-ctx.Done():
			return fmt.Errorf("queueing a message for %s: %w", p, ctx.Err())
		}
		o.mu.Lock()
	}
	o.mu.Unlock()
	o.drops.Add(1)
	return errBacklogged
}

// write sends b's messages until its queue is empty.
func (o *Outbox) write(p peer.ID, b *peerBox) {
	o.mu.Lock()
	for len(b.queue) > 0 && o.ctx.Err() == nil {
		msg := b.queue[0]
		b.queue[0] = nil
		b.queue = b.queue[1:]
		var ms bsnetwork.MessageSender
		if n := len(b.idle); n > 0 {
			ms, b.idle = b.idle[n-1], b.idle[:n-1]
		}
		o.mu.Unlock()

		size := msg.Size()
		ms = o.send(p, b, ms, msg)

		o.mu.Lock()
		if ms != nil {
			b.idle = append(b.idle, ms)
		}
		b.bytes -= size
		o.queued -= size
		close(b.room)
		b.room = make(chan struct{})
	}
	b.writers--
	o.mu.Unlock()
	if o.ctx.Err() == nil && o.live(p) {
		return
	}
	o.mu.Lock()
	if b.writers == 0 && len(b.queue) == 0 && o.boxes[p] == b {
		o.forget(p, b)
	}
	o.mu.Unlock()
}

// send writes msg to p on ms, or on a new kept stream when ms is nil, and
// returns the stream to keep, or nil when it failed. A message lost here
// is like one lost on the wire: the peer asks again, or asks another.
func (o *Outbox) send(p peer.ID, b *peerBox, ms bsnetwork.MessageSender, msg bsmsg.BitSwapMessage) bsnetwork.MessageSender {
	size := msg.Size()
	if err := o.uploads.Wait(o.ctx, p, size); err != nil {
		return ms // the node is closing
	}
	o.mu.Lock()
	b.onWire++
	b.moved = time.Now()
	o.mu.Unlock()
	defer func() {
		o.mu.Lock()
		b.onWire--
		b.moved = time.Now()
		o.mu.Unlock()
	}()
	ctx, cancel := context.WithTimeout(o.ctx, writeBase+time.Duration(size)*time.Second/minWriteRate)
	defer cancel()
	for attempt := 0; attempt < 2; attempt++ {
		if ms == nil {
			var err error
			ms, err = o.BitSwapNetwork.NewMessageSender(ctx, p, &bsnetwork.MessageSenderOpts{
				MaxRetries: 1, SendTimeout: time.Minute, SendErrorBackoff: time.Millisecond,
			})
			if err != nil {
				return nil
			}
		}
		err := ms.SendMsg(ctx, msg)
		if err == nil {
			for _, b := range msg.Blocks() {
				o.sentBytes.Add(uint64(len(b.RawData())))
				o.sentBlocks.Add(1)
			}
			return ms
		}
		_ = ms.Reset()
		ms = nil
		// A stream the peer reset (it restarted, say) is worth one more
		// try; a write that ran out of time is not.
		if ctx.Err() != nil {
			return nil
		}
	}
	return nil
}

// forget drops b's kept streams and the box itself. The caller holds o.mu,
// and b has no writer.
func (o *Outbox) forget(p peer.ID, b *peerBox) {
	for _, ms := range b.idle {
		_ = ms.Reset()
	}
	b.idle = nil
	delete(o.boxes, p)
}

// Disconnected is a libp2p network notification: a peer whose last
// connection closed loses its kept streams once no message is being
// written to it.
func (o *Outbox) Disconnected(net network.Network, conn network.Conn) {
	p := conn.RemotePeer()
	if net.Connectedness(p) == network.Connected {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if b := o.boxes[p]; b != nil && b.writers == 0 {
		o.forget(p, b)
	}
}

// Close waits for the writers, once the node's context has ended, and
// resets every kept stream.
func (o *Outbox) Close() {
	o.mu.Lock()
	o.closed = true
	o.mu.Unlock()
	o.wg.Wait()
	o.mu.Lock()
	defer o.mu.Unlock()
	for p, b := range o.boxes {
		o.forget(p, b)
	}
}

// Dropped is how many messages were dropped for peers that did not read.
func (o *Outbox) Dropped() int64 { return o.drops.Load() }

// Sent is the block bytes and blocks written to peers: seeding, counted as
// it crosses, not as it is queued.
func (o *Outbox) Sent() (bytes, blocks uint64) { return o.sentBytes.Load(), o.sentBlocks.Load() }
