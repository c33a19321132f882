// Package kubo runs Kubo daemons on loopback for the interop tests and the
// bench bed: built from the Go module proxy like any other module, with
// the test profile (no bootstrap, no MDNS), no routing, the unixfs-v1-2025
// import profile (so their CIDs are pacman's) and telemetry off.
package kubo

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// Version is the Kubo the tests and the bed run.
const Version = "v0.42.0"

// Binary returns the path of a Kubo binary, building it from the module
// proxy on first use and caching it in the user cache directory between
// runs (a cold build takes minutes).
func Binary() (string, error) {
	built.once.Do(func() { built.path, built.err = build() })
	return built.path, built.err
}

// built is the one build of a process.
var built struct {
	once sync.Once
	path string
	err  error
}

// Path is where Binary caches Kubo.
func Path() (string, error) {
	cache, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(cache, "pacman-test", "kubo-"+Version, "ipfs"), nil
}

// build builds Kubo into Path unless it is there.
func build() (string, error) {
	path, err := Path()
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	out, err := exec.Command("go", "mod", "download", "-json", "github.com/ipfs/kubo@"+Version).Output()
	if err != nil {
		return "", fmt.Errorf("downloading kubo: %w", err)
	}
	var mod struct{ Dir string }
	if err := json.Unmarshal(out, &mod); err != nil || mod.Dir == "" {
		return "", fmt.Errorf("downloading kubo: no module directory in %s", out)
	}
	src, err := os.MkdirTemp("", "kubo-src-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(src)
	if out, err := exec.Command("cp", "-r", mod.Dir+"/.", src).CombinedOutput(); err != nil {
		return "", fmt.Errorf("copying kubo: %v: %s", err, out)
	}
	_ = exec.Command("chmod", "-R", "u+w", src).Run()
	cmd := exec.Command("go", "build", "-o", path, "./cmd/ipfs")
	cmd.Dir = src
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building kubo: %v: %s", err, out)
	}
	return path, nil
}

// Config changes a daemon before it starts.
type Config struct {
	// Peers are kept connected (Peering.Peers).
	Peers []peer.AddrInfo
	// Outstanding, if not 0, is the bitswap server's bytes in flight to
	// one peer (Internal.Bitswap.MaxOutstandingBytesPerPeer; 1 MiB by
	// default).
	Outstanding int
	// Prepare, if set, is run on the repository last.
	Prepare func(repo string) error
}

// Daemon is a running Kubo daemon.
type Daemon struct {
	bin, repo string
	// ID is its peer ID; P2P its swarm address with /p2p/; Swarm the
	// same as host:port; Gateway its gateway's http://host:port.
	ID      peer.ID
	P2P     string
	Swarm   string
	Gateway string

	cmd *exec.Cmd
	log bytes.Buffer // its output: exec writes it from one goroutine
}

// Start starts the Kubo at bin with a new repository in repo, listening
// on free loopback ports, and returns once it answers commands.
func Start(bin, repo string, cfg Config) (*Daemon, error) {
	d := &Daemon{bin: bin, repo: repo}
	swarm, api, gw, err := freeAddrs()
	if err != nil {
		return nil, err
	}
	d.Swarm, d.Gateway = swarm, "http://"+gw
	var peering []string
	for _, p := range cfg.Peers {
		peering = append(peering, fmt.Sprintf(`{"ID":%q,"Addrs":[%q]}`, p.ID, p.Addrs[0]))
	}
	steps := [][]string{
		{"init", "--profile=test,unixfs-v1-2025"},
		{"config", "--json", "Addresses.Swarm", fmt.Sprintf("[%q]", multiaddr(swarm))},
		{"config", "Addresses.API", multiaddr(api)},
		{"config", "Addresses.Gateway", multiaddr(gw)},
		{"config", "--json", "Bootstrap", "[]"},
		{"config", "Routing.Type", "none"},
		{"config", "--json", "Peering.Peers", "[" + strings.Join(peering, ",") + "]"},
	}
	if cfg.Outstanding > 0 {
		steps = append(steps, []string{"config", "--json", "Internal.Bitswap.MaxOutstandingBytesPerPeer", fmt.Sprint(cfg.Outstanding)})
	}
	for _, args := range steps {
		if _, err := d.IPFS(args...); err != nil {
			return nil, err
		}
	}
	if cfg.Prepare != nil {
		if err := cfg.Prepare(repo); err != nil {
			return nil, err
		}
	}
	d.cmd = d.Command("daemon")
	d.cmd.Stdout, d.cmd.Stderr = &d.log, &d.log
	if err := d.cmd.Start(); err != nil {
		return nil, err
	}
	// Wait for the API port and the repo's api file: a command run before
	// the daemon holds the repo would take the repo lock itself, and one
	// run before the api file is written finds the lock taken ("someone
	// else has the lock": CI saw it with the port already open).
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if c, err := net.Dial("tcp", api); err == nil {
			c.Close()
			if _, err := os.Stat(filepath.Join(repo, "api")); err == nil {
				break
			}
		}
		if time.Now().After(deadline) {
			d.Stop()
			return nil, fmt.Errorf("kubo did not start:\n%s", d.Log())
		}
	}
	id, err := d.IPFS("id", "-f", "<id>")
	if err == nil {
		d.ID, err = peer.Decode(id)
	}
	if err != nil {
		d.Stop()
		return nil, err
	}
	d.P2P = multiaddr(swarm) + "/p2p/" + id
	return d, nil
}

// Command returns an ipfs command on the daemon's repository, not started.
func (d *Daemon) Command(args ...string) *exec.Cmd {
	cmd := exec.Command(d.bin, args...)
	cmd.Env = append(os.Environ(), "IPFS_PATH="+d.repo, "IPFS_TELEMETRY=off")
	return cmd
}

// IPFS runs an ipfs command on the daemon's repository and returns its
// output, trimmed.
func (d *Daemon) IPFS(args ...string) (string, error) {
	cmd := d.Command(args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("ipfs %s: %v: %s", strings.Join(args, " "), err, stderr.String())
	}
	return strings.TrimSpace(string(out)), nil
}

// Log returns what the daemon printed; call it once Stop has returned.
func (d *Daemon) Log() string { return d.log.String() }

// Stop kills the daemon and waits for it.
func (d *Daemon) Stop() {
	if d.cmd != nil && d.cmd.Process != nil {
		_ = d.cmd.Process.Kill()
		_ = d.cmd.Wait()
	}
}

// freeAddrs returns three loopback addresses no one listens on.
func freeAddrs() (a, b, c string, err error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var out []string
	for range 3 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return "", "", "", err
		}
		ls = append(ls, l)
		out = append(out, l.Addr().String())
	}
	return out[0], out[1], out[2], nil
}

// multiaddr is host:port as a TCP multiaddr.
func multiaddr(hostport string) string {
	host, port, _ := net.SplitHostPort(hostport)
	return fmt.Sprintf("/ip4/%s/tcp/%s", host, port)
}
