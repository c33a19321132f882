package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	kubod "github.com/pacman-cdn/pacman/internal/kubo"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multiaddr"
	"github.com/pacman-cdn/pacman/internal/shaper"
)

// defaultKubo is where internal/kubo caches the Kubo it builds from the
// module proxy (the e2e tests build it there).
func defaultKubo() string {
	path, err := kubod.Path()
	if err != nil {
		return "ipfs"
	}
	return path
}

// runKuboSeeders measures the public network's case: seeders that are
// Kubo daemons, each behind a shaping proxy (rtt, and an upload cap per
// seeder), and, fetching the file from them cold, pacman's gateway and a
// Kubo daemon's own gateway, one after the other on fresh nodes. It
// reports their throughput, the share of the seeders' aggregate cap
// pacman uses, and the time to first byte of cold 2 MiB seeks.
// outstanding, if not 0, is the seeders' bitswap bytes in flight to one
// peer (1 MiB, one block of the file, by default).
func runKuboSeeders(w io.Writer, bin string, size, k int, rtts []time.Duration, capBytes, runs, outstanding int) {
	if _, err := os.Stat(bin); err != nil {
		check(fmt.Errorf("no Kubo at %s (go test ./e2e -run KuboSeeds builds it there, or pass -kubo): %w", bin, err))
	}
	tmp, err := os.MkdirTemp("", "pacman-bench-kubo-")
	check(err)
	defer os.RemoveAll(tmp)
	data := make([]byte, size)
	fill(data, "pacman bench")
	file := filepath.Join(tmp, "file.bin")
	check(os.WriteFile(file, data, 0o644))
	var seeders []*kubod.Daemon
	defer func() {
		for _, s := range seeders {
			s.Stop()
		}
	}()
	var root cid.Cid
	for i := range k {
		s, err := kubod.Start(bin, filepath.Join(tmp, fmt.Sprint("seeder", i)), kubod.Config{Outstanding: outstanding})
		check(err)
		seeders = append(seeders, s)
		c, err := s.IPFS("add", "-Q", "--pin", file)
		check(err)
		root, err = cid.Decode(c)
		check(err)
	}
	fmt.Fprintf(w, "%d Kubo seeders, %d MiB file %s, upload cap per seeder %d B/s, bitswap bytes in flight per peer %d (0: Kubo's default, 1 MiB)\n\n", k, size>>20, root, capBytes, outstanding)
	fmt.Fprintln(w, "| RTT | cold full GET, pacman | cold full GET, Kubo gateway | pacman ÷ Kubo | pacman ÷ seeders' aggregate cap | cold 2 MiB seek TTFB, pacman | same, Kubo gateway |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|")
	var perPeer []string
	for _, rtt := range rtts {
		var infos []peer.AddrInfo
		var proxies []*shaper.Shaper
		for _, s := range seeders {
			p, err := shaper.New(s.Swarm, rtt, capBytes)
			check(err)
			proxies = append(proxies, p)
			infos = append(infos, peer.AddrInfo{ID: s.ID, Addrs: []multiaddr.Multiaddr{multiaddr.StringCast(fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", p.Addr().Port))}})
		}
		var pFull, kFull, pSeek, kSeek []float64
		b := &bed{tmp: tmp, data: data, root: root}
		for range runs {
			s := b.startGateway("pacman", infos, 0)
			_, total := fetch(s.url, "", data)
			pFull = append(pFull, mbps(size, total))
			s.stop()
			kg := startKuboGateway(bin, tmp, infos)
			_, total = fetch(kg.Gateway+"/ipfs/"+root.String(), "", data)
			kFull = append(kFull, mbps(size, total))
			kg.Stop()
			for _, pct := range []int{37, 73, 99} {
				off := min(size*pct/100, size-2<<20)
				rng := fmt.Sprintf("bytes=%d-%d", off, off+2<<20-1)
				s := b.startGateway("pacman", infos, 0)
				ttfb, _ := fetch(s.url, rng, data[off:off+2<<20])
				pSeek = append(pSeek, ms(ttfb))
				s.stop()
				kg := startKuboGateway(bin, tmp, infos)
				ttfb, _ = fetch(kg.Gateway+"/ipfs/"+root.String(), rng, data[off:off+2<<20])
				kSeek = append(kSeek, ms(ttfb))
				kg.Stop()
			}
		}
		use := "—"
		if capBytes > 0 {
			use = fmt.Sprintf("%.0f %%", median(pFull)*1e6/float64(capBytes*k)*100)
		}
		fmt.Fprintf(w, "| %v | %.1f MB/s | %.1f MB/s | %.2f× | %s | %.0f ms | %.0f ms |\n", rtt, median(pFull), median(kFull), median(pFull)/median(kFull), use, median(pSeek), median(kSeek))
		one, three := oneSeederToClients(b, infos[:1], 1), oneSeederToClients(b, infos[:1], 3)
		perPeer = append(perPeer, fmt.Sprintf("| %v | %.1f MB/s | %.1f MB/s (%.1f each) | %.2f× |", rtt, one, three, three/3, three/one))
		for _, p := range proxies {
			p.Close()
		}
	}
	// What one seeder gives: if clients fetching from it at once get
	// each what one alone gets, the limit is per peer (Kubo's server),
	// not the seeder's upload.
	fmt.Fprintf(w, "\nOne Kubo seeder (the cap per seeder as above), fresh pacman gateways fetching the whole file from it:\n\n")
	fmt.Fprintln(w, "| RTT | one gateway alone | three at once, aggregate | three ÷ one |")
	fmt.Fprintln(w, "|---|---|---|---|")
	for _, row := range perPeer {
		fmt.Fprintln(w, row)
	}
}

// oneSeederToClients returns the aggregate MB/s of n fresh pacman
// gateways fetching the file at once from the one seeder in seeder.
func oneSeederToClients(b *bed, seeder []peer.AddrInfo, n int) float64 {
	var gws []server
	for range n {
		gws = append(gws, b.startGateway("pacman", seeder, 0))
	}
	defer func() {
		for _, g := range gws {
			g.stop()
		}
	}()
	start := time.Now()
	var wg sync.WaitGroup
	for _, g := range gws {
		wg.Go(func() { fetch(g.url, "", b.data) })
	}
	wg.Wait()
	return mbps(n*len(b.data), time.Since(start))
}

// startKuboGateway starts an empty Kubo daemon peered with peers, whose
// gateway is the baseline.
func startKuboGateway(bin, tmp string, peers []peer.AddrInfo) *kubod.Daemon {
	dir, err := os.MkdirTemp(tmp, "kubo-gateway-")
	check(err)
	k, err := kubod.Start(bin, dir, kubod.Config{Peers: peers})
	check(err)
	// Wait until it is connected to every seeder, as a gateway up for
	// more than a moment is.
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		out, err := k.IPFS("swarm", "peers")
		if err == nil && strings.Count(out, "/p2p/") >= len(peers) {
			break
		}
	}
	return k
}
