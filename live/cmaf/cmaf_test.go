package cmaf

import (
	"bytes"
	"errors"
	"io"
	"math"
	"os"
	"strings"
	"testing"
)

// The fixtures are ffmpeg's DASH muxer output for a 2 s GOP of 25 fps
// video cut into 0.32 s fragments (-ldash 1 -seg_duration 2
// -frag_duration 0.32 -frag_type duration): its init segment and first
// segment, as an encoder PUTs them.
func cmafFixtures(t testing.TB) (init, seg []byte) {
	t.Helper()
	init, err := os.ReadFile("testdata/init.m4s")
	if err != nil {
		t.Fatal(err)
	}
	seg, err = os.ReadFile("testdata/chunk.m4s")
	if err != nil {
		t.Fatal(err)
	}
	return init, seg
}

// TestFragmentsOfAnEncodersSegment: the segment is cut at its moof boxes
// into seven parts, six of eight frames (0.32 s) and one of two, which
// together are the segment byte for byte; only the first starts with a
// sync sample.
func TestFragmentsOfAnEncodersSegment(t *testing.T) {
	init, seg := cmafFixtures(t)
	tr, err := ParseInit(init)
	if err != nil {
		t.Fatal(err)
	}
	if tr.timescale != 12800 {
		t.Errorf("timescale %d; ffmpeg writes 12800 for 25 fps", tr.timescale)
	}
	// ffprobe says of it: h264, High 4:4:4 Predictive (profile_idc
	// 244), level 11, 160x120; RFC 6381 writes that avc1.f4000b.
	if tr.Codec != "avc1.f4000b" || tr.Width != 160 || tr.Height != 120 || tr.Handler != "vide" {
		t.Errorf("codec %q, %dx%d, handler %q; want avc1.f4000b, 160x120, vide", tr.Codec, tr.Width, tr.Height, tr.Handler)
	}
	fr := NewReader(bytes.NewReader(seg), tr, 1<<20, 1<<20)
	var got []Fragment
	for {
		f, err := fr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, f)
	}
	want := []float64{0.32, 0.32, 0.32, 0.32, 0.32, 0.32, 0.08}
	if len(got) != len(want) {
		t.Fatalf("%d fragments; want %d", len(got), len(want))
	}
	var joined []byte
	for i, f := range got {
		if math.Abs(f.Duration-want[i]) > 1e-9 {
			t.Errorf("fragment %d lasts %v s; want %v", i, f.Duration, want[i])
		}
		if f.Independent != (i == 0) {
			t.Errorf("fragment %d independent %v", i, f.Independent)
		}
		joined = append(joined, f.Data...)
	}
	if !bytes.Equal(joined, seg) {
		t.Error("the fragments are not the segment")
	}
}

// TestFragmentReaderRefusesBadSegments: what is not a run of moof and mdat
// pairs, or is larger than allowed, is refused with a reason.
func TestFragmentReaderRefusesBadSegments(t *testing.T) {
	init, seg := cmafFixtures(t)
	tr, err := ParseInit(init)
	if err != nil {
		t.Fatal(err)
	}
	firstMdat := bytes.Index(seg, []byte("mdat")) - 4
	for _, c := range []struct {
		name     string
		data     []byte
		frag     int64
		limit    int64
		contains string
	}{
		{"cut inside a fragment", seg[:firstMdat], 1 << 20, 1 << 20, "ends inside a fragment"},
		{"cut inside a box", seg[:firstMdat+100], 1 << 20, 1 << 20, "reading a mdat box"},
		{"mdat first", seg[firstMdat:], 1 << 20, 1 << 20, "mdat box before any moof"},
		{"fragment too big", seg, 1000, 1 << 20, "a fragment of more than 1000 bytes"},
		{"segment too big", seg, 1 << 20, 10000, "segment too big"},
	} {
		fr := NewReader(bytes.NewReader(c.data), tr, c.frag, c.limit)
		var err error
		for err == nil {
			_, err = fr.Next()
		}
		if errors.Is(err, io.EOF) || !strings.Contains(err.Error(), c.contains) {
			t.Errorf("%s: %v; want an error saying %q", c.name, err, c.contains)
		}
	}
	if _, err := ParseInit(seg); err == nil {
		t.Error("a media segment was taken for an init segment")
	}
}

// FuzzReader: whatever an encoder uploads, the reader returns fragments
// that are the input's bytes in order, or an error, within its limits, and
// never panics; so does ParseInit.
func FuzzReader(f *testing.F) {
	init, seg := cmafFixtures(f)
	f.Add(seg)
	f.Add(seg[:200])
	f.Add(init)
	tr, err := ParseInit(init)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = ParseInit(data)
		fr := NewReader(bytes.NewReader(data), tr, 1<<16, 1<<17)
		var joined []byte
		for range 1 << 12 {
			frag, err := fr.Next()
			if err != nil {
				break
			}
			if len(frag.Data) > 1<<16 || frag.Duration <= 0 {
				t.Fatalf("a fragment of %d bytes, %v s", len(frag.Data), frag.Duration)
			}
			joined = append(joined, frag.Data...)
		}
		if !bytes.HasPrefix(data, joined) {
			t.Fatal("the fragments are not the input's bytes in order")
		}
	})
}
