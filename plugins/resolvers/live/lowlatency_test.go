package live_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"
	"github.com/pacman-cdn/pacman/ingest"
	"github.com/pacman-cdn/pacman/internal/testutil"
	"github.com/pacman-cdn/pacman/live"
)

// cmafFixtures are ffmpeg's DASH muxer output, 0.32 s fragments of 2 s
// segments (see package cmaf's testdata).
func cmafFixtures(t *testing.T) (init, seg []byte) {
	t.Helper()
	init, err := os.ReadFile("../../../live/cmaf/testdata/init.m4s")
	if err != nil {
		t.Fatal(err)
	}
	seg, err = os.ReadFile("../../../live/cmaf/testdata/chunk.m4s")
	if err != nil {
		t.Fatal(err)
	}
	return init, seg
}

// TestLowLatencyIngestRefuses: the ingest refuses, each with its status
// and reason, a segment before its init segment (of its rendition), a
// segment out of order, a part longer than the part target, a ninth
// rendition, a stream named as a rendition and an audio track; the
// segments it took are listed by the edge, parts and all, as the
// encoder's bytes.
func TestLowLatencyIngestRefuses(t *testing.T) {
	b := newBed(t)
	init, seg := cmafFixtures(t)
	for _, c := range []struct {
		path string
		body []byte
		want int
	}{
		{"ll/chunk-stream0-00001.m4s", seg, http.StatusConflict}, // no init yet
		{"ll/init-stream0.m4s", seg, http.StatusBadRequest},      // not an init segment
		{"ll/init-stream0.m4s", init, http.StatusCreated},
		{"ll/chunk-stream0-00002.m4s", seg, http.StatusCreated},
		{"ll/chunk-stream0-00001.m4s", seg, http.StatusConflict}, // out of order
		{"ll/chunk-stream0-00002.m4s", seg, http.StatusConflict}, // again
		{"ll/chunk-stream1-00003.m4s", seg, http.StatusConflict}, // rendition 1 has no init segment
		{"ll/init-stream8.m4s", init, http.StatusBadRequest},     // past the eight renditions
		{"ll.1/init-stream0.m4s", init, http.StatusBadRequest},   // a rendition's name is the relay's
		// An audio track (its hdlr says "soun"): video only for now.
		{"ll/init-stream2.m4s", bytes.Replace(init, []byte("vide"), []byte("soun"), 1), http.StatusUnsupportedMediaType},
		{"ll/chunk-stream0-00003.m4s", seg[:len(seg)-100], http.StatusBadRequest}, // cut inside a fragment
		{"ll/chunk-stream0-00004.m4s", seg, http.StatusCreated},
	} {
		if got := b.put(t, "all", c.path, c.body); got != c.want {
			t.Errorf("PUT %s (%d bytes): %d, want %d", c.path, len(c.body), got, c.want)
		}
	}
	// Segment 0 (the encoder's 2) and 2 (its 4) were taken; 1 was cut
	// off in its last part, and is left out.
	body := b.waitListed(t, "ll", "2.m4s")
	if strings.Contains(string(body), "\n1.m4s\n") {
		t.Errorf("the segment cut short is listed:\n%s", body)
	}
	for _, name := range []string{"0.m4s", "2.m4s"} {
		if resp, got := get(t, b.gateway+"/live/ll/"+name); resp.StatusCode != 200 || !bytes.Equal(got, seg) {
			t.Errorf("%s: %d, the encoder's bytes %v", name, resp.StatusCode, bytes.Equal(got, seg))
		}
	}

	// A stricter part target refuses the fixture's 0.32 s parts.
	strict := newIngest(t, b.pub, b.pubRelay)
	strict.PartTarget = 200 * time.Millisecond
	srv := httptest.NewServer(strict)
	defer srv.Close()
	for _, c := range []struct {
		path string
		body []byte
		want int
	}{
		{"/ingest/strict/init-stream0.m4s", init, http.StatusCreated},
		{"/ingest/strict/chunk-stream0-00001.m4s", seg, http.StatusBadRequest},
	} {
		req, _ := http.NewRequest(http.MethodPut, srv.URL+c.path, bytes.NewReader(c.body))
		req.Header.Set("Authorization", "Bearer all")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		msg, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.want {
			t.Errorf("PUT %s with a 200ms part target: %d %s, want %d", c.path, resp.StatusCode, msg, c.want)
		}
		if c.want == http.StatusBadRequest && !strings.Contains(string(msg), "more than the part target") {
			t.Errorf("the refusal does not say why: %s", msg)
		}
	}
}

