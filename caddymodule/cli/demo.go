package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/caddyserver/caddy/v2"
	_ "github.com/caddyserver/caddy/v2/modules/caddyhttp/reverseproxy" // the demo's controls
	"github.com/ipfs/boxo/blockstore"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multiaddr"
	"github.com/pacman-cdn/pacman/caddymodule"
	"github.com/pacman-cdn/pacman/dag"
	"github.com/pacman-cdn/pacman/ingest"
	"github.com/pacman-cdn/pacman/node"
	"github.com/spf13/cobra"
)

// demoChunkSize is the leaf size of the demo's imports: small enough that
// its 1 MB clip is eight leaves, which several seeders send at once.
const demoChunkSize = 128 << 10

func demoCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "demo [--file PATH]... [--seeders N] [--live] [--viewers] [--listen ADDR] [--address ADDR]",
		Short: "Runs seeders, an origin and an empty gateway on loopback, offline",
		Long: `
Starts N seeder nodes on loopback that hold the files or directories (a
20 s video, as MP4 and as HLS, when no --file is given), a plain HTTP
origin that holds them too, and a gateway that holds only their index,
peered with the seeders: it fetches each block from the seeders over
bitswap, and from the origin only when no seeder answers within a second.
Prints the landing page's URL, which plays each video, shows where the
bytes came from, stops seeders while a video plays and starts a second
edge that fetches from the gateway; then one gateway URL per file, in the
order of the --file flags; and serves until interrupted. Everything lives
in a temporary directory removed on exit.

With --live, it also runs a live event: ffmpeg (which must be installed)
codes a test pattern into a three-rendition low-latency ladder and
publishes it to a publisher (a second Caddy, run from a Caddyfile), whose
announcements the gateway follows as an edge. The landing page plays the
ladder, and the edge's multivariant playlist URL is printed on a line of
its own.

With --viewers, viewer peers are on: the landing page loads the gateway's
/pacman/peer.js, and several tabs of it trade the HLS video's blocks over
WebRTC, the gateway their tracker and signalling relay.`,
		Args: cobra.NoArgs,
	}
	files := cmd.Flags().StringArray("file", nil, "file to serve (repeatable)")
	seeders := cmd.Flags().Int("seeders", 3, "number of seeder nodes")
	listen := cmd.Flags().String("listen", "127.0.0.1:8080", "HTTP listen address of the gateway")
	admin := cmd.Flags().String("address", "localhost:2019", `Caddy admin endpoint address, or "off"`)
	live := cmd.Flags().Bool("live", false, "also publish a low-latency live ladder (needs ffmpeg)")
	viewers := cmd.Flags().Bool("viewers", false, "turn viewer peers on: tabs of the landing page trade blocks")
	oldAdminFlag(cmd, admin)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if *seeders < 1 {
			return fmt.Errorf("--seeders must be at least 1, got %d", *seeders)
		}
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		return runDemo(ctx, demoConfig{files: *files, seeders: *seeders, listen: *listen, admin: *admin, live: *live, viewers: *viewers}, cmd.OutOrStdout())
	}
	return cmd
}

type demoConfig struct {
	files   []string
	seeders int
	listen  string
	admin   string
	live    bool
	viewers bool
}

