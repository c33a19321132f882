package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// viewerPage plays the hash's HLS URL with hls.js and the viewer peers of
// script, with a short buffer so that fragments are loaded as it plays.
// setup runs before the script loads; options are attach's.
func viewerPage(script, setup, options string) string {
	return `<!doctype html>
<video muted autoplay></video>
<script src="/hls.light.min.js"></script>
<script>` + setup + `</script>
<script src="` + script + `"></script>
<script>
const hls = new Hls({ maxBufferLength: 4, maxMaxBufferLength: 6 });
window.hlsErrors = [];
hls.on(Hls.Events.ERROR, (e, d) => window.hlsErrors.push(d.details + (d.fatal ? ' (fatal)' : '')));
PacmanPeers.attach(hls, {` + options + `});
hls.loadSource(location.hash.slice(1));
hls.attachMedia(document.querySelector('video'));
</script>
`
}

// viewerEdge is a real caddy run whose Caddyfile turns viewer peers on,
// serving an imported 40 s HLS stream under /ipfs/ and, from www, the
// viewer page (index.html), hls.js and extra.
type viewerEdge struct {
	base  string // http://127.0.0.1:port
	admin string // Caddy's admin address
	root  string // the stream's directory CID
	media string // the stream's files
}

// startViewerEdge encodes a 40 s HLS stream, starts a viewer edge whose
// site serves /ipfs/* and, from www, the viewer page, hls.js and extra,
// and adds the stream into it with caddy pacman add.
func startViewerEdge(t *testing.T, extra map[string][]byte) viewerEdge {
	t.Helper()
	ffmpeg := need(t, "ffmpeg")
	need(t, "chromium")
	if _, err := os.Stat("player/node_modules/playwright-core"); err != nil {
		t.Skip("npm ci --prefix e2e/player first (.ci/run does)")
	}
	dir := t.TempDir()
	media := filepath.Join(dir, "hls")
	if err := os.Mkdir(media, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(ffmpeg, "-loglevel", "error", "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25", "-t", "40",
		"-c:v", "libx264", "-preset", "veryfast", "-g", "50", "-b:v", "1500k", "-f", "hls", "-hls_time", "2",
		"-hls_playlist_type", "vod", "-hls_segment_filename", filepath.Join(media, "seg%02d.ts"), filepath.Join(media, "index.m3u8"))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, out)
	}
	hlsjs, err := os.ReadFile("../caddymodule/cli/demoassets/hls.light.min.js")
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{"index.html": []byte(viewerPage("/pacman/peer.js", "", "")), "hls.light.min.js": hlsjs}
	maps.Copy(files, extra)
	base, admin := runViewerEdge(t, files, "\tpacman /ipfs/*")
	out := caddyCmd(t, "pacman", "add", "--address", admin, media)
	root, _, _ := strings.Cut(strings.TrimSpace(out), " ")
	return viewerEdge{base: base, admin: admin, root: root, media: media}
}

