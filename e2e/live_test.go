package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// liveToken is the encoder's secret in these tests.
const liveToken = "e2e-live-token-0123456789"

// startLivePublisher starts a caddy with an ingest route for encoders and
// the live resolver.
func startLivePublisher(t *testing.T) (*pacman, peer.ID) {
	t.Helper()
	dir, id := newDataDir(t)
	return startWith(t, "", dir, id, map[string]any{}, []any{
		map[string]any{
			"match":  []any{map[string]any{"path": []string{"/ingest/*"}}},
			"handle": []any{map[string]any{"handler": "pacman_live_ingest", "tokens": []any{map[string]any{"token": liveToken}}}},
		},
		liveRoute(),
	}), id
}

// startLiveEdge starts a caddy that follows the streams of publisher.
func startLiveEdge(t *testing.T, publisher *pacman, publisherID peer.ID) *pacman {
	t.Helper()
	dir, id := newDataDir(t)
	return startWith(t, "", dir, id, map[string]any{"peers": []string{publisher.P2P}, "live_trust": []string{publisherID.String()}},
		[]any{liveRoute()})
}

func liveRoute() map[string]any {
	return map[string]any{"handle": []any{map[string]any{"handler": "pacman",
		"resolvers": []any{map[string]any{"resolver": "live"}, map[string]any{"resolver": "ipfs"}}}}}
}

// listed returns the segment names a playlist lists.
var segmentLine = regexp.MustCompile(`(?m)^([0-9]+)\.ts$`)

func listed(playlist []byte) []int {
	var out []int
	for _, m := range segmentLine.FindAllSubmatch(playlist, -1) {
		n, _ := strconv.Atoi(string(m[1]))
		out = append(out, n)
	}
	return out
}

func getBody(url string) (int, []byte, error) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// TestLiveFFmpeg: ffmpeg's HLS muxer PUTs a 14 s event of 2 s segments to a
// publisher; an edge that trusts the publisher lists each segment soon
// after the publisher does, ffmpeg plays the stream from the edge while it
// is live, every segment through the edge is byte-exact with the
// publisher's, and at the end both serve the recording.
func TestLiveFFmpeg(t *testing.T) {
	ffmpeg := need(t, "ffmpeg")
	pub, pubID := startLivePublisher(t)
	edge := startLiveEdge(t, pub, pubID)

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	encoded, encOut := encodeLive(ctx, t, 14, pub.URL+"/ingest/ev/index.m3u8")

	// Watch both playlists and note when each first lists a segment.
	var mu sync.Mutex
	seen := map[string]map[int]time.Time{pub.URL: {}, edge.URL: {}}
	watch, stopWatch := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for _, base := range []string{pub.URL, edge.URL} {
		wg.Go(func() {
			for watch.Err() == nil {
				if code, body, err := getBody(base + "/live/ev/index.m3u8"); err == nil && code == 200 {
					now := time.Now()
					mu.Lock()
					for _, n := range listed(body) {
						if _, ok := seen[base][n]; !ok {
							seen[base][n] = now
						}
					}
					mu.Unlock()
				}
				time.Sleep(10 * time.Millisecond)
			}
		})
	}

	// Play from the edge while the event is live.
	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		n := len(seen[edge.URL])
		mu.Unlock()
		if n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the edge listed no segment within 30 s; encoder said:\n%s", encOut.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	out := run(t, 60*time.Second, ffmpeg, "-hide_banner", "-loglevel", "error", "-i", edge.URL+"/live/ev/index.m3u8", "-t", "4", "-f", "null", "-")
	if out != "" {
		t.Logf("ffmpeg playing from the edge said: %s", out)
	}

	if err := <-encoded; err != nil {
		t.Fatalf("the encoder failed: %v\n%s", err, encOut.String())
	}
	var playlist []byte
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		_, body, err := getBody(edge.URL + "/live/ev/index.m3u8")
		if err == nil && bytes.HasSuffix(body, []byte("#EXT-X-ENDLIST\n")) {
			playlist = body
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the edge's playlist never ended:\n%s", body)
		}
	}
	stopWatch()
	wg.Wait()

	segs := listed(playlist)
	if len(segs) < 6 {
		t.Fatalf("the recording lists %d segments, want 7 or so:\n%s", len(segs), playlist)
	}
	for _, n := range segs {
		_, fromPub, err := getBody(fmt.Sprintf("%s/live/ev/%d.ts", pub.URL, n))
		if err != nil {
			t.Fatal(err)
		}
		code, fromEdge, err := getBody(fmt.Sprintf("%s/live/ev/%d.ts", edge.URL, n))
		if err != nil || code != 200 || len(fromPub) == 0 || !bytes.Equal(fromEdge, fromPub) {
			t.Errorf("segment %d: edge status %d, %d bytes; publisher %d bytes; equal %v", n, code, len(fromEdge), len(fromPub), bytes.Equal(fromEdge, fromPub))
		}
	}
	var lags []time.Duration
	mu.Lock()
	for n, at := range seen[pub.URL] {
		if e, ok := seen[edge.URL][n]; ok {
			lags = append(lags, e.Sub(at))
		}
	}
	mu.Unlock()
	slices.Sort(lags)
	if len(lags) == 0 {
		t.Fatal("no segment was seen listed by both while live")
	}
	t.Logf("edge lists a segment after the publisher: p50 %v, max %v over %d segments (polled every 10 ms)", lags[len(lags)/2], lags[len(lags)-1], len(lags))
	if p50 := lags[len(lags)/2]; p50 > time.Second {
		t.Errorf("the edge lists segments %v after the publisher (p50), want well within a segment", p50)
	}
	// Play the recording from the edge.
	run(t, 60*time.Second, ffmpeg, "-hide_banner", "-loglevel", "error", "-i", edge.URL+"/live/ev/index.m3u8", "-f", "null", "-")
}

