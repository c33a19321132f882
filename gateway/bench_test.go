package gateway_test

import (
	"io"
	"net/http"
	"testing"

	"github.com/pacman-cdn/pacman/gateway"
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
