package live

import (
	"bufio"
	"bytes"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/ipfs/go-cid"
)

// playlistKind is what a rendered playlist promises.
type playlistKind int

const (
	kindLive  playlistKind = iota // a sliding window, reloaded
	kindEvent                     // the whole event so far, growing
	kindEnded                     // the whole event, ended
	kindVOD                       // the event's recording
)

// lowLatency is what a low-latency (LL-HLS) live playlist adds to its
// segments: the parts of the last few, and of the one being cut.
type lowLatency struct {
	partTarget float64
	// parts are the listed parts of segments, by Seq.
	parts map[uint64][]Announcement
	// cutting is the segment being cut, if any, and cut its parts listed.
	cutting *Announcement
	cut     []Announcement
	// next is the media sequence number after the last segment, whose
	// first part a preload hint names when none is being cut.
	next uint64
	// reports say where the other renditions of the stream's ladder
	// stand.
	reports []renditionReport
}

// renditionReport is an EXT-X-RENDITION-REPORT (RFC 8216bis §4.4.5.4):
// the last part, or segment, another rendition lists.
type renditionReport struct {
	stream string
	msn    uint64
	part   int // -1 if the segment has no parts listed
}

// variant is one rendition a multivariant playlist lists.
type variant struct {
	stream        string
	peak, average int // bits per second
	codecs        string
	width, height int
}

// renditionURI is the URI a playlist of the ladder names rendition
// stream's media playlist by: each rendition's playlist is in a directory
// of its own, next to the others'.
func renditionURI(stream string) string { return "../" + stream + "/index.m3u8" }

// renderMultivariant writes the multivariant playlist of vs (RFC 8216bis
// §4.4.6.2).
func renderMultivariant(vs []variant) []byte {
	var b bytes.Buffer
	b.WriteString("#EXTM3U\n#EXT-X-VERSION:6\n")
	for _, v := range vs {
		fmt.Fprintf(&b, "#EXT-X-STREAM-INF:BANDWIDTH=%d,AVERAGE-BANDWIDTH=%d", v.peak, v.average)
		if v.codecs != "" {
			fmt.Fprintf(&b, ",CODECS=\"%s\"", v.codecs)
		}
		if v.width > 0 && v.height > 0 {
			fmt.Fprintf(&b, ",RESOLUTION=%dx%d", v.width, v.height)
		}
		fmt.Fprintf(&b, "\n%s\n", renditionURI(v.stream))
	}
	return b.Bytes()
}

// minPartHoldBack is the least PART-HOLD-BACK, in seconds. At three parts
// of 0.333 s, 1 s, hls.js in Chromium stalled in one of three 25 s runs
// through an edge (on two cores that also ran the encoder and both
// players): it plays as close to live as the hold-back lets it, with
// under a second of media buffered.
const minPartHoldBack = 1.5

// partsKept is how many target durations from the end segments list
// their parts: RFC 8216bis §4.4.4.9 asks for at least the last three.
const partsKept = 3

// skipBoundary is a live playlist's Skip Boundary (CAN-SKIP-UNTIL), in
// target durations: the least RFC 8216bis §4.4.3.8 allows.
const skipBoundary = 6