// encodeLive starts ffmpeg's HLS muxer PUTting an event of the given
// seconds of 2 s segments to url; the returned channel gets its result.
func encodeLive(ctx context.Context, t *testing.T, seconds int, url string) (<-chan error, *bytes.Buffer) {
	t.Helper()
	enc := exec.CommandContext(ctx, need(t, "ffmpeg"), "-hide_banner", "-loglevel", "error", "-re",
		"-f", "lavfi", "-i", "testsrc=size=320x240:rate=25", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100",
		"-t", strconv.Itoa(seconds), "-c:v", "libx264", "-preset", "ultrafast", "-g", "50", "-c:a", "aac",
		"-f", "hls", "-hls_time", "2", "-hls_list_size", "6", "-method", "PUT",
		"-headers", "Authorization: Bearer "+liveToken+"\r\n", url)
	var out bytes.Buffer
	enc.Stdout, enc.Stderr = &out, &out
	if err := enc.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- enc.Wait() }()
	return done, &out
}

// TestLiveChromium: hls.js in headless Chromium plays a live event from an
// edge and, side by side, from the publisher: neither stalls once playing,
// and once both have caught up, the edge's viewer is no more than one
// segment further behind live (on the wall clock) than the publisher's.
func TestLiveChromium(t *testing.T) {
	node := needPlayer(t)
	pub, pubID := startLivePublisher(t)
	edge := startLiveEdge(t, pub, pubID)
	site := playerSite(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	encoded, encOut := encodeLive(ctx, t, 40, pub.URL+"/ingest/ev/index.m3u8")
	// Start once both list a few segments, as a viewer joining would.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		_, p, _ := getBody(pub.URL + "/live/ev/index.m3u8")
		_, e, _ := getBody(edge.URL + "/live/ev/index.m3u8")
		if len(listed(p)) >= 3 && len(listed(e)) >= 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no 3 segments listed within 30 s; encoder said:\n%s", encOut)
		}
	}
	page := func(u string) string { return site.URL + "/?hls=" + url.QueryEscape(u+"/live/ev/index.m3u8") }
	out := run(t, 90*time.Second, node, "player/live.mjs", "20", page(edge.URL), page(pub.URL))
	var res []struct {
		Errors  []string
		Latency []float64
		Stalls  int
		Played  float64
	}
	if err := json.Unmarshal([]byte(strings.TrimSpace(out)), &res); err != nil || len(res) != 2 {
		t.Fatalf("player output %q: %v", out, err)
	}
	median := func(xs []float64) float64 {
		if len(xs) == 0 {
			return -1
		}
		s := slices.Clone(xs)
		slices.Sort(s)
		return s[len(s)/2]
	}
	for i, who := range []string{"edge", "publisher"} {
		r := res[i]
		t.Logf("%s: played %.1f s, %d stalls, behind live p50 %.2f s (samples %v)", who, r.Played, r.Stalls, median(r.Latency), r.Latency)
		if len(r.Errors) > 0 {
			t.Errorf("%s: player errors %v", who, r.Errors)
		}
		if r.Stalls > 0 {
			t.Errorf("%s: %d stalls after playback started", who, r.Stalls)
		}
		if r.Played < 15 {
			t.Errorf("%s: played %.1f s of 20", who, r.Played)
		}
	}
	// Compare once both players have caught up to their target latency:
	// the last eight samples.
	settled := func(xs []float64) []float64 { return xs[max(0, len(xs)-8):] }
	if e, p := median(settled(res[0].Latency)), median(settled(res[1].Latency)); e < 0 || p < 0 || e > p+2 {
		t.Errorf("behind live once settled: edge %.2f s, publisher %.2f s; want the edge within one 2 s segment of the publisher", e, p)
	}
	cancel()
	<-encoded
}
