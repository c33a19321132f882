package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// media is the test media, generated once with ffmpeg and served by an
// empty pacman gateway peered with a pacman seeder that holds it.
type media struct {
	mp4, webm, hls string // gateway URLs; hls is the playlist
	gateway        *pacman
}

var (
	mediaOnce sync.Once
	mediaSrc  string // directory with the generated files
	mediaErr  error
)

// generateMedia makes, in one directory: clip.mp4 (H.264/AAC with its moov
// atom at the end, so players must seek to the end first), clip.webm
// (VP9/Opus) and hls/ (an H.264/AAC rendition of 2 s segments). Each is
// 8 seconds of a test pattern with a tone.
func generateMedia(t *testing.T) string {
	t.Helper()
	ffmpeg := need(t, "ffmpeg")
	mediaOnce.Do(func() {
		dir, err := os.MkdirTemp("", "pacman-media-")
		if err != nil {
			mediaErr = err
			return
		}
		mediaSrc = dir
		in := []string{"-y", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", "8"}
		h264 := []string{"-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-g", "25", "-c:a", "aac"}
		if err := os.MkdirAll(filepath.Join(dir, "hls"), 0o755); err != nil {
			mediaErr = err
			return
		}
		for _, args := range [][]string{
			append(append(append([]string{}, in...), h264...), filepath.Join(dir, "clip.mp4")),
			append(append([]string{}, in...), "-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-b:v", "300k", "-g", "25", "-c:a", "libopus", filepath.Join(dir, "clip.webm")),
			append(append(append([]string{}, in...), h264...), "-f", "hls", "-hls_time", "2", "-hls_playlist_type", "vod",
				"-hls_segment_filename", filepath.Join(dir, "hls", "seg%03d.ts"), filepath.Join(dir, "hls", "index.m3u8")),
		} {
			if out, err := exec.Command(ffmpeg, args...).CombinedOutput(); err != nil {
				mediaErr = fmt.Errorf("ffmpeg %s: %v\n%s", strings.Join(args, " "), err, out)
				return
			}
		}
	})
	if mediaErr != nil {
		t.Fatal(mediaErr)
	}
	return mediaSrc
}

// serveMedia adds the media to a seeder and returns the URLs of an empty
// gateway peered with it.
func serveMedia(t *testing.T) media {
	t.Helper()
	src := generateMedia(t)
	seedDir, seedID := newDataDir(t)
	mp4 := addContent(t, seedDir, filepath.Join(src, "clip.mp4"))
	webm := addContent(t, seedDir, filepath.Join(src, "clip.webm"))
	hls := addContent(t, seedDir, filepath.Join(src, "hls"))
	seeder := startPacman(t, seedDir, seedID)
	gwDir, gwID := newDataDir(t)
	gw := startPacman(t, gwDir, gwID, seeder.P2P)
	return media{
		mp4:     gw.URL + "/ipfs/" + mp4 + "?filename=clip.mp4",
		webm:    gw.URL + "/ipfs/" + webm + "?filename=clip.webm",
		hls:     gw.URL + "/ipfs/" + hls + "/index.m3u8",
		gateway: gw,
	}
}

// TestMoovAtEnd checks the premise of the MP4 tests: the index is after
// the media data, so a player must range-request the end first.
func TestMoovAtEnd(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(generateMedia(t), "clip.mp4"))
	if err != nil {
		t.Fatal(err)
	}
	if moov, mdat := bytes.Index(b, []byte("moov")), bytes.Index(b, []byte("mdat")); moov < mdat {
		t.Fatalf("moov at %d, mdat at %d: moov is not at the end", moov, mdat)
	}
}

// TestFFmpeg probes each file over HTTP through pacman and decodes a frame
// after seeking to three points.
func TestFFmpeg(t *testing.T) {
	ffprobe := need(t, "ffprobe")
	ffmpeg := need(t, "ffmpeg")
	m := serveMedia(t)
	for _, src := range []struct{ name, url, codec string }{
		{"mp4", m.mp4, "h264"}, {"webm", m.webm, "vp9"}, {"hls", m.hls, "h264"},
	} {
		t.Run(src.name, func(t *testing.T) {
			start := time.Now()
			out := run(t, time.Minute, ffprobe, "-v", "error", "-show_entries", "format=duration:stream=codec_name", "-of", "json", src.url)
			var probe struct {
				Format  struct{ Duration string }
				Streams []struct {
					CodecName string `json:"codec_name"`
				}
			}
			if err := json.Unmarshal([]byte(out), &probe); err != nil {
				t.Fatalf("ffprobe output %q: %v", out, err)
			}
			if d, _ := strconv.ParseFloat(probe.Format.Duration, 64); d < 7.5 || d > 8.6 {
				t.Errorf("duration %s, want about 8 s", probe.Format.Duration)
			}
			if len(probe.Streams) == 0 || probe.Streams[0].CodecName != src.codec {
				t.Errorf("streams %+v, want %s first", probe.Streams, src.codec)
			}
			for _, ss := range []string{"1.5", "4.2", "7.0"} {
				out := run(t, time.Minute, ffmpeg, "-v", "error", "-ss", ss, "-i", src.url, "-frames:v", "1", "-f", "framemd5", "-")
				if !strings.Contains(out, "0,") {
					t.Errorf("seek to %s s decoded no frame:\n%s", ss, out)
				}
			}
			t.Logf("%s: probe and 3 seeks in %v", src.name, time.Since(start))
		})
	}
}

