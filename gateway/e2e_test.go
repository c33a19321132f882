package gateway_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pacman-cdn/pacman/dag"
	"github.com/pacman-cdn/pacman/gateway"
	"github.com/pacman-cdn/pacman/ingest"
	"github.com/pacman-cdn/pacman/internal/testutil"
	"github.com/pacman-cdn/pacman/node"
)

// newGateway serves n's blocks over HTTP through a gateway.Handler.
func newGateway(t testing.TB, n *node.Node, cfg gateway.Config) *httptest.Server {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = testutil.Logger(t)
	}
	h, err := newSessionHandler(func(ctx context.Context) dag.BlockGetter {
		return n.NewSession(ctx)
	}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// TestColdFetchFromSeeders follows a file that only three seeders hold
// through a gateway that starts empty: every byte crosses bitswap, and every
// response is compared byte for byte with the source.
func TestColdFetchFromSeeders(t *testing.T) {
	if testing.Short() {
		t.Skip("moves 64 MiB over loopback libp2p")
	}
	const size = 64<<20 + 12345
	data := testutil.Bytes("e2e", size)
	seeders, root := testutil.Seeders(t, 3, data)
	// Two gateways that start empty: one measures a cold seek, the other
	// a cold full GET.
	seekNode := testutil.NewNode(t, testutil.AddrInfos(seeders)...)
	gw := testutil.NewNode(t, testutil.AddrInfos(seeders)...)
	seekURL := newGateway(t, seekNode, gateway.Config{}).URL + "/ipfs/" + root.String()
	url := newGateway(t, gw, gateway.Config{}).URL + "/ipfs/" + root.String()
	waitConnected(t, seekNode, 3)
	waitConnected(t, gw, 3)

	req, _ := http.NewRequest(http.MethodGet, seekURL, nil)
	req.Header.Set("Range", "bytes=40000000-42097151")
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1)
	if _, err := io.ReadFull(resp.Body, buf); err != nil {
		t.Fatal(err)
	}
	ttfb := time.Since(start)
	rest, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if got := append(buf, rest...); !bytes.Equal(got, data[40000000:42097152]) {
		t.Fatalf("cold seek: %d bytes differ from the source", len(got))
	}
	t.Logf("cold 2 MiB seek at 40 MB: time to first byte %v", ttfb)

	start = time.Now()
	resp, body := do(t, "GET", url)
	elapsed := time.Since(start)
	if resp.StatusCode != http.StatusOK || !bytes.Equal(body, data) {
		t.Fatalf("full GET: status %d, %d bytes, equal=%v", resp.StatusCode, len(body), bytes.Equal(body, data))
	}
	t.Logf("cold full GET of %d MiB from 3 seeders: %.1f MB/s", size>>20, float64(size)/elapsed.Seconds()/1e6)

	checkRandomRanges(t, url, data, 200)
	checkSemantics(t, url, data, root.String())

	// Seeding back: with every seeder gone, a fresh node fetches the whole
	// file from the gateway alone, over bitswap.
	for _, s := range seeders {
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	leecher := testutil.NewNode(t, gw.AddrInfo())
	waitConnected(t, leecher, 1)
	ix, err := dag.NewIndex(64)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	session := leecher.NewSession(ctx)
	var fetched []byte
	for leaf, err := range ix.Leaves(ctx, session, root, 0, size) {
		if err != nil {
			t.Fatalf("leecher: %v", err)
		}
		blk, err := session.GetBlock(ctx, leaf.Cid)
		if err != nil {
			t.Fatalf("leecher: leaf at %d: %v", leaf.Offset, err)
		}
		fetched = append(fetched, blk.RawData()...)
	}
	if !bytes.Equal(fetched, data) {
		t.Fatalf("leecher got %d bytes that differ from the source", len(fetched))
	}
}

// checkSemantics checks HEAD, 416 and If-Range against the live gateway.
func checkSemantics(t *testing.T, url string, data []byte, c string) {
	t.Helper()
	size := len(data)
	req, _ := http.NewRequest(http.MethodHead, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Length") != strconv.Itoa(size) || resp.Header.Get("Etag") != `"`+c+`"` {
		t.Errorf("HEAD: %d, Content-Length %q, Etag %q", resp.StatusCode, resp.Header.Get("Content-Length"), resp.Header.Get("Etag"))
	}
	resp, _ = do(t, "GET", url, "Range", fmt.Sprintf("bytes=%d-", size))
	if resp.StatusCode != http.StatusRequestedRangeNotSatisfiable || resp.Header.Get("Content-Range") != fmt.Sprintf("bytes */%d", size) {
		t.Errorf("range past the end: %d, Content-Range %q", resp.StatusCode, resp.Header.Get("Content-Range"))
	}
	resp, body := do(t, "GET", url, "Range", "bytes=0-99", "If-Range", `"bafyother"`)
	if resp.StatusCode != 200 || !bytes.Equal(body, data) {
		t.Errorf("If-Range mismatch: %d with %d bytes, want 200 with the whole file", resp.StatusCode, len(body))
	}
}

// checkRandomRanges requests n seeded-random ranges of every shape RFC 9110
// §14.1.1 allows and compares each with the source.
func checkRandomRanges(t *testing.T, url string, data []byte, n int) {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	t.Logf("range seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	size := int64(len(data))
	leaf := int64(ingest.DefaultChunkSize)
	type want struct{ start, end int64 }
	pick := func() (string, want) {
		switch rng.IntN(6) {
		case 0: // first byte
			return "0-0", want{0, 1}
		case 1: // last byte, as an open-ended range
			return fmt.Sprintf("%d-", size-1), want{size - 1, size}
		case 2: // suffix
			k := rng.Int64N(3*leaf) + 1
			return fmt.Sprintf("-%d", k), want{size - k, size}
		case 3: // across a leaf boundary
			b := leaf * (rng.Int64N(size/leaf) + 1)
			s, e := b-rng.Int64N(1000)-1, b+rng.Int64N(1000)
			e = min(e, size-1)
			return fmt.Sprintf("%d-%d", s, e), want{s, e + 1}
		default: // anywhere, up to 3 leaves long
			s := rng.Int64N(size)
			e := min(s+rng.Int64N(3*leaf), size-1)
			return fmt.Sprintf("%d-%d", s, e), want{s, e + 1}
		}
	}
	for i := range n {
		if i%5 == 4 {
			// multi-range: 2 or 3 parts in one multipart/byteranges response.
			var specs []string
			var wants []want
			for range 2 + rng.IntN(2) {
				s, w := pick()
				specs, wants = append(specs, s), append(wants, w)
			}
			hdr := "bytes=" + strings.Join(specs, ",")
			resp, body := do(t, "GET", url, "Range", hdr)
			var sum int64
			for _, w := range wants {
				sum += w.end - w.start
			}
			if sum > size {
				// More bytes than the file in pieces: sent once, whole.
				if resp.StatusCode != http.StatusOK || !bytes.Equal(body, data) {
					t.Fatalf("%s (%d bytes of %d): status %d, want 200 and the file", hdr, sum, size, resp.StatusCode)
				}
				continue
			}
			if resp.StatusCode != http.StatusPartialContent {
				t.Fatalf("%s: status %d", hdr, resp.StatusCode)
			}
			parts := readMultipart(t, resp, body)
			if len(parts) != len(wants) {
				t.Fatalf("%s: %d parts, want %d", hdr, len(parts), len(wants))
			}
			for j, p := range parts {
				w := wants[j]
				if p.contentRange != fmt.Sprintf("bytes %d-%d/%d", w.start, w.end-1, size) || !bytes.Equal(p.body, data[w.start:w.end]) {
					t.Fatalf("%s part %d: Content-Range %q, %d bytes, want %d-%d", hdr, j, p.contentRange, len(p.body), w.start, w.end-1)
				}
			}
			continue
		}
		spec, w := pick()
		resp, body := do(t, "GET", url, "Range", "bytes="+spec)
		if resp.StatusCode != http.StatusPartialContent {
			t.Fatalf("bytes=%s: status %d", spec, resp.StatusCode)
		}
		if cr := resp.Header.Get("Content-Range"); cr != fmt.Sprintf("bytes %d-%d/%d", w.start, w.end-1, size) {
			t.Fatalf("bytes=%s: Content-Range %q", spec, cr)
		}
		if !bytes.Equal(body, data[w.start:w.end]) {
			t.Fatalf("bytes=%s: %d bytes differ from the source", spec, len(body))
		}
	}
}

type part struct {
	contentRange string
	body         []byte
}

func readMultipart(t *testing.T, resp *http.Response, body []byte) []part {
	t.Helper()
	mt, params, err := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/byteranges" {
		t.Fatalf("Content-Type %q: %v", resp.Header.Get("Content-Type"), err)
	}
	if cl, _ := strconv.Atoi(resp.Header.Get("Content-Length")); cl != len(body) {
		t.Fatalf("Content-Length %d, body %d bytes", cl, len(body))
	}
	mr := multipart.NewReader(bytes.NewReader(body), params["boundary"])
	var parts []part
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			return parts
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(p)
		if err != nil {
			t.Fatal(err)
		}
		parts = append(parts, part{p.Header.Get("Content-Range"), b})
	}
}

func waitConnected(t testing.TB, n *node.Node, peers int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for len(n.Host().Network().Peers()) < peers {
		if time.Now().After(deadline) {
			t.Fatalf("connected to %d peers, want %d", len(n.Host().Network().Peers()), peers)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
