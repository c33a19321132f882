package gateway_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/pacman-cdn/pacman/gateway"
	"github.com/pacman-cdn/pacman/ingest"
	"github.com/pacman-cdn/pacman/internal/testutil"
	"github.com/pacman-cdn/pacman/node"
)

// BenchmarkMultipartRanges measures a three-range request answered as
// multipart/byteranges from local blocks: range parsing, preconditions,
// the exact Content-Length, the part headers and the streamer.
func BenchmarkMultipartRanges(b *testing.B) {
	f := newFixture(b, gateway.Config{Readahead: -1})
	req, err := http.NewRequest("GET", f.url+"/video.mp4", nil)
	if err != nil {
		b.Fatal(err)
	}
	req.Header.Set("Range", "bytes=0-99,1048570-1048590,-100")
	b.ReportAllocs()
	for b.Loop() {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, resp.Body); err != nil {
			b.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 206 {
			b.Fatalf("status %d", resp.StatusCode)
		}
	}
}

// BenchmarkWarmSeek measures a 2 MiB range from the middle of a 64 MiB
// file held in a node's pebble store, time to first byte, beside the same
// range served by http.ServeContent from memory: the warm seek's baseline.
func BenchmarkWarmSeek(b *testing.B) {
	data := testutil.Bytes("warm-seek", 64<<20)
	n := testutil.NewNode(b)
	root, err := ingest.Import(context.Background(), n.DAG(), bytes.NewReader(data))
	if err != nil {
		b.Fatal(err)
	}
	pacman := storeGateway(b, n) + "/ipfs/" + root.String()
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(data))
	}))
	b.Cleanup(plain.Close)
	rng := fmt.Sprintf("bytes=%d-%d", 37<<20+12345, 39<<20+12344)
	for _, s := range []struct{ name, url string }{{"pacman", pacman}, {"ServeContent", plain.URL}} {
		b.Run(s.name, func(b *testing.B) {
			req, err := http.NewRequest("GET", s.url, nil)
			if err != nil {
				b.Fatal(err)
			}
			req.Header.Set("Range", rng)
			var ttfb time.Duration
			for b.Loop() {
				start := time.Now()
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				var one [1]byte
				if _, err := io.ReadFull(resp.Body, one[:]); err != nil {
					b.Fatal(err)
				}
				ttfb += time.Since(start)
				if _, err := io.Copy(io.Discard, resp.Body); err != nil {
					b.Fatal(err)
				}
				resp.Body.Close()
			}
			b.ReportMetric(float64(ttfb.Microseconds())/float64(b.N), "µs-ttfb/op")
		})
	}
}

// BenchmarkWarmFull: one whole 64 MiB GET of a file held in a pebble
// store, against http.ServeContent from memory. Bytes per second is the
// figure; a single stream's pace is what a player or a CDN's fill sees.
func BenchmarkWarmFull(b *testing.B) {
	data := testutil.Bytes("warm-full", 64<<20)
	n := testutil.NewNode(b)
	root, err := ingest.Import(context.Background(), n.DAG(), bytes.NewReader(data))
	if err != nil {
		b.Fatal(err)
	}
	if err := n.Sync(context.Background()); err != nil {
		b.Fatal(err)
	}
	pacman := storeGateway(b, n) + "/ipfs/" + root.String()
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(data))
	}))
	b.Cleanup(plain.Close)
	for _, s := range []struct{ name, url string }{{"pacman", pacman}, {"ServeContent", plain.URL}} {
		b.Run(s.name, func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				resp, err := http.Get(s.url)
				if err != nil {
					b.Fatal(err)
				}
				if n, err := io.Copy(io.Discard, resp.Body); err != nil || n != int64(len(data)) {
					b.Fatalf("read %d bytes: %v", n, err)
				}
				resp.Body.Close()
			}
		})
	}
}

// storeGateway serves n's store as an edge does: held leaves are read in
// place from it (not through a block session, which copies them whole).
func storeGateway(b *testing.B, n *node.Node) string {
	h, err := testutil.OpenGateway(n, gateway.Config{Readahead: -1, Logger: testutil.Logger(b)})
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(h)
	b.Cleanup(srv.Close)
	return srv.URL
}
