package live

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
)

const (
	// maxHistory bounds the segments kept of one stream: a day of 2 s
	// segments is 43 200, this is over two hours of them.
	maxHistory = 4096
	// maxAge is how old an announcement may be when it arrives.
	maxAge = 10 * time.Minute
	// maxStreams bounds the streams kept; past it, the one announced
	// least recently is forgotten.
	maxStreams = 1024
)

// Streams is what a node knows of the live streams it follows: each one's
// verified announcements, in order, and which segments it holds.
type Streams struct {
	mu      sync.Mutex // guards streams
	streams map[string]*stream
}

// stream is one event as announced.
type stream struct {
	segs    []*segment // ascending Seq, contiguous or not
	end     *Announcement
	signed  map[uint64]Signed // by Seq, for peers joining late
	endSig  *Signed
	last    time.Time     // an announcement last arrived
	changed chan struct{} // closed, and replaced, on every change
	// listing is what listed returns, until the next change: every
	// playlist render, and the ladder's reports, read it.
	listing *listing
}

// segment is one announced segment, and whether the node holds it. A
// segment whose parts are announced before it is open until it is.
type segment struct {
	Announcement
	ready bool
	open  bool    // only its parts are announced yet
	parts []*part // by index; nil where not announced
}

// part is one announced part of a segment, and whether the node holds it.
type part struct {
	Announcement
	signed Signed
	ready  bool
}

// listedParts returns the parts of seg listed: those held, from the first
// up to the first not held.
func (seg *segment) listedParts() []*part {
	end := 0
	for end < len(seg.parts) && seg.parts[end] != nil && seg.parts[end].ready {
		end++
	}
	return seg.parts[:end]
}

// NewStreams returns an empty set of streams.
func NewStreams() *Streams { return &Streams{streams: map[string]*stream{}} }

func (s *Streams) get(name string) *stream {
	st := s.streams[name]
	if st == nil {
		if len(s.streams) >= maxStreams {
			s.forgetOldest()
		}
		st = &stream{signed: map[uint64]Signed{}, changed: make(chan struct{})}
		s.streams[name] = st
	}
	return st
}

func (s *Streams) forgetOldest() {
	var oldest string
	var at time.Time
	for name, st := range s.streams {
		if oldest == "" || st.last.Before(at) {
			oldest, at = name, st.last
		}
	}
	delete(s.streams, oldest)
}

