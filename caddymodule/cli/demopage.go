package cli

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/ipfs/go-cid"
)

// demoAssets are the demo's own media and the player script; see
// demoassets/README.md.
//
//go:embed demoassets/media demoassets/hls.light.min.js
var demoAssets embed.FS

// writeDemoMedia writes the embedded media into dir and returns the paths
// to serve: the MP4 and the directory of its HLS rendition.
func writeDemoMedia(dir string) ([]string, error) {
	media, err := fs.Sub(demoAssets, "demoassets/media")
	if err != nil {
		return nil, err
	}
	if err := os.CopyFS(dir, media); err != nil {
		return nil, fmt.Errorf("writing the demo media: %w", err)
	}
	return []string{filepath.Join(dir, "clip.mp4"), filepath.Join(dir, "hls")}, nil
}

// hlsJS returns the vendored hls.js.
func hlsJS() ([]byte, error) { return demoAssets.ReadFile("demoassets/hls.light.min.js") }

// demoEntry is one file of the landing page.
type demoEntry struct {
	Name, URL, CID string
	Kind           string // "video", "hls" or "file"
}

// demoEntries describes the served files for the landing page, by the
// names the demo's catalog gives them.
func demoEntries(paths []string, roots []cid.Cid) []demoEntry {
	var out []demoEntry
	for i, p := range paths {
		e := demoEntry{Name: filepath.Base(p), CID: roots[i].String(), Kind: "file"}
		e.URL = "/media/" + e.Name // the catalog's name for it
		if fi, err := os.Stat(filepath.Join(p, "index.m3u8")); err == nil && !fi.IsDir() {
			e.Kind, e.URL = "hls", e.URL+"/index.m3u8"
		} else {
			switch strings.ToLower(filepath.Ext(p)) {
			case ".mp4", ".m4v", ".webm", ".mov":
				e.Kind = "video"
			}
		}
		out = append(out, e)
	}
	return out
}

