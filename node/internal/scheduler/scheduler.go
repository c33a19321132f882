// Package scheduler sends the node's want-blocks straight to the peers
// known to hold their content, one queue for every session, each want to
// the holder expected to deliver it soonest, and decides by one rule
// (lateAfter) when a holder is late. Bitswap's own wants follow the same
// rule through DontHaveTimeouts.
package scheduler

import (
	"cmp"
	"context"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	bsclient "github.com/ipfs/boxo/bitswap/client"
	bsmsg "github.com/ipfs/boxo/bitswap/message"
	pb "github.com/ipfs/boxo/bitswap/message/pb"
	bsnetwork "github.com/ipfs/boxo/bitswap/network"
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"go.uber.org/zap"
)

const (
	// askFloor and askCeiling bound how long a want-block sent to one
	// peer waits before another holder is asked as well.
	askFloor   = 750 * time.Millisecond
	askCeiling = 10 * time.Second
	// askSlack is how many times its expected wait a want-block may take
	// before another holder is asked as well.
	askSlack = 4
	// firstBlockGuess is the time per block assumed of a peer that has
	// not delivered one yet.
	firstBlockGuess = 250 * time.Millisecond
	// minInFlight and maxInFlight bound the want-blocks outstanding at one
	// peer. Between them, a peer is given as many as cover its round trip
	// at its pace, plus two: enough to keep it busy, few enough that a
	// slow peer does not sit on leaves a faster one could send.
	minInFlight = 2
	maxInFlight = 32
	// lacksTolerated is how many DONT_HAVEs a peer that has delivered
	// nothing may answer before a session stops asking it.
	lacksTolerated = 3
	// probeEvery is how often a session asks the connected peers it knows
	// nothing about whether they hold the block it wants next: peers that
	// connect later, or did not answer its first wants, join its holders.
	probeEvery = time.Second
	// senderIdle is how long a peer's sender lives without wants.
	senderIdle = 30 * time.Second
	// lateAnswers is how long answers to a delivered block still teach
	// its sessions holders: a session's first blocks are asked of every
	// peer, and the other holders answer just after the first.
	lateAnswers = 5 * time.Second
)

// Guard says which peers are not to be asked: banned ones not at all,
// mute ones only when no other holder is left.
type Guard interface {
	IsBanned(peer.ID) bool
	IsMuted(peer.ID) bool
}

// Scheduler sends the want-blocks of sessions straight to the peers known to
// hold their content. Wants wait in one queue, most urgent first, and each
// goes to the holder expected to deliver it soonest once that holder has
// room: every peer is kept only as busy as its round trip needs, so each
// works at its own pace and a fast peer, freeing room sooner, is given
// more. Bitswap's own session picks one peer per want with a chance
// proportional to what it delivered before, which leaves capped peers idle
// while another's queue grows.
//
// A session learns holders from every answer to its wants (blocks and
// HAVEs, through bitswap or from the scheduler). Until it knows one, and
// when all it knows have refused a block, its wants go through bitswap,
// which looks for providers.
type Scheduler struct {
	// newSender opens a message stream to a peer; peers lists the
	// connected peers and connected tells whether a peer is.
	newSender func(context.Context, peer.ID) (bsnetwork.MessageSender, error)
	peers     func() []peer.ID
	connected func(peer.ID) bool
	guard     Guard
	log       *zap.Logger
	ctx       context.Context // ends when the node closes
	wg        sync.WaitGroup  // the senders

	mu      sync.Mutex // guards everything below
	pending map[string]*want
	queue   []*want // waiting for a holder with room, most urgent first
	lines   map[peer.ID]*line
	seq     int32
	// recent are the sessions of blocks delivered within lateAnswers,
	// by multihash, oldest first in order.
	recent map[string]late
	order  []string
}

// late is who wanted a delivered block, and when it came.
type late struct {
	learners []*Holders
	at       time.Time
}

