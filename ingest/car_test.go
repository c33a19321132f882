package ingest_test

import (
	"bytes"
	"context"
	"os"
	"testing"

	"github.com/pacman-cdn/pacman/dag"
	"github.com/pacman-cdn/pacman/ingest"
	"github.com/pacman-cdn/pacman/internal/testutil"
)

// TestCARRoundTrip imports a file, exports its DAG as a CAR, imports the CAR
// into an empty store and reads the file back.
func TestCARRoundTrip(t *testing.T) {
	ctx := context.Background()
	_, bserv, ds := testutil.MemStore()
	data := testutil.Bytes("car", 3<<20+77)
	root, err := ingest.Import(ctx, ds, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	var car bytes.Buffer
	n, err := dag.ExportCAR(ctx, bserv, root, &car)
	if err != nil {
		t.Fatal(err)
	}
	if n != 5 { // root + 4 leaves
		t.Errorf("exported %d blocks, want 5", n)
	}
	bs2, bserv2, _ := testutil.MemStore()
	roots, m, err := ingest.ImportCAR(ctx, bs2, bytes.NewReader(car.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if len(roots) != 1 || roots[0] != root || m != n {
		t.Fatalf("imported roots %v and %d blocks, want [%s] and %d", roots, m, root, n)
	}
	var got []byte
	for leaf, err := range mustIndex(t).Leaves(ctx, bserv2, root, 0, int64(len(data))) {
		if err != nil {
			t.Fatal(err)
		}
		blk, err := bserv2.GetBlock(ctx, leaf.Cid)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, blk.RawData()...)
	}
	if !bytes.Equal(got, data) {
		t.Error("file read back from the imported CAR differs")
	}
}

// TestExportIndexCAR exports a two-level DAG without its leaves: every
// internal node is there, and the index maps every byte to a leaf CID
// without a single leaf in the store.
func TestExportIndexCAR(t *testing.T) {
	ctx := context.Background()
	_, bserv, ds := testutil.MemStore()
	data := testutil.Bytes("index-car", 40<<10+3)
	root, err := ingest.Import(ctx, ds, bytes.NewReader(data), ingest.WithChunkSize(1024), ingest.WithMaxLinks(8))
	if err != nil {
		t.Fatal(err)
	}
	var car bytes.Buffer
	n, err := dag.ExportIndexCAR(ctx, bserv, root, &car)
	if err != nil {
		t.Fatal(err)
	}
	// 41 leaves under 6 nodes under the root: 7 index blocks.
	if n != 7 {
		t.Errorf("exported %d blocks, want the 7 internal nodes", n)
	}
	bs2, bserv2, _ := testutil.MemStore()
	if _, _, err := ingest.ImportCAR(ctx, bs2, bytes.NewReader(car.Bytes())); err != nil {
		t.Fatal(err)
	}
	var leaves int
	var next int64
	for leaf, err := range mustIndex(t).Leaves(ctx, bserv2, root, 0, int64(len(data))) {
		if err != nil {
			t.Fatal(err)
		}
		if leaf.Offset != next {
			t.Fatalf("leaf at %d, want %d", leaf.Offset, next)
		}
		next += leaf.Size
		if has, _ := bs2.Has(ctx, leaf.Cid); has {
			t.Errorf("leaf %s was exported", leaf.Cid)
		}
		leaves++
	}
	if leaves != 41 || next != int64(len(data)) {
		t.Errorf("index maps %d bytes to %d leaves, want %d to 41", next, leaves, len(data))
	}
}

// TestImportCARRejectsCorruptBlock flips one byte of a block's data: the
// import must fail rather than store bytes under a CID they do not match.
func TestImportCARRejectsCorruptBlock(t *testing.T) {
	ctx := context.Background()
	_, bserv, ds := testutil.MemStore()
	data := testutil.Bytes("corrupt", 2000)
	root, err := ingest.Import(ctx, ds, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	var car bytes.Buffer
	if _, err := dag.ExportCAR(ctx, bserv, root, &car); err != nil {
		t.Fatal(err)
	}
	b := car.Bytes()
	b[len(b)-10] ^= 0xff
	bs2, _, _ := testutil.MemStore()
	if _, _, err := ingest.ImportCAR(ctx, bs2, bytes.NewReader(b)); err == nil {
		t.Fatal("corrupt CAR imported without error")
	}
	if has, _ := bs2.Has(ctx, root); has {
		t.Error("the corrupt block was stored")
	}
}

// TestImportConformanceFixtures loads the gateway conformance suite's CARs.
func TestImportConformanceFixtures(t *testing.T) {
	path := "../../shared/fixtures/gateway-conformance/fixtures.car"
	f, err := os.Open(path)
	if err != nil {
		t.Skipf("fixtures not present: %v", err)
	}
	defer f.Close()
	bs, _, _ := testutil.MemStore()
	_, n, err := ingest.ImportCAR(context.Background(), bs, f)
	if err != nil {
		t.Fatal(err)
	}
	if n < 100 {
		t.Errorf("imported %d blocks from the merged fixtures, want many more", n)
	}
}

// TestExportCARToPipe: a CAR goes to a pipe (export | …), which cannot
// seek, as it goes to a buffer.
func TestExportCARToPipe(t *testing.T) {
	ctx := context.Background()
	_, bserv, ds := testutil.MemStore()
	data := testutil.Bytes("pipe", 2<<20+1)
	root, err := ingest.Import(ctx, ds, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := dag.ExportCAR(ctx, bserv, root, pw)
		pw.Close()
		done <- err
	}()
	bs2, _, _ := testutil.MemStore()
	roots, _, err := ingest.ImportCAR(ctx, bs2, pr)
	if err := <-done; err != nil {
		t.Fatalf("exporting to a pipe: %v", err)
	}
	if err != nil || len(roots) != 1 || roots[0] != root {
		t.Fatalf("read back from the pipe: roots %v, %v", roots, err)
	}
}

func mustIndex(t testing.TB) *dag.Index {
	ix, err := dag.NewIndex(1024)
	if err != nil {
		t.Fatal(err)
	}
	return ix
}