var landingTemplate = template.Must(template.New("landing").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>pacman demo</title>
<style>
body{font-family:system-ui,sans-serif;margin:2em;max-width:76em;color:#222}
main{display:flex;gap:2em;flex-wrap:wrap}main>div{flex:1 1 30em}
video{width:100%;background:#000;border-radius:4px}code{font-size:.8em;color:#666;word-break:break-all}
aside{flex:0 0 22em;border:1px solid #ddd;border-radius:4px;padding:0 1em 1em}
.big{display:flex;gap:1.5em;flex-wrap:wrap}.big div b{display:block;font-size:1.5em}
.bar{display:flex;align-items:center;gap:.5em;margin:.25em 0}.bar span{flex:0 0 7.5em}.bar i{height:1em;background:#2b8a3e;border-radius:2px}
.bar.stopped span{text-decoration:line-through;color:#999}.bar em{font-style:normal;font-variant-numeric:tabular-nums;color:#555}
button{margin:.3em .3em 0 0}small{color:#666}
</style></head><body>
<h1>pacman demo</h1>
<p>A gateway that starts with only the files' index (which blocks make each file) serves the files below. It fetches each 128 KiB block from the {{.Seeders}} seeders over bitswap, several at once, checks every block against its hash, and keeps and seeds what it fetched. An origin (a plain web server holding the same files) is asked for a block only when no seeder sends it within a second.</p>
<main>
<div>
{{if .Live}}<section id="live-section">
<h2>Live: a low-latency ladder</h2>
<video id="live" controls muted autoplay playsinline data-live="{{.Live}}"></video>
<p><a href="{{.Live}}">{{.Live}}</a><br><small id="live-state">waiting for the encoder's first segment…</small></p>
<p id="live-levels"></p>
<p><small>ffmpeg codes three renditions and PUTs them to a publisher, which cuts each 0.32 s fragment into an LL-HLS part as it arrives and announces it, signed, over libp2p. This gateway, an edge, fetches each part from the publisher as it is announced, checks it against its hash, and lists it in its own playlists.</small></p>
</section>
{{end}}{{range .Entries}}<section>
<h2>{{.Name}}</h2>
{{if eq .Kind "video"}}<video controls muted playsinline preload="metadata" src="{{.URL}}"></video>
{{else if eq .Kind "hls"}}<video controls muted playsinline data-hls="{{.URL}}"></video>
{{end}}<p><a href="{{.URL}}">{{.URL}}</a><br><code>/ipfs/{{.CID}}</code></p>
</section>
{{end}}</div>
<aside><h2>Where the bytes came from</h2>
<div class="big">
<div id="offload"><b>–</b>offload</div>
<div id="origin"><b>–</b>from the origin</div>
<div id="seeded"><b>–</b>seeded back</div>
</div>
<h3>Sent by each seeder</h3>
<div id="peers"><small>waiting…</small></div>
<p><button id="stop">Stop a seeder</button><button id="second">Start a second edge</button></p>
<p><small id="said">Stop seeders while a video plays: it plays on from the others, then from the origin. The second edge fetches every file from this gateway alone, so the gateway seeds back what it fetched.</small></p>
<p><small id="second-state"></small></p>
{{if .Viewers}}<h3>This tab and the other viewers</h3>
<div class="big" id="viewer-peers">
<div id="from-viewers"><b>–</b>from other tabs</div>
<div id="from-edge"><b>–</b>from the gateway</div>
<div id="uploaded"><b>–</b>sent to other tabs</div>
</div>
<p><small>Viewer peers are on: open this page in more tabs, and each takes the HLS video's blocks from the tabs that hold them, over WebRTC, checking each against its CID; <span id="viewer-count">0</span> other tabs connected.</small></p>
{{end}}<h3>Delivered to viewers</h3>
<table id="delivered"><tr><td>waiting…</td></tr></table>
<p><small><i>local</i> is what the gateway already held (fetched for an earlier request, or ahead of the player). From the fleet: <span id="fleet">–</span>. The <a href="/pacman/stats">dashboard</a> charts the last five minutes.</small></p>
</aside>
</main>
<script src="/hls.light.min.js"></script>
{{if .Viewers}}<script src="/pacman/peer.js"></script>
{{end}}<script>
const live = document.getElementById('live');
if (live && window.Hls && Hls.isSupported()) {
  // Low-latency mode: parts, blocking reloads and preload hints. The
  // ladder's playlist appears once the encoder's first segment is in.
  const h = new Hls({ lowLatencyMode: true });
  const load = () => h.loadSource(live.dataset.live);
  h.on(Hls.Events.ERROR, (_, d) => { if (d.fatal) setTimeout(load, 1000); });
  h.on(Hls.Events.MANIFEST_PARSED, () => {
    const pick = (i, label) => {
      const b = document.createElement('button');
      b.textContent = label; b.onclick = () => { h.currentLevel = i; };
      return b;
    };
    document.getElementById('live-levels').replaceChildren(pick(-1, 'auto'), ...h.levels.map((l, i) => pick(i, l.height + 'p')));
    live.play().catch(() => {});
  });
  h.attachMedia(live);
  load();
  setInterval(() => {
    const l = h.levels[h.currentLevel], at = h.playingDate;
    if (!l || !at) return;
    document.getElementById('live-state').textContent =
      ((Date.now() - at.getTime()) / 1000).toFixed(1) + ' s behind live, playing ' + l.height + 'p' + (h.autoLevelEnabled ? ' (auto)' : '');
  }, 500);
} else if (live) {
  live.src = live.dataset.live;
}
for (const v of document.querySelectorAll('video[data-hls]')) {
  // With viewer peers, hls.js loads the fragments (through them) even
  // where the browser plays HLS itself.
  if (!window.PacmanPeers && v.canPlayType('application/vnd.apple.mpegurl')) { v.src = v.dataset.hls; }
  else if (window.Hls && Hls.isSupported()) {
    // Fragments load once the viewer presses play; the playlist loads
    // now, and with it the tab joins the stream's other viewers.
    const h = new Hls({ autoStartLoad: false });
    if (window.PacmanPeers) PacmanPeers.attach(h);
    v.addEventListener('play', () => h.startLoad(), { once: true });
    h.loadSource(v.dataset.hls); h.attachMedia(v);
  }
}
const fmt = (n) => n >= 1 << 20 ? (n / (1 << 20)).toFixed(1) + ' MiB' : n >= 1024 ? (n / 1024).toFixed(0) + ' KiB' : Math.round(n) + ' B';
const set = (id, v) => { document.querySelector('#' + id + ' b').textContent = v; };
async function post(path) {
  const r = await fetch(path, { method: 'POST' });
  document.getElementById('said').textContent = (await r.text()).trim();
  refresh();
}
document.getElementById('stop').onclick = () => post('/demo/stop-seeder');
document.getElementById('second').onclick = () => post('/demo/second-edge');
async function refresh() {
  try {
    const [s, d] = await Promise.all([
      fetch('/pacman/stats', { headers: { Accept: 'application/json' } }).then((r) => r.json()),
      fetch('/demo/state').then((r) => r.json())]);
    const f = s.figures, total = Object.values(f.delivered).reduce((a, b) => a + b, 0);
    set('offload', total ? ((1 - (f.delivered.origin || 0) / total) * 100).toFixed(1) + ' %' : '–');
    set('origin', fmt(f.fetched.origin || 0));
    set('seeded', fmt(f.bytes_seeded));
    document.getElementById('fleet').textContent = fmt(f.fleet_received) + ' received, ' + fmt(f.fleet_sent) + ' sent';
    // Each node's own count: a seeder's bytes sent, the second edge's
    // bytes received (from the gateway, its only peer).
    const rows = d.peers;
    const shown = (p) => p.name === 'second edge' ? p.received : p.sent;
    const max = Math.max(1, ...rows.map(shown));
    document.getElementById('peers').replaceChildren(...rows.map((p) => {
      const el = document.createElement('div');
      el.className = 'bar' + (p.stopped ? ' stopped' : ''); el.dataset.peer = p.name; el.dataset.bytes = shown(p);
      el.innerHTML = '<span></span><i></i><em></em>';
      el.children[0].textContent = p.name; el.children[1].style.width = (shown(p) / max * 9) + 'em';
      el.children[2].textContent = fmt(shown(p)) + (p.stopped ? ', stopped' : '') + (p.name === 'second edge' ? ' from the gateway' : '');
      return el;
    }));
    document.getElementById('second-state').textContent = d.second_edge ? 'Second edge: ' + d.second_edge + '.' : '';
    const drows = Object.entries(f.delivered).sort((a, b) => b[1] - a[1]);
    document.getElementById('delivered').replaceChildren(...(drows.length ? drows : [['nothing yet', 0]]).map(([k, v]) => {
      const tr = document.createElement('tr');
      tr.dataset.source = k; tr.dataset.bytes = v;
      tr.innerHTML = '<td></td><td></td>';
      tr.children[0].textContent = k; tr.children[1].textContent = fmt(v);
      return tr;
    }));
  } catch (e) {}
}
refresh(); setInterval(refresh, 1000);
if (window.PacmanPeers) setInterval(async () => {
  const st = await PacmanPeers.stats();
  set('from-viewers', fmt(st.fromPeers)); set('from-edge', fmt(st.fromEdge)); set('uploaded', fmt(st.uploaded));
  document.getElementById('viewer-count').textContent = st.peers;
}, 1000);
</script>
</body></html>
`))

// landingPage renders the demo's landing page; with live, the path of a
// live ladder's multivariant playlist, it plays that first; with viewers,
// its HLS players load through viewer peers and it shows their figures.
func landingPage(seeders int, entries []demoEntry, live string, viewers bool) ([]byte, error) {
	var b bytes.Buffer
	err := landingTemplate.Execute(&b, map[string]any{"Seeders": seeders, "Entries": entries, "Live": live, "Viewers": viewers})
	return b.Bytes(), err
}