// want is one block some sessions are waiting for.
type want struct {
	c        cid.Cid
	priority int32
	done     chan struct{} // closed when blk is set
	blk      blocks.Block
	changed  chan struct{} // it was asked, refused, or is stuck: look again
	asked    map[peer.ID]time.Time
	probed   []peer.ID // sent a want-have
	refused  map[peer.ID]bool
	learners map[*Holders]int // sessions learning holders from answers
	from     *Holders         // the holders it is asked of
	queued   bool             // in the scheduler's queue
	stuck    bool             // no holder left to ask
}

// line is what the scheduler knows of one peer and the messages queued to
// it.
type line struct {
	p           peer.ID
	outstanding int           // want-blocks asked and not yet answered
	perBlock    time.Duration // smoothed time per block delivered
	roundTrip   time.Duration // least time from asking an idle peer to its block
	lastBlock   time.Time
	// late: an ask of it missed its time, and it has answered none
	// since. Until it does, it is asked only when no other holder is.
	late bool

	queue []entry
	wake  chan struct{}
}

// entry is a want-block, a want-have or a cancel, waiting to be sent.
type entry struct {
	c        cid.Cid
	priority int32
	have     bool
	cancel   bool
}

func New(ctx context.Context, net bsnetwork.BitSwapNetwork, guard Guard, log *zap.Logger) *Scheduler {
	hn := net.Host().Network()
	return newSchedulerOver(ctx, guard, log,
		func(ctx context.Context, p peer.ID) (bsnetwork.MessageSender, error) {
			return net.NewMessageSender(ctx, p, &bsnetwork.MessageSenderOpts{
				MaxRetries: 3, SendTimeout: 10 * time.Second, SendErrorBackoff: 100 * time.Millisecond,
			})
		},
		hn.Peers,
		func(p peer.ID) bool { return hn.Connectedness(p) == network.Connected })
}

// newSchedulerOver returns a Scheduler sending through newSender to the
// peers that peers lists and connected accepts.
func newSchedulerOver(ctx context.Context, guard Guard, log *zap.Logger,
	newSender func(context.Context, peer.ID) (bsnetwork.MessageSender, error),
	peers func() []peer.ID, connected func(peer.ID) bool) *Scheduler {
	return &Scheduler{
		newSender: newSender, peers: peers, connected: connected,
		guard: guard, log: log, ctx: ctx,
		pending: map[string]*want{}, lines: map[peer.ID]*line{}, recent: map[string]late{},
	}
}

// wait returns once every sender has stopped, after the node's context
// ended.
func (s *Scheduler) Wait() { s.wg.Wait() }

// join registers a session waiting for c and returns the want; leave must
// follow.
func (s *Scheduler) join(c cid.Cid, h *Holders) *want {
	k := string(c.Hash())
	s.mu.Lock()
	defer s.mu.Unlock()
	w := s.pending[k]
	if w == nil {
		s.seq++
		w = &want{
			c: c, priority: math.MaxInt32 - s.seq,
			done: make(chan struct{}), changed: make(chan struct{}, 1),
			asked: map[peer.ID]time.Time{}, refused: map[peer.ID]bool{},
			learners: map[*Holders]int{},
		}
		s.pending[k] = w
	}
	w.learners[h]++
	return w
}

// leave unregisters a session from w; the last to leave an unanswered
// want cancels it at the peers asked.
func (s *Scheduler) leave(w *want, h *Holders) {
	s.mu.Lock()
	defer s.mu.Unlock()
	w.learners[h]--
	if w.learners[h] == 0 {
		delete(w.learners, h)
	}
	if len(w.learners) > 0 || w.blk != nil {
		return
	}
	if s.pending[string(w.c.Hash())] == w {
		delete(s.pending, string(w.c.Hash()))
	}
	w.queued = false
	s.cancelAsks(w, "")
	s.dispatch()
}

