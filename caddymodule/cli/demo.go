package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/caddyserver/caddy/v2"
	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multiaddr"
	"github.com/pacman-cdn/pacman/caddymodule"
	"github.com/pacman-cdn/pacman/node"
	"github.com/spf13/cobra"
)

func demoCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "demo [--file PATH]... [--seeders N] [--listen ADDR] [--address ADDR]",
		Short: "Runs seeders and an empty gateway on loopback, offline",
		Long: `
Starts N seeder nodes on loopback that hold the files or directories (a
12 s video, as MP4 and as HLS, when no --file is given) and a gateway whose
blockstore starts empty, peered with them, so every byte a client receives
crosses bitswap. Prints the landing page's URL, which plays each video and
shows where the bytes came from, then one gateway URL per file, in the
order of the --file flags, and serves until interrupted. Everything lives in a temporary directory removed on exit.`,
		Args: cobra.NoArgs,
	}
	files := cmd.Flags().StringArray("file", nil, "file to serve (repeatable)")
	seeders := cmd.Flags().Int("seeders", 3, "number of seeder nodes")
	listen := cmd.Flags().String("listen", "127.0.0.1:8080", "HTTP listen address of the gateway")
	admin := cmd.Flags().String("address", "localhost:2019", `Caddy admin endpoint address, or "off"`)
	oldAdminFlag(cmd, admin)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if *seeders < 1 {
			return fmt.Errorf("--seeders must be at least 1, got %d", *seeders)
		}
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		return runDemo(ctx, demoConfig{files: *files, seeders: *seeders, listen: *listen, admin: *admin}, cmd.OutOrStdout())
	}
	return cmd
}

type demoConfig struct {
	files   []string
	seeders int
	listen  string
	admin   string
}

// runDemo runs the demo until ctx is done.
func runDemo(ctx context.Context, cfg demoConfig, out io.Writer) (err error) {
	tmp, err := os.MkdirTemp("", "pacman-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if len(cfg.files) == 0 {
		if cfg.files, err = writeDemoMedia(filepath.Join(tmp, "media")); err != nil {
			return err
		}
	}

	loopback := multiaddr.StringCast("/ip4/127.0.0.1/tcp/0")
	var peers []string
	var roots []cid.Cid
	for i := range cfg.seeders {
		n, err := node.New(ctx, node.Config{
			DataDir:     filepath.Join(tmp, fmt.Sprintf("seeder-%d", i)),
			ListenAddrs: []multiaddr.Multiaddr{loopback},
		})
		if err != nil {
			return fmt.Errorf("starting seeder %d: %w", i, err)
		}
		defer func() { err = errors.Join(err, n.Close()) }()
		for j, f := range cfg.files {
			c, err := addFile(ctx, n.DAG(), f)
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
		for _, a := range n.Host().Addrs() {
			peers = append(peers, a.String()+"/p2p/"+n.Host().ID().String())
		}
	}

	page, err := landingPage(cfg.seeders, demoEntries(cfg.listen, cfg.files, roots))
	if err != nil {
		return err
	}
	gatewayDir := filepath.Join(tmp, "gateway")
	config, err := demoCaddyConfig(cfg, gatewayDir, peers, page)
	if err != nil {
		return err
	}
	if err := caddy.Load(config, true); err != nil {
		return fmt.Errorf("starting gateway: %w", err)
	}
	defer func() { err = errors.Join(err, caddy.Stop()) }()

	fmt.Fprintf(out, "http://%s/\n", cfg.listen)
	for i, c := range roots {
		fmt.Fprintln(out, demoURL(cfg.listen, c, cfg.files[i]))
	}
	fmt.Fprintf(out, "dashboard: http://%s/pacman/stats\n", cfg.listen)
	fmt.Fprintf(out, "data dir:  %s (removed when the demo stops)\n", gatewayDir)
	if cfg.admin != "off" {
		fmt.Fprintf(out, "add a file to the running demo:\n  %s pacman add --address %s FILE\n", commandName(), cfg.admin)
	}
	<-ctx.Done()
	return nil
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
// page at /, the player script and the node's figures it reads, and
// pacman for every other path.
func demoCaddyConfig(cfg demoConfig, dataDir string, peers []string, page []byte) ([]byte, error) {
	admin := map[string]any{"listen": cfg.admin}
	if cfg.admin == "off" {
		admin = map[string]any{"disabled": true}
	}
	js, err := hlsJS()
	if err != nil {
		return nil, err
	}
	static := func(path, ctype string, body []byte) map[string]any {
		return map[string]any{
			"match": []any{map[string]any{"path": []string{path}}},
			"handle": []any{map[string]any{"handler": "static_response", "body": string(body),
				"headers": map[string]any{"Content-Type": []string{ctype}}}},
		}
	}
	return json.Marshal(map[string]any{
		"admin":   admin,
		"logging": map[string]any{"logs": map[string]any{"default": map[string]any{"level": "WARN"}}},
		"apps": map[string]any{
			"pacman": caddymodule.App{
				DataDir: dataDir,
				Listen:  []string{"/ip4/127.0.0.1/tcp/0"},
				Peers:   peers,
			},
			"http": map[string]any{
				"servers": map[string]any{
					"demo": map[string]any{
						"listen":          []string{cfg.listen},
						"automatic_https": map[string]any{"disable": true},
						// Every path goes to pacman, so one it does not
						// know is a 404 with its reason, not an empty 200.
						"routes": []any{
							static("/", "text/html; charset=utf-8", page),
							static("/hls.light.min.js", "text/javascript", js),
							map[string]any{
								"match":  []any{map[string]any{"path": []string{"/pacman/stats"}}},
								"handle": []any{map[string]any{"handler": "pacman_stats"}},
							},
							map[string]any{
								// The demo's seeders hold the content on
								// loopback; a public edge should not be open.
								"handle": []any{map[string]any{"handler": "pacman", "policies": []any{map[string]any{"policy": "open"}}}},
							},
						},
					},
				},
			},
		},
	})
}
