package live

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipfs/go-cid"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"go.uber.org/zap"
)

const (
	// directoryTopic carries every announcement of every stream, so a
	// node learns of a stream it does not follow yet and joins it.
	directoryTopic = "/pacman/live/1/streams"
	// windowProtocol answers a stream's name with the signed
	// announcements of its last windowShared segments.
	windowProtocol = protocol.ID("/pacman/live/window/1.0.0")
	windowShared   = 32
	// maxWindowAnswer bounds a window answer's bytes.
	maxWindowAnswer = 1 << 20
	// windowTimeout bounds asking one peer for a window.
	windowTimeout = 3 * time.Second
	// prefetchTimeout is how long a segment is fetched before it is
	// listed anyway, for players to fetch through the gateway.
	prefetchTimeout = 10 * time.Second
	// prefetches bounds the segments fetched at once.
	prefetches = 8
	// meshWait is how long after joining a stream's topic a publish waits
	// for a peer on it: a message sent before the gossip mesh has formed
	// reaches nobody.
	meshWait = 2 * time.Second
	// gapAskEvery bounds how often a stream's window is asked for to fill
	// a gap in its sequence.
	gapAskEvery = time.Second
	// idleAfter is how long a stream followed because it was announced
	// may go without an announcement before the relay leaves its topic.
	idleAfter = maxAge
	// sweepEvery is how often idle streams are looked for.
	sweepEvery = time.Minute
)

// topicOf is the gossipsub topic of one stream's announcements.
func topicOf(stream string) string { return "/pacman/live/1/stream/" + stream }

// Observer learns what the relay does, for metrics. Its methods must be
// quick.
type Observer interface {
	// Held: the node holds a segment of stream, since after it was
	// announced.
	Held(stream string, since time.Duration)
	// Dropped: an announcement was refused, for reason (rate, untrusted,
	// forged, malformed, stale, replayed).
	Dropped(reason string)
}

// Fetcher makes the blocks of the DAG under c local, refusing one of more
// than maxBlocks.
type Fetcher func(ctx context.Context, c cid.Cid, maxBlocks int) error

const (
	// maxSegmentBlocks bounds the blocks of one segment's DAG: 64 MiB of
	// 1 MiB leaves and their index, with room to spare.
	maxSegmentBlocks = 1024
	// maxEventBlocks bounds the blocks of an event's directory.
	maxEventBlocks = 4 * maxEventSegments
)

// Relay follows live streams over gossipsub: it checks every announcement
// against the trusted keys, records it, fetches the segment at once and
// relays the announcement on. A node that joins a stream late asks its
// peers for the window. The same relay publishes a publisher's segments.
type Relay struct {
	host    host.Host
	ps      *pubsub.PubSub
	key     crypto.PrivKey
	streams *Streams
	fetch   Fetcher
	obs     Observer
	log     *zap.Logger
	trusted atomic.Pointer[map[peer.ID]bool]
	journal Journal // what this node announced; set before it publishes
	guard   *gossipGuard

	ctx    context.Context // ends when the relay closes
	cancel context.CancelFunc
	wg     sync.WaitGroup
	slots  chan struct{} // a token per prefetch

	mu      sync.Mutex // guards topics and gapAsk
	topics  map[string]*followed
	gapAsk  map[string]time.Time
	dir     *pubsub.Topic
	dirJoin time.Time

	notifee network.Notifiee

	bgMu   sync.Mutex // guards closed, so no goroutine starts after Close waits
	closed bool
}

// followed is a stream whose topic the relay is on.
type followed struct {
	topic  *pubsub.Topic
	sub    *pubsub.Subscription
	joined time.Time
	kept   bool // joined through Join: never left for being idle
}

// spawn runs f in the background unless the relay is closing.
func (r *Relay) spawn(f func()) {
	r.bgMu.Lock()
	defer r.bgMu.Unlock()
	if !r.closed {
		r.wg.Go(f)
	}
}

