package cli

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/pacman-cdn/pacman/ingest"
	"github.com/pacman-cdn/pacman/internal/testutil"
	"github.com/pacman-cdn/pacman/node"
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
	want, err := ingest.Import(context.Background(), testutil.DiscardDAG{}, bytes.NewReader(data))
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

// TestPinCommands: with no Caddy running, `pacman ls` lists what was
// added, `unpin` and `pin` change that list and say how much they moved,
// and both refuse what they cannot do with a reason.
func TestPinCommands(t *testing.T) {
	src := t.TempDir()
	dir := t.TempDir()
	var roots []string
	for _, name := range []string{"a.bin", "b.bin"} {
		file := filepath.Join(src, name)
		if err := os.WriteFile(file, testutil.Bytes(name, 3<<20), 0o644); err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		if err := runCommand(t, addCommand(), &out, "--data-dir", dir, file); err != nil {
			t.Fatal(err)
		}
		roots = append(roots, strings.Fields(out.String())[0])
	}
	ls := func() []string {
		t.Helper()
		var out bytes.Buffer
		if err := runCommand(t, lsCommand(), &out, "--data-dir", dir); err != nil {
			t.Fatal(err)
		}
		got := strings.Fields(out.String())
		slices.Sort(got)
		return got
	}
	want := slices.Sorted(slices.Values(roots))
	if got := ls(); !slices.Equal(got, want) {
		t.Fatalf("ls after add: %q, want %q", got, want)
	}

	var out bytes.Buffer
	if err := runCommand(t, unpinCommand(), &out, "--data-dir", dir, roots[0]); err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(out.String()); !strings.HasPrefix(got, "unpinned "+roots[0]+": 4 blocks, 3.0 MiB") {
		t.Errorf("unpin printed %q", got)
	}
	if got := ls(); !slices.Equal(got, roots[1:]) {
		t.Errorf("ls after unpin: %q, want %q", got, roots[1:])
	}
	err := runCommand(t, unpinCommand(), io.Discard, "--data-dir", dir, roots[0])
	if err == nil || !strings.Contains(err.Error(), "is not pinned") {
		t.Errorf("unpinning twice: %v, want “is not pinned”", err)
	}
	out.Reset()
	if err := runCommand(t, pinCommand(), &out, "--data-dir", dir, roots[0]); err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(out.String()); !strings.HasPrefix(got, "pinned "+roots[0]+": 4 blocks") {
		t.Errorf("pin printed %q", got)
	}
	if got := ls(); !slices.Equal(got, want) {
		t.Errorf("ls after pin: %q, want %q", got, want)
	}

	absent, err := ingest.Import(context.Background(), testutil.DiscardDAG{}, bytes.NewReader(testutil.Bytes("absent", 1<<20)))
	if err != nil {
		t.Fatal(err)
	}
	err = runCommand(t, pinCommand(), io.Discard, "--data-dir", dir, absent.String())
	if err == nil || !strings.Contains(err.Error(), "is not all in the store") || !strings.Contains(err.Error(), "while Caddy runs") {
		t.Errorf("pinning content not held, offline: %v", err)
	}
	if err := runCommand(t, pinCommand(), io.Discard, "--data-dir", dir, "not-a-cid"); err == nil {
		t.Error("pin accepted an invalid CID")
	}
	if got := ls(); !slices.Equal(got, want) {
		t.Errorf("ls after the refused pins: %q, want %q", got, want)
	}
}

// TestIDCommand: `pacman id` makes the identity of a data directory not
// yet used, prints the same peer ID every time, which is the one the node
// then starts with, and one peer line per listen address given.
func TestIDCommand(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "fresh")
	var out bytes.Buffer
	if err := runCommand(t, idCommand(), &out, "--data-dir", dir, "--listen", "/ip4/10.0.0.7/tcp/4001", "--listen", "/ip4/10.0.0.7/udp/4001/quic-v1"); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	id, ok := strings.CutPrefix(lines[0], "peer ID ")
	if !ok || len(lines) != 3 {
		t.Fatalf("id printed %q", out.String())
	}
	for i, want := range []string{"peer /ip4/10.0.0.7/tcp/4001/p2p/" + id, "peer /ip4/10.0.0.7/udp/4001/quic-v1/p2p/" + id} {
		if lines[i+1] != want {
			t.Errorf("line %d: %q, want %q", i+1, lines[i+1], want)
		}
	}
	out.Reset()
	if err := runCommand(t, idCommand(), &out, "--data-dir", dir); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out.String(), "peer ID "+id+"\n") {
		t.Errorf("a second id printed %q, want peer ID %s", out.String(), id)
	}
	n := testutil.NewNodeConfig(t, node.Config{DataDir: dir})
	if got := n.Host().ID().String(); got != id {
		t.Errorf("the node started as %s, id said %s", got, id)
	}
}
