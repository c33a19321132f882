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
	pacman := newGateway(b, n, gateway.Config{Readahead: -1}).URL + "/ipfs/" + root.String()
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