// runViewerEdge starts a caddy run whose Caddyfile turns viewer peers on
// and whose site has routes (Caddyfile directives) before a file_server
// of files. It returns the site's base URL and Caddy's admin address.
func runViewerEdge(t *testing.T, files map[string][]byte, routes string) (base, admin string) {
	t.Helper()
	dir := t.TempDir()
	www := filepath.Join(dir, "www")
	if err := os.Mkdir(www, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(www, name), body, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	dataDir, _ := newDataDir(t)
	port := freePort(t)
	admin = fmt.Sprintf("127.0.0.1:%d", freePort(t))
	caddyfile := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(caddyfile, fmt.Appendf(nil, `{
	admin %s
	pacman {
		data_dir %s
		listen /ip4/127.0.0.1/tcp/0 /ip4/127.0.0.1/udp/0/quic-v1/webtransport
		viewers {
			max_viewers 10
		}
	}
}
:%d {
	pacman_viewers
%s
	file_server {
		root %s
	}
}
`, admin, dataDir, port, routes, www), 0o644); err != nil {
		t.Fatal(err)
	}
	startCaddy(t, nil, "run", "--config", caddyfile)
	base = fmt.Sprintf("http://127.0.0.1:%d", port)
	waitHTTP(t, base+"/pacman/viewers.json")
	return base, admin
}

// viewers is what player/viewers.mjs reports.
type viewers struct {
	Errors          []string
	A, B, BLast     struct{ FromPeers, FromEdge, Uploaded, Peers, Dropped int64 }
	BConnected      struct{ FromPeers, FromEdge int64 } // b's, once connected to a
	Digest          string
	BBefore, BAfter float64
	BErrors         []string
	Logs            []string // what peer.js said
}

// play runs player/viewers.mjs: a at pageA, b at pageB 8 s later, then a
// leaves. It checks what every run must show: no errors, b's bytes the
// source's, and b playing on from the edge after a left.
func (e viewerEdge) play(t *testing.T, pageA, pageB string) viewers {
	t.Helper()
	node := need(t, "node")
	stream := "#/ipfs/" + e.root + "/index.m3u8"
	res := run(t, 3*time.Minute, node, "player/viewers.mjs", e.base+pageA+stream, e.base+pageB+stream,
		e.base+"/ipfs/"+e.root+"/seg03.ts", "8")
	var got viewers
	if err := json.Unmarshal([]byte(res[strings.LastIndex(res, "\n{")+1:]), &got); err != nil {
		t.Fatalf("player output: %v\n%s", err, res)
	}
	t.Logf("a %+v, b %+v; after a left: b %+v, played %.1f s -> %.1f s", got.A, got.B, got.BLast, got.BBefore, got.BAfter)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("peer.js said:\n%s", strings.Join(got.Logs, "\n"))
		}
	})
	if len(got.Errors) > 0 {
		t.Fatalf("player errors: %v", got.Errors)
	}
	want, err := os.ReadFile(filepath.Join(e.media, "seg03.ts"))
	if err != nil {
		t.Fatal(err)
	}
	if sum := sha256.Sum256(want); got.Digest != hex.EncodeToString(sum[:]) {
		t.Errorf("seg03.ts through b's loader hashes to %s, not the source's %x", got.Digest, sum)
	}
	// Once a left, b's fragments came from the edge, and it played on.
	if got.BLast.FromEdge <= got.B.FromEdge {
		t.Errorf("after a left, b took nothing more from the edge (%d then %d bytes)", got.B.FromEdge, got.BLast.FromEdge)
	}
	for _, e := range got.BErrors {
		if strings.Contains(e, "fatal") {
			t.Errorf("b's player failed: %v", got.BErrors)
		}
	}
	return got
}

// TestViewerPeersChromium: two viewers in Chromium play one HLS stream
// through a real caddy run whose Caddyfile turns viewer peers on. The
// second takes fragments the first holds from it over WebRTC, every byte
// the source's; when the first leaves, the second plays on from the edge.
func TestViewerPeersChromium(t *testing.T) {
	e := startViewerEdge(t, nil)
	got := e.play(t, "/", "/")
	if got.B.Peers < 1 || got.A.Peers < 1 {
		t.Errorf("the viewers were not connected to each other: a %d, b %d peers", got.A.Peers, got.B.Peers)
	}
	// b started 8 s behind a: what it played first, a held.
	if got.B.FromPeers == 0 || got.A.Uploaded == 0 {
		t.Errorf("b took %d bytes from peers and a uploaded %d; want both above 0", got.B.FromPeers, got.A.Uploaded)
	}
	// Once connected (CI has seen three dials in a row stall in ICE, so
	// b may play from the edge for a while first), b takes most from a.
	peers, edge := got.B.FromPeers-got.BConnected.FromPeers, got.B.FromEdge-got.BConnected.FromEdge
	if peers < edge {
		t.Errorf("once connected, b took %d bytes from peers and %d from the edge; want most from the peer ahead of it", peers, edge)
	}
}

// TestViewerPeersDropALiar: the first viewer runs peer.js built to serve
// every block with a byte changed. The second never plays a byte of it:
// it drops the liar at its first block, takes every fragment from the
// edge, and plays the source's bytes.
func TestViewerPeersDropALiar(t *testing.T) {
	node := need(t, "node")
	if _, err := os.Stat("../viewers/js/node_modules/esbuild"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("viewers/js has no node_modules; .ci/run must npm ci --prefix viewers/js")
		}
		t.Skip("npm ci --prefix viewers/js first (.ci/run does)")
	}
	liar := filepath.Join(t.TempDir(), "liar.js")
	build := exec.Command(node, "build.mjs", "--tamper", liar)
	build.Dir = "../viewers/js"
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the lying peer.js: %v\n%s", err, out)
	}
	script, err := os.ReadFile(liar)
	if err != nil {
		t.Fatal(err)
	}
	e := startViewerEdge(t, map[string][]byte{"liar.html": []byte(viewerPage("/liar.js", "", "")), "liar.js": script})
	got := e.play(t, "/liar.html", "/")
	if got.B.Dropped < 1 {
		t.Errorf("b dropped %d peers; want the liar dropped", got.B.Dropped)
	}
	if got.B.FromPeers != 0 {
		t.Errorf("b took %d bytes from the liar", got.B.FromPeers)
	}
	if got.A.Uploaded == 0 {
		t.Errorf("the liar uploaded nothing: b never asked it, so nothing was tested")
	}
}