// playerPage is the page Chromium loads, from another origin than the
// gateway: it plays ?src= natively or ?hls= through hls.js.
const playerPage = `<!doctype html>
<html><body style="margin:0;background:#000">
<video id="v" muted playsinline width="640" height="480"></video>
<script src="/hls.min.js"></script>
<script>
const q = new URLSearchParams(location.search);
const v = document.getElementById('v');
v.addEventListener('error', () => { window.failed = 'media error ' + (v.error && v.error.code); });
v.addEventListener('loadedmetadata', () => {
  v.play().then(() => { window.ready = true; }, (e) => { window.failed = String(e); });
});
if (q.get('hls')) {
  // A live viewer catches up to the target latency (three segments behind
  // the live edge it knows, or PART-HOLD-BACK), so where it happened to
  // join does not count; nor does a stall before the test's count starts
  // move that target (hls.js adds a second per stall by default).
  const hls = new Hls({ maxLiveSyncPlaybackRate: 2, liveSyncOnStallIncrease: 0 });
  window.hls = hls;
  // Errors hls.js recovers from are kept too (the first 20): a stall
  // leaves the requests that failed before it.
  window.warnings = [];
  hls.on(Hls.Events.ERROR, (_, d) => {
    if (d.fatal) window.failed = 'hls.js: ' + d.details;
    else if (window.warnings.length < 20) {
      const url = (d.part && d.part.relurl) || (d.frag && d.frag.relurl) || (d.context && d.context.url) || '';
      window.warnings.push(((performance.now() / 1000).toFixed(1)) + ' s ' + d.details + ' ' + ((d.response && d.response.code) || '') + ' ' + url);
    }
  });
  hls.loadSource(q.get('hls'));
  hls.attachMedia(v);
} else {
  v.src = q.get('src');
}
</script>
</body></html>`

// needPlayer returns node, skipping (or, in CI, failing) the test when
// Chromium or the player's npm packages are missing.
func needPlayer(t *testing.T) string {
	t.Helper()
	need(t, "chromium")
	node := need(t, "node")
	if _, err := os.Stat("player/node_modules/playwright-core"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("player/node_modules missing: .ci/run must run npm ci in e2e/player")
		}
		t.Skip("run `npm ci --prefix e2e/player` first")
	}
	return node
}

// playerSite serves the player page and hls.js, on an origin of its own.
func playerSite(t *testing.T) *httptest.Server {
	t.Helper()
	hlsJS, err := os.ReadFile("player/node_modules/hls.js/dist/hls.min.js")
	if err != nil {
		t.Fatal(err)
	}
	site := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/hls.min.js":
			w.Header().Set("Content-Type", "text/javascript")
			_, _ = w.Write(hlsJS)
		default:
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			_, _ = w.Write([]byte(playerPage))
		}
	}))
	t.Cleanup(site.Close)
	return site
}

// TestChromium plays the MP4 and the WebM natively and the HLS rendition
// through hls.js in headless Chromium, seeking to three points each; the
// player page is on another origin, so CORS is exercised too. Screenshots
// go to $PACMAN_ARTIFACTS (default: the test's temp dir).
func TestChromium(t *testing.T) {
	node := needPlayer(t)
	m := serveMedia(t)
	site := playerSite(t)
	for _, src := range []struct{ name, param, url string }{
		{"mp4", "src", m.mp4}, {"webm", "src", m.webm}, {"hls", "hls", m.hls},
	} {
		t.Run(src.name, func(t *testing.T) {
			start := time.Now()
			shot := artifact(t, "chromium-"+src.name+".png")
			page := site.URL + "/?" + src.param + "=" + url.QueryEscape(src.url)
			out := run(t, 2*time.Minute, node, "player/play.mjs", page, shot, "2", "4.5", "6.5")
			var res struct {
				Duration   float64
				MediaError any
				Errors     []string
				Seeks      []struct {
					Target, Reached float64
					Error           any
				}
			}
			if err := json.Unmarshal([]byte(strings.TrimSpace(out)), &res); err != nil {
				t.Fatalf("player output %q: %v", out, err)
			}
			if res.MediaError != nil || len(res.Errors) > 0 {
				t.Fatalf("player failed: %v %v", res.MediaError, res.Errors)
			}
			if res.Duration < 7.5 || res.Duration > 8.6 {
				t.Errorf("duration %.2f, want about 8 s", res.Duration)
			}
			if len(res.Seeks) != 3 {
				t.Fatalf("%d seeks, want 3", len(res.Seeks))
			}
			for _, s := range res.Seeks {
				if s.Error != nil || s.Reached < s.Target+0.5 {
					t.Errorf("seek to %.1f: playback reached %.2f, error %v", s.Target, s.Reached, s.Error)
				}
			}
			if _, err := os.Stat(shot); err != nil {
				t.Errorf("no screenshot: %v", err)
			}
			t.Logf("%s: played and seeked 3 times in %v; screenshot %s", src.name, time.Since(start), shot)
		})
	}
}