// cancelAsks sends cancels to the peers w was asked or probed of, but not
// to except. The caller holds s.mu.
func (s *Scheduler) cancelAsks(w *want, except peer.ID) {
	for _, p := range w.probed {
		if _, asked := w.asked[p]; !asked && p != except {
			if l := s.lines[p]; l != nil {
				s.enqueue(l, entry{c: w.c, cancel: true})
			}
		}
	}
	w.probed = nil
	for p := range w.asked {
		if l := s.lines[p]; l != nil {
			l.outstanding--
			if p != except {
				s.enqueue(l, entry{c: w.c, cancel: true})
			}
		}
		delete(w.asked, p)
	}
}

// schedule queues w to be asked of a holder in h, unless it is asked or
// queued already or, with another, of one more holder; and, once per
// probeEvery, sends a want-have for w to the connected peers h knows
// nothing about.
func (s *Scheduler) schedule(w *want, h *Holders, another bool) {
	probe := h.toProbe(s.peers, time.Now())
	s.mu.Lock()
	defer s.mu.Unlock()
	if w.blk != nil {
		return
	}
	for _, p := range probe {
		if s.guard.IsBanned(p) || w.refused[p] {
			continue
		}
		w.probed = append(w.probed, p)
		s.enqueue(s.line(p), entry{c: w.c, priority: w.priority, have: true})
	}
	if !another && len(w.asked) > 0 {
		return
	}
	w.from = h
	if !w.queued {
		w.queued = true
		i, _ := slices.BinarySearchFunc(s.queue, w, func(a, b *want) int { return cmp.Compare(b.priority, a.priority) })
		s.queue = slices.Insert(s.queue, i, w)
	}
	s.dispatch()
}

// dispatch asks, most urgent first, each queued want of the holder
// expected to deliver it soonest among those with room, and marks stuck
// the wants no holder is left for. The caller holds s.mu.
func (s *Scheduler) dispatch() {
	kept := s.queue[:0]
	for _, w := range s.queue {
		if w.blk != nil || !w.queued {
			continue
		}
		best, left := s.choose(w)
		switch {
		case best != nil:
			w.queued = false
			best.outstanding++
			w.asked[best.p] = time.Now()
			s.enqueue(best, entry{c: w.c, priority: w.priority})
			signal(w.changed)
		case left == 0:
			w.queued, w.stuck = false, true
			signal(w.changed)
		default:
			kept = append(kept, w)
		}
	}
	clear(s.queue[len(kept):])
	s.queue = kept
}

// choose returns the holder of w with room that is expected to deliver it
// soonest, if any, and how many holders are left to ask at all. A holder
// lately mute, or late with an ask, is chosen only when no other is left.
// The caller holds s.mu.
func (s *Scheduler) choose(w *want) (*line, int) {
	var best, bestMuted *line
	left, others := 0, 0
	for _, p := range w.from.candidates() {
		if w.refused[p] || !w.asked[p].IsZero() || s.guard.IsBanned(p) || !s.connected(p) {
			continue
		}
		left++
		l := s.line(p)
		muted := l.late || s.guard.IsMuted(p)
		if !muted {
			others++
		}
		if l.outstanding >= l.room() {
			continue
		}
		b := &best
		if muted {
			b = &bestMuted
		}
		if *b == nil || l.eta() < (*b).eta() || l.eta() == (*b).eta() && rand.IntN(2) == 0 {
			*b = l
		}
	}
	if best == nil && others == 0 {
		best = bestMuted
	}
	return best, left
}

// room is how many want-blocks l may have outstanding.
func (l *line) room() int {
	if l.roundTrip == 0 {
		return minInFlight // not measured yet: a slow peer gets little
	}
	return min(max(minInFlight+int(l.roundTrip/l.perBlock), minInFlight), maxInFlight)
}

// eta is when l is expected to deliver a block asked now.
func (l *line) eta() time.Duration {
	return time.Duration(l.outstanding+1) * l.perBlock
}

// lateAfter is the node's one rule for when a peer is late: an answer
// expected within expected is late after askSlack times that, never sooner
// than askFloor nor later than askCeiling. The scheduler's want-blocks
// follow it, and so do bitswap's own through their DONT_HAVE timeouts
// (DontHaveTimeouts); a late peer is asked only when no other holder is.
func lateAfter(expected time.Duration) time.Duration {
	return min(max(askSlack*expected, askFloor), askCeiling)
}