// render writes the media playlist of segs (ascending Seq), naming each
// segment "{seq}{ext}" and each part "{seq}.{part}{ext}", and returns it
// with its target duration. ll, for a low-latency live stream, adds the
// parts (RFC 8216bis §4.4.4.9, §4.4.5.2). delta makes a live playlist a
// delta update (§6.2.5.1, _HLS_skip): the segments older than the skip
// boundary are replaced by one EXT-X-SKIP.
func render(segs []Announcement, kind playlistKind, ll *lowLatency, delta bool) ([]byte, time.Duration) {
	longest := 0.0
	for _, seg := range segs {
		longest = max(longest, seg.Duration)
	}
	td := max(int(math.Ceil(longest)), 1)
	if kind == kindEnded || kind == kindVOD {
		ll = nil
	}
	growing := kind == kindLive || kind == kindEvent
	skipped := 0
	if delta && growing {
		// §6.2.5.1: what lies more than the skip boundary before the
		// end is skipped, the segment crossing it kept.
		for left := float64(skipBoundary * td); skipped < len(segs) && left > 0; {
			left -= segs[len(segs)-1-skipped].Duration
			skipped++
		}
		skipped = len(segs) - skipped
	}
	var b bytes.Buffer
	b.WriteString("#EXTM3U\n")
	if skipped > 0 {
		b.WriteString("#EXT-X-VERSION:9\n") // §7: EXT-X-SKIP needs version 9
	} else {
		b.WriteString("#EXT-X-VERSION:6\n")
	}
	fmt.Fprintf(&b, "#EXT-X-TARGETDURATION:%d\n", td)
	if growing {
		// §4.4.3.8: a blocking reload (_HLS_msn) is held until the
		// segment exists, and a delta update skips what lies past
		// the skip boundary.
		fmt.Fprintf(&b, "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL=%d", skipBoundary*td)
		if ll != nil {
			// PART-HOLD-BACK at least twice the part target; three
			// times, as Apple recommends, rides out one late part,
			// and never less than minPartHoldBack.
			fmt.Fprintf(&b, ",PART-HOLD-BACK=%.3f", max(partsKept*ll.partTarget, minPartHoldBack))
		}
		b.WriteByte('\n')
	}
	if ll != nil {
		fmt.Fprintf(&b, "#EXT-X-PART-INF:PART-TARGET=%.3f\n", ll.partTarget)
	}
	switch kind {
	case kindEvent, kindEnded:
		b.WriteString("#EXT-X-PLAYLIST-TYPE:EVENT\n")
	case kindVOD:
		b.WriteString("#EXT-X-PLAYLIST-TYPE:VOD\n")
	}
	if len(segs) > 0 {
		fmt.Fprintf(&b, "#EXT-X-MEDIA-SEQUENCE:%d\n", segs[0].Seq)
	}
	if skipped > 0 {
		fmt.Fprintf(&b, "#EXT-X-SKIP:SKIPPED-SEGMENTS=%d\n", skipped)
	}
	// Parts are listed for the segments that start within the last
	// partsKept target durations.
	withParts := len(segs)
	if ll != nil {
		for left := float64(partsKept * td); withParts > 0 && left > 0; withParts-- {
			left -= segs[withParts-1].Duration
		}
	}
	var mapped cid.Cid
	head := func(seg Announcement, after *Announcement) {
		if after != nil && (seg.Discontinuity || seg.Seq != after.Seq+1) {
			b.WriteString("#EXT-X-DISCONTINUITY\n")
		}
		if seg.Map.Defined() && seg.Map != mapped {
			fmt.Fprintf(&b, "#EXT-X-MAP:URI=\"%s\"\n", MapName(seg.Map))
			mapped = seg.Map
		}
		if !seg.ProgramDateTime.IsZero() {
			fmt.Fprintf(&b, "#EXT-X-PROGRAM-DATE-TIME:%s\n", seg.ProgramDateTime.UTC().Format("2006-01-02T15:04:05.000Z"))
		}
	}
	partLines := func(parts []Announcement) {
		for _, p := range parts {
			fmt.Fprintf(&b, "#EXT-X-PART:DURATION=%.5f,URI=\"%s\"", p.Duration, SegmentName(p))
			if p.Independent {
				b.WriteString(",INDEPENDENT=YES")
			}
			b.WriteByte('\n')
		}
	}
	for i, seg := range segs {
		if i < skipped {
			continue
		}
		var after *Announcement
		if i > 0 {
			after = &segs[i-1]
		}
		head(seg, after)
		if i >= withParts {
			partLines(ll.parts[seg.Seq])
		}
		fmt.Fprintf(&b, "#EXTINF:%.3f,\n%s\n", seg.Duration, SegmentName(seg))
	}
	if ll != nil {
		hint := Announcement{Seq: ll.next, IsPart: true, Ext: ".m4s"}
		if c := ll.cutting; c != nil {
			var after *Announcement
			if len(segs) > 0 {
				after = &segs[len(segs)-1]
			}
			head(*c, after)
			partLines(ll.cut)
			hint = Announcement{Seq: c.Seq, IsPart: true, Part: len(ll.cut), Ext: c.Ext}
			cut := 0.0
			for _, p := range ll.cut {
				cut += p.Duration
			}
			if cut > float64(td)-ll.partTarget {
				// Less than a part is left of the target duration:
				// the next part is most likely the next segment's
				// first. A part hinted that never comes is answered
				// 404 once its segment is whole, which hls.js takes
				// for a load error.
				hint = Announcement{Seq: c.Seq + 1, IsPart: true, Ext: c.Ext}
			}
		}
		// §4.4.5.3: the part the encoder is cutting now; its request
		// is held until it is listed.
		fmt.Fprintf(&b, "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"%s\"\n", SegmentName(hint))
		for _, r := range ll.reports {
			fmt.Fprintf(&b, "#EXT-X-RENDITION-REPORT:URI=\"%s\",LAST-MSN=%d", renditionURI(r.stream), r.msn)
			if r.part >= 0 {
				fmt.Fprintf(&b, ",LAST-PART=%d", r.part)
			}
			b.WriteByte('\n')
		}
	}
	if kind == kindEnded || kind == kindVOD {
		b.WriteString("#EXT-X-ENDLIST\n")
	}
	return b.Bytes(), time.Duration(td) * time.Second
}

