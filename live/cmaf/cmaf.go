// Package cmaf cuts CMAF (fragmented MP4) segments into their fragments as
// they arrive, and times each from its track run and the init segment.
//
// A CMAF segment is a run of fragments, each a moof box and the mdat it
// describes, after an optional styp. An encoder writing low-latency output
// (ffmpeg's DASH muxer with -frag_duration) sends each fragment as soon as
// it is coded, so a publisher can cut the upload into parts (LL-HLS
// EXT-X-PART) at moof boundaries as the bytes arrive.
package cmaf

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// maxBoxHeader is the most a box header takes: size, type and a 64-bit
// size.
const maxBoxHeader = 16

// Track is what an init segment says of the one track a CMAF segment
// carries: its timescale and its default sample duration (trex), and what
// a multivariant playlist says of it.
type Track struct {
	timescale       uint32
	defaultDuration uint32
	// Codec is the track's codec as RFC 6381 names it (an HLS CODECS
	// entry), for H.264 video ("avc1.64001f"); "" for others.
	Codec string
	// Width and Height are a video track's size in pixels; 0 for others.
	Width, Height int
	// Handler is the track's kind as its hdlr box says: "vide" for
	// video, "soun" for audio.
	Handler string
}

// ParseInit reads an fMP4 init segment (ftyp, moov) for its track's
// timescale and default sample duration. Only single-track segments are
// taken, as CMAF requires: each rendition is its own stream.
func ParseInit(data []byte) (Track, error) {
	var t Track
	moov, err := child(data, "moov")
	if err != nil {
		return t, fmt.Errorf("init segment: %w", err)
	}
	if n := count(moov, "trak"); n != 1 {
		return t, fmt.Errorf("init segment: %d tracks; a CMAF segment carries one", n)
	}
	trak, _ := child(moov, "trak")
	mdia, err := child(trak, "mdia")
	if err != nil {
		return t, fmt.Errorf("init segment: %w", err)
	}
	if hdlr, err := child(mdia, "hdlr"); err == nil && len(hdlr) >= 12 {
		// Full box: version and flags, pre_defined, then the type.
		t.Handler = string(hdlr[8:12])
	}
	mdhd, err := child(mdia, "mdhd")
	if err != nil || len(mdhd) < 4 {
		return t, errors.New("init segment: no media header (mdhd)")
	}
	// Full box: version and flags, then creation and modification times
	// of 4 bytes (version 0) or 8 (version 1), then the timescale.
	off := 4 + 8
	if mdhd[0] == 1 {
		off = 4 + 16
	}
	if len(mdhd) < off+4 {
		return t, errors.New("init segment: short media header (mdhd)")
	}
	t.timescale = binary.BigEndian.Uint32(mdhd[off:])
	if t.timescale == 0 {
		return t, errors.New("init segment: timescale 0")
	}
	if minf, err := child(mdia, "minf"); err == nil {
		if stbl, err := child(minf, "stbl"); err == nil {
			if stsd, err := child(stbl, "stsd"); err == nil && len(stsd) >= 8 {
				t.describe(stsd[8:]) // version and flags, entry count
			}
		}
	}
	if mvex, err := child(moov, "mvex"); err == nil {
		// trex: version and flags, track ID, description index, then
		// the default sample duration.
		if trex, err := child(mvex, "trex"); err == nil && len(trex) >= 16 {
			t.defaultDuration = binary.BigEndian.Uint32(trex[12:])
		}
	}
	return t, nil
}

// visualSampleEntry is the length of a VisualSampleEntry's fields
// (ISO/IEC 14496-12 §12.1.3) before its boxes; width and height are at 24.
const visualSampleEntry = 78

// describe reads the codec and size of an H.264 track from the first
// sample entry of its stsd box, entries. Other codecs are left unnamed: a
// playlist may omit what it cannot say exactly.
func (t *Track) describe(entries []byte) {
	typ, entry, _, err := nextBox(entries)
	if err != nil || (typ != "avc1" && typ != "avc3") || len(entry) < visualSampleEntry {
		return
	}
	avcC, err := child(entry[visualSampleEntry:], "avcC")
	if err != nil || len(avcC) < 4 {
		return
	}
	// AVCDecoderConfigurationRecord: version, then profile,
	// compatibility and level, which RFC 6381 §3.3 writes in hex.
	t.Codec = fmt.Sprintf("%s.%02x%02x%02x", typ, avcC[1], avcC[2], avcC[3])
	t.Width = int(binary.BigEndian.Uint16(entry[24:]))
	t.Height = int(binary.BigEndian.Uint16(entry[26:]))
}