// NewRelay starts gossipsub on h and follows the stream directory.
func NewRelay(h host.Host, key crypto.PrivKey, fetch Fetcher, obs Observer, log *zap.Logger) (*Relay, error) {
	ctx, cancel := context.WithCancel(context.Background())
	banned, err := pubsub.NewTimeCachedBlacklist(gossipBan)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("starting gossipsub: %w", err)
	}
	ps, err := pubsub.NewGossipSub(ctx, h, pubsub.WithMaxMessageSize(maxAnnouncement), pubsub.WithBlacklist(banned))
	if err != nil {
		cancel()
		return nil, fmt.Errorf("starting gossipsub: %w", err)
	}
	r := &Relay{
		host: h, ps: ps, key: key, streams: NewStreams(), fetch: fetch, obs: obs, log: log, journal: &memJournal{}, guard: newGossipGuard(),
		ctx: ctx, cancel: cancel, slots: make(chan struct{}, prefetches),
		topics: map[string]*followed{}, gapAsk: map[string]time.Time{}, dirJoin: time.Now(),
	}
	r.SetTrusted(nil)
	if err := ps.RegisterTopicValidator(directoryTopic, r.validateDirectory); err != nil {
		cancel()
		return nil, fmt.Errorf("validating the stream directory: %w", err)
	}
	if r.dir, err = ps.Join(directoryTopic); err != nil {
		cancel()
		return nil, fmt.Errorf("joining the stream directory: %w", err)
	}
	sub, err := r.dir.Subscribe()
	if err != nil {
		cancel()
		return nil, fmt.Errorf("following the stream directory: %w", err)
	}
	r.spawn(func() { r.drain(sub) })
	r.spawn(r.sweep)
	h.SetStreamHandler(windowProtocol, r.serveWindow)
	r.notifee = &network.NotifyBundle{ConnectedF: func(_ network.Network, c network.Conn) {
		r.spawn(func() { r.catchUp(c.RemotePeer()) })
	}}
	h.Network().Notify(r.notifee)
	return r, nil
}

// catchUp asks a peer that just connected for the window of every stream
// followed: it may have segments announced while the two were apart.
func (r *Relay) catchUp(p peer.ID) {
	r.mu.Lock()
	streams := make([]string, 0, len(r.topics))
	for s := range r.topics {
		streams = append(streams, s)
	}
	r.mu.Unlock()
	for _, s := range streams {
		r.askPeer(r.ctx, p, s)
	}
}

// SetTrusted sets the publishers whose announcements are accepted; the
// relay's own key is always trusted.
func (r *Relay) SetTrusted(ids []peer.ID) {
	m := map[peer.ID]bool{r.host.ID(): true}
	for _, id := range ids {
		m[id] = true
	}
	r.trusted.Store(&m)
}

func (r *Relay) isTrusted(p peer.ID) bool { return (*r.trusted.Load())[p] }

// Restore makes j the journal of what this node announces, and takes back
// what it announced before: a publisher that restarts continues each
// stream's numbering, knows which have ended, and records every segment of
// an event. Call it before the node publishes.
func (r *Relay) Restore(j Journal) error {
	streams, err := j.Streams()
	if err != nil {
		return err
	}
	for _, stream := range streams {
		got, err := j.Read(stream)
		if err != nil {
			return err
		}
		for _, s := range got {
			a, err := Verify(s, func(p peer.ID) bool { return p == r.host.ID() })
			if err != nil || a.Stream != stream {
				continue // another key's, from before the node's key changed
			}
			// As at the time it was announced: it is not stale to us.
			if r.streams.Accept(a, s, a.At) == nil && !a.End {
				r.streams.Ready(a.Stream, a.Seq)
			}
		}
	}
	r.journal = j
	return nil
}

// Recorded returns the segments this node announced of stream, oldest
// first, at most maxEventSegments of them.
func (r *Relay) Recorded(stream string) ([]Announcement, error) {
	got, err := r.journal.Read(stream)
	if err != nil {
		return nil, err
	}
	var out []Announcement
	for _, s := range got {
		var a Announcement
		if json.Unmarshal(s.Payload, &a) != nil || a.End || a.IsPart {
			continue
		}
		if len(out) == maxEventSegments {
			break
		}
		out = append(out, a)
	}
	return out, nil
}

// Streams returns what the relay knows of its streams.
func (r *Relay) Streams() *Streams { return r.streams }

// Close stops following streams.
func (r *Relay) Close() error {
	r.host.RemoveStreamHandler(windowProtocol)
	r.host.Network().StopNotify(r.notifee)
	r.cancel()
	r.bgMu.Lock()
	r.closed = true
	r.bgMu.Unlock()
	r.wg.Wait()
	return nil
}

// drain reads sub until the relay closes: validators did the work.
func (r *Relay) drain(sub *pubsub.Subscription) {
	defer sub.Cancel()
	for {
		if _, err := sub.Next(r.ctx); err != nil {
			return
		}
	}
}