// SegmentName is the file name a segment is listed and served under:
// "{seq}{ext}", or "{seq}.{part}{ext}" for a part.
func SegmentName(a Announcement) string {
	if a.IsPart {
		return strconv.FormatUint(a.Seq, 10) + "." + strconv.Itoa(a.Part) + a.Ext
	}
	return strconv.FormatUint(a.Seq, 10) + a.Ext
}

// MapName is the file name an init segment is listed and served under.
func MapName(c cid.Cid) string { return "init-" + c.String() + ".mp4" }

// encoderEntry is one segment of an encoder's playlist.
type encoderEntry struct {
	seq           uint64 // the encoder's media sequence number
	uri           string
	duration      float64
	discontinuity bool
	pdt           time.Time
}

// encoderPlaylist is what an encoder's media playlist says.
type encoderPlaylist struct {
	entries []encoderEntry
	ended   bool
}

// maxEncoderEntries bounds the segments read from one encoder playlist.
const maxEncoderEntries = 4096

// maxEncoderSeq bounds an encoder's media sequence numbers, far above any
// real one, so that they never wrap.
const maxEncoderSeq = 1 << 53

// parseEncoderPlaylist reads an HLS media playlist as encoders write it
// (RFC 8216 §4): the tags that matter to a relay, and each segment's URI.
func parseEncoderPlaylist(data []byte) (encoderPlaylist, error) {
	var p encoderPlaylist
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 4096), 64<<10)
	var seq uint64
	var next encoderEntry
	haveInf, first := false, true
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if first {
			if line != "#EXTM3U" {
				return p, fmt.Errorf("not an HLS playlist: the first line is not #EXTM3U")
			}
			first = false
			continue
		}
		tag, val, _ := strings.Cut(line, ":")
		switch {
		case line == "":
		case tag == "#EXT-X-MEDIA-SEQUENCE":
			if len(p.entries) > 0 {
				// RFC 8216 §4.3.3.2: it must come before the first segment;
				// a later one would number two segments alike.
				return p, fmt.Errorf("#EXT-X-MEDIA-SEQUENCE after the first segment")
			}
			n, err := strconv.ParseUint(val, 10, 64)
			if err != nil || n > maxEncoderSeq {
				return p, fmt.Errorf("bad #EXT-X-MEDIA-SEQUENCE %q", val)
			}
			seq = n
		case tag == "#EXTINF":
			d, _, _ := strings.Cut(val, ",")
			f, err := strconv.ParseFloat(strings.TrimSpace(d), 64)
			if err != nil || f <= 0 || f > 60 {
				return p, fmt.Errorf("bad #EXTINF %q: a segment lasts more than 0 and at most 60 s", val)
			}
			next.duration, haveInf = f, true
		case tag == "#EXT-X-DISCONTINUITY":
			next.discontinuity = true
		case tag == "#EXT-X-PROGRAM-DATE-TIME":
			if t, err := time.Parse(time.RFC3339Nano, val); err == nil {
				next.pdt = t
			} else if t, err := time.Parse("2006-01-02T15:04:05.999999999Z0700", val); err == nil {
				next.pdt = t
			}
		case tag == "#EXT-X-ENDLIST":
			p.ended = true
		case strings.HasPrefix(line, "#"):
			// Other tags (and comments) say nothing a relay uses.
		default:
			if !haveInf {
				return p, fmt.Errorf("segment %q has no #EXTINF", line)
			}
			if len(p.entries) == maxEncoderEntries {
				return p, fmt.Errorf("more than %d segments in one playlist", maxEncoderEntries)
			}
			next.seq, next.uri = seq, line
			p.entries = append(p.entries, next)
			seq++
			next, haveInf = encoderEntry{}, false
		}
	}
	if err := sc.Err(); err != nil {
		return p, fmt.Errorf("reading the playlist: %w", err)
	}
	if first {
		return p, fmt.Errorf("empty playlist")
	}
	return p, nil
}
