package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pacman-cdn/pacman/internal/testutil"
)

// TestHolePunchThroughNAT puts a seeder and a gateway behind two NATs
// (network namespaces joined by veth pairs, each NAT an iptables
// MASQUERADE router that drops unsolicited inbound packets, as a home
// router does) with a relay outside both. The gateway knows the seeder
// only by its address through the relay; it must connect through the
// relay, have the connection turned into a direct one by hole punching
// (the relayed connection is limited, and blocks never cross it), and
// then fetch a file from the seeder byte-exact.
//
// The outside addresses look public to libp2p (it punches holes only
// between public addresses); the namespaces are joined to nothing else.
//
// The seeder reserves its slot with the relay it is told of (relay_client
// <relay>), or with one it finds among its peers (relay_client auto, the
// default, with the relay as a static peer). In the second case the
// gateway starts once the seeder advertises its address through the relay;
// if the seeder knows its outside address by then, the punch happens on
// the first relayed connection, maybe too soon for the test to see it
// relayed, so that is not required. A third run has the seeder and the
// gateway listen on QUIC alone, so the punch must be a QUIC one.
func TestHolePunchThroughNAT(t *testing.T) {
	notShort(t)
	for _, tc := range []struct {
		name   string
		option string // how the seeder is told of the relay
		found  bool   // the seeder finds the relay itself
		quic   bool   // the seeder and the gateway have QUIC alone
	}{
		{"static relay", "relay_client", false, false},
		{"relay found among peers", "peer", true, false},
		{"QUIC", "relay_client", false, true},
	} {
		t.Run(tc.name, func(t *testing.T) { holePunch(t, tc.option, tc.found, tc.quic) })
	}
}

func holePunch(t *testing.T, relayOption string, found, quic bool) {
	n := newNetwork(t)

	relayDir, relayID := newDataDir(t)
	n.caddy(t, "inet", relayDir, `
		relay_service on
		reachability public`)
	transport, listen := "tcp/4001", ""
	if quic {
		transport, listen = "udp/4001/quic-v1", "listen /ip4/0.0.0.0/udp/4001/quic-v1"
	}
	relayA := fmt.Sprintf("/ip4/6.0.1.1/%s/p2p/%s", transport, relayID)
	relayB := fmt.Sprintf("/ip4/6.0.2.1/%s/p2p/%s", transport, relayID)

	seedDir, seedID := newDataDir(t)
	data := testutil.Bytes("hole-punch", 5<<20+77)
	file := filepath.Join(t.TempDir(), "file.bin")
	if err := os.WriteFile(file, data, 0o644); err != nil {
		t.Fatal(err)
	}
	c := addContent(t, seedDir, file)
	n.caddy(t, "seed", seedDir, `
		`+relayOption+` `+relayA+`
		`+listen+`
		reachability private`)
	if found {
		start := time.Now()
		for deadline := start.Add(30 * time.Second); !slices.Contains(n.listen(t, "seed"), relayA+"/p2p-circuit"); time.Sleep(100 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("the seeder found no relay among its peers within 30 s: it advertises %v", n.listen(t, "seed"))
			}
		}
		t.Logf("the seeder advertises itself through the relay it found after %v", time.Since(start))
	}

	gwDir, _ := newDataDir(t)
	start := time.Now()
	n.caddy(t, "gw", gwDir, `
		peer `+relayB+`/p2p-circuit/p2p/`+seedID.String()+`
		`+listen+`
		reachability private`)

	// Watch the gateway's connection to the seeder: first through the
	// relay, then direct.
	var relayedAt, directAt time.Duration
	for deadline := time.Now().Add(60 * time.Second); directAt == 0; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no direct connection to the seeder within 60 s (through the relay after %v)", relayedAt)
		}
		for _, p := range n.peers(t, "gw") {
			if p.ID != seedID.String() {
				continue
			}
			if p.Relayed && relayedAt == 0 {
				relayedAt = time.Since(start)
				t.Logf("through the relay after %v: %s", relayedAt, p.Addr)
			}
			if !p.Relayed {
				directAt = time.Since(start)
				t.Logf("direct after %v: %s", directAt, p.Addr)
				if want := "/ip4/6.0.1.2/" + transport; p.Addr != want {
					t.Errorf("the direct connection is at %s, want the seeder's NAT, %s", p.Addr, want)
				}
			}
		}
	}
	if relayedAt == 0 && !found {
		t.Error("the connection was never seen through the relay: it did not start as the test means")
	} else if relayedAt > 0 {
		t.Logf("relay → direct upgrade: %v", directAt-relayedAt)
	}

	got := filepath.Join(t.TempDir(), "got.bin")
	out := n.run(t, "gw", 60*time.Second, n.curl, "-sS", "--max-time", "50", "-o", got, "-w", "%{http_code}", "http://127.0.0.1:8080/ipfs/"+c)
	body, _ := os.ReadFile(got)
	if out != "200" || !bytes.Equal(body, data) {
		t.Fatalf("the file through the gateway: status %s, %d bytes, equal %v", out, len(body), bytes.Equal(body, data))
	}
	// Byte counts are swept into the figures once a second.
	var seen natPeer
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		for _, p := range n.peers(t, "gw") {
			if p.ID == seedID.String() {
				seen = p
			}
		}
		if !seen.Relayed && seen.TotalIn >= int64(len(data)) {
			return
		}
	}
	t.Errorf("the seeder after the fetch: %+v; want direct, with at least the file's %d bytes in", seen, len(data))
}