// Accept records a verified announcement, signed as sig. It refuses
// announcements older than maxAge, ones for a sequence number already
// announced (replays, or a second CID for one segment), ones below the
// kept history and ones that leap more than the history past the last,
// with ErrStale, ErrKnown or ErrMalformed.
func (s *Streams) Accept(a Announcement, sig Signed, now time.Time) error {
	if now.Sub(a.At) > maxAge {
		return fmt.Errorf("%w: announced %v ago", ErrStale, now.Sub(a.At).Round(time.Second))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.get(a.Stream)
	if a.End {
		if st.end != nil {
			return ErrKnown
		}
		st.end, st.endSig = &a, &sig
		st.announced(now)
		return nil
	}
	if st.end != nil && a.Seq > st.end.Seq {
		return fmt.Errorf("%w: segment %d after the end", ErrStale, a.Seq)
	}
	if n := len(st.segs); n > 0 && a.Seq > st.segs[n-1].Seq+maxHistory {
		// A jump past the history kept would push every segment
		// out: a publisher's numbering goes on, it does not leap.
		return fmt.Errorf("%w: segment %d leaps from %d", ErrMalformed, a.Seq, st.segs[n-1].Seq)
	}
	i := sort.Search(len(st.segs), func(i int) bool { return st.segs[i].Seq >= a.Seq })
	if i < len(st.segs) && st.segs[i].Seq == a.Seq {
		seg := st.segs[i]
		switch {
		case a.IsPart:
			if a.Part < len(seg.parts) && seg.parts[a.Part] != nil {
				return ErrKnown
			}
			seg.addPart(a, sig)
		case seg.open:
			// The segment whose parts came first, whole now.
			seg.Announcement, seg.open = a, false
			st.signed[a.Seq] = sig
		default:
			return ErrKnown
		}
		st.announced(now)
		return nil
	}
	if i == 0 && len(st.segs) >= maxHistory {
		return fmt.Errorf("%w: segment %d is before the history kept", ErrStale, a.Seq)
	}
	seg := &segment{Announcement: a}
	if a.IsPart {
		// The first part of a segment not announced yet: it is open,
		// under the segment's number, with what its part says of it.
		seg = &segment{Announcement: Announcement{Stream: a.Stream, Seq: a.Seq, Ext: a.Ext, PartTarget: a.PartTarget, Map: a.Map, Discontinuity: a.Discontinuity}, open: true}
		seg.addPart(a, sig)
	} else {
		st.signed[a.Seq] = sig
	}
	st.segs = append(st.segs, nil)
	copy(st.segs[i+1:], st.segs[i:])
	st.segs[i] = seg
	if len(st.segs) > maxHistory {
		delete(st.signed, st.segs[0].Seq)
		st.segs[0] = nil
		st.segs = st.segs[1:]
	}
	st.announced(now)
	return nil
}

// addPart records part a of seg, signed as sig.
func (seg *segment) addPart(a Announcement, sig Signed) {
	if a.Part >= len(seg.parts) {
		seg.parts = append(seg.parts, make([]*part, a.Part+1-len(seg.parts))...)
	}
	seg.parts[a.Part] = &part{Announcement: a, signed: sig}
}

// announced records an announcement accepted at now.
func (st *stream) announced(now time.Time) {
	st.last = now
	st.touch()
}

// listing is a stream's listed segments and where their listing stopped.
type listing struct {
	segs []*segment
	end  int
}

// touch tells those waiting on st that it changed.
func (st *stream) touch() {
	st.listing = nil
	close(st.changed)
	st.changed = make(chan struct{})
}

// Ready marks segment seq of stream as held (or given up on): it is listed
// from now on.
func (s *Streams) Ready(name string, seq uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.streams[name]
	if st == nil {
		return
	}
	for _, seg := range st.segs {
		if seg.Seq == seq && !seg.ready {
			seg.ready = true
			st.touch()
		}
	}
}

// PartReady marks part n of segment seq of stream as held (or given up
// on): it is listed from now on, once the parts before it are.
func (s *Streams) PartReady(name string, seq uint64, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.streams[name]
	if st == nil {
		return
	}
	if seg := st.find(seq); seg != nil && n < len(seg.parts) && seg.parts[n] != nil && !seg.parts[n].ready {
		seg.parts[n].ready = true
		st.touch()
	}
}

// find returns segment seq, if announced. The caller holds s.mu.
func (st *stream) find(seq uint64) *segment {
	i := sort.Search(len(st.segs), func(i int) bool { return st.segs[i].Seq >= seq })
	if i < len(st.segs) && st.segs[i].Seq == seq {
		return st.segs[i]
	}
	return nil
}

// listed returns the segments listed: those held from the first one on,
// up to the first not held yet (a prefetch that fails lists its segment
// anyway), and the index in st.segs where the listing stopped. A later
// segment held first waits for those before it, so a playlist's media
// sequence never goes back. A segment whose parts were announced but
// which never came whole, while a later one did (its encoder stopped in
// the middle of it), is left out. The caller holds s.mu.
func (st *stream) listed() ([]*segment, int) {
	if st.listing == nil {
		segs, end := st.list()
		st.listing = &listing{segs: segs, end: end}
	}
	return st.listing.segs, st.listing.end
}

// list computes what listed returns. The caller holds s.mu.
func (st *stream) list() ([]*segment, int) {
	lastWhole := -1
	for i := len(st.segs) - 1; i >= 0; i-- {
		if !st.segs[i].open {
			lastWhole = i
			break
		}
	}
	var kept []*segment
	leftOut := false
	end := 0
	for ; end < len(st.segs); end++ {
		seg := st.segs[end]
		if seg.open && end < lastWhole {
			if !leftOut {
				kept, leftOut = append([]*segment(nil), st.segs[:end]...), true
			}
			continue
		}
		if seg.open || !seg.ready {
			break
		}
		if leftOut {
			kept = append(kept, seg)
		}
	}
	if !leftOut {
		kept = st.segs[:end]
	}
	return kept, end
}

// cutting returns the segment after those listed, whose parts are listed
// as it is cut, or nil. The caller holds s.mu.
func (st *stream) cutting() *segment {
	if _, n := st.listed(); n < len(st.segs) && st.segs[n].PartTarget > 0 {
		return st.segs[n]
	}
	return nil
}

// Segment returns the CID of segment seq of stream, if announced.
func (s *Streams) Segment(name string, seq uint64) (cid.Cid, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.streams[name]
	if st == nil {
		return cid.Undef, false
	}
	if seg := st.find(seq); seg != nil && !seg.open {
		return seg.CID, true
	}
	return cid.Undef, false
}

// Part returns the CID of part n of segment seq of stream, if listed.
func (s *Streams) Part(name string, seq uint64, n int) (cid.Cid, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.streams[name]
	if st == nil {
		return cid.Undef, false
	}
	if seg := st.find(seq); seg != nil && n < len(seg.listedParts()) {
		return seg.parts[n].CID, true
	}
	return cid.Undef, false
}

// Map reports whether c is the init segment of some segment of stream
// kept: the only CIDs its init URLs may name.
func (s *Streams) Map(name string, c cid.Cid) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.streams[name]
	if st == nil {
		return false
	}
	for _, seg := range st.segs {
		if seg.Map == c {
			return true
		}
	}
	return false
}