// child returns the payload of the first box of type typ in data, a run
// of boxes.
func child(data []byte, typ string) ([]byte, error) {
	for len(data) > 0 {
		name, payload, rest, err := nextBox(data)
		if err != nil {
			return nil, err
		}
		if name == typ {
			return payload, nil
		}
		data = rest
	}
	return nil, fmt.Errorf("no %s box", typ)
}

// count returns how many boxes of type typ the run data holds.
func count(data []byte, typ string) int {
	n := 0
	for len(data) > 0 {
		name, _, rest, err := nextBox(data)
		if err != nil {
			return n
		}
		if name == typ {
			n++
		}
		data = rest
	}
	return n
}

// nextBox splits the first box off data.
func nextBox(data []byte) (typ string, payload, rest []byte, err error) {
	size, hdr, typ, err := boxHeader(data)
	if err != nil {
		return "", nil, nil, err
	}
	if size > uint64(len(data)) {
		return "", nil, nil, fmt.Errorf("%s box of %d bytes overruns its parent", typ, size)
	}
	return typ, data[hdr:size], data[size:], nil
}

// boxHeader reads a box's size (header included), header length and type.
func boxHeader(b []byte) (size uint64, hdr int, typ string, err error) {
	if len(b) < 8 {
		return 0, 0, "", io.ErrUnexpectedEOF
	}
	size, hdr, typ = uint64(binary.BigEndian.Uint32(b)), 8, string(b[4:8])
	switch size {
	case 0:
		return 0, 0, typ, fmt.Errorf("%s box runs to the end of the file, which a stream does not have", typ)
	case 1:
		if len(b) < 16 {
			return 0, 0, typ, io.ErrUnexpectedEOF
		}
		size, hdr = binary.BigEndian.Uint64(b[8:]), 16
	}
	if size < uint64(hdr) {
		return 0, 0, typ, fmt.Errorf("%s box of %d bytes is shorter than its header", typ, size)
	}
	return size, hdr, typ, nil
}

// Fragment is one fragment as cut from a segment: its bytes (the moof,
// its mdat and any boxes before them), its length in seconds, and whether
// it starts with a sync sample, where a player may start decoding.
type Fragment struct {
	Data        []byte
	Duration    float64
	Independent bool
}

// Reader cuts a CMAF segment, read as it arrives, into fragments.
type Reader struct {
	r     *bufio.Reader
	track Track
	max   int64 // the most bytes one fragment may have
	read  int64 // bytes of the segment read so far
	limit int64 // the most bytes the segment may have
}

// NewReader returns a Reader of the segment r of track t, refusing a
// fragment of more than maxFragment bytes and a segment of more than
// maxSegment (ErrTooBig).
func NewReader(r io.Reader, t Track, maxFragment, maxSegment int64) *Reader {
	return &Reader{r: bufio.NewReaderSize(r, 64<<10), track: t, max: maxFragment, limit: maxSegment}
}

// ErrTooBig says a segment passed its size limit.
var ErrTooBig = errors.New("segment too big")

