package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// viewerPage plays the hash's HLS URL with hls.js and viewer peers, with a
// short buffer so that fragments are loaded as it plays.
const viewerPage = `<!doctype html>
<video muted autoplay></video>
<script src="/hls.light.min.js"></script>
<script src="/pacman/peer.js"></script>
<script>
const hls = new Hls({ maxBufferLength: 4, maxMaxBufferLength: 6 });
window.hlsErrors = [];
hls.on(Hls.Events.ERROR, (e, d) => window.hlsErrors.push(d.details + (d.fatal ? ' (fatal)' : '')));
PacmanPeers.attach(hls);
hls.loadSource(location.hash.slice(1));
hls.attachMedia(document.querySelector('video'));
</script>
`

// TestViewerPeersChromium: two viewers in Chromium play one HLS stream
// through a real caddy run whose Caddyfile turns viewer peers on. The
// second takes fragments the first holds from it over WebRTC, every byte
// the source's; when the first leaves, the second plays on from the edge.
func TestViewerPeersChromium(t *testing.T) {
	ffmpeg := need(t, "ffmpeg")
	node := need(t, "node")
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
	www := filepath.Join(dir, "www")
	if err := os.Mkdir(www, 0o755); err != nil {
		t.Fatal(err)
	}
	hlsjs, err := os.ReadFile("../caddymodule/cli/demoassets/hls.light.min.js")
	if err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string][]byte{"index.html": []byte(viewerPage), "hls.light.min.js": hlsjs} {
		if err := os.WriteFile(filepath.Join(www, name), body, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	dataDir, _ := newDataDir(t)
	port, admin := freePort(t), fmt.Sprintf("127.0.0.1:%d", freePort(t))
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
	pacman /ipfs/*
	file_server {
		root %s
	}
}
`, admin, dataDir, port, www), 0o644); err != nil {
		t.Fatal(err)
	}
	startCaddy(t, nil, "run", "--config", caddyfile)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	waitHTTP(t, base+"/pacman/viewers.json")
	out := caddyCmd(t, "pacman", "add", "--address", admin, media)
	root, _, _ := strings.Cut(strings.TrimSpace(out), " ")

	segment := base + "/ipfs/" + root + "/seg03.ts"
	res := run(t, 3*time.Minute, node, "player/viewers.mjs", base+"/#/ipfs/"+root+"/index.m3u8", segment, "8")
	var got struct {
		Errors          []string
		A, B, BLast     struct{ FromPeers, FromEdge, Uploaded, Peers int64 }
		Digest          string
		BBefore, BAfter float64
		BErrors         []string
	}
	if err := json.Unmarshal([]byte(res[strings.LastIndex(res, "\n{")+1:]), &got); err != nil {
		t.Fatalf("player output: %v\n%s", err, res)
	}
	t.Logf("a %+v, b %+v; after a left: b %+v, played %.1f s -> %.1f s", got.A, got.B, got.BLast, got.BBefore, got.BAfter)
	if len(got.Errors) > 0 {
		t.Fatalf("player errors: %v", got.Errors)
	}
	want, err := os.ReadFile(filepath.Join(media, "seg03.ts"))
	if err != nil {
		t.Fatal(err)
	}
	if sum := sha256.Sum256(want); got.Digest != hex.EncodeToString(sum[:]) {
		t.Errorf("seg03.ts through b's loader hashes to %s, not the source's %x", got.Digest, sum)
	}
	if got.B.Peers < 1 || got.A.Peers < 1 {
		t.Errorf("the viewers were not connected to each other: a %d, b %d peers", got.A.Peers, got.B.Peers)
	}
	// b started 8 s behind a: what it played first, a held.
	if got.B.FromPeers == 0 || got.A.Uploaded == 0 {
		t.Errorf("b took %d bytes from peers and a uploaded %d; want both above 0", got.B.FromPeers, got.A.Uploaded)
	}
	if got.B.FromPeers < got.B.FromEdge {
		t.Errorf("b took %d bytes from peers and %d from the edge; want most from the peer ahead of it", got.B.FromPeers, got.B.FromEdge)
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
}
