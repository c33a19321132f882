package caddymodule

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pacman-cdn/pacman/chunker"
	"github.com/pacman-cdn/pacman/internal/testutil"
)

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
	if err := runCommand(t, addCommand(), &out, "--data-dir", dir, file); err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(out.String()); got != want.String()+"  "+file {
		t.Fatalf("add printed %q, want %q", got, want.String()+"  "+file)
	}

	var car bytes.Buffer
	if err := runCommand(t, exportCommand(), &car, "--data-dir", dir, want.String()); err != nil {
		t.Fatal(err)
	}
	carFile := filepath.Join(t.TempDir(), "clip.car")
	if err := os.WriteFile(carFile, car.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if err := runCommand(t, importCommand(), &out, "--data-dir", t.TempDir(), carFile); err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(out.String()); got != want.String() {
		t.Errorf("import printed roots %q, want %s", got, want)
	}

	// --index-only leaves the 3 raw leaves out: the root alone remains.
	var idx bytes.Buffer
	if err := runCommand(t, exportCommand(), &idx, "--data-dir", dir, "--index-only", want.String()); err != nil {
		t.Fatal(err)
	}
	if idx.Len() >= 4096 || idx.Len() == 0 {
		t.Errorf("index-only CAR is %d bytes, want the root node alone (well under 4 KiB)", idx.Len())
	}

	if err := runCommand(t, exportCommand(), io.Discard, "--data-dir", dir, "not-a-cid"); err == nil {
		t.Error("export accepted an invalid CID")
	}
	if err := runCommand(t, addCommand(), io.Discard, "--data-dir", dir, filepath.Join(dir, "missing")); err == nil {
		t.Error("add accepted a missing file")
	}
}
