package main

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multiaddr"
	"github.com/pacman-cdn/pacman/internal/shaper"
)

// defaultKubo is where the e2e tests cache the Kubo they build from the
// module proxy (`go test ./e2e -run Kubo` builds it).
func defaultKubo() string {
	cache, err := os.UserCacheDir()
	if err != nil {
		return "ipfs"
	}
	return filepath.Join(cache, "pacman-test", "kubo-v0.42.0", "ipfs")
}

// kuboDaemon is a Kubo daemon on loopback only: test profile (no
// bootstrap, no MDNS), no routing, the unixfs-v1-2025 import profile (so
// its CIDs are pacman's), telemetry off.
type kuboDaemon struct {
	bin, repo string
	id        peer.ID
	swarm     string // host:port
	gateway   string // http://host:port
	cmd       *exec.Cmd
	log       bytes.Buffer
}

// freeAddr returns a loopback address no one listens on.
func freeAddr() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	check(err)
	defer l.Close()
	return l.Addr().String()
}

// startKuboDaemon starts a daemon in dir, peered with peers; outstanding,
// if not 0, sets its bitswap server's bytes in flight to one peer
// (Internal.Bitswap.MaxOutstandingBytesPerPeer, 1 MiB by default).
func startKuboDaemon(bin, dir string, peers []peer.AddrInfo, outstanding int) (*kuboDaemon, error) {
	k := &kuboDaemon{bin: bin, repo: dir, swarm: freeAddr()}
	api, gw := freeAddr(), freeAddr()
	k.gateway = "http://" + gw
	tcp := func(a string) string {
		host, port, _ := net.SplitHostPort(a)
		return fmt.Sprintf("/ip4/%s/tcp/%s", host, port)
	}
	var peering []string
	for _, p := range peers {
		peering = append(peering, fmt.Sprintf(`{"ID":%q,"Addrs":[%q]}`, p.ID, p.Addrs[0]))
	}
	for _, args := range [][]string{
		{"init", "--profile=test,unixfs-v1-2025"},
		{"config", "--json", "Addresses.Swarm", fmt.Sprintf("[%q]", tcp(k.swarm))},
		{"config", "Addresses.API", tcp(api)},
		{"config", "Addresses.Gateway", tcp(gw)},
		{"config", "--json", "Bootstrap", "[]"},
		{"config", "Routing.Type", "none"},
		{"config", "--json", "Peering.Peers", "[" + strings.Join(peering, ",") + "]"},
	} {
		if _, err := k.ipfs(args...); err != nil {
			return nil, err
		}
	}
	if outstanding > 0 {
		if _, err := k.ipfs("config", "--json", "Internal.Bitswap.MaxOutstandingBytesPerPeer", fmt.Sprint(outstanding)); err != nil {
			return nil, err
		}
	}
	k.cmd = exec.Command(bin, "daemon")
	k.cmd.Env = append(os.Environ(), "IPFS_PATH="+dir, "IPFS_TELEMETRY=off")
	k.cmd.Stdout, k.cmd.Stderr = &k.log, &k.log
	if err := k.cmd.Start(); err != nil {
		return nil, err
	}
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if c, err := net.Dial("tcp", api); err == nil {
			c.Close()
			if _, err := os.Stat(filepath.Join(dir, "api")); err == nil {
				break
			}
		}
		if time.Now().After(deadline) {
			k.stop()
			return nil, fmt.Errorf("kubo did not start:\n%s", k.log.String())
		}
	}
	id, err := k.ipfs("id", "-f", "<id>")
	if err != nil {
		k.stop()
		return nil, err
	}
	if k.id, err = peer.Decode(id); err != nil {
		k.stop()
		return nil, err
	}
	return k, nil
}

// ipfs runs an ipfs command on the daemon's repo.
func (k *kuboDaemon) ipfs(args ...string) (string, error) {
	cmd := exec.Command(k.bin, args...)
	cmd.Env = append(os.Environ(), "IPFS_PATH="+k.repo, "IPFS_TELEMETRY=off")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("ipfs %s: %v: %s", strings.Join(args, " "), err, stderr.String())
	}
	return strings.TrimSpace(string(out)), nil
}

