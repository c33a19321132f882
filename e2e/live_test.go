package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
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
	"github.com/pacman-cdn/pacman/internal/testutil"
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

// getBody GETs url and returns the status and the whole body.
func getBody(url string) (int, []byte, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return 0, nil, err
	}
	return doBody(req)
}

// doBody sends req and returns the status and the whole body.
func doBody(req *http.Request) (int, []byte, error) {
	resp, err := http.DefaultClient.Do(req)
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
	res := watchLive(t, node, site, 20, edge.URL, pub.URL)
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

// viewer is what player/live.mjs reports of one page: how far behind live
// it played, once a second, in seconds, its stalls and how long it played.
type viewer struct {
	Errors  []string
	Latency []float64
	Stalls  int
	Played  float64
	// Warnings are the errors hls.js recovered from: when, what, the
	// HTTP status and the URL.
	Warnings []string
	// Peers is PacmanPeers.stats() at the end, on a page with viewer
	// peers.
	Peers struct{ FromPeers, FromEdge, Uploaded, Peers, Dropped int64 }
}

// watchLive plays /live/ev/index.m3u8 of each base URL side by side in
// Chromium, on site's player page, for seconds.
func watchLive(t *testing.T, node string, site *httptest.Server, seconds int, bases ...string) []viewer {
	t.Helper()
	args := []string{"player/live.mjs", strconv.Itoa(seconds)}
	for _, u := range bases {
		args = append(args, site.URL+"/?hls="+url.QueryEscape(u+"/live/ev/index.m3u8"))
	}
	out := run(t, 90*time.Second, node, args...)
	var res []viewer
	if err := json.Unmarshal([]byte(strings.TrimSpace(out)), &res); err != nil || len(res) != len(bases) {
		t.Fatalf("player output %q: %v", out, err)
	}
	return res
}

// median returns the median of xs, or -1 if it is empty.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return -1
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

// TestLivePublisherKill9: a publisher run by `caddy run` is killed with
// SIGKILL mid-event and started again while the encoder carries on. It
// continues its numbering after the segments it announced (which keep
// their bytes), and the event's recording, after the end, holds every
// segment announced before and after the crash, byte-exact. The review saw
// the numbering restart at 0 and the recording lose what came before.
func TestLivePublisherKill9(t *testing.T) {
	notShort(t)
	pub, _ := startLivePublisher(t)
	seg := func(i int) []byte { return testutil.Bytes(fmt.Sprintf("pub-kill-%d", i), 150<<10+i) }
	put := func(path string, body []byte) int {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPut, pub.URL+"/ingest/k/"+path, bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+liveToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	playlist := func(first, last int, ended bool) []byte {
		var b strings.Builder
		fmt.Fprintf(&b, "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:%d\n", first)
		for i := first; i <= last; i++ {
			fmt.Fprintf(&b, "#EXTINF:2.000000,\nindex%d.ts\n", i)
		}
		if ended {
			b.WriteString("#EXT-X-ENDLIST\n")
		}
		return []byte(b.String())
	}
	for i := range 3 {
		put(fmt.Sprintf("index%d.ts", i), seg(i))
		if got := put("index.m3u8", playlist(0, i, false)); got != http.StatusNoContent {
			t.Fatalf("playlist %d: %d", i, got)
		}
	}
	pub.kill9()
	pub.run(t)
	// The encoder's index3.ts went to the dead process; it goes on.
	for i := 4; i < 6; i++ {
		if got := put(fmt.Sprintf("index%d.ts", i), seg(i)); got != http.StatusCreated {
			t.Fatalf("segment %d after the restart: %d", i, got)
		}
		if got := put("index.m3u8", playlist(i-2, i, i == 5)); got != http.StatusNoContent {
			t.Fatalf("playlist %d after the restart: %d", i, got)
		}
	}
	code, body, err := getBody(pub.URL + "/live/k/index.m3u8")
	if err != nil || code != 200 || !bytes.HasSuffix(body, []byte("#EXT-X-ENDLIST\n")) {
		t.Fatalf("the ended event's playlist: %d %v\n%s", code, err, body)
	}
	if got := listed(body); !slices.Equal(got, []int{0, 1, 2, 3, 4}) {
		t.Errorf("the recording lists %v, want [0 1 2 3 4]:\n%s", got, body)
	}
	for n, i := range []int{0, 1, 2, 4, 5} {
		if code, got, err := getBody(fmt.Sprintf("%s/live/k/%d.ts", pub.URL, n)); err != nil || code != 200 || !bytes.Equal(got, seg(i)) {
			t.Errorf("segment %d of the recording: %d, equal to upload %d %v, %v", n, code, i, bytes.Equal(got, seg(i)), err)
		}
	}
}
