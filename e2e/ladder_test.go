package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// streamInf matches a variant of a multivariant playlist and its URI.
var streamInf = regexp.MustCompile(`#EXT-X-STREAM-INF:BANDWIDTH=([0-9]+),AVERAGE-BANDWIDTH=([0-9]+),CODECS="(avc1\.[0-9a-f]{6})",RESOLUTION=([0-9]+)x([0-9]+)\n(\S+)\n`)

// TestLowLatencyLadder: ffmpeg codes one source into a three-rendition
// low-latency ladder (README's command) and PUTs it to a publisher; the
// edge serves a multivariant playlist of the three, with the resolution
// each rendition's own init segment says and bandwidths in the order of
// the encoder's bitrates; each rendition's playlist has the tags RFC
// 8216bis asks of a low-latency one and reports where the other two
// stand; a part of each rendition, decoded with that rendition's init
// segment, is a picture of that rendition's size (a player switching
// renditions gets the right parts); and ffmpeg plays the recorded ladder
// from the edge at the end.
func TestLowLatencyLadder(t *testing.T) {
	ffmpeg, ffprobe := need(t, "ffmpeg"), need(t, "ffprobe")
	pub, edge := lowLatencyPair(t, "333ms")
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	enc, encOut := lowLatencyEncoder(ctx, t, 10, "0.32", pub+"/ingest/show/manifest.mpd", ladder...)

	var master []byte
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		_, master, _ = getBody(edge + "/live/show/master.m3u8")
		if len(streamInf.FindAll(master, -1)) == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the edge's multivariant playlist never listed three renditions:\n%s\nencoder said:\n%s", master, encOut)
		}
	}
	sizes := [][2]int{{640, 360}, {320, 180}, {160, 90}}
	variants := streamInf.FindAllSubmatch(master, -1)
	var bandwidths []int
	for k, v := range variants {
		if want := fmt.Sprintf("../%s/index.m3u8", map[int]string{0: "show", 1: "show.1", 2: "show.2"}[k]); string(v[6]) != want {
			t.Errorf("variant %d is %s, want %s", k, v[6], want)
		}
		w, _ := strconv.Atoi(string(v[4]))
		h, _ := strconv.Atoi(string(v[5]))
		if [2]int{w, h} != sizes[k] {
			t.Errorf("variant %d says %dx%d, the encoder made %v", k, w, h, sizes[k])
		}
		peak, _ := strconv.Atoi(string(v[1]))
		avg, _ := strconv.Atoi(string(v[2]))
		if peak < avg {
			t.Errorf("variant %d: peak bandwidth %d under its average %d", k, peak, avg)
		}
		bandwidths = append(bandwidths, peak)
	}
	if len(bandwidths) == 3 && !(bandwidths[0] > bandwidths[1] && bandwidths[1] > bandwidths[2]) {
		t.Errorf("bandwidths %v are not in the order of the encoder's 600k, 250k, 100k:\n%s", bandwidths, master)
	}

	// Each rendition's playlist, as a player switching to it loads it.
	dir := t.TempDir()
	for k, name := range []string{"show", "show.1", "show.2"} {
		_, pl, _ := getBody(edge + "/live/" + name + "/index.m3u8")
		for _, rule := range llhlsViolations(string(pl)) {
			t.Errorf("%s's playlist breaks %s:\n%s", name, rule, pl)
		}
		for _, other := range []string{"show", "show.1", "show.2"} {
			report := `#EXT-X-RENDITION-REPORT:URI="../` + other + `/index.m3u8",LAST-MSN=`
			if other != name && !strings.Contains(string(pl), report) {
				t.Errorf("%s's playlist does not report %s:\n%s", name, other, pl)
			}
		}
		m, parts := mapLine.FindSubmatch(pl), partLine.FindAllSubmatch(pl, -1)
		if m == nil || len(parts) == 0 {
			t.Fatalf("%s's playlist has no map or no part:\n%s", name, pl)
		}
		_, init, _ := getBody(edge + "/live/" + name + "/" + string(m[1]))
		// The first part of the last segment listed with parts: it
		// starts with a sync sample, and decodes alone.
		seq := parts[len(parts)-1][2]
		code, part, _ := getBody(fmt.Sprintf("%s/live/%s/%s.0.m4s", edge, name, seq))
		_, fromPub, _ := getBody(fmt.Sprintf("%s/live/%s/%s.0.m4s", pub, name, seq))
		if code != 200 || !bytes.Equal(part, fromPub) {
			t.Errorf("%s part %s.0: %d, or it differs from the publisher's", name, seq, code)
		}
		file := filepath.Join(dir, name+".mp4")
		if err := os.WriteFile(file, append(init, part...), 0o644); err != nil {
			t.Fatal(err)
		}
		got := strings.TrimSpace(run(t, 30*time.Second, ffprobe, "-v", "error", "-select_streams", "v:0",
			"-show_entries", "stream=width,height", "-of", "csv=p=0:s=x", file))
		if want := fmt.Sprintf("%dx%d", sizes[k][0], sizes[k][1]); got != want {
			t.Errorf("a part of %s decodes as %s, want %s", name, got, want)
		}
	}

	if err := enc.Wait(); err != nil {
		t.Fatalf("encoder: %v\n%s", err, encOut)
	}
	for _, name := range []string{"show", "show.1", "show.2"} {
		for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			if _, pl, _ := getBody(edge + "/live/" + name + "/index.m3u8"); bytes.Contains(pl, []byte("#EXT-X-ENDLIST")) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s did not end", name)
			}
		}
	}
	if out := run(t, 60*time.Second, ffmpeg, "-hide_banner", "-loglevel", "error", "-i", edge+"/live/show/master.m3u8",
		"-map", "0:v", "-f", "null", "-"); out != "" {
		t.Errorf("ffmpeg playing the recorded ladder from the edge said: %s", out)
	}
}
