package caddymodule

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

	"github.com/pacman-cdn/pacman/chunker"
	"github.com/pacman-cdn/pacman/internal/testutil"
	"github.com/spf13/cobra"
)

func run(t *testing.T, cmd *cobra.Command, stdout io.Writer, args ...string) error {
	t.Helper()
	cmd.SetArgs(args)
	cmd.SetOut(stdout)
	cmd.SetErr(io.Discard)
	return cmd.ExecuteContext(context.Background())
}

// TestAddExportImport adds a file with `pacman add`, exports its DAG with
// `pacman export`, imports that CAR into another data directory with
// `pacman import` and checks the CIDs all agree.
func TestAddExportImport(t *testing.T) {
	data := testutil.Bytes("cmd", 2<<20+1)
	file := filepath.Join(t.TempDir(), "clip.mp4")
	if err := os.WriteFile(file, data, 0o644); err != nil {
		t.Fatal(err)
	}
	want, err := chunker.Import(context.Background(), testutil.DiscardDAG{}, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	var out bytes.Buffer
	if err := run(t, addCommand(), &out, "--data-dir", dir, file); err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(out.String()); got != want.String()+"  "+file {
		t.Fatalf("add printed %q, want %q", got, want.String()+"  "+file)
	}

	var car bytes.Buffer
	if err := run(t, exportCommand(), &car, "--data-dir", dir, want.String()); err != nil {
		t.Fatal(err)
	}
	carFile := filepath.Join(t.TempDir(), "clip.car")
	if err := os.WriteFile(carFile, car.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if err := run(t, importCommand(), &out, "--data-dir", t.TempDir(), carFile); err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(out.String()); got != want.String() {
		t.Errorf("import printed roots %q, want %s", got, want)
	}

	// --index-only leaves the 3 raw leaves out: the root alone remains.
	var idx bytes.Buffer
	if err := run(t, exportCommand(), &idx, "--data-dir", dir, "--index-only", want.String()); err != nil {
		t.Fatal(err)
	}
	if idx.Len() >= 4096 || idx.Len() == 0 {
		t.Errorf("index-only CAR is %d bytes, want the root node alone (well under 4 KiB)", idx.Len())
	}

	if err := run(t, exportCommand(), io.Discard, "--data-dir", dir, "not-a-cid"); err == nil {
		t.Error("export accepted an invalid CID")
	}
	if err := run(t, addCommand(), io.Discard, "--data-dir", dir, filepath.Join(dir, "missing")); err == nil {
		t.Error("add accepted a missing file")
	}
}

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
		done <- runDemo(ctx, demoConfig{files: []string{a, b}, seeders: 2, listen: listen, admin: "off"}, pw)
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