// TestViewerPeersUploadControls: a viewer on a save-data connection, and
// one whose page sets uploadLimit 0, uploads nothing; the viewer after it
// takes everything from the edge and plays on. That viewer gives peers
// 20 s a fragment (p2pTimeout), yet plays at once: the viewer that may
// not upload says it does not have each block (bitswap's DONT_HAVE), and
// the edge is asked without waiting.
func TestViewerPeersUploadControls(t *testing.T) {
	e := startViewerEdge(t, map[string][]byte{
		// What Chromium's navigator.connection says on a save-data link.
		"savedata.html": []byte(viewerPage("/pacman/peer.js",
			"Object.defineProperty(navigator, 'connection', { value: { saveData: true, type: 'wifi' } });", "")),
		"noupload.html": []byte(viewerPage("/pacman/peer.js", "", "uploadLimit: 0")),
		"patient.html":  []byte(viewerPage("/pacman/peer.js", "", "p2pTimeout: 20000")),
	})
	for _, page := range []string{"/savedata.html", "/noupload.html"} {
		t.Run(page, func(t *testing.T) {
			got := e.play(t, page, "/patient.html")
			if got.A.Uploaded != 0 || got.B.FromPeers != 0 {
				t.Errorf("a uploaded %d bytes and b took %d from peers; want none", got.A.Uploaded, got.B.FromPeers)
			}
			if got.A.Peers < 1 {
				t.Errorf("a had %d peers: b never connected, so nothing was tested", got.A.Peers)
			}
		})
	}
}

// TestViewerPeersVideoSrc: a plain <video src> plays an MP4 through the
// edge's service worker: the second viewer's Range requests are answered
// from the first viewer's blocks, and it plays.
func TestViewerPeersVideoSrc(t *testing.T) {
	page := `<!doctype html>
<video muted></video>
<script src="/pacman/peer.js"></script>
<script>
PacmanPeers.serve().then(async () => {
  const src = location.hash.slice(1);
  // ?wait: join the file's viewers first and play once one is connected
  // (at most 25 s for the dial and its retries), so that the test
  // measures what the worker takes from it, not the dial's race.
  if (location.search.includes('wait')) {
    await PacmanPeers.join(src);
    for (let i = 0; i < 50 && (await PacmanPeers.stats()).peers === 0; i++) {
      await new Promise((r) => setTimeout(r, 500));
    }
  }
  const v = document.querySelector('video');
  v.src = src;
  v.play();
});
</script>
`
	e := startViewerEdge(t, map[string][]byte{"video.html": []byte(page)})
	ffmpeg := need(t, "ffmpeg")
	mp4 := filepath.Join(t.TempDir(), "clip.mp4")
	cmd := exec.Command(ffmpeg, "-loglevel", "error", "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25", "-t", "40",
		"-c:v", "libx264", "-preset", "veryfast", "-g", "50", "-b:v", "1500k", "-movflags", "+faststart", mp4)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, out)
	}
	out := caddyCmd(t, "pacman", "add", "--address", e.admin, mp4)
	c, _, _ := strings.Cut(strings.TrimSpace(out), " ")
	res := run(t, 2*time.Minute, need(t, "node"), "player/videosrc.mjs", e.base+"/video.html#/ipfs/"+c, e.base+"/video.html?wait#/ipfs/"+c, "8")
	var got struct {
		Errors, Logs []string
		A, B         struct{ FromPeers, FromEdge, Uploaded, Peers int64 }
		Controlled   bool
		VideoError   *int
	}
	if err := json.Unmarshal([]byte(res[strings.LastIndex(res, "\n{")+1:]), &got); err != nil {
		t.Fatalf("player output: %v\n%s", err, res)
	}
	t.Logf("a %+v, b %+v, controlled %v", got.A, got.B, got.Controlled)
	if len(got.Errors) > 0 || got.VideoError != nil {
		t.Fatalf("errors %v, video error %v; peer.js said %v", got.Errors, got.VideoError, got.Logs)
	}
	// a's ranges all came through the worker and peer.js, each byte once.
	fi, err := os.Stat(mp4)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Controlled || got.A.FromEdge < fi.Size()/2 || got.A.FromEdge > fi.Size()*11/10 {
		t.Fatalf("controlled %v, a took %d bytes from the edge for a %d-byte file; want the worker to answer its ranges, each byte about once",
			got.Controlled, got.A.FromEdge, fi.Size())
	}
	if got.B.FromPeers == 0 || got.A.Uploaded == 0 {
		t.Errorf("b took %d bytes from peers and a uploaded %d; want both above 0", got.B.FromPeers, got.A.Uploaded)
	}
}