// Signed returns the signed announcements of stream's last n segments,
// their parts, and its end, for a peer joining late.
func (s *Streams) Signed(name string, n int) []Signed {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.streams[name]
	if st == nil {
		return nil
	}
	var out []Signed
	for _, seg := range st.segs[max(len(st.segs)-n, 0):] {
		if !seg.open {
			out = append(out, st.signed[seg.Seq])
		}
		for _, p := range seg.parts {
			if p != nil {
				out = append(out, p.signed)
			}
		}
	}
	if st.endSig != nil {
		out = append(out, *st.endSig)
	}
	return out
}

// Info is a stream's state, for status pages.
type Info struct {
	Stream  string `json:"stream"`
	LastSeq uint64 `json:"last_seq"`
	Ended   bool   `json:"ended"`
	// VOD is the event's directory, once it has ended.
	VOD string `json:"vod,omitempty"`
}

// List returns the streams known, by name.
func (s *Streams) List() []Info {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Info, 0, len(s.streams))
	for name, st := range s.streams {
		i := Info{Stream: name, Ended: st.end != nil}
		if st.end != nil {
			i.VOD = st.end.VOD.String()
		}
		if n := len(st.segs); n > 0 {
			i.LastSeq = st.segs[n-1].Seq
		}
		out = append(out, i)
	}
	sort.Slice(out, func(a, b int) bool { return out[a].Stream < out[b].Stream })
	return out
}

// Playlist options.
type PlaylistOptions struct {
	// Window is how many segments a live playlist lists.
	Window int
	// History lists every segment kept (EXT-X-PLAYLIST-TYPE:EVENT)
	// instead of a window.
	History bool
	// Delta renders a live playlist as a delta update, for a player
	// that asked for one (_HLS_skip).
	Delta bool
}