// runDemo runs the demo until ctx is done.
func runDemo(ctx context.Context, cfg demoConfig, out io.Writer) (err error) {
	tmp, err := os.MkdirTemp("", "pacman-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	var lv *liveDemo
	if cfg.live {
		// Checked first: a missing encoder is said before anything
		// starts.
		if lv, err = newLiveDemo(filepath.Join(tmp, "live")); err != nil {
			return err
		}
		defer lv.close()
		if err := lv.startPublisher(ctx); err != nil {
			return err
		}
	}
	if len(cfg.files) == 0 {
		if cfg.files, err = writeDemoMedia(filepath.Join(tmp, "media")); err != nil {
			return err
		}
	}

	swarm := &demoSwarm{}
	defer func() { err = errors.Join(err, swarm.close()) }()
	var roots []cid.Cid
	for i := range cfg.seeders {
		n, err := startDemoNode(ctx, filepath.Join(tmp, fmt.Sprintf("seeder-%d", i)), nil)
		if err != nil {
			return fmt.Errorf("starting seeder %d: %w", i+1, err)
		}
		swarm.add(fmt.Sprintf("seeder %d", i+1), n)
		for j, f := range cfg.files {
			c, err := addFile(ctx, n.DAG(), f, ingest.WithChunkSize(demoChunkSize))
			if err != nil {
				return err
			}
			if _, err := n.PinHeld(ctx, c); err != nil {
				return err
			}
			if i == 0 {
				roots = append(roots, c)
			} else if c != roots[j] {
				return fmt.Errorf("%s changed while the demo imported it", f)
			}
		}
	}
	entries := demoEntries(cfg.files, roots)

	// The origin holds the same files as plain bytes, under the names the
	// catalog gives them; the same server answers the page's controls.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("starting the demo's origin: %w", err)
	}
	mux := http.NewServeMux()
	for i, f := range cfg.files {
		name := "/media/" + entries[i].Name
		if fi, err := os.Stat(f); err == nil && fi.IsDir() {
			mux.Handle(name+"/", http.StripPrefix(name, http.FileServer(http.Dir(f))))
		} else {
			mux.HandleFunc(name, func(w http.ResponseWriter, r *http.Request) { http.ServeFile(w, r, f) })
		}
	}
	swarm.routes(ctx, mux, roots)
	origin := &http.Server{Handler: mux}
	go func() { _ = origin.Serve(l) }()
	defer origin.Close()
	catalog := filepath.Join(tmp, "catalog.txt")
	var lines strings.Builder
	for i, e := range entries {
		fmt.Fprintf(&lines, "media/%s /ipfs/%s\n", e.Name, roots[i])
	}
	if err := os.WriteFile(catalog, []byte(lines.String()), 0o644); err != nil {
		return err
	}

	livePath := ""
	if lv != nil {
		livePath = demoLivePath
	}
	page, err := landingPage(cfg.seeders, entries, livePath, cfg.viewers)
	if err != nil {
		return err
	}
	gatewayDir := filepath.Join(tmp, "gateway")
	config, err := demoCaddyConfig(cfg, gatewayDir, swarm.seederAddrs(), page, "http://"+l.Addr().String(), catalog, lv)
	if err != nil {
		return err
	}
	if err := caddy.Load(config, true); err != nil {
		return fmt.Errorf("starting gateway: %w", err)
	}
	defer func() { err = errors.Join(err, caddy.Stop()) }()
	if err := copyIndex(ctx, swarm.nodes[0].Blockstore(), gatewayNode(gatewayDir).Blockstore(), roots); err != nil {
		return err
	}
	swarm.second = func() (*node.Node, error) {
		return startDemoNode(ctx, filepath.Join(tmp, "second-edge"), addrs(gatewayNode(gatewayDir)))
	}

	if lv != nil {
		if err := lv.startEncoder(ctx); err != nil {
			return err
		}
	}
	fmt.Fprintf(out, "http://%s/\n", cfg.listen)
	for i, c := range roots {
		fmt.Fprintln(out, demoURL(cfg.listen, c, cfg.files[i]))
	}
	if lv != nil {
		fmt.Fprintf(out, "http://%s%s\n", cfg.listen, demoLivePath)
	}
	fmt.Fprintf(out, "dashboard: http://%s/pacman/stats\n", cfg.listen)
	fmt.Fprintf(out, "data dir:  %s (removed when the demo stops)\n", gatewayDir)
	if cfg.admin != "off" {
		fmt.Fprintf(out, "add a file to the running demo:\n  %s pacman add --address %s FILE\n", commandName(), cfg.admin)
	}
	<-ctx.Done()
	return nil
}

// startDemoNode starts a node of the demo on loopback, in dir, peered
// with peers.
func startDemoNode(ctx context.Context, dir string, peers []string) (*node.Node, error) {
	cfg := node.Config{DataDir: dir, ListenAddrs: []multiaddr.Multiaddr{multiaddr.StringCast("/ip4/127.0.0.1/tcp/0")}}
	for _, p := range peers {
		ai, err := peer.AddrInfoFromString(p)
		if err != nil {
			return nil, err
		}
		cfg.Peers = append(cfg.Peers, *ai)
	}
	return node.New(ctx, cfg)
}

// copyIndex copies the index of each DAG under roots (every block but
// the raw leaves) from one store to another, as an edge in front of an
// origin is given it (`caddy pacman export --index-only`): the gateway
// then finds every file's leaves and their byte spans, and can take each
// from the origin when no seeder sends it.
func copyIndex(ctx context.Context, from, to blockstore.Blockstore, roots []cid.Cid) error {
	for _, root := range roots {
		err := dag.Walk(ctx, root, 1, func(ctx context.Context, c cid.Cid) ([]cid.Cid, error) {
			if c.Prefix().Codec == cid.Raw {
				return nil, nil
			}
			blk, err := from.Get(ctx, c)
			if err != nil {
				return nil, err
			}
			if err := to.Put(ctx, blk); err != nil {
				return nil, err
			}
			return dag.Links(blk)
		})
		if err != nil {
			return fmt.Errorf("giving the gateway the index of %s: %w", root, err)
		}
	}
	return nil
}