// patience is how long a want-block just sent to l may take before
// another holder is asked as well.
func (l *line) patience() time.Duration {
	return lateAfter(l.eta() + l.roundTrip)
}

// patience is l's patience, except that a holder that has delivered
// nothing yet is given askSlack times two blocks at the pace of the
// fastest that has (firstBlockGuess if none has), whatever it was asked
// since: a peer that claims blocks and sits on them costs a stream about
// askFloor, not seconds. The caller holds s.mu.
func (s *Scheduler) patience(l *line) time.Duration {
	if l.roundTrip > 0 {
		return l.patience()
	}
	pace := firstBlockGuess
	for _, o := range s.lines {
		if o.roundTrip > 0 {
			pace = min(pace, o.perBlock)
		}
	}
	return lateAfter(2 * pace)
}

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// line returns p's line, starting its sender if needed. The caller holds
// s.mu.
func (s *Scheduler) line(p peer.ID) *line {
	l := s.lines[p]
	if l == nil {
		l = &line{p: p, perBlock: firstBlockGuess, wake: make(chan struct{}, 1)}
		s.lines[p] = l
		s.wg.Go(func() { s.send(l) })
	}
	return l
}

// enqueue queues e for l's sender. The caller holds s.mu.
func (s *Scheduler) enqueue(l *line, e entry) {
	l.queue = append(l.queue, e)
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// send delivers l's queued entries, as many as are queued in each message,
// until the node closes or l stays idle for senderIdle.
func (s *Scheduler) send(l *line) {
	var ms bsnetwork.MessageSender
	defer func() {
		if ms != nil {
			_ = ms.Reset()
		}
	}()
	idle := time.NewTimer(senderIdle)
	defer idle.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-idle.C:
			s.mu.Lock()
			if len(l.queue) == 0 && l.outstanding <= 0 {
				delete(s.lines, l.p)
				s.mu.Unlock()
				return
			}
			s.mu.Unlock()
			idle.Reset(senderIdle)
			continue
		case <-l.wake:
		}
		idle.Reset(senderIdle)
		s.mu.Lock()
		queue := l.queue
		l.queue = nil
		s.mu.Unlock()
		if len(queue) == 0 {
			continue
		}
		msg := bsmsg.New(false)
		for _, e := range queue {
			switch {
			case e.cancel:
				msg.Cancel(e.c)
			case e.have:
				msg.AddEntry(e.c, e.priority, pb.Message_Wantlist_Have, true)
			default:
				msg.AddEntry(e.c, e.priority, pb.Message_Wantlist_Block, true)
			}
		}
		var err error
		if ms == nil {
			ms, err = s.newSender(s.ctx, l.p)
		}
		if err == nil {
			err = ms.SendMsg(s.ctx, msg)
		}
		if err != nil {
			if ms != nil {
				_ = ms.Reset()
				ms = nil
			}
			s.log.Debug("sending wants failed", zap.Stringer("peer", l.p), zap.Error(err))
			s.unreachable(l.p, queue)
		}
	}
}

// unreachable treats the want-blocks in queue as refused by p, so their
// sessions ask someone else.
func (s *Scheduler) unreachable(p peer.ID, queue []entry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range queue {
		if !e.cancel && !e.have {
			s.refuse(p, e.c)
		}
	}
	s.dispatch()
}