// Next returns the next fragment, or io.EOF after the last.
func (f *Reader) Next() (Fragment, error) {
	var frag Fragment
	var moof []byte
	for {
		hdr, err := f.r.Peek(8)
		if len(hdr) == 0 && errors.Is(err, io.EOF) {
			if len(frag.Data) > 0 {
				return frag, errors.New("the segment ends inside a fragment (no mdat after its moof)")
			}
			return frag, io.EOF
		}
		if len(hdr) < 8 {
			return frag, fmt.Errorf("the segment ends inside a box header: %w", io.ErrUnexpectedEOF)
		}
		if binary.BigEndian.Uint32(hdr) == 1 {
			if hdr, err = f.r.Peek(maxBoxHeader); len(hdr) < maxBoxHeader {
				return frag, fmt.Errorf("the segment ends inside a box header: %w", io.ErrUnexpectedEOF)
			}
		}
		size, _, typ, err := boxHeader(hdr)
		if err != nil {
			return frag, err
		}
		// Compared unsigned: a 64-bit box size can pass any int64.
		if size > uint64(f.max-int64(len(frag.Data))) {
			return frag, fmt.Errorf("a fragment of more than %d bytes", f.max)
		}
		if size > uint64(f.limit-f.read) {
			return frag, ErrTooBig
		}
		start := len(frag.Data)
		frag.Data = append(frag.Data, make([]byte, size)...)
		if _, err := io.ReadFull(f.r, frag.Data[start:]); err != nil {
			return frag, fmt.Errorf("reading a %s box: %w", typ, err)
		}
		f.read += int64(size)
		switch typ {
		case "moof":
			if moof != nil {
				return frag, errors.New("two moof boxes without an mdat between them")
			}
			moof = frag.Data[start+8 : start+int(size)]
		case "mdat":
			if moof == nil {
				return frag, errors.New("an mdat box before any moof")
			}
			frag.Duration, frag.Independent, err = f.track.timing(moof)
			return frag, err
		}
	}
}

// timing returns the length in seconds of the samples a moof describes and
// whether the first is a sync sample.
func (t Track) timing(moof []byte) (float64, bool, error) {
	traf, err := child(moof, "traf")
	if err != nil {
		return 0, false, fmt.Errorf("moof: %w", err)
	}
	tfhd, err := child(traf, "tfhd")
	if err != nil || len(tfhd) < 8 {
		return 0, false, errors.New("moof: no track fragment header (tfhd)")
	}
	flags := binary.BigEndian.Uint32(tfhd) & 0xffffff
	defDuration, defFlags := t.defaultDuration, uint32(0)
	off := 8 // version and flags, track ID
	if flags&0x01 != 0 {
		off += 8 // base data offset
	}
	if flags&0x02 != 0 {
		off += 4 // sample description index
	}
	if flags&0x08 != 0 {
		if len(tfhd) < off+4 {
			return 0, false, errors.New("moof: short tfhd")
		}
		defDuration = binary.BigEndian.Uint32(tfhd[off:])
		off += 4
	}
	if flags&0x10 != 0 {
		off += 4 // default sample size
	}
	if flags&0x20 != 0 {
		if len(tfhd) < off+4 {
			return 0, false, errors.New("moof: short tfhd")
		}
		defFlags = binary.BigEndian.Uint32(tfhd[off:])
	}
	trun, err := child(traf, "trun")
	if err != nil || len(trun) < 8 {
		return 0, false, errors.New("moof: no track run (trun)")
	}
	tflags := binary.BigEndian.Uint32(trun) & 0xffffff
	samples := binary.BigEndian.Uint32(trun[4:])
	off = 8
	if tflags&0x01 != 0 {
		off += 4 // data offset
	}
	firstFlags, haveFirst := defFlags, false
	if tflags&0x04 != 0 {
		if len(trun) < off+4 {
			return 0, false, errors.New("moof: short trun")
		}
		firstFlags, haveFirst = binary.BigEndian.Uint32(trun[off:]), true
		off += 4
	}
	per := 0
	for _, bit := range []uint32{0x100, 0x200, 0x400, 0x800} {
		if tflags&bit != 0 {
			per += 4
		}
	}
	if uint64(len(trun)-off) < uint64(samples)*uint64(per) {
		return 0, false, fmt.Errorf("moof: trun lists %d samples in %d bytes", samples, len(trun)-off)
	}
	var total uint64
	for i := range int(samples) {
		rec := trun[off+i*per:]
		d := defDuration
		if tflags&0x100 != 0 {
			d = binary.BigEndian.Uint32(rec)
			rec = rec[4:]
		}
		if tflags&0x200 != 0 {
			rec = rec[4:]
		}
		if i == 0 && tflags&0x400 != 0 && !haveFirst {
			firstFlags = binary.BigEndian.Uint32(rec)
		}
		total += uint64(d)
	}
	if total == 0 {
		return 0, false, errors.New("moof: its samples have no duration")
	}
	// sample_is_non_sync_sample is bit 16 of the sample flags.
	return float64(total) / float64(t.timescale), firstFlags&0x10000 == 0, nil
}