// verify screens, decodes and checks a gossip message's announcement,
// counting refusals. A peer over its rate is ignored before any work; one
// that forwards forged or malformed announcements, which no honest peer
// does, is dropped and ignored for gossipBan once it has sent
// gossipStrikes of them.
func (r *Relay) verify(msg *pubsub.Message) (Announcement, Signed, pubsub.ValidationResult) {
	from := msg.ReceivedFrom
	if !r.guard.allow(from) {
		r.obs.Dropped("rate")
		return Announcement{}, Signed{}, pubsub.ValidationIgnore
	}
	var s Signed
	err := json.Unmarshal(msg.Data, &s)
	var a Announcement
	if err == nil {
		a, err = Verify(s, r.isTrusted)
	} else {
		err = fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if err == nil {
		return a, s, pubsub.ValidationAccept
	}
	r.obs.Dropped(reason(err))
	r.log.Debug("refusing a live announcement", zap.Stringer("from", from), zap.Error(err))
	if (errors.Is(err, ErrForged) || errors.Is(err, ErrMalformed)) && r.guard.strike(from) {
		r.log.Warn("dropping a peer that forwards forged live announcements", zap.Stringer("peer", from))
		r.ps.BlacklistPeer(from)
		_ = r.host.Network().ClosePeer(from)
	}
	return a, s, pubsub.ValidationReject
}

func reason(err error) string {
	switch {
	case errors.Is(err, ErrUntrusted):
		return "untrusted"
	case errors.Is(err, ErrForged):
		return "forged"
	case errors.Is(err, ErrStale):
		return "stale"
	case errors.Is(err, ErrKnown):
		return "replayed"
	}
	return "malformed"
}

// validateDirectory joins the streams announced in the directory.
func (r *Relay) validateDirectory(_ context.Context, _ peer.ID, msg *pubsub.Message) pubsub.ValidationResult {
	a, s, res := r.verify(msg)
	if res != pubsub.ValidationAccept {
		return res
	}
	if time.Since(a.At) > maxAge {
		return pubsub.ValidationIgnore
	}
	_, joined, err := r.follow(a.Stream, false)
	if err != nil {
		r.log.Warn("joining a live stream", zap.String("stream", a.Stream), zap.Error(err))
	}
	if joined {
		// The stream's own topic was joined too late for this one:
		// recorded now, so a late joiner lists the stream from its
		// first segment on, never from a later one back.
		r.accept(a, s, false)
	}
	return pubsub.ValidationAccept
}

// validateStream records a stream's announcement and fetches its segment;
// only new announcements are relayed on.
func (r *Relay) validateStream(_ context.Context, _ peer.ID, msg *pubsub.Message) pubsub.ValidationResult {
	a, s, res := r.verify(msg)
	if res != pubsub.ValidationAccept {
		return res
	}
	if !r.accept(a, s, true) {
		return pubsub.ValidationIgnore
	}
	return pubsub.ValidationAccept
}

// accept records a verified announcement and starts fetching its segment.
// One already known counts as a replay only if countKnown: windows from
// several peers overlap.
func (r *Relay) accept(a Announcement, s Signed, countKnown bool) bool {
	if err := r.streams.Accept(a, s, time.Now()); err != nil {
		if countKnown || !errors.Is(err, ErrKnown) {
			r.obs.Dropped(reason(err))
		}
		return false
	}
	r.spawn(func() { r.prefetch(a) })
	if !a.End && a.Seq > 0 {
		if _, ok := r.streams.Segment(a.Stream, a.Seq-1); !ok {
			r.fillGap(a.Stream)
		}
	}
	return true
}

// fillGap asks the peers for stream's window, at most once per
// gapAskEvery: an announcement gossip lost (sent before a mesh formed, or
// while two nodes were apart) leaves a hole the window fills.
func (r *Relay) fillGap(stream string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if time.Since(r.gapAsk[stream]) < gapAskEvery {
		return
	}
	r.gapAsk[stream] = time.Now()
	r.spawn(func() { r.askWindow(r.ctx, stream) })
}

// prefetch makes a's segment local, then lists it.
func (r *Relay) prefetch(a Announcement) {
	select {
	case r.slots <- struct{}{}:
	case <-r.ctx.Done():
		return
	}
	defer func() { <-r.slots }()
	if a.End {
		// The event's directory: its segments are here already, so this
		// is its playlist and index, and the edge serves the recording
		// as it served the stream.
		ctx, cancel := context.WithTimeout(r.ctx, time.Minute)
		defer cancel()
		if err := r.fetch(ctx, a.VOD, maxEventBlocks); err != nil {
			r.log.Warn("fetching a live event's directory", zap.String("stream", a.Stream), zap.Stringer("vod", a.VOD), zap.Error(err))
		}
		return
	}
	ctx, cancel := context.WithTimeout(r.ctx, prefetchTimeout)
	defer cancel()
	if a.Map.Defined() {
		// The init segment comes with the first segment or part that
		// names it (with the others, it is local already): a player
		// asks for it before either.
		if err := r.fetch(ctx, a.Map, maxSegmentBlocks); err != nil {
			r.log.Warn("fetching a live init segment", zap.String("stream", a.Stream), zap.Stringer("map", a.Map), zap.Error(err))
		}
	}
	if a.IsPart {
		// A part is listed only once held: a player asking for it
		// would otherwise wait on the network.
		if err := r.fetch(ctx, a.CID, maxSegmentBlocks); err != nil {
			r.log.Warn("fetching a live part; not listing it", zap.String("stream", a.Stream), zap.Uint64("seq", a.Seq), zap.Int("part", a.Part), zap.Error(err))
			return
		}
		r.streams.PartReady(a.Stream, a.Seq, a.Part)
		return
	}
	if err := r.fetch(ctx, a.CID, maxSegmentBlocks); err != nil {
		r.log.Warn("fetching a live segment; listing it anyway", zap.String("stream", a.Stream), zap.Uint64("seq", a.Seq), zap.Error(err))
	} else {
		r.obs.Held(a.Stream, time.Since(a.At))
	}
	r.streams.Ready(a.Stream, a.Seq)
}

// Join follows stream for as long as the relay runs: its announcements are
// checked, recorded, fetched and relayed, and its current window is asked
// of the peers. Joining again does nothing. Streams announced by a trusted
// publisher are followed without it, until they go idle.
func (r *Relay) Join(stream string) error {
	_, _, err := r.follow(stream, true)
	return err
}

// errTooManyStreams says the relay follows as many streams as it may.
var errTooManyStreams = fmt.Errorf("already following %d live streams", maxStreams)

// follow joins stream's topic, unless the relay is on it already, and
// reports whether it joined it now; kept streams are never left for being
// idle.
func (r *Relay) follow(stream string, kept bool) (*followed, bool, error) {
	if !ValidName(stream) {
		return nil, false, fmt.Errorf("%q is not a stream name", stream)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if f := r.topics[stream]; f != nil {
		f.kept = f.kept || kept
		return f, false, nil
	}
	if len(r.topics) >= maxStreams {
		return nil, false, errTooManyStreams
	}
	name := topicOf(stream)
	if err := r.ps.RegisterTopicValidator(name, r.validateStream); err != nil {
		return nil, false, fmt.Errorf("validating stream %s: %w", stream, err)
	}
	t, err := r.ps.Join(name)
	if err != nil {
		_ = r.ps.UnregisterTopicValidator(name)
		return nil, false, fmt.Errorf("joining stream %s: %w", stream, err)
	}
	sub, err := t.Subscribe()
	if err != nil {
		_ = t.Close()
		_ = r.ps.UnregisterTopicValidator(name)
		return nil, false, fmt.Errorf("following stream %s: %w", stream, err)
	}
	f := &followed{topic: t, sub: sub, joined: time.Now(), kept: kept}
	r.topics[stream] = f
	r.spawn(func() { r.drain(sub) })
	r.spawn(func() { r.askWindow(r.ctx, stream) })
	return f, true, nil
}

// sweep leaves, every sweepEvery, the streams followed because they were
// announced that have had no announcement for idleAfter.
func (r *Relay) sweep() {
	tick := time.NewTicker(sweepEvery)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			r.leaveIdle(time.Now())
		case <-r.ctx.Done():
			return
		}
	}
}