// TestViewerPeersLive: viewer peers on a live event, through a real caddy
// run that takes the encoder's segments and serves the event, the
// viewers' script and the player page. Two viewers with peer.js and one
// with hls.js alone play side by side for 20 s. The two connect to each
// other, and none of the three stalls or plays further behind live than
// the one without peers (by more than 1 s): at the live edge the viewers
// lack what the other is loading and say so, and each goes to the edge
// without waiting out p2pTimeout. Neither uploads what the other no
// longer wants.
func TestViewerPeersLive(t *testing.T) {
	node := needPlayer(t)
	hlsJS, err := os.ReadFile("player/node_modules/hls.js/dist/hls.min.js")
	if err != nil {
		t.Fatal(err)
	}
	page := strings.Replace(playerPage, `<script src="/hls.min.js"></script>`,
		`<script src="/hls.min.js"></script><script src="/pacman/peer.js"></script>`, 1)
	page = strings.Replace(page, "window.hls = hls;", "window.hls = hls;\n  if (q.has('peers')) PacmanPeers.attach(hls);", 1)
	if page == playerPage {
		t.Fatal("the player page changed: no place for peer.js")
	}
	base, _ := runViewerEdge(t, map[string][]byte{"index.html": []byte(page), "hls.min.js": hlsJS}, fmt.Sprintf(`	pacman_live_ingest /ingest/* {
		token %s
	}
	pacman /live/* {
		resolve live
	}`, liveToken))

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	encoded, encOut := encodeLive(ctx, t, 50, base+"/ingest/ev/index.m3u8")
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if _, p, _ := getBody(base + "/live/ev/index.m3u8"); len(listed(p)) >= 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no 3 segments listed within 30 s; encoder said:\n%s", encOut)
		}
	}
	playlist := url.QueryEscape(base + "/live/ev/index.m3u8")
	out := run(t, 90*time.Second, node, "player/live.mjs", "20",
		base+"/?hls="+playlist, base+"/?peers&hls="+playlist, base+"/?peers&hls="+playlist)
	var res []viewer
	if err := json.Unmarshal([]byte(strings.TrimSpace(out)), &res); err != nil || len(res) != 3 {
		t.Fatalf("player output %q: %v", out, err)
	}
	settled := func(xs []float64) float64 { return median(xs[max(0, len(xs)-8):]) }
	plain := settled(res[0].Latency)
	for i, who := range []string{"without peers", "peers a", "peers b"} {
		r := res[i]
		t.Logf("%s: played %.1f s, %d stalls, behind live settled %.2f s, %+v", who, r.Played, r.Stalls, settled(r.Latency), r.Peers)
		if len(r.Errors) > 0 {
			t.Errorf("%s: player errors %v", who, r.Errors)
		}
		if r.Stalls > 0 {
			t.Errorf("%s: %d stalls after playback started (hls.js recovered from %q)", who, r.Stalls, r.Warnings)
		}
		if r.Played < 15 {
			t.Errorf("%s: played %.1f s of 20", who, r.Played)
		}
		if l := settled(r.Latency); i > 0 && (l < 0 || l > plain+1) {
			t.Errorf("%s: %.2f s behind live once settled, the viewer without peers %.2f s; want within 1 s of it", who, l, plain)
		}
	}
	if res[1].Peers.Peers < 1 || res[2].Peers.Peers < 1 {
		t.Errorf("the viewers with peer.js were not connected to each other: %d and %d peers", res[1].Peers.Peers, res[2].Peers.Peers)
	}
	// What one uploaded, the other took (give or take a block in flight
	// as the two were read). @helia/bitswap as published never sends a
	// cancel, and each viewer went on sending blocks the other had long
	// taken from the edge: 1.6 MB uploaded for 0.35 MB taken.
	up, took := res[1].Peers.Uploaded+res[2].Peers.Uploaded, res[1].Peers.FromPeers+res[2].Peers.FromPeers
	if up > took+512<<10 {
		t.Errorf("the viewers uploaded %d bytes and took %d from each other; want no more sent than taken", up, took)
	}
	cancel()
	<-encoded
}
