package cli

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"github.com/dustin/go-humanize"
	"github.com/ipfs/go-cid"
	"github.com/pacman-cdn/pacman/caddymodule/admin"
	"github.com/pacman-cdn/pacman/node"
	"github.com/spf13/cobra"
)

func pinCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "pin [--data-dir DIR] CID...",
		Short: "Keeps the content under each CID for good",
		Long: `
Pins the DAG under each CID: its blocks are never evicted, whatever the
cache's size, and its root is announced. Content added or imported is
pinned already. A Caddy running the data directory (found through its
admin endpoint, --address) fetches from peers the blocks it lacks, while
it serves; the pin is undone if the fetch fails or makes no progress for a
minute. With no Caddy running, the data directory is opened here, and a
CID whose blocks are not all in it is refused.`,
		Args: cobra.MinimumNArgs(1),
	}
	dir := dataDirFlag(cmd)
	address := adminFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		return eachPin(cmd, args, *address, *dir, "/pacman/pin", func(ctx context.Context, s *node.Store, c cid.Cid) (node.PinReport, error) {
			rep, err := s.Pin(ctx, c, nil, nil)
			if errors.Is(err, node.ErrIncomplete) {
				err = fmt.Errorf("%w; run the pin while Caddy runs the data directory, to fetch what is missing from peers", err)
			}
			return rep, err
		}, func(c cid.Cid, rep node.PinReport) string {
			return fmt.Sprintf("pinned %s: %d blocks, %s", c, rep.Blocks, humanize.IBytes(uint64(rep.Bytes)))
		})
	}
	return cmd
}

func unpinCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "unpin [--data-dir DIR] CID...",
		Short: "Lets the cache evict the content under each CID",
		Long: `
Removes the pin of each CID. The blocks of its DAG that no other pin
reaches become cached: the cache evicts them, least recently used first,
when it is over its size; until then they are served and seeded as
before. A Caddy running the data directory does it, as for pin.`,
		Args: cobra.MinimumNArgs(1),
	}
	dir := dataDirFlag(cmd)
	address := adminFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		return eachPin(cmd, args, *address, *dir, "/pacman/unpin", func(ctx context.Context, s *node.Store, c cid.Cid) (node.PinReport, error) {
			return s.Unpin(ctx, c)
		}, func(c cid.Cid, rep node.PinReport) string {
			return fmt.Sprintf("unpinned %s: %d blocks, %s, now evictable", c, rep.Blocks, humanize.IBytes(uint64(rep.Bytes)))
		})
	}
	return cmd
}

// eachPin runs a pin or an unpin for each CID: in the Caddy running the
// data directory through route, or else by local on the opened store.
func eachPin(cmd *cobra.Command, args []string, address, dir, route string,
	local func(context.Context, *node.Store, cid.Cid) (node.PinReport, error),
	done func(cid.Cid, node.PinReport) string) error {
	roots := make([]cid.Cid, len(args))
	for i, a := range args {
		c, err := cid.Decode(a)
		if err != nil {
			return fmt.Errorf("%q is not a CID: %w", a, err)
		}
		roots[i] = c
	}
	a, err := locate(cmd, address, dir)
	if err != nil {
		return err
	}
	offline := func() error {
		return a.offline(cmd.Context(), func(ctx context.Context, s *node.Store) error {
			for _, c := range roots {
				rep, err := local(ctx, s, c)
				if err != nil {
					return err
				}
				fmt.Fprintln(cmd.OutOrStdout(), done(c, rep))
			}
			return s.Sync(ctx)
		})
	}
	for i, c := range roots {
		var rep admin.PinAnswer
		ok, err := a.json(cmd.Context(), http.MethodPost, route, url.Values{"cid": {c.String()}}, nil, &rep)
		switch {
		case err != nil:
			return err
		case !ok && i > 0:
			return fmt.Errorf("the Caddy at %s stopped running %s", a.address, a.dataDir)
		case !ok:
			return offline()
		}
		fmt.Fprintln(cmd.OutOrStdout(), done(c, rep.PinReport))
	}
	return nil
}

func lsCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "ls [--data-dir DIR]",
		Short: "Lists the pinned CIDs",
		Long: `
Prints the root CID of every pin, one per line: the content added,
imported or pinned, whose blocks are never evicted. A pin whose fetch is
running, or was cut short by a crash, is marked incomplete; a Caddy that
starts on the data directory resumes it. A Caddy running the data
directory answers, as for pin.`,
		Args: cobra.NoArgs,
	}
	dir := dataDirFlag(cmd)
	address := adminFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		at, err := locate(cmd, *address, *dir)
		if err != nil {
			return err
		}
		var out struct{ Pins []admin.PinEntry }
		ok, err := at.json(cmd.Context(), http.MethodGet, "/pacman/ls", nil, nil, &out)
		if err != nil {
			return err
		}
		if !ok {
			err = at.offline(cmd.Context(), func(ctx context.Context, s *node.Store) error {
				pins, err := s.Pins(ctx)
				out.Pins = admin.PinList(pins)
				return err
			})
			if err != nil {
				return err
			}
		}
		for _, p := range out.Pins {
			if p.Incomplete {
				fmt.Fprintln(cmd.OutOrStdout(), p.CID, " incomplete: being fetched, or cut short (a Caddy running the directory resumes it)")
				continue
			}
			fmt.Fprintln(cmd.OutOrStdout(), p.CID)
		}
		return nil
	}
	return cmd
}