// stop kills the daemon.
func (k *kuboDaemon) stop() {
	if k.cmd != nil && k.cmd.Process != nil {
		_ = k.cmd.Process.Kill()
		_ = k.cmd.Wait()
	}
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
	var seeders []*kuboDaemon
	defer func() {
		for _, s := range seeders {
			s.stop()
		}
	}()
	var root cid.Cid
	for i := range k {
		s, err := startKuboDaemon(bin, filepath.Join(tmp, fmt.Sprint("seeder", i)), nil, outstanding)
		check(err)
		seeders = append(seeders, s)
		c, err := s.ipfs("add", "-Q", "--pin", file)
		check(err)
		root, err = cid.Decode(c)
		check(err)
	}
	fmt.Fprintf(w, "%d Kubo seeders, %d MiB file %s, upload cap per seeder %d B/s, bitswap bytes in flight per peer %d (0: Kubo's default, 1 MiB)\n\n", k, size>>20, root, capBytes, outstanding)
	fmt.Fprintln(w, "| RTT | cold full GET, pacman | cold full GET, Kubo gateway | pacman ÷ Kubo | pacman ÷ seeders' aggregate cap | cold 2 MiB seek TTFB, pacman | same, Kubo gateway |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|")
	for _, rtt := range rtts {
		var infos []peer.AddrInfo
		var proxies []*shaper.Shaper
		for _, s := range seeders {
			p, err := shaper.New(s.swarm, rtt, capBytes)
			check(err)
			proxies = append(proxies, p)
			infos = append(infos, peer.AddrInfo{ID: s.id, Addrs: []multiaddr.Multiaddr{multiaddr.StringCast(fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", p.Addr().Port))}})
		}
		var pFull, kFull, pSeek, kSeek []float64
		b := &bed{tmp: tmp, data: data, root: root}
		for range runs {
			s := b.startGateway("pacman", infos, 0)
			_, total := fetch(s.url, "", data)
			pFull = append(pFull, mbps(size, total))
			s.stop()
			kg := startKuboGateway(bin, tmp, infos)
			_, total = fetch(kg.gateway+"/ipfs/"+root.String(), "", data)
			kFull = append(kFull, mbps(size, total))
			kg.stop()
			for _, pct := range []int{37, 73, 99} {
				off := min(size*pct/100, size-2<<20)
				rng := fmt.Sprintf("bytes=%d-%d", off, off+2<<20-1)
				s := b.startGateway("pacman", infos, 0)
				ttfb, _ := fetch(s.url, rng, data[off:off+2<<20])
				pSeek = append(pSeek, ms(ttfb))
				s.stop()
				kg := startKuboGateway(bin, tmp, infos)
				ttfb, _ = fetch(kg.gateway+"/ipfs/"+root.String(), rng, data[off:off+2<<20])
				kSeek = append(kSeek, ms(ttfb))
				kg.stop()
			}
		}
		use := "—"
		if capBytes > 0 {
			use = fmt.Sprintf("%.0f %%", median(pFull)*1e6/float64(capBytes*k)*100)
		}
		fmt.Fprintf(w, "| %v | %.1f MB/s | %.1f MB/s | %.2f× | %s | %.0f ms | %.0f ms |\n", rtt, median(pFull), median(kFull), median(pFull)/median(kFull), use, median(pSeek), median(kSeek))
		for _, p := range proxies {
			p.Close()
		}
	}
}

// startKuboGateway starts an empty Kubo daemon peered with peers, whose
// gateway is the baseline.
func startKuboGateway(bin, tmp string, peers []peer.AddrInfo) *kuboDaemon {
	dir, err := os.MkdirTemp(tmp, "kubo-gateway-")
	check(err)
	k, err := startKuboDaemon(bin, dir, peers, 0)
	check(err)
	// Wait until it is connected to every seeder, as a gateway up for
	// more than a moment is.
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		out, err := k.ipfs("swarm", "peers")
		if err == nil && strings.Count(out, "/p2p/") >= len(peers) {
			break
		}
	}
	return k
}
