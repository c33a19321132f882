package node_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	bsmsg "github.com/ipfs/boxo/bitswap/message"
	pb "github.com/ipfs/boxo/bitswap/message/pb"
	bsnet "github.com/ipfs/boxo/bitswap/network/bsnet"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/pacman-cdn/pacman/dag"
	"github.com/pacman-cdn/pacman/ingest"
	"github.com/pacman-cdn/pacman/internal/testutil"
	"github.com/pacman-cdn/pacman/node"
)

// TestMutePeersDoNotStallSeeder: three peers each ask a seeder for 64
// blocks and never read the streams the answers come on. The seeder keeps
// serving an honest leecher: an 8 MiB file arrives byte-exact within
// seconds. Before the outbox, all 16 bitswap server workers sat in writes
// to the mute peers for a minute or more, and the leecher got nothing.
func TestMutePeersDoNotStallSeeder(t *testing.T) {
	if testing.Short() {
		t.Skip("moves 72 MiB over loopback libp2p")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	seeder := testutil.NewNode(t)
	bait := testutil.Bytes("mute-bait", 64<<20)
	baitRoot, err := ingest.Import(ctx, seeder.DAG(), bytes.NewReader(bait))
	if err != nil {
		t.Fatal(err)
	}
	leaves := leafCIDs(t, seeder, baitRoot, len(bait))
	wanted := testutil.Bytes("mute-honest", 8<<20)
	root, err := ingest.Import(ctx, seeder.DAG(), bytes.NewReader(wanted))
	if err != nil {
		t.Fatal(err)
	}

	for range 3 {
		muteWants(ctx, t, seeder, leaves)
	}
	// Give the seeder's workers time to take up the mute peers' wants.
	time.Sleep(time.Second)

	leecher := testutil.NewNode(t, seeder.AddrInfo())
	took, err := fetchAll(leecher, root, wanted)
	if err != nil {
		t.Fatalf("fetching past three mute peers: %v", err)
	}
	t.Logf("8 MiB past three mute peers in %v", took)
	if took > 10*time.Second {
		t.Errorf("8 MiB took %v past three mute peers, want seconds at most", took)
	}
}

// leafCIDs returns the leaves of the file root of size bytes held by n.
func leafCIDs(t *testing.T, n *node.Node, root cid.Cid, size int) []cid.Cid {
	t.Helper()
	ix, err := dag.NewIndex(16)
	if err != nil {
		t.Fatal(err)
	}
	var out []cid.Cid
	for leaf, err := range ix.Leaves(context.Background(), n.NewSession(context.Background()), root, 0, int64(size)) {
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, leaf.Cid)
	}
	return out
}

// muteWants connects a peer to seeder that sends a want-block for each of
// cids and never reads a byte of what comes back.
func muteWants(ctx context.Context, t *testing.T, seeder *node.Node, cids []cid.Cid) {
	t.Helper()
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
	if err != nil {
		t.Fatal(err)
	}
	hold := make(chan struct{})
	t.Cleanup(func() { close(hold); _ = h.Close() })
	for _, p := range []protocol.ID{bsnet.ProtocolBitswap, bsnet.ProtocolBitswapOneOne, bsnet.ProtocolBitswapOneZero, bsnet.ProtocolBitswapNoVers} {
		h.SetStreamHandler(p, func(s network.Stream) { <-hold; _ = s.Reset() })
	}
	if err := h.Connect(ctx, seeder.AddrInfo()); err != nil {
		t.Fatal(err)
	}
	msg := bsmsg.New(true)
	for i, c := range cids {
		msg.AddEntry(c, int32(len(cids)-i), pb.Message_Wantlist_Block, false)
	}
	if err := bsnet.NewFromIpfsHost(h).SendMessage(ctx, seeder.AddrInfo().ID, msg); err != nil {
		t.Fatal(err)
	}
}
