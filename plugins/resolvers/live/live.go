// Package live is the pacman.resolvers.live module: GET
// {prefix}{stream}/index.m3u8 serves a live stream's playlist, built on
// this node from the verified announcements it relays, and
// {prefix}{stream}/{seq}.ts its segments (and {seq}.{part}.m4s its
// low-latency parts), which the node fetched as soon as they were
// announced; {prefix}{stream}/master.m3u8 is the multivariant playlist of
// a stream's ladder.
package live

import (
	"context"
	"fmt"
	"net/http"
	"path"
	"strconv"
	"strings"
	"time"

	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"
	"github.com/pacman-cdn/pacman/gateway"
	"github.com/pacman-cdn/pacman/live"
)

// segmentTTL is how long a segment may be cached: its URL never names
// other bytes.
const segmentTTL = 365 * 24 * time.Hour

// endedTTL is how long an ended event's playlist may be cached.
const endedTTL = 24 * time.Hour

// Options are a resolver's settings.
type Options struct {
	// Prefix is the URL path the streams are under, ending in "/".
	Prefix string
	// Playlist says how playlists are rendered.
	Playlist live.PlaylistOptions
	// MaxHold bounds how long a blocking playlist reload (_HLS_msn) is
	// held, in target durations; 3 per RFC 8216bis §6.2.5.2.
	MaxHold int
}

// Streams resolves live stream URLs over a relay's streams.
type Streams struct {
	relay *live.Relay
	o     Options
}

// New returns the resolver of o over relay.
func New(relay *live.Relay, o Options) *Streams {
	return &Streams{relay: relay, o: o}
}

// Resolve implements gateway.Resolver.
func (s *Streams) Resolve(r *http.Request) (gateway.Content, bool, error) {
	rest, ok := strings.CutPrefix(r.URL.Path, s.o.Prefix)
	if !ok {
		return gateway.Content{}, false, nil
	}
	name, file, ok := strings.Cut(rest, "/")
	if !ok || strings.Contains(file, "/") || !live.ValidName(name) {
		return gateway.Content{}, true, gateway.Errorf(http.StatusNotFound, "live URLs are "+s.o.Prefix+"{stream}/index.m3u8 (or master.m3u8, a ladder's) and the segments it lists")
	}
	// Only streams a trusted publisher announced, or the config lists,
	// are followed: a name nobody announced joins nothing and costs
	// nothing but this answer.
	if !s.relay.Streams().Known(name) {
		return gateway.Content{}, true, gateway.Errorf(http.StatusNotFound, fmt.Sprintf("live stream %s has not been announced here", name))
	}
	switch file {
	case "index.m3u8":
		return s.playlist(r, name)
	case "master.m3u8":
		return s.multivariant(name)
	}
	if c, ok := strings.CutPrefix(file, "init-"); ok {
		return s.initSegment(name, strings.TrimSuffix(c, ".mp4"))
	}
	base := strings.TrimSuffix(file, path.Ext(file))
	seqText, partText, isPart := strings.Cut(base, ".")
	seq, err := strconv.ParseUint(seqText, 10, 64)
	part, perr := strconv.Atoi(partText)
	if err != nil || isPart && (perr != nil || part < 0) {
		return gateway.Content{}, true, gateway.Errorf(http.StatusNotFound, fmt.Sprintf("%q is not a segment of stream %s", file, name))
	}
	if isPart {
		return s.part(r, name, seq, part)
	}
	c, ok := s.relay.Streams().Segment(name, seq)
	if ok {
		return gateway.Content{Root: c, TTL: segmentTTL}, true, nil
	}
	if vod, ended := s.relay.Streams().End(name); ended {
		// The recording holds every segment of an ended event, those
		// no longer in memory too (after a restart, or past the
		// history kept), under the names its playlist gives them.
		return gateway.Content{Root: vod, Segments: []string{file}, TTL: segmentTTL,
			Path: "/ipfs/" + vod.String() + "/" + file}, true, nil
	}
	return gateway.Content{}, true, gateway.Errorf(http.StatusNotFound, fmt.Sprintf("stream %s has no segment %d", name, seq))
}

// initSegment resolves an init segment (EXT-X-MAP) the stream's
// segments name: no other CID is served under the stream's URLs.
func (s *Streams) initSegment(name, text string) (gateway.Content, bool, error) {
	c, err := cid.Decode(text)
	if err != nil || !s.relay.Streams().Map(name, c) {
		return gateway.Content{}, true, gateway.Errorf(http.StatusNotFound, fmt.Sprintf("stream %s has no init segment %q", name, text))
	}
	return gateway.Content{Root: c, TTL: segmentTTL}, true, nil
}

