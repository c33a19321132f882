package live

import (
	"bufio"
	"bytes"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// playlistKind is what a rendered playlist promises.
type playlistKind int

const (
	kindLive  playlistKind = iota // a sliding window, reloaded
	kindEvent                     // the whole event so far, growing
	kindEnded                     // the whole event, ended
	kindVOD                       // the event's recording
)

// render writes the media playlist of segs (ascending Seq), naming each
// segment "{seq}{ext}", and returns it with its target duration.
func render(segs []Announcement, kind playlistKind) ([]byte, time.Duration) {
	longest := 0.0
	for _, seg := range segs {
		longest = max(longest, seg.Duration)
	}
	td := max(int(math.Ceil(longest)), 1)
	var b bytes.Buffer
	b.WriteString("#EXTM3U\n#EXT-X-VERSION:6\n")
	fmt.Fprintf(&b, "#EXT-X-TARGETDURATION:%d\n", td)
	switch kind {
	case kindLive, kindEvent:
		// RFC 8216bis §4.4.3.8: a blocking reload (_HLS_msn) is held
		// until the segment exists.
		b.WriteString("#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES\n")
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
	for i, seg := range segs {
		if i > 0 && (seg.Discontinuity || seg.Seq != segs[i-1].Seq+1) {
			b.WriteString("#EXT-X-DISCONTINUITY\n")
		}
		if !seg.ProgramDateTime.IsZero() {
			fmt.Fprintf(&b, "#EXT-X-PROGRAM-DATE-TIME:%s\n", seg.ProgramDateTime.UTC().Format("2006-01-02T15:04:05.000Z"))
		}
		fmt.Fprintf(&b, "#EXTINF:%.3f,\n%s\n", seg.Duration, SegmentName(seg))
	}
	if kind == kindEnded || kind == kindVOD {
		b.WriteString("#EXT-X-ENDLIST\n")
	}
	return b.Bytes(), time.Duration(td) * time.Second
}

// SegmentName is the file name a segment is listed and served under.
func SegmentName(a Announcement) string { return strconv.FormatUint(a.Seq, 10) + a.Ext }

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
