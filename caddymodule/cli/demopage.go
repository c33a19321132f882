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

// demoEntries describes the served paths for the landing page.
func demoEntries(listen string, paths []string, roots []cid.Cid) []demoEntry {
	var out []demoEntry
	for i, p := range paths {
		e := demoEntry{Name: filepath.Base(p), CID: roots[i].String(), Kind: "file"}
		u := demoURL(listen, roots[i], p)
		e.URL = u[strings.Index(u, "/ipfs/"):] // same origin as the page
		if fi, err := os.Stat(filepath.Join(p, "index.m3u8")); err == nil && !fi.IsDir() {
			e.Kind, e.URL = "hls", e.URL+"index.m3u8"
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
body{font-family:system-ui,sans-serif;margin:2em;max-width:72em;color:#222}
main{display:flex;gap:2em;flex-wrap:wrap}section{flex:1 1 28em}
video{width:100%;background:#000;border-radius:4px}code{font-size:.8em;color:#666;word-break:break-all}
aside{flex:0 0 18em;border:1px solid #ddd;border-radius:4px;padding:1em}
td{padding:.2em .6em}td.n{text-align:right;font-variant-numeric:tabular-nums}
</style></head><body>
<h1>pacman demo</h1>
<p>An empty gateway fetches everything below from {{.Seeders}} seeder nodes over bitswap, verifying every block by its hash, and streams it to this page.</p>
<main>
<div>
{{range .Entries}}<section>
<h2>{{.Name}}</h2>
{{if eq .Kind "video"}}<video controls muted playsinline preload="metadata" src="{{.URL}}"></video>
{{else if eq .Kind "hls"}}<video controls muted playsinline data-hls="{{.URL}}"></video>
{{end}}<p><a href="{{.URL}}">{{.URL}}</a><br><code>{{.CID}}</code></p>
</section>
{{end}}</div>
<aside><h2>Where the bytes came from</h2>
<p>Fetched into the gateway, by source:</p>
<table id="fetched"><tr><td>waiting…</td></tr></table>
<p>Delivered to viewers, by where each block was:</p>
<table id="delivered"><tr><td>waiting…</td></tr></table>
<p id="peers"></p></aside>
</main>
<script src="/hls.light.min.js"></script>
<script>
for (const v of document.querySelectorAll('video[data-hls]')) {
  if (v.canPlayType('application/vnd.apple.mpegurl')) { v.src = v.dataset.hls; }
  else if (window.Hls && Hls.isSupported()) { const h = new Hls(); h.loadSource(v.dataset.hls); h.attachMedia(v); }
}
const fmt = (n) => n >= 1 << 20 ? (n / (1 << 20)).toFixed(1) + ' MiB' : n >= 1024 ? (n / 1024).toFixed(0) + ' KiB' : n + ' B';
async function refresh() {
  try {
    const s = await (await fetch('/pacman/stats', { headers: { Accept: 'application/json' } })).json();
    for (const id of ['fetched', 'delivered']) {
      const rows = Object.entries(s.figures[id]).sort((a, b) => b[1] - a[1]);
      document.getElementById(id).replaceChildren(...(rows.length ? rows : [['nothing yet', 0]]).map(([k, v]) => {
        const tr = document.createElement('tr');
        tr.dataset.source = k; tr.dataset.bytes = v;
        tr.innerHTML = '<td></td><td class="n"></td>';
        tr.children[0].textContent = k; tr.children[1].textContent = fmt(v);
        return tr;
      }));
    }
    document.getElementById('peers').textContent = s.figures.peers + ' peers connected, ' + fmt(s.figures.bytes_seeded) + ' seeded back';
  } catch (e) {}
}
refresh(); setInterval(refresh, 1000);
</script>
</body></html>
`))

// landingPage renders the demo's landing page.
func landingPage(seeders int, entries []demoEntry) ([]byte, error) {
	var b bytes.Buffer
	err := landingTemplate.Execute(&b, map[string]any{"Seeders": seeders, "Entries": entries})
	return b.Bytes(), err
}