// Playlist renders stream's media playlist, listing segments as
// "{seq}{ext}" relative to it; ok is false while no segment of it is
// held.
func (s *Streams) Playlist(name string, o PlaylistOptions) (playlist []byte, target time.Duration, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.streams[name]
	if st == nil {
		return nil, 0, false
	}
	segs, _ := st.listed()
	ended := st.end != nil && len(segs) > 0 && segs[len(segs)-1].Seq == st.end.Seq
	if len(segs) == 0 {
		return nil, 0, false
	}
	if !o.History && !ended && len(segs) > o.Window {
		segs = segs[len(segs)-o.Window:]
	}
	list := make([]Announcement, len(segs))
	for i, seg := range segs {
		list[i] = seg.Announcement
	}
	kind := kindLive
	switch {
	case ended:
		kind = kindEnded
	case o.History:
		kind = kindEvent
	}
	ll := st.lowLatency(segs)
	if ll != nil {
		ll.reports = s.reports(name)
	}
	playlist, target = render(list, kind, ll, o.Delta)
	return playlist, target, true
}

// rendition is one rendition of a ladder as a multivariant playlist
// lists it.
type rendition struct {
	name string
	st   *stream
	segs []*segment // listed
}

// stalledAfter is how many target durations a rendition may go without
// an announcement while another of its ladder has them before it is taken
// for stopped: playlists stop offering it.
const stalledAfter = 3

// ladder returns the renditions of stream's ladder a viewer may switch
// to: those that list a segment and are not ended or stalled while
// another goes on; if none goes on, those that list a segment. The caller
// holds s.mu.
func (s *Streams) ladder(stream string) []rendition {
	base, _ := Rendition(stream)
	var all []rendition
	var freshest time.Time
	longest := 0.0
	for k := range MaxRenditions {
		name := RenditionName(base, k)
		st := s.streams[name]
		if st == nil {
			continue
		}
		segs, _ := st.listed()
		if len(segs) == 0 {
			continue
		}
		all = append(all, rendition{name: name, st: st, segs: segs})
		if st.end == nil && st.last.After(freshest) {
			freshest = st.last
		}
		longest = max(longest, segs[len(segs)-1].Duration)
	}
	stalled := freshest.Add(-time.Duration(stalledAfter * math.Ceil(longest) * float64(time.Second)))
	var going []rendition
	for _, r := range all {
		if r.st.end == nil && !r.st.last.Before(stalled) {
			going = append(going, r)
		}
	}
	if len(going) > 0 {
		return going
	}
	return all
}

// reports returns the rendition reports a low-latency playlist of stream
// carries: where every other rendition of its ladder stands. The caller
// holds s.mu.
func (s *Streams) reports(stream string) []renditionReport {
	var out []renditionReport
	for _, r := range s.ladder(stream) {
		if r.name == stream {
			continue
		}
		last := r.segs[len(r.segs)-1]
		rep := renditionReport{stream: r.name, msn: last.Seq, part: len(last.listedParts()) - 1}
		if c := r.st.cutting(); c != nil && len(c.listedParts()) > 0 {
			rep.msn, rep.part = c.Seq, len(c.listedParts())-1
		}
		out = append(out, rep)
	}
	return out
}

// Multivariant renders the multivariant playlist of stream's ladder
// (RFC 8216bis §4.4.6): each rendition with its peak and average
// bandwidth over the segments it lists, its codecs and its resolution. ok
// is false while no rendition lists a segment whose size was announced.
func (s *Streams) Multivariant(stream string) (playlist []byte, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var vs []variant
	for _, r := range s.ladder(stream) {
		v := variant{stream: r.name}
		var bytes uint64
		var secs float64
		for _, seg := range r.segs[max(len(r.segs)-bandwidthSegments, 0):] {
			if seg.Size == 0 {
				continue
			}
			v.peak = max(v.peak, int(math.Ceil(float64(seg.Size)*8/seg.Duration)))
			bytes += seg.Size
			secs += seg.Duration
		}
		if secs == 0 {
			continue
		}
		last := r.segs[len(r.segs)-1]
		v.average = int(math.Ceil(float64(bytes) * 8 / secs))
		v.codecs, v.width, v.height = last.Codecs, last.Width, last.Height
		vs = append(vs, v)
	}
	if len(vs) == 0 {
		return nil, false
	}
	return renderMultivariant(vs), true
}

