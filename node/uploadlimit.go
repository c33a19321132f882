package node

import (
	"context"
	"fmt"
	"sync"

	"github.com/hashicorp/golang-lru/v2/simplelru"
	bsmsg "github.com/ipfs/boxo/bitswap/message"
	bsnetwork "github.com/ipfs/boxo/bitswap/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"golang.org/x/time/rate"
)

// UploadLimits caps the block bytes the node sends to peers, in bytes per
// second. Zero means no cap.
type UploadLimits struct {
	// Total caps the upload to all peers together.
	Total int64
	// PerPeer caps the upload to each peer.
	PerPeer int64
}

// maxLimitedPeers bounds the per-peer limiters kept; the least recently
// served peer's is dropped first, and it starts afresh.
const maxLimitedPeers = 4096

// limitedNetwork is the bitswap network with the node's upload caps on the
// blocks it sends. The bitswap server sends each message synchronously from
// one of its workers, so a message waiting for its bytes' tokens holds back
// that peer's queue: peers see a slower seeder, never lost blocks.
type limitedNetwork struct {
	bsnetwork.BitSwapNetwork
	total   *rate.Limiter // nil: no total cap
	perPeer rate.Limit    // 0: no per-peer cap

	mu    sync.Mutex // guards peers
	peers *simplelru.LRU[peer.ID, *rate.Limiter]
}

// limitUploads wraps net with the caps of l, or returns it as it is when
// there are none.
func limitUploads(net bsnetwork.BitSwapNetwork, l UploadLimits) (bsnetwork.BitSwapNetwork, error) {
	if l.Total < 0 || l.PerPeer < 0 {
		return nil, fmt.Errorf("upload limits must not be negative")
	}
	if l.Total == 0 && l.PerPeer == 0 {
		return net, nil
	}
	ln := &limitedNetwork{BitSwapNetwork: net, perPeer: rate.Limit(l.PerPeer)}
	if l.Total > 0 {
		ln.total = rate.NewLimiter(rate.Limit(l.Total), burst(l.Total))
	}
	ln.peers, _ = simplelru.NewLRU[peer.ID, *rate.Limiter](maxLimitedPeers, nil) // size > 0
	return ln, nil
}

// burst lets a tenth of a second's bytes go at once (at least 256 KiB):
// larger blocks wait for their tokens in pieces.
func burst(perSecond int64) int {
	return int(max(perSecond/10, 256<<10))
}

// SendMessage sends msg once the caps allow its blocks' bytes.
func (n *limitedNetwork) SendMessage(ctx context.Context, p peer.ID, msg bsmsg.BitSwapMessage) error {
	size := 0
	for _, blk := range msg.Blocks() {
		size += len(blk.RawData())
	}
	if size > 0 {
		if n.perPeer > 0 {
			if err := waitN(ctx, n.peerLimiter(p), size); err != nil {
				return err
			}
		}
		if n.total != nil {
			if err := waitN(ctx, n.total, size); err != nil {
				return err
			}
		}
	}
	return n.BitSwapNetwork.SendMessage(ctx, p, msg)
}

func (n *limitedNetwork) peerLimiter(p peer.ID) *rate.Limiter {
	n.mu.Lock()
	defer n.mu.Unlock()
	l, ok := n.peers.Get(p)
	if !ok {
		l = rate.NewLimiter(n.perPeer, burst(int64(n.perPeer)))
		n.peers.Add(p, l)
	}
	return l
}

// waitN waits for n tokens, in pieces no larger than the burst.
func waitN(ctx context.Context, l *rate.Limiter, n int) error {
	for n > 0 {
		k := min(n, l.Burst())
		if err := l.WaitN(ctx, k); err != nil {
			return fmt.Errorf("waiting for upload bandwidth: %w", err)
		}
		n -= k
	}
	return nil
}