// part resolves part n of segment seq. A part not listed yet, which a
// playlist's preload hint names, is held until it is (RFC 8216bis
// §6.2.5.3), for at most MaxHold target durations.
func (s *Streams) part(r *http.Request, name string, seq uint64, n int) (gateway.Content, bool, error) {
	streams := s.relay.Streams()
	c, ok := streams.Part(name, seq, n)
	if !ok {
		next, live := streams.Next(name)
		if !live || seq+1 < next || seq > next+1 {
			return gateway.Content{}, true, gateway.Errorf(http.StatusNotFound, fmt.Sprintf("stream %s has no part %d.%d", name, seq, n))
		}
		ctx, cancel := context.WithTimeout(r.Context(), s.hold(name))
		err := streams.Wait(ctx, name, seq, n)
		cancel()
		if c, ok = streams.Part(name, seq, n); !ok {
			if err != nil && r.Context().Err() == nil {
				return gateway.Content{}, true, gateway.Errorf(http.StatusServiceUnavailable, fmt.Sprintf("part %d.%d of %s did not come within %d target durations", seq, n, name, s.o.MaxHold))
			}
			return gateway.Content{}, true, gateway.Errorf(http.StatusNotFound, fmt.Sprintf("stream %s has no part %d.%d", name, seq, n))
		}
	}
	return gateway.Content{Root: c, TTL: segmentTTL}, true, nil
}

// hold is how long a blocking request for stream may be held: MaxHold
// target durations.
func (s *Streams) hold(name string) time.Duration {
	_, target, _ := s.relay.Streams().Playlist(name, s.o.Playlist)
	return time.Duration(s.o.MaxHold) * max(target, time.Second)
}

// playlist resolves a stream's playlist, holding a blocking reload until
// the segment it asks for is listed.
func (s *Streams) playlist(r *http.Request, name string) (gateway.Content, bool, error) {
	streams := s.relay.Streams()
	if vod, ended := streams.End(name); ended {
		// The event is over: its playlist is the recording's, which names
		// the segments as the live one did.
		return gateway.Content{Root: vod, Segments: []string{"index.m3u8"}, TTL: endedTTL,
			Path: "/ipfs/" + vod.String() + "/index.m3u8"}, true, nil
	}
	if msn := r.URL.Query().Get("_HLS_msn"); msn != "" {
		want, err := strconv.ParseUint(msn, 10, 64)
		if err != nil {
			return gateway.Content{}, true, gateway.Errorf(http.StatusBadRequest, "_HLS_msn must be a media sequence number")
		}
		part := -1
		if p := r.URL.Query().Get("_HLS_part"); p != "" {
			if part, err = strconv.Atoi(p); err != nil || part < 0 {
				return gateway.Content{}, true, gateway.Errorf(http.StatusBadRequest, "_HLS_part must be a part index")
			}
		}
		if next, ok := streams.Next(name); ok {
			// §6.2.5.2: more than two segments ahead of the last is
			// a client error.
			if want > next+1 {
				return gateway.Content{}, true, gateway.Errorf(http.StatusBadRequest, fmt.Sprintf("_HLS_msn %d is more than two segments past the last, %d", want, next-1))
			}
			ctx, cancel := context.WithTimeout(r.Context(), s.hold(name))
			err := streams.Wait(ctx, name, want, part)
			cancel()
			if err != nil && r.Context().Err() == nil {
				return gateway.Content{}, true, gateway.Errorf(http.StatusServiceUnavailable, fmt.Sprintf("segment %d of %s did not come within %d target durations", want, name, s.o.MaxHold))
			}
		}
	} else if r.URL.Query().Get("_HLS_part") != "" {
		return gateway.Content{}, true, gateway.Errorf(http.StatusBadRequest, "_HLS_part needs _HLS_msn")
	}
	o := s.o.Playlist
	switch skip := r.URL.Query().Get("_HLS_skip"); skip {
	case "":
	case "YES", "v2":
		// §6.2.5.1: a delta update; v2 skips date ranges too, and
		// these playlists have none.
		o.Delta = true
	default:
		return gateway.Content{}, true, gateway.Errorf(http.StatusBadRequest, "_HLS_skip is YES or v2")
	}
	data, target, ok := streams.Playlist(name, o)
	if !ok {
		return gateway.Content{}, true, gateway.Errorf(http.StatusNotFound, fmt.Sprintf("live stream %s has no segment here yet", name))
	}
	// A player reloads a live playlist about every target duration:
	// caches may keep it half of that.
	return inMemory(data, max(target/2, time.Second))
}

// multivariant resolves the multivariant playlist of a stream's ladder.
func (s *Streams) multivariant(name string) (gateway.Content, bool, error) {
	data, ok := s.relay.Streams().Multivariant(name)
	if !ok {
		return gateway.Content{}, true, gateway.Errorf(http.StatusNotFound, fmt.Sprintf("live stream %s has no rendition with a segment of known size here yet (a multivariant playlist is made for streams published with ffmpeg's DASH muxer)", name))
	}
	// Renditions come and go seldom; a player reads it once.
	return inMemory(data, multivariantTTL)
}

// multivariantTTL is how long a multivariant playlist may be cached.
const multivariantTTL = 2 * time.Second

// inMemory is content served from memory, rendered afresh on each
// request and never stored, cacheable for ttl.
func inMemory(data []byte, ttl time.Duration) (gateway.Content, bool, error) {
	c, err := cid.V1Builder{Codec: cid.Raw, MhType: mh.SHA2_256}.Sum(data)
	if err != nil {
		return gateway.Content{}, true, fmt.Errorf("naming a playlist: %w", err)
	}
	blk, err := blocks.NewBlockWithCid(data, c)
	if err != nil {
		return gateway.Content{}, true, fmt.Errorf("naming a playlist: %w", err)
	}
	return gateway.Content{Root: c, TTL: ttl, Block: blk}, true, nil
}

// Interface guard.
var _ gateway.Resolver = (*Streams)(nil)