// gatewayNode returns the node of the gateway running dir.
func gatewayNode(dir string) *node.Node {
	var n *node.Node
	caddymodule.EachRunning(func(d string, r *caddymodule.Running) bool {
		if d == dir {
			n = r.Edge().Node()
		}
		return n == nil
	})
	return n
}

// addrs returns n's libp2p addresses, as peer lines name them.
func addrs(n *node.Node) []string {
	var out []string
	for _, a := range n.Host().Addrs() {
		out = append(out, a.String()+"/p2p/"+n.Host().ID().String())
	}
	return out
}

// commandName is how the user ran this binary, for a line to paste.
func commandName() string {
	if len(os.Args) > 0 && os.Args[0] != "" {
		return os.Args[0]
	}
	return "caddy"
}

// demoURL is the gateway URL of the file or directory at path.
func demoURL(listen string, c cid.Cid, path string) string {
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		return fmt.Sprintf("http://%s/ipfs/%s/", listen, c)
	}
	return fmt.Sprintf("http://%s/ipfs/%s?filename=%s", listen, c, url.QueryEscape(filepath.Base(path)))
}

// demoCaddyConfig is the JSON config of the demo gateway: the landing
// page at /, the player script, the node's figures and the demo's
// controls it reads, and pacman for every other path: the catalog's
// names (/media/…) and /ipfs/, from the seeders, with origin as the
// fallback, and with lv the live streams lv's publisher announces.
func demoCaddyConfig(cfg demoConfig, dataDir string, peers []string, page []byte, origin, catalog string, lv *liveDemo) ([]byte, error) {
	admin := map[string]any{"listen": cfg.admin}
	if cfg.admin == "off" {
		admin = map[string]any{"disabled": true}
	}
	js, err := hlsJS()
	if err != nil {
		return nil, err
	}
	app := caddymodule.App{DataDir: dataDir, Listen: []string{"/ip4/127.0.0.1/tcp/0"}, Peers: peers}
	resolvers := []any{map[string]any{"resolver": "catalog", "file": catalog}, map[string]any{"resolver": "ipfs"}}
	if cfg.viewers {
		app.Viewers = &caddymodule.Viewers{}
		app.Listen = append(app.Listen, "/ip4/127.0.0.1/udp/0/quic-v1/webtransport")
	}
	if lv != nil {
		app.Peers = append(app.Peers, lv.addr)
		app.LiveTrust = []string{lv.id.String()}
		resolvers = append([]any{map[string]any{"resolver": "live", "prefix": "/live/", "streams": []string{demoStream}}}, resolvers...)
	}
	static := func(path, ctype string, body []byte) map[string]any {
		return map[string]any{
			"match": []any{map[string]any{"path": []string{path}}},
			"handle": []any{map[string]any{"handler": "static_response", "body": string(body),
				"headers": map[string]any{"Content-Type": []string{ctype}}}},
		}
	}
	routes := []any{
		static("/", "text/html; charset=utf-8", page),
		static("/hls.light.min.js", "text/javascript", js),
		map[string]any{
			"match":  []any{map[string]any{"path": []string{"/pacman/stats"}}},
			"handle": []any{map[string]any{"handler": "pacman_stats"}},
		},
	}
	if cfg.viewers {
		// It answers its own paths and passes the rest on.
		routes = append(routes, map[string]any{"handle": []any{map[string]any{"handler": "pacman_viewers"}}})
	}
	routes = append(routes,
		map[string]any{
			"match": []any{map[string]any{"path": []string{"/demo/*"}}},
			"handle": []any{map[string]any{"handler": "reverse_proxy",
				"upstreams": []any{map[string]any{"dial": strings.TrimPrefix(origin, "http://")}}}},
		},
		map[string]any{
			// The demo's seeders hold the content on
			// loopback; a public edge should not be open.
			"handle": []any{map[string]any{
				"handler":   "pacman",
				"route":     "demo",
				"resolvers": resolvers,
				"sources":   []any{map[string]any{"source": "bitswap"}, map[string]any{"source": "origin", "url": origin}},
				"policies":  []any{map[string]any{"policy": "open"}},
			}},
		},
	)
	return json.Marshal(map[string]any{
		"admin":   admin,
		"logging": map[string]any{"logs": map[string]any{"default": map[string]any{"level": "WARN"}}},
		"apps": map[string]any{
			"pacman": app,
			"http": map[string]any{
				"servers": map[string]any{
					"demo": map[string]any{
						"listen":          []string{cfg.listen},
						"automatic_https": map[string]any{"disable": true},
						// Every path goes to pacman, so one it does not
						// know is a 404 with its reason, not an empty 200.
						"routes": routes,
					},
				},
			},
		},
	})
}
