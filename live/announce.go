// Package live relays live HLS events: a publisher imports each segment an
// encoder PUTs and announces it, signed with its node key, on a gossipsub
// topic; every edge that trusts the key checks the announcement, fetches
// the segment at once and builds the event's playlist itself, holding
// blocking playlist reloads (LL-HLS) until the next segment is there.
package live

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

// validName is a stream name: it goes into topics, URLs and file names. A
// rendition of a ladder past the first is "{stream}.{k}".
var validName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}(\.[1-7])?$`)

// ValidName reports whether name may name a stream, or a rendition of
// one.
func ValidName(name string) bool { return validName.MatchString(name) }

// Publishable reports whether an encoder may publish under name: a
// stream's name, not one the relay gives a rendition.
func Publishable(name string) bool { return ValidName(name) && !strings.Contains(name, ".") }

// MaxRenditions bounds the renditions of one stream's ladder.
const MaxRenditions = 8

// RenditionName is the name rendition k of stream is relayed under:
// stream itself for the first, "{stream}.{k}" for the others.
func RenditionName(stream string, k int) string {
	if k == 0 {
		return stream
	}
	return stream + "." + strconv.Itoa(k)
}

// Rendition splits a name RenditionName made into its stream and
// rendition.
func Rendition(name string) (stream string, k int) {
	if base, n, ok := strings.Cut(name, "."); ok {
		if k, err := strconv.Atoi(n); err == nil {
			return base, k
		}
	}
	return name, 0
}

// validCodecs is what an announcement may say a segment's codecs are: it
// goes into a playlist's quoted CODECS attribute.
var validCodecs = regexp.MustCompile(`^[A-Za-z0-9.]{0,64}$`)

// maxDimension bounds a video's width and height in pixels.
const maxDimension = 16384

// Announcement is what a publisher says of a stream: a segment, or the end
// of the event.
type Announcement struct {
	Stream string `json:"stream"`
	// Seq is the segment's media sequence number: it only grows, across
	// encoder and publisher restarts.
	Seq uint64 `json:"seq"`
	// CID is the segment's UnixFS file.
	CID cid.Cid `json:"cid"`
	// Duration is the segment's length in seconds.
	Duration float64 `json:"duration"`
	// Ext is the segment's file extension, ".ts" or ".m4s".
	Ext string `json:"ext"`
	// Discontinuity marks a segment after which timestamps or encoding
	// change: the encoder restarted.
	Discontinuity bool `json:"discontinuity,omitempty"`
	// ProgramDateTime is the wall-clock time of the segment's first
	// frame: the encoder's, or else its upload's end less its duration.
	ProgramDateTime time.Time `json:"program_date_time,omitzero"`
	// At is when the publisher announced it; old announcements replayed
	// later are refused by it.
	At time.Time `json:"at"`
	// IsPart makes this a part of segment Seq (LL-HLS EXT-X-PART), cut
	// from it as the encoder uploaded it: Part is its index in the
	// segment, from 0, and CID, Duration and Ext are the part's. The
	// segment is announced once whole, its file made of its parts'.
	IsPart bool `json:"is_part,omitempty"`
	Part   int  `json:"part,omitempty"`
	// Independent: the part starts with a sync sample, where a player
	// may start decoding.
	Independent bool `json:"independent,omitempty"`
	// PartTarget is a low-latency stream's part target in seconds, on
	// its parts and segments: no part of it lasts longer.
	PartTarget float64 `json:"part_target,omitempty"`
	// Map is the fMP4 init segment (EXT-X-MAP) an .m4s segment or part
	// is decoded with.
	Map cid.Cid `json:"map,omitzero"`
	// Size is a segment's length in bytes, for the bandwidth a
	// multivariant playlist gives its rendition.
	Size uint64 `json:"size,omitempty"`
	// Codecs (RFC 6381) and Width and Height in pixels say what a
	// segment holds, where its init segment told the publisher.
	Codecs string `json:"codecs,omitempty"`
	Width  int    `json:"width,omitempty"`
	Height int    `json:"height,omitempty"`
	// End, with VOD, ends the event: VOD is the directory holding its
	// playlist and every segment. Seq is then the last segment's.
	End bool    `json:"end,omitempty"`
	VOD cid.Cid `json:"vod,omitzero"`
}

// Signed is an announcement as it travels: its JSON, the publisher's peer
// ID and the publisher's signature of the JSON.
type Signed struct {
	Payload []byte  `json:"payload"`
	From    peer.ID `json:"from"`
	Sig     []byte  `json:"sig"`
}

// Sign encodes a and signs it with key.
func Sign(key crypto.PrivKey, a Announcement) (Signed, error) {
	payload, err := json.Marshal(a)
	if err != nil {
		return Signed{}, fmt.Errorf("encoding announcement: %w", err)
	}
	from, err := peer.IDFromPrivateKey(key)
	if err != nil {
		return Signed{}, fmt.Errorf("deriving the publisher's peer ID: %w", err)
	}
	sig, err := key.Sign(payload)
	if err != nil {
		return Signed{}, fmt.Errorf("signing announcement: %w", err)
	}
	return Signed{Payload: payload, From: from, Sig: sig}, nil
}

// MaxSeq is the highest sequence number an announcement may carry: a
// segment every 0.1 s for 28 million years, and far enough from 2⁶⁴ that
// the next number, and a player's _HLS_msn past it, never overflow.
const MaxSeq = 1 << 53

const (
	// maxPartTarget bounds a stream's part target, in seconds: parts are
	// a fraction of a segment, which lasts at most 60 s.
	maxPartTarget = 10
	// maxParts bounds the parts of one segment.
	maxParts = 256
)

// Errors of Verify and Streams.Accept; each is counted apart.
var (
	ErrUntrusted = errors.New("announcement from a key not trusted")
	ErrForged    = errors.New("announcement signature does not verify")
	ErrMalformed = errors.New("announcement is malformed")
	ErrStale     = errors.New("announcement is too old")
	ErrKnown     = errors.New("announcement already known")
)

// Verify checks that s comes from a trusted key and is signed by it, and
// returns the announcement.
func Verify(s Signed, trusted func(peer.ID) bool) (Announcement, error) {
	if !trusted(s.From) {
		return Announcement{}, fmt.Errorf("%w: %s", ErrUntrusted, s.From)
	}
	pub, err := s.From.ExtractPublicKey()
	if err != nil {
		return Announcement{}, fmt.Errorf("%w: no public key in %s: %v", ErrForged, s.From, err)
	}
	ok, err := pub.Verify(s.Payload, s.Sig)
	if err != nil || !ok {
		return Announcement{}, fmt.Errorf("%w: from %s", ErrForged, s.From)
	}
	var a Announcement
	if err := json.Unmarshal(s.Payload, &a); err != nil {
		return Announcement{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	switch {
	case !ValidName(a.Stream):
		return a, fmt.Errorf("%w: stream name %q", ErrMalformed, a.Stream)
	case a.End && !a.VOD.Defined():
		return a, fmt.Errorf("%w: an end without its VOD", ErrMalformed)
	case !a.End && (!a.CID.Defined() || a.Duration <= 0 || a.Duration > 60 || (a.Ext != ".ts" && a.Ext != ".m4s")):
		return a, fmt.Errorf("%w: segment %d of %s", ErrMalformed, a.Seq, a.Stream)
	case a.Seq > MaxSeq:
		return a, fmt.Errorf("%w: sequence number %d is past %d", ErrMalformed, a.Seq, uint64(MaxSeq))
	case a.PartTarget < 0 || a.PartTarget > maxPartTarget:
		return a, fmt.Errorf("%w: part target %v s of %s", ErrMalformed, a.PartTarget, a.Stream)
	case !validCodecs.MatchString(a.Codecs) || a.Width < 0 || a.Width > maxDimension || a.Height < 0 || a.Height > maxDimension:
		return a, fmt.Errorf("%w: codecs %q, %dx%d of segment %d of %s", ErrMalformed, a.Codecs, a.Width, a.Height, a.Seq, a.Stream)
	case a.IsPart && (a.PartTarget == 0 || a.Duration > a.PartTarget || a.Part < 0 || a.Part >= maxParts || a.Ext != ".m4s" || !a.Map.Defined()):
		return a, fmt.Errorf("%w: part %d of segment %d of %s", ErrMalformed, a.Part, a.Seq, a.Stream)
	}
	return a, nil
}