// bandwidthSegments is how many of a rendition's last segments its
// bandwidth is measured over.
const bandwidthSegments = 32

// lowLatency returns the parts a playlist listing segs (the end of those
// listed) adds, or nil if the stream has none. The caller holds s.mu.
func (st *stream) lowLatency(segs []*segment) *lowLatency {
	last := segs[len(segs)-1]
	if last.PartTarget == 0 {
		return nil
	}
	ll := &lowLatency{partTarget: last.PartTarget, parts: map[uint64][]Announcement{}, next: last.Seq + 1}
	for _, seg := range segs[max(len(segs)-partsScanned, 0):] {
		if ps := seg.listedParts(); len(ps) > 0 {
			ll.parts[seg.Seq] = announcements(ps)
		}
	}
	if c := st.cutting(); c != nil {
		ll.cutting, ll.cut = &c.Announcement, announcements(c.listedParts())
	}
	return ll
}

// partsScanned is how many of the last segments a playlist looks at for
// parts: more than partsKept target durations hold.
const partsScanned = 32

// announcements returns the parts' announcements.
func announcements(ps []*part) []Announcement {
	out := make([]Announcement, len(ps))
	for i, p := range ps {
		out[i] = p.Announcement
	}
	return out
}

// Next is the media sequence number a blocking reload of stream may wait
// for: one past the last listed. ok is false when the stream has ended or
// lists nothing.
func (s *Streams) Next(name string) (next uint64, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.streams[name]
	if st == nil {
		return 0, false
	}
	segs, _ := st.listed()
	if len(segs) == 0 || st.end != nil && segs[len(segs)-1].Seq == st.end.Seq {
		return 0, false
	}
	return segs[len(segs)-1].Seq + 1, true
}

// errUnknown says a stream has never been announced.
var errUnknown = errors.New("no such live stream")

// Wait returns once stream lists segment seq, or, with part ≥ 0, part
// part of it (or a later one), or has ended, or ctx ends.
func (s *Streams) Wait(ctx context.Context, name string, seq uint64, part int) error {
	for {
		s.mu.Lock()
		st := s.streams[name]
		if st == nil {
			s.mu.Unlock()
			return errUnknown
		}
		done := st.end != nil || st.lists(seq, part)
		changed := st.changed
		s.mu.Unlock()
		if done {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// lists reports whether st lists segment seq whole or, with part ≥ 0, its
// part part, or anything after it. The caller holds s.mu.
func (st *stream) lists(seq uint64, part int) bool {
	segs, _ := st.listed()
	if len(segs) > 0 && segs[len(segs)-1].Seq >= seq {
		return true
	}
	c := st.cutting()
	return part >= 0 && c != nil && (c.Seq > seq || c.Seq == seq && len(c.listedParts()) > part)
}

// Last returns the highest sequence number announced for stream, and
// whether any was.
func (s *Streams) Last(name string) (uint64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.streams[name]
	if st == nil || len(st.segs) == 0 {
		return 0, false
	}
	return st.segs[len(st.segs)-1].Seq, true
}

// Announced returns when stream's last announcement arrived, or the zero
// time if none did.
func (s *Streams) Announced(name string) time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st := s.streams[name]; st != nil {
		return st.last
	}
	return time.Time{}
}

// Known reports whether stream was ever announced.
func (s *Streams) Known(name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.streams[name] != nil
}

// End returns the stream's VOD directory, once it has ended.
func (s *Streams) End(name string) (cid.Cid, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.streams[name]
	if st == nil || st.end == nil {
		return cid.Undef, false
	}
	return st.end.VOD, true
}