// network is the namespaces of the hole-punching test:
//
//	seed 192.168.1.2 ─ natA 192.168.1.1 | 6.0.1.2 ─ inet 6.0.1.1 (relay)
//	gw   192.168.2.2 ─ natB 192.168.2.1 | 6.0.2.2 ─ inet 6.0.2.1
type network struct {
	prefix string
	curl   string // the curl binary, run in the namespaces
}

// newNetwork makes the namespaces, and removes them when the test ends. It
// skips the test where that cannot be done: not as root, or without ip,
// iptables or curl.
func newNetwork(t *testing.T) *network {
	if os.Geteuid() != 0 {
		t.Skip("needs root: it makes network namespaces")
	}
	need(t, "ip")
	need(t, "iptables")
	n := &network{prefix: fmt.Sprintf("pm%d-", os.Getpid()), curl: need(t, "curl")}
	ns := func(s string) string { return n.prefix + s }
	for _, s := range []string{"inet", "natA", "natB", "seed", "gw"} {
		n.sh(t, "ip", "netns", "add", ns(s))
		t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns(s)).Run() })
		n.sh(t, "ip", "-n", ns(s), "link", "set", "lo", "up")
	}
	for _, side := range []struct{ nat, host, wan, lan, link string }{
		{"natA", "seed", "6.0.1", "192.168.1", "ia"},
		{"natB", "gw", "6.0.2", "192.168.2", "ib"},
	} {
		n.sh(t, "ip", "-n", ns(side.nat), "link", "add", "wan", "type", "veth", "peer", "name", side.link, "netns", ns("inet"))
		n.sh(t, "ip", "-n", ns(side.nat), "link", "add", "lan", "type", "veth", "peer", "name", "eth0", "netns", ns(side.host))
		n.sh(t, "ip", "-n", ns("inet"), "addr", "add", side.wan+".1/24", "dev", side.link)
		n.sh(t, "ip", "-n", ns("inet"), "link", "set", side.link, "up")
		n.sh(t, "ip", "-n", ns(side.nat), "addr", "add", side.wan+".2/24", "dev", "wan")
		n.sh(t, "ip", "-n", ns(side.nat), "addr", "add", side.lan+".1/24", "dev", "lan")
		n.sh(t, "ip", "-n", ns(side.nat), "link", "set", "wan", "up")
		n.sh(t, "ip", "-n", ns(side.nat), "link", "set", "lan", "up")
		n.sh(t, "ip", "-n", ns(side.nat), "route", "add", "default", "via", side.wan+".1")
		n.sh(t, "ip", "-n", ns(side.host), "addr", "add", side.lan+".2/24", "dev", "eth0")
		n.sh(t, "ip", "-n", ns(side.host), "link", "set", "eth0", "up")
		n.sh(t, "ip", "-n", ns(side.host), "route", "add", "default", "via", side.lan+".1")
		n.sh(t, "ip", "netns", "exec", ns(side.nat), "sysctl", "-qw", "net.ipv4.ip_forward=1")
		n.sh(t, "ip", "netns", "exec", ns(side.nat), "iptables", "-t", "nat", "-A", "POSTROUTING", "-o", "wan", "-j", "MASQUERADE")
		for _, chain := range []string{"INPUT", "FORWARD"} {
			n.sh(t, "ip", "netns", "exec", ns(side.nat), "iptables", "-A", chain, "-i", "wan", "-m", "conntrack", "--ctstate", "NEW,INVALID", "-j", "DROP")
		}
	}
	n.sh(t, "ip", "netns", "exec", ns("inet"), "sysctl", "-qw", "net.ipv4.ip_forward=1")
	return n
}