// leaveIdle leaves the streams not kept whose last announcement (or
// joining, if none came) is older than idleAfter at now.
func (r *Relay) leaveIdle(now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for stream, f := range r.topics {
		last := f.joined
		if at := r.streams.Announced(stream); at.After(last) {
			last = at
		}
		if f.kept || now.Sub(last) < idleAfter {
			continue
		}
		f.sub.Cancel()
		// The topic closes once pubsub has dropped the subscription;
		// one it will not close yet is closed at a later sweep.
		if err := f.topic.Close(); err != nil {
			continue
		}
		_ = r.ps.UnregisterTopicValidator(topicOf(stream))
		delete(r.topics, stream)
		delete(r.gapAsk, stream)
	}
}

// Following returns the number of streams whose topics the relay is on.
func (r *Relay) Following() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.topics)
}

// Sync joins stream and asks the connected peers for its window, returning
// once they answered or ctx ended.
func (r *Relay) Sync(ctx context.Context, stream string) {
	if r.Join(stream) == nil {
		r.askWindow(ctx, stream)
	}
}

// Publish signs a and sends it to the stream's followers and the
// directory; the relay records it like any other.
func (r *Relay) Publish(ctx context.Context, a Announcement) error {
	f, _, err := r.follow(a.Stream, false)
	if err != nil {
		return err
	}
	a.At = time.Now()
	s, err := Sign(r.key, a)
	if err != nil {
		return err
	}
	data, err := json.Marshal(s)
	if err != nil {
		return fmt.Errorf("encoding announcement: %w", err)
	}
	// Recorded before it is sent: a segment number announced is never
	// announced again, whatever happens to this node next. A segment's
	// first part takes its number; its other parts need no record.
	if !a.IsPart || a.Part == 0 {
		if err := r.journal.Append(a.Stream, s); err != nil {
			return fmt.Errorf("recording segment %d of %s: %w", a.Seq, a.Stream, err)
		}
	}
	r.mu.Lock()
	dirJoined := r.dirJoin
	r.mu.Unlock()
	if err := publish(ctx, f.topic, f.joined, data); err != nil {
		return fmt.Errorf("announcing segment %d of %s: %w", a.Seq, a.Stream, err)
	}
	if a.IsPart && a.Part > 0 {
		// The directory tells edges a stream is on; a segment's first
		// part does, so an edge follows a low-latency stream from its
		// first part, not its first whole segment.
		return nil
	}
	if err := publish(ctx, r.dir, dirJoined, data); err != nil {
		return fmt.Errorf("announcing %s in the directory: %w", a.Stream, err)
	}
	return nil
}