// TestAPartNeverUploadedIsNotListed: a part announced, signed by the
// publisher, whose bytes no peer has, is never listed by the edge, nor
// the parts after it, and a request for it is answered 404 or 503 within
// the hold, not held for ever; the segment, once whole, is listed.
func TestAPartNeverUploadedIsNotListed(t *testing.T) {
	b := newBed(t)
	init, seg := cmafFixtures(t)
	if got := b.put(t, "all", "ghost/init-stream0.m4s", init); got != http.StatusCreated {
		t.Fatalf("init: %d", got)
	}
	if got := b.put(t, "all", "ghost/chunk-stream0-00001.m4s", seg); got != http.StatusCreated {
		t.Fatalf("segment: %d", got)
	}
	b.waitListed(t, "ghost", "0.m4s")
	ctx := context.Background()
	mapCID, err := ingest.Import(ctx, testutil.DiscardDAG{}, bytes.NewReader(init))
	if err != nil {
		t.Fatal(err)
	}
	never, err := cid.V1Builder{Codec: cid.Raw, MhType: mh.SHA2_256}.Sum(testutil.Bytes("never uploaded", 5000))
	if err != nil {
		t.Fatal(err)
	}
	for n := range 2 {
		ghost := live.Announcement{Stream: "ghost", Seq: 1, IsPart: true, Part: n, CID: never, Duration: 0.3,
			Ext: ".m4s", PartTarget: 0.333, Map: mapCID, Independent: n == 0}
		if err := b.pubRelay.Publish(ctx, ghost); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(2 * time.Second)
	_, body := get(t, b.gateway+"/live/ghost/index.m3u8")
	if strings.Contains(string(body), "#EXT-X-PART:DURATION=0.30000,URI=\"1.") {
		t.Errorf("a part never uploaded is listed:\n%s", body)
	}
	if !strings.Contains(string(body), "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"1.0.m4s\"") {
		t.Errorf("the preload hint is not the part awaited:\n%s", body)
	}
	start := time.Now()
	resp, _ := get(t, b.gateway+"/live/ghost/1.0.m4s")
	if resp.StatusCode != http.StatusServiceUnavailable && resp.StatusCode != http.StatusNotFound {
		t.Errorf("the part never uploaded: %d, want 503 or 404", resp.StatusCode)
	}
	if held := time.Since(start); held > 15*time.Second {
		t.Errorf("held %v", held)
	}
}

// TestEdgeFollowsFromTheFirstPart: an edge that has never heard of a
// stream serves its first part while the encoder is still uploading the
// first segment: the part's announcement reaches it through the stream
// directory. (An edge that learned of the stream from its first whole
// segment missed the parts before it.)
func TestEdgeFollowsFromTheFirstPart(t *testing.T) {
	b := newBed(t)
	init, seg := cmafFixtures(t)
	if got := b.put(t, "all", "first/init-stream0.m4s", init); got != http.StatusCreated {
		t.Fatalf("init: %d", got)
	}
	// The first fragment: the boxes up to and with the first mdat.
	first := 0
	for {
		size := int(binary.BigEndian.Uint32(seg[first:]))
		typ := string(seg[first+4 : first+8])
		first += size
		if typ == "mdat" {
			break
		}
	}
	pr, pw := io.Pipe()
	req, _ := http.NewRequest(http.MethodPut, b.ingest+"first/chunk-stream0-00001.m4s", pr)
	req.Header.Set("Authorization", "Bearer all")
	done := make(chan int, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			done <- 0
			return
		}
		resp.Body.Close()
		done <- resp.StatusCode
	}()
	if _, err := pw.Write(seg[:first]); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, body := get(t, b.gateway+"/live/first/0.0.m4s")
		if resp.StatusCode == 200 {
			if !bytes.Equal(body, seg[:first]) {
				t.Fatal("the first part is not the encoder's first fragment")
			}
			break
		}
		if time.Now().After(deadline) {
			pw.CloseWithError(errors.New("test failed"))
			t.Fatalf("the edge never served the first part while the segment was uploading: %d %s", resp.StatusCode, body)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if resp, _ := get(t, b.gateway+"/live/first/0.m4s"); resp.StatusCode == 200 {
		t.Fatal("the segment is whole before the encoder sent it")
	}
	if _, err := pw.Write(seg[first:]); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	if code := <-done; code != http.StatusCreated {
		t.Fatalf("segment: %d", code)
	}
	b.waitListed(t, "first", "0.m4s")
}

// TestLadderThroughTheEdge: three renditions PUT as ffmpeg's DASH muxer
// names them (init-streamK.m4s, chunk-streamK-N.m4s) are relayed as three
// streams, whose multivariant playlist the edge serves with each one's
// bandwidth, codecs and resolution; each rendition's segments are its
// own bytes; one rendition's final playlist (media_K.m3u8) ends them
// all, as does DELETE.
func TestLadderThroughTheEdge(t *testing.T) {
	b := newBed(t)
	init, seg := cmafFixtures(t)
	// Each rendition's segment differs from the others' in its last
	// byte, which is media data (the mdat's), not structure.
	segOf := func(k int) []byte {
		s := bytes.Clone(seg)
		s[len(s)-1] ^= byte(k)
		return s
	}
	for k := range 3 {
		if got := b.put(t, "all", fmt.Sprintf("lad/init-stream%d.m4s", k), init); got != http.StatusCreated {
			t.Fatalf("init of rendition %d: %d", k, got)
		}
	}
	for n := 1; n <= 2; n++ {
		for k := range 3 {
			if got := b.put(t, "all", fmt.Sprintf("lad/chunk-stream%d-%05d.m4s", k, n), segOf(k)); got != http.StatusCreated {
				t.Fatalf("segment %d of rendition %d: %d", n, k, got)
			}
		}
	}
	for _, name := range []string{"lad", "lad.1", "lad.2"} {
		b.waitListed(t, name, "1.m4s")
	}
	resp, m := get(t, b.gateway+"/live/lad/master.m3u8")
	// 2 s segments of len(seg) bytes each.
	bw := (len(seg)*8 + 1) / 2
	inf := fmt.Sprintf("#EXT-X-STREAM-INF:BANDWIDTH=%d,AVERAGE-BANDWIDTH=%d,CODECS=\"avc1.f4000b\",RESOLUTION=160x120\n", bw, bw)
	want := "#EXTM3U\n#EXT-X-VERSION:6\n" + inf + "../lad/index.m3u8\n" + inf + "../lad.1/index.m3u8\n" + inf + "../lad.2/index.m3u8\n"
	if resp.StatusCode != 200 || string(m) != want || resp.Header.Get("Content-Type") != "application/vnd.apple.mpegurl" {
		t.Errorf("multivariant playlist: %d %q\n%s\nwant:\n%s", resp.StatusCode, resp.Header.Get("Content-Type"), m, want)
	}
	for k, name := range []string{"lad", "lad.1", "lad.2"} {
		for _, file := range []string{"0.m4s", "1.m4s"} {
			if resp, got := get(t, b.gateway+"/live/"+name+"/"+file); resp.StatusCode != 200 || !bytes.Equal(got, segOf(k)) {
				t.Errorf("%s/%s: %d, rendition %d's bytes %v", name, file, resp.StatusCode, k, bytes.Equal(got, segOf(k)))
			}
		}
	}

	// One rendition's final playlist ends the ladder: ffmpeg's DASH
	// muxer codes every rendition, and exits before sending the last
	// one's.
	final := []byte("#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2.0,\nchunk-stream1-00001.m4s\n#EXTINF:2.0,\nchunk-stream1-00002.m4s\n#EXT-X-ENDLIST\n")
	if got := b.put(t, "all", "lad/media_1.m3u8", final); got != http.StatusNoContent {
		t.Fatalf("rendition 1's final playlist: %d", got)
	}
	for k := range 3 {
		if got := b.put(t, "all", fmt.Sprintf("lad/chunk-stream%d-00003.m4s", k), segOf(k)); got != http.StatusConflict {
			t.Errorf("segment 3 of rendition %d after the ladder ended: %d, want 409", k, got)
		}
	}
	waitEnded(t, b, "lad", "lad.1", "lad.2")

	// DELETE ends another ladder: every rendition.
	for _, path := range []string{"del/init-stream0.m4s", "del/init-stream1.m4s"} {
		b.put(t, "all", path, init)
	}
	for _, path := range []string{"del/chunk-stream0-00001.m4s", "del/chunk-stream1-00001.m4s"} {
		if got := b.put(t, "all", path, seg); got != http.StatusCreated {
			t.Fatalf("%s: %d", path, got)
		}
	}
	req, _ := http.NewRequest(http.MethodDelete, b.ingest+"del/", nil)
	req.Header.Set("Authorization", "Bearer all")
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusNoContent {
		t.Fatalf("DELETE: %v %v", resp, err)
	}
	resp.Body.Close()
	waitEnded(t, b, "del", "del.1")
}

// waitEnded waits until the edge's playlist of each stream has ended.
func waitEnded(t *testing.T, b *bed, streams ...string) {
	t.Helper()
	for _, name := range streams {
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			if _, body := get(t, b.gateway+"/live/"+name+"/index.m3u8"); bytes.Contains(body, []byte("#EXT-X-ENDLIST")) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s did not end", name)
			}
		}
	}
}
