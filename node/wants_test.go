package node_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/pacman-cdn/pacman/chunker"
	"github.com/pacman-cdn/pacman/internal/testutil"
	"github.com/pacman-cdn/pacman/node"
)

// TestWantsFollowHolderSpeed fetches a file from four holders whose uploads
// are capped unevenly (6, 6, 2 and 2 MiB/s): each want-block goes to the
// holder with the fewest outstanding, so every holder stays busy, the fast
// ones deliver more, the aggregate comes near the sum of the caps, and no
// leaf is fetched twice.
func TestWantsFollowHolderSpeed(t *testing.T) {
	if testing.Short() {
		t.Skip("takes 2 s of rate-limited transfer")
	}
	caps := []int64{6 << 20, 6 << 20, 2 << 20, 2 << 20}
	var sum int64
	data := testutil.Bytes("wants-speed", 32<<20)
	var seeders []*node.Node
	for _, c := range caps {
		s := testutil.NewNodeConfig(t, node.Config{Upload: node.UploadLimits{Total: c}})
		if _, err := chunker.Import(context.Background(), s.DAG(), bytes.NewReader(data)); err != nil {
			t.Fatal(err)
		}
		seeders = append(seeders, s)
		sum += c
	}
	root, err := chunker.Import(context.Background(), testutil.NewNode(t).DAG(), bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	leecher := testutil.NewNode(t, testutil.AddrInfos(seeders)...)
	took, err := fetchAll(leecher, root, data)
	if err != nil {
		t.Fatal(err)
	}
	rate := float64(len(data)) / took.Seconds()
	var seeded []uint64
	var total uint64
	for _, s := range seeders {
		st, err := s.Stats(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		seeded = append(seeded, st.BytesSeeded)
		total += st.BytesSeeded
	}
	t.Logf("%.1f MiB/s of %.0f MiB/s (%.0f%%); seeded (MiB): %.1f %.1f %.1f %.1f", rate/(1<<20), float64(sum)/(1<<20),
		100*rate/float64(sum), float64(seeded[0])/(1<<20), float64(seeded[1])/(1<<20), float64(seeded[2])/(1<<20), float64(seeded[3])/(1<<20))
	if rate < 0.7*float64(sum) {
		t.Errorf("aggregate %.0f B/s, want at least 70%% of the holders' %d B/s", rate, sum)
	}
	if total > uint64(len(data))*11/10+1<<20 {
		t.Errorf("holders sent %d bytes for a file of %d: leaves fetched twice", total, len(data))
	}
	for i, fast := range seeded[:2] {
		for j, slow := range seeded[2:] {
			if fast <= slow {
				t.Errorf("holder %d (6 MiB/s) sent %d bytes, holder %d (2 MiB/s) %d", i, fast, j+2, slow)
			}
		}
	}
	for i, b := range seeded {
		if b == 0 {
			t.Errorf("holder %d sent nothing", i)
		}
	}
}