// publish sends data on t, joined at joined: within meshWait of joining,
// it first waits (up to then) for a peer on the topic.
func publish(ctx context.Context, t *pubsub.Topic, joined time.Time, data []byte) error {
	if wait := time.Until(joined.Add(meshWait)); wait > 0 {
		rctx, cancel := context.WithTimeout(ctx, wait)
		err := t.Publish(rctx, data, pubsub.WithReadiness(pubsub.MinTopicSize(1)))
		cancel()
		if err == nil || ctx.Err() != nil || !errors.Is(err, context.DeadlineExceeded) {
			return err
		}
		// Nobody on the topic yet: announce anyway, for the record.
	}
	return t.Publish(ctx, data)
}

// serveWindow answers a stream name with its last announcements.
func (r *Relay) serveWindow(s network.Stream) {
	defer s.Close()
	_ = s.SetDeadline(time.Now().Add(windowTimeout))
	line, err := bufio.NewReader(io.LimitReader(s, 80)).ReadString('\n')
	if err != nil {
		_ = s.Reset()
		return
	}
	stream := line[:len(line)-1]
	if !ValidName(stream) {
		_ = s.Reset()
		return
	}
	_ = json.NewEncoder(s).Encode(r.streams.Signed(stream, windowShared))
}

// askWindow asks every connected peer for stream's window at once and
// accepts what verifies.
func (r *Relay) askWindow(ctx context.Context, stream string) {
	var wg sync.WaitGroup
	for _, p := range r.host.Network().Peers() {
		wg.Go(func() { r.askPeer(ctx, p, stream) })
	}
	wg.Wait()
}

// askPeer asks p for stream's window and accepts what verifies.
func (r *Relay) askPeer(ctx context.Context, p peer.ID, stream string) {
	ctx, cancel := context.WithTimeout(ctx, windowTimeout)
	defer cancel()
	got, err := r.window(ctx, p, stream)
	if err != nil {
		r.log.Debug("asking a peer for a live window", zap.Stringer("peer", p), zap.Error(err))
		return
	}
	for _, s := range got {
		a, err := Verify(s, r.isTrusted)
		if err != nil || a.Stream != stream {
			r.obs.Dropped(reason(err))
			continue
		}
		r.accept(a, s, false)
	}
}

// window asks p for stream's window.
func (r *Relay) window(ctx context.Context, p peer.ID, stream string) ([]Signed, error) {
	s, err := r.host.NewStream(ctx, p, windowProtocol)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = s.SetDeadline(dl)
	}
	if _, err := io.WriteString(s, stream+"\n"); err != nil {
		return nil, err
	}
	var got []Signed
	if err := json.NewDecoder(io.LimitReader(s, maxWindowAnswer)).Decode(&got); err != nil {
		return nil, fmt.Errorf("reading the window: %w", err)
	}
	if len(got) > windowShared+1 {
		got = got[len(got)-windowShared-1:]
	}
	return got, nil
}
