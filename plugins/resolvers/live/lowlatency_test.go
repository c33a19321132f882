package live_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
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
// and reason, a segment before its init segment, a segment out of order,
// a part longer than the part target and a rendition other than the one
// a stream takes; the segments it took are listed by the edge, parts and
// all, as the encoder's bytes.
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
		{"ll/chunk-stream1-00003.m4s", seg, http.StatusBadRequest},
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