// disconnected is a libp2p network notification: the wants asked of a peer
// whose last connection closed go to other holders.
func (s *Scheduler) Disconnected(net network.Network, conn network.Conn) {
	p := conn.RemotePeer()
	if net.Connectedness(p) == network.Connected {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, w := range s.pending {
		if _, ok := w.asked[p]; ok {
			s.refuse(p, w.c)
		}
	}
	s.dispatch()
}

// refuse records that p will not send c. The caller holds s.mu.
func (s *Scheduler) refuse(p peer.ID, c cid.Cid) {
	w := s.pending[string(c.Hash())]
	if w == nil {
		return
	}
	if _, ok := w.asked[p]; ok {
		delete(w.asked, p)
		if l := s.lines[p]; l != nil {
			l.outstanding--
		}
	}
	w.refused[p] = true
	for h := range w.learners {
		h.lacks(p)
	}
	signal(w.changed)
}

// MessageReceived is a bitswap tracer hook: it teaches sessions who holds
// their blocks, delivers blocks the Scheduler asked for and moves wants a
// peer refused to other holders.
func (s *Scheduler) MessageReceived(p peer.ID, msg bsmsg.BitSwapMessage) {
	blks, haves, dontHaves := msg.Blocks(), msg.Haves(), msg.DontHaves()
	if len(blks) == 0 && len(haves) == 0 && len(dontHaves) == 0 {
		return
	}
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.forget(now)
	for _, c := range haves {
		if w := s.pending[string(c.Hash())]; w != nil {
			for h := range w.learners {
				h.has(p, false)
			}
		}
		for _, h := range s.recent[string(c.Hash())].learners {
			h.has(p, false)
		}
	}
	if l := s.lines[p]; l != nil && len(dontHaves) > 0 {
		l.late = false
	}
	for _, c := range dontHaves {
		// A peer keeps a want-block it answered DONT_HAVE in its ledger
		// and sends the block the moment it gets it, long after this
		// node asked someone else: cancel it now. (Without it, a fleet
		// of four fetching one file together received 30-150 MB of
		// duplicates per edge.)
		if w := s.pending[string(c.Hash())]; w != nil {
			if _, asked := w.asked[p]; asked {
				if l := s.lines[p]; l != nil {
					s.enqueue(l, entry{c: c, cancel: true})
				}
			}
		}
		s.refuse(p, c)
	}
	defer s.dispatch()
	for _, b := range blks {
		k := string(b.Cid().Hash())
		for _, h := range s.recent[k].learners {
			h.has(p, true)
		}
		w := s.pending[k]
		if w == nil {
			continue
		}
		for h := range w.learners {
			h.has(p, true)
		}
		if l := s.lines[p]; l != nil {
			if asked, ok := w.asked[p]; ok {
				// Time per block while busy: since the previous block
				// or, if the line was idle, since this one was asked,
				// which is also a round trip.
				sample := now.Sub(asked)
				if l.lastBlock.After(asked) {
					sample = now.Sub(l.lastBlock)
				} else if l.roundTrip == 0 || sample < l.roundTrip {
					l.roundTrip = sample
				}
				l.perBlock = max((3*l.perBlock+sample)/4, time.Millisecond/10)
				l.late = false
			}
			l.lastBlock = now
		}
		// The hash of the bytes is the CID's: bitswap derives a received
		// block's CID from its data.
		blk, err := blocks.NewBlockWithCid(b.RawData(), w.c)
		if err != nil {
			continue
		}
		delete(s.pending, k)
		s.cancelAsks(w, p)
		w.queued = false
		w.blk = blk
		close(w.done)
		l := late{at: now}
		for h := range w.learners {
			l.learners = append(l.learners, h)
		}
		s.recent[k] = l
		s.order = append(s.order, k)
	}
}

// forget drops the delivered blocks older than lateAnswers. The caller
// holds s.mu.
func (s *Scheduler) forget(now time.Time) {
	i := 0
	for ; i < len(s.order); i++ {
		k := s.order[i]
		if now.Sub(s.recent[k].at) < lateAnswers {
			break
		}
		delete(s.recent, k)
	}
	s.order = s.order[i:]
}

// MessageSent is part of the bitswap tracer; sent wants need no notice.
func (s *Scheduler) MessageSent(peer.ID, bsmsg.BitSwapMessage) {}

// Get returns block c, asked of the holders in h (a session's, which
// learn from the answers) or, when none is left, of fallback (bitswap,
// which looks for providers).
func (s *Scheduler) Get(ctx context.Context, c cid.Cid, h *Holders, fallback func(context.Context) (blocks.Block, error)) (blocks.Block, error) {
	w := s.join(c, h)
	defer s.leave(w, h)
	return s.fetch(ctx, w, h, fallback)
}

// DontHaveTimeouts is when bitswap gives up on a peer's answer to a want
// and asks another: by the scheduler's rule (lateAfter). Bitswap's own
// timeout is slack times the peer's latency plus its processing time,
// within a floor and a ceiling, so the rule's slack, floor and ceiling map
// onto it; before it has measured a peer it waits what the scheduler gives
// a peer that has delivered nothing yet. Bitswap's default floor, 50 ms,
// suits idle peers: a peer whose upload is busy (capped, or serving many)
// answers later than that while delivering steadily, and each early
// give-up fetches the block twice (with 4 seeders capped at 10 MB/s, a
// third of the bytes received were such duplicates).
func DontHaveTimeouts() *bsclient.DontHaveTimeoutConfig {
	cfg := bsclient.DefaultDontHaveTimeoutConfig()
	cfg.MinTimeout, cfg.MaxTimeout = askFloor, askCeiling
	cfg.MessageLatencyMultiplier, cfg.PingLatencyMultiplier = askSlack, askSlack
	cfg.MaxExpectedWantProcessTime = askSlack * firstBlockGuess
	cfg.DontHaveTimeout = lateAfter(2 * firstBlockGuess)
	return cfg
}

// fetch waits for w, queued for the holders in h, asking one more each
// time the last asked misses its time, and falls back to fallback
// (bitswap) when none is left.
func (s *Scheduler) fetch(ctx context.Context, w *want, h *Holders, fallback func(context.Context) (blocks.Block, error)) (blocks.Block, error) {
	type result struct {
		blk blocks.Block
		err error
	}
	var viaBitswap chan result
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	s.schedule(w, h, false)
	signal(w.changed) // look at where scheduling left it
	for {
		select {
		case <-w.done:
			return w.blk, nil
		case r := <-viaBitswap:
			return r.blk, r.err
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-timer.C:
			// The latest ask missed its time, or the want waited
			// probeEvery for room: one more holder, and a probe for
			// new ones.
			s.missed(w)
			s.schedule(w, h, true)
			signal(w.changed)
		case <-w.changed:
			patience, queued, stuck := s.state(w)
			switch {
			case stuck:
				if viaBitswap == nil {
					viaBitswap = make(chan result, 1)
					go func() {
						blk, err := fallback(ctx)
						viaBitswap <- result{blk, err}
					}()
				}
			case queued:
				timer.Reset(probeEvery)
			case patience > 0:
				timer.Reset(patience)
			default:
				// Refused by every peer asked: ask the next.
				s.schedule(w, h, false)
				signal(w.changed)
			}
		}
	}
}

// missed marks late the holder w was last asked of, if that ask is still
// outstanding: a peer sitting on wants is not handed more while others
// deliver. Without it, each want the holder let fall to another freed room
// that the next want filled, and a mute peer held two leaves of every
// window for their whole patience until it was caught.
func (s *Scheduler) missed(w *want) {
	s.mu.Lock()
	defer s.mu.Unlock()
	latest, at := latestAsk(w)
	if l := s.lines[latest]; l != nil && !at.IsZero() && time.Since(at) >= s.patience(l) {
		l.late = true
	}
}

// latestAsk returns the holder w was last asked of, and when. The caller
// holds s.mu.
func latestAsk(w *want) (latest peer.ID, at time.Time) {
	for p, t := range w.asked {
		if t.After(at) {
			latest, at = p, t
		}
	}
	return latest, at
}

// state returns how long the latest ask of w may take (0 if none is
// outstanding), whether w waits for a holder with room and whether no
// holder is left.
func (s *Scheduler) state(w *want) (time.Duration, bool, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	latest, at := latestAsk(w)
	var patience time.Duration
	if l := s.lines[latest]; l != nil {
		patience = max(s.patience(l)-time.Since(at), time.Millisecond)
	}
	return patience, w.queued, w.stuck
}
