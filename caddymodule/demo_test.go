package caddymodule_test

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pacman-cdn/pacman/caddymodule"
	"github.com/pacman-cdn/pacman/internal/testutil"
	_ "github.com/pacman-cdn/pacman/plugins/all"
)

// TestDemo runs the demo with two files and checks that it prints one URL
// per file, in order, that serve the files byte-exact from the seeders, and
// that it stops cleanly.
func TestDemo(t *testing.T) {
	src := t.TempDir()
	a, b := filepath.Join(src, "a.webm"), filepath.Join(src, "b.bin")
	dataA, dataB := testutil.Bytes("a", 3<<20+1), testutil.Bytes("b", 1000)
	if err := os.WriteFile(a, dataA, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(b, dataB, 0o644); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	listen := l.Addr().String()
	l.Close()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- caddymodule.RunDemo(ctx, []string{a, b}, 2, listen, "off", pw)
		pw.Close()
	}()
	lines := bufio.NewScanner(pr)
	for i, want := range [][]byte{dataA, dataB} {
		if !lines.Scan() {
			t.Fatalf("demo printed %d URLs, want 2 (error: %v)", i, <-done)
		}
		url := lines.Text()
		if !strings.HasPrefix(url, "http://"+listen+"/ipfs/") {
			t.Fatalf("URL %q", url)
		}
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || !bytes.Equal(body, want) {
			t.Fatalf("%s: %d bytes, err %v, equal %v", url, len(body), err, bytes.Equal(body, want))
		}
		if i == 0 && resp.Header.Get("Content-Type") != "video/webm" {
			t.Errorf("Content-Type %q, want video/webm from ?filename=", resp.Header.Get("Content-Type"))
		}
	}
	for _, path := range []string{"/", "/favicon.ico", "/nothing/here"} {
		resp, err := http.Get("http://" + listen + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound || !bytes.Contains(body, []byte("no content at this path")) {
			t.Errorf("GET %s: %d %q, want 404 with its reason", path, resp.StatusCode, body)
		}
	}
	go io.Copy(io.Discard, pr)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("demo stopped with %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("demo did not stop")
	}
}