// sh runs a command, failing the test if it fails.
func (n *network) sh(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// run runs a command in namespace ns and returns its output.
func (n *network) run(t *testing.T, ns string, timeout time.Duration, args ...string) string {
	t.Helper()
	return run(t, timeout, "ip", append([]string{"netns", "exec", n.prefix + ns}, args...)...)
}

// caddy runs a pacman node in namespace ns, listening for peers on port
// 4001 (TCP and QUIC, unless the options say where) and for HTTP on
// 127.0.0.1:8080, with the pacman global options given, until the test
// ends.
func (n *network) caddy(t *testing.T, ns, dataDir, options string) {
	t.Helper()
	if !strings.Contains(options, "listen ") {
		options = "listen /ip4/0.0.0.0/tcp/4001 /ip4/0.0.0.0/udp/4001/quic-v1\n" + options
	}
	cfg := filepath.Join(t.TempDir(), "Caddyfile")
	if err := os.WriteFile(cfg, []byte(`{
	admin localhost:2019
	pacman {
		data_dir `+dataDir+`
		`+options+`
	}
}
http://127.0.0.1:8080 {
	handle /pacman/stats {
		pacman_stats
	}
	pacman {
		access open
	}
}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	log := startProcess(t, exec.Command("ip", "netns", "exec", n.prefix+ns, caddyBin, "run", "--adapter", "caddyfile", "--config", cfg))
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if exec.Command("ip", "netns", "exec", n.prefix+ns, "curl", "-sf", "-o", "/dev/null", "http://127.0.0.1:8080/pacman/stats").Run() == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: caddy never answered\n%s", ns, log.String())
		}
	}
}

// natPeer is a peer as pacman_stats reports it.
type natPeer struct {
	ID      string
	Addr    string
	Relayed bool
	TotalIn int64 `json:"total_in"`
}

// peers returns the peers of the node in namespace ns.
func (n *network) peers(t *testing.T, ns string) []natPeer {
	t.Helper()
	out, err := exec.Command("ip", "netns", "exec", n.prefix+ns, "curl", "-sf", "--max-time", "5", "http://127.0.0.1:8080/pacman/stats").Output()
	if err != nil {
		t.Fatalf("%s: reading its figures: %v", ns, err)
	}
	var stats struct{ Peers []natPeer }
	if err := json.Unmarshal(out, &stats); err != nil {
		t.Fatalf("%s: figures %q: %v", ns, out, err)
	}
	return stats.Peers
}
