// Package cli is the `caddy pacman` command: add, import, export,
// verify, pin, unpin and ls work through the Caddy that runs the data
// directory (its admin routes, package admin) or open the directory
// themselves when none does; id, name, stat and the offline demo.
package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/dustin/go-humanize"
	"github.com/ipfs/boxo/blockservice"
	"github.com/ipfs/boxo/ipld/merkledag"
	"github.com/ipfs/boxo/ipns"
	"github.com/ipfs/boxo/path"
	"github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"
	"github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
	"github.com/pacman-cdn/pacman/caddymodule"
	"github.com/pacman-cdn/pacman/caddymodule/admin"
	"github.com/pacman-cdn/pacman/dag"
	"github.com/pacman-cdn/pacman/ingest"
	"github.com/pacman-cdn/pacman/names"
	"github.com/pacman-cdn/pacman/node"
	"github.com/spf13/cobra"
	"golang.org/x/term"
)

func init() {
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "pacman",
		Usage: "add|import|export|verify|pin|unpin|ls|purge|stat|name|demo ...",
		Short: "Manages pacman content and runs the offline demo",
		Long: `
Adds files to the pacman blockstore, imports and exports CAR files, pins
content, and runs an offline demo: seeders and a gateway on loopback.

Commands on the blockstore (add, import, export, verify, pin, unpin, ls)
work in a Caddy that runs the data directory, through its admin endpoint
(--address), and open the directory themselves when none does.`,
		CobraFunc: func(cmd *cobra.Command) {
			// A bare `caddy pacman`, or a mistyped subcommand, is a
			// mistake: say so and exit non-zero, with the usage.
			cmd.Args = cobra.ArbitraryArgs
			cmd.RunE = func(cmd *cobra.Command, args []string) error {
				if len(args) > 0 {
					return fmt.Errorf("unknown command %q; see 'caddy pacman --help'", args[0])
				}
				return fmt.Errorf("missing a command: %s", cmd.Usage())
			}
			cmd.AddCommand(idCommand(), addCommand(), importCommand(), exportCommand(), verifyCommand(), pinCommand(), unpinCommand(), lsCommand(), purgeCommand(), statCommand(), demoCommand(), nameCommand())
		},
	})
}

// dataDirFlag adds --data-dir to a command that works through a running
// Caddy when one runs the directory (see locate).
func dataDirFlag(cmd *cobra.Command) *string {
	return cmd.Flags().String("data-dir", "", "pacman data directory (blockstore and identity); default: the one the Caddy at --address runs, else "+caddymodule.DefaultDataDir())
}

// namesDirFlag adds --data-dir to a command on the IPNS records and keys,
// which it reads and writes in the directory itself.
func namesDirFlag(cmd *cobra.Command) *string {
	return cmd.Flags().String("data-dir", caddymodule.DefaultDataDir(), "pacman data directory (IPNS records and keys)")
}

func idCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "id [--data-dir DIR] [--listen MULTIADDR]...",
		Short: "Prints the node's peer ID and the peer lines other edges need",
		Long: `
Prints the peer ID of the node on the data directory, making the directory
and its identity first if need be (as the node's first start would), and
one 'peer' line per listen address, ready to paste into the pacman block
of the other edges' Caddyfiles. Give the listen addresses the Caddyfile
gives (default: pacman's). An unspecified address (0.0.0.0, ::) must be
replaced with one the other edges reach this one at.`,
		Args: cobra.NoArgs,
	}
	dir := namesDirFlag(cmd)
	listen := cmd.Flags().StringArray("listen", caddymodule.DefaultListen, "a libp2p listen address of the node, as in the Caddyfile")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		id, err := node.Identity(*dir)
		if err != nil {
			return err
		}
		out := cmd.OutOrStdout()
		fmt.Fprintf(out, "peer ID %s\n", id)
		unspecified := false
		for _, s := range *listen {
			ma, err := multiaddr.NewMultiaddr(s)
			if err != nil {
				return fmt.Errorf("listen address %q: %w", s, err)
			}
			if _, err := ma.ValueForProtocol(multiaddr.P_WEBTRANSPORT); err == nil {
				continue // for browsers: edges dial TCP and QUIC
			}
			if ip, err := manet.ToIP(ma); err == nil && ip.IsUnspecified() {
				unspecified = true
			}
			fmt.Fprintf(out, "peer %s/p2p/%s\n", ma, id)
		}
		if unspecified {
			fmt.Fprintln(cmd.ErrOrStderr(), "id: replace 0.0.0.0 (or ::) with an address the other edges reach this one at")
		}
		return nil
	}
	return cmd
}

func addCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "add [--data-dir DIR] FILE|DIR...",
		Short: "Imports files and directories into the blockstore and prints their CIDs",
		Long: `
Imports each file as a UnixFS DAG with Kubo's unixfs-v1-2025 profile (CIDv1,
raw leaves, 1 MiB chunks, 1024 links per node), so the CIDs equal those of
'ipfs add' for the same bytes. Prints "CID  FILE" per file on stdout, and a
progress bar on stderr when it is a terminal. A directory is imported with
everything under it as a UnixFS directory, so relative links between its
files (an HLS playlist and its segments, a web page and its assets) work
under /ipfs/{dir-cid}/.

When a Caddy runs the data directory (found through its admin endpoint,
--address), the files are streamed to it and it imports and announces
them while it serves; otherwise the data directory is opened here.`,
		Args: cobra.MinimumNArgs(1),
	}
	dir := dataDirFlag(cmd)
	address := adminFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		at, err := locate(cmd, *address, *dir)
		if err != nil {
			return err
		}
		if done, err := at.add(cmd, args); done || err != nil {
			return err
		}
		return at.offline(cmd.Context(), func(ctx context.Context, s *node.Store) error {
			dag := merkledag.NewDAGService(blockservice.New(s.Blockstore, nil))
			for _, path := range args {
				c, err := addFile(ctx, dag, path)
				if err != nil {
					return err
				}
				// A pin is on disk when it returns.
				if _, err := s.PinHeld(ctx, c); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s  %s\n", c, path)
			}
			return nil
		})
	}
	return cmd
}

// addFile imports one file or directory tree, drawing a progress bar on a
// terminal for files.
func addFile(ctx context.Context, dag ipld.DAGService, path string, opts ...ingest.Option) (cid.Cid, error) {
	f, err := os.Open(path)
	if err != nil {
		return cid.Undef, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return cid.Undef, err
	}
	if fi.IsDir() {
		c, err := ingest.ImportDir(ctx, dag, path, opts...)
		if err != nil {
			return cid.Undef, fmt.Errorf("adding %s: %w", path, err)
		}
		return c, nil
	}
	if term.IsTerminal(int(os.Stderr.Fd())) {
		bar := newProgressBar(os.Stderr, path, fi.Size())
		defer bar.finish()
		opts = append(opts, ingest.WithProgress(bar.update))
	}
	c, err := ingest.Import(ctx, dag, f, opts...)
	if err != nil {
		return cid.Undef, fmt.Errorf("adding %s: %w", path, err)
	}
	return c, nil
}

func importCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "import [--data-dir DIR] FILE.car...",
		Short: "Imports the blocks of CAR files (v1 or v2) into the blockstore",
		Long: `
Stores every block of each CAR file after checking it against its CID, and
prints the CAR's roots. A Caddy running the data directory does it, as
for add.`,
		Args: cobra.MinimumNArgs(1),
	}
	dir := dataDirFlag(cmd)
	address := adminFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		at, err := locate(cmd, *address, *dir)
		if err != nil {
			return err
		}
		if done, err := at.importCARs(cmd, args); done || err != nil {
			return err
		}
		return at.offline(cmd.Context(), func(ctx context.Context, s *node.Store) error {
			for _, path := range args {
				f, err := os.Open(path)
				if err != nil {
					return err
				}
				roots, n, err := ingest.ImportCAR(ctx, s.Blockstore, f)
				f.Close()
				if err != nil {
					return fmt.Errorf("importing %s: %w", path, err)
				}
				for _, r := range roots {
					if _, err := s.PinHeld(ctx, r); err != nil {
						return err
					}
				}
				if err := s.Sync(ctx); err != nil {
					return err
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "%s: %d blocks\n", path, n)
				for _, r := range roots {
					fmt.Fprintln(cmd.OutOrStdout(), r)
				}
			}
			return nil
		})
	}
	return cmd
}

func exportCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "export [--data-dir DIR] [--index-only] CID > FILE.car",
		Short: "Writes the DAG under a CID as a CARv1 stream to stdout",
		Long: `
Writes every block of the DAG under CID, depth first from the root, as a
CARv1 stream. With --index-only the raw leaves (the file bytes) are left
out: the CAR holds only the index, a few KB per GB. An edge that imports it
and names an HTTP origin holding the files serves them from the origin
alone, checking every leaf against its CID. A Caddy running the data
directory does it, as for add.`,
		Args: cobra.ExactArgs(1),
	}
	dir := dataDirFlag(cmd)
	address := adminFlag(cmd)
	indexOnly := cmd.Flags().Bool("index-only", false, "leave out the raw leaves: export only the DAG's index")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		at, err := locate(cmd, *address, *dir)
		if err != nil {
			return err
		}
		root, err := cid.Decode(args[0])
		if err != nil {
			return fmt.Errorf("%q is not a CID: %w", args[0], err)
		}
		if done, err := at.export(cmd, root, *indexOnly); done || err != nil {
			return err
		}
		return at.offline(cmd.Context(), func(ctx context.Context, s *node.Store) error {
			export := dag.ExportCAR
			if *indexOnly {
				export = dag.ExportIndexCAR
			}
			_, err := export(ctx, blockservice.New(s.Blockstore, nil), root, cmd.OutOrStdout())
			return err
		})
	}
	return cmd
}

func verifyCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "verify [--data-dir DIR] [--repair]",
		Short: "Checks every stored block against its CID",
		Long: `
Reads every block in the blockstore and hashes it. Blocks whose bytes do not
match their CID (a torn write, a bad disk) are listed, and with --repair
deleted, so peers supply them again. Exits non-zero if any block was bad.
A Caddy running the data directory does it, as for add.`,
		Args: cobra.NoArgs,
	}
	dir := dataDirFlag(cmd)
	address := adminFlag(cmd)
	repair := cmd.Flags().Bool("repair", false, "delete blocks that fail the check")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		at, err := locate(cmd, *address, *dir)
		if err != nil {
			return err
		}
		report := func(rep node.VerifyReport) error {
			for _, c := range rep.Bad {
				fmt.Fprintln(cmd.OutOrStdout(), "bad", c)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%d blocks checked, %d bad\n", rep.Checked, len(rep.Bad))
			if len(rep.Bad) > 0 && !*repair {
				return fmt.Errorf("%d blocks do not match their CID; run with --repair to delete them", len(rep.Bad))
			}
			return nil
		}
		q := url.Values{}
		if *repair {
			q.Set("repair", "1")
		}
		var rep node.VerifyReport
		if done, err := at.json(cmd.Context(), http.MethodPost, "/pacman/verify", q, nil, &rep); done || err != nil {
			if err != nil {
				return err
			}
			return report(rep)
		}
		return at.offline(cmd.Context(), func(ctx context.Context, s *node.Store) error {
			rep, err := s.Verify(ctx, *repair)
			if err != nil {
				return err
			}
			return report(rep)
		})
	}
	return cmd
}

func nameCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "name put|publish|resolve ...",
		Short: "Keeps, publishes and resolves IPNS records",
	}
	put := &cobra.Command{
		Use:   "put [--data-dir DIR] /ipns/NAME FILE.ipns-record",
		Short: "Verifies an IPNS record and keeps it for /ipns/NAME",
		Long: `
Verifies FILE as a record of NAME (its signature, its validity, and that it
is newer than the record kept) and keeps it in the data directory, as
'ipfs routing put' does. The gateway's /ipns/NAME then resolves through it.
It works while Caddy runs.`,
		Args: cobra.ExactArgs(2),
	}
	putDir := namesDirFlag(put)
	put.RunE = func(cmd *cobra.Command, args []string) error {
		name, err := ipns.NameFromString(strings.TrimPrefix(args[0], "/ipns/"))
		if err != nil {
			return fmt.Errorf("%q is not an IPNS name: %w", args[0], err)
		}
		data, err := os.ReadFile(args[1])
		if err != nil {
			return err
		}
		s, err := names.Open(filepath.Join(*putDir, "ipns"))
		if err != nil {
			return err
		}
		if err := s.Put(name, data); err != nil {
			return err
		}
		p, _, _ := s.Resolve(cmd.Context(), name)
		fmt.Fprintf(cmd.OutOrStdout(), "/ipns/%s -> %s\n", name, p)
		return nil
	}
	publish := &cobra.Command{
		Use:   "publish [--data-dir DIR] [--key NAME] [--lifetime D] [--ttl D] /ipfs/CID[/PATH]",
		Short: "Signs an IPNS record pointing a key's name at a path, and keeps it",
		Long: `
Signs a record of the key NAME (default "self"; generated on first use and
kept in DIR/ipns-keys/NAME: whoever holds the file can publish the name)
pointing at the path, valid for --lifetime and cached for --ttl, with the
sequence number after the record kept. It prints the name. A running Caddy
whose node has routing (dht, delegated_routing) announces it within a
minute, and again every 4 hours; the gateway's /ipns/NAME resolves through
it at once. It works while Caddy runs.`,
		Args: cobra.ExactArgs(1),
	}
	pubDir := namesDirFlag(publish)
	keyName := publish.Flags().String("key", "self", "the key to publish with")
	lifetime := publish.Flags().Duration("lifetime", 48*time.Hour, "how long the record is valid")
	ttl := publish.Flags().Duration("ttl", 5*time.Minute, "how long resolvers may cache it")
	publish.RunE = func(cmd *cobra.Command, args []string) error {
		value, err := path.NewPath(args[0])
		if err != nil {
			return fmt.Errorf("%q is not a content path (/ipfs/CID[/PATH] or /ipns/NAME): %w", args[0], err)
		}
		if *lifetime <= 0 || *ttl <= 0 {
			return fmt.Errorf("--lifetime and --ttl must be positive")
		}
		sk, err := (names.Keys{Dir: filepath.Join(*pubDir, "ipns-keys")}).Key(*keyName)
		if err != nil {
			return err
		}
		s, err := names.Open(filepath.Join(*pubDir, "ipns"))
		if err != nil {
			return err
		}
		name, err := names.Publish(s, sk, value, *lifetime, *ttl)
		if err != nil {
			return err
		}
		fmt.Fprintf(cmd.OutOrStdout(), "/ipns/%s -> %s\n", name, value)
		return nil
	}
	resolve := &cobra.Command{
		Use:   "resolve [--data-dir DIR] /ipns/NAME",
		Short: "Prints the path a kept IPNS record points to",
		Args:  cobra.ExactArgs(1),
	}
	resolveDir := namesDirFlag(resolve)
	resolve.RunE = func(cmd *cobra.Command, args []string) error {
		name, err := ipns.NameFromString(strings.TrimPrefix(args[0], "/ipns/"))
		if err != nil {
			return fmt.Errorf("%q is not an IPNS name: %w", args[0], err)
		}
		s, err := names.Open(filepath.Join(*resolveDir, "ipns"))
		if err != nil {
			return err
		}
		p, ttl, err := s.Resolve(cmd.Context(), name)
		if err != nil {
			return err
		}
		fmt.Fprintf(cmd.OutOrStdout(), "%s (ttl %v)\n", p, ttl)
		return nil
	}
	cmd.AddCommand(put, publish, resolve)
	return cmd
}

func statCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "stat [--address ADDR]",
		Short: "Prints the running node's status: peer ID, addresses, peers, store size",
		Long: `
Asks a running Caddy's admin endpoint (localhost only by default) for the
status of its pacman node and prints it.`,
		Args: cobra.NoArgs,
	}
	address := adminFlag(cmd)
	oldAdminFlag(cmd, address)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+*address+"/pacman/stat", nil)
		if err != nil {
			return err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return fmt.Errorf("asking Caddy's admin endpoint at %s (is Caddy running?): %w", *address, err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
			return fmt.Errorf("admin endpoint answered %s: %s", resp.Status, body)
		}
		var nodes []admin.Status
		if err := json.NewDecoder(resp.Body).Decode(&nodes); err != nil {
			return fmt.Errorf("reading the status: %w", err)
		}
		out := cmd.OutOrStdout()
		for _, n := range nodes {
			fmt.Fprintf(out, "data dir      %s\npeer ID       %s\n", n.DataDir, n.PeerID)
			for _, a := range n.Listen {
				fmt.Fprintf(out, "listening on  %s\n", a)
			}
			fmt.Fprintf(out, "peers         %d\nstore         %s\ncache         %s fetched, %d evicted\nseeded        %s\nfleet         %s received, %s sent\n",
				len(n.Peers), humanize.IBytes(n.StoreBytes), humanize.IBytes(uint64(n.CacheBytes)), n.Evictions, humanize.IBytes(n.BytesSeeded),
				humanize.IBytes(uint64(n.FleetReceived)), humanize.IBytes(uint64(n.FleetSent)))
			last := "never"
			if !n.LastReprovide.IsZero() {
				last = n.LastReprovide.Format(time.RFC3339)
			}
			fmt.Fprintf(out, "announced     %d rounds, last %s\n", n.Reprovides, last)
			if n.URLsKnown > 0 {
				fmt.Fprintf(out, "origin URLs   %.0f known\n", n.URLsKnown)
			}
			for _, route := range slices.Sorted(maps.Keys(n.RouteOffload)) {
				fmt.Fprintf(out, "offload       %.1f %% on route %q\n", n.RouteOffload[route]*100, route)
			}
			for _, l := range n.Live {
				state := "live"
				if l.Ended {
					state = "ended, recorded at /ipfs/" + l.VOD + "/index.m3u8"
				}
				fmt.Fprintf(out, "live stream   %s: last segment %d, %s\n", l.Stream, l.LastSeq, state)
			}
		}
		return nil
	}
	return cmd
}

// withStore opens the store in dir for fn and closes it after, cancelling
// fn's context on SIGINT or SIGTERM.
func withStore(ctx context.Context, dir string, fn func(context.Context, *node.Store) error) error {
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	s, err := node.OpenStore(dir)
	if err != nil {
		return err
	}
	return errors.Join(fn(ctx, s), s.Close())
}

// progressBar draws an import's progress on one terminal line.
type progressBar struct {
	w     io.Writer
	name  string
	total int64
	start time.Time
	last  time.Time
}

func newProgressBar(w io.Writer, name string, total int64) *progressBar {
	now := time.Now()
	return &progressBar{w: w, name: name, total: total, start: now, last: now}
}

func (p *progressBar) update(done int64) {
	now := time.Now()
	if now.Sub(p.last) < 100*time.Millisecond && done < p.total {
		return
	}
	p.last = now
	const width = 30
	frac := 1.0
	if p.total > 0 {
		frac = min(float64(done)/float64(p.total), 1)
	}
	filled := int(frac * width)
	bar := make([]byte, width)
	for i := range bar {
		bar[i] = '-'
		if i < filled {
			bar[i] = '#'
		}
	}
	rate := float64(done) / max(now.Sub(p.start).Seconds(), 1e-3) / (1 << 20)
	fmt.Fprintf(p.w, "\r%s [%s] %5.1f%% %7.1f MiB/s", p.name, bar, frac*100, rate)
}

func (p *progressBar) finish() { fmt.Fprintln(p.w) }
