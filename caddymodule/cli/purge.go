package cli

import (
	"fmt"
	"net/http"
	"net/url"

	"github.com/pacman-cdn/pacman/caddymodule/admin"
	"github.com/spf13/cobra"
)

func purgeCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "purge [--address ADDR] [--data-dir DIR] URL",
		Short: "Makes the fleet revalidate an origin's URLs",
		Long: `
Marks stale what the running edge and every live member of its fleet know
of the origin_pull URLs that start with URL (a file, or a prefix such as
https://bucket.example.com/videos/): the next request for each asks the
origin whether it changed, and a changed file is pulled again. It needs
the Caddy that runs the data directory.`,
		Args: cobra.ExactArgs(1),
	}
	dir := dataDirFlag(cmd)
	address := adminFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		at, err := locate(cmd, *address, *dir)
		if err != nil {
			return err
		}
		var ans admin.PurgeAnswer
		ok, err := at.json(cmd.Context(), http.MethodPost, "/pacman/purge", url.Values{"prefix": {args[0]}}, nil, &ans)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("no Caddy at %s runs the data directory %s: purge works through the running edge", *address, at.dataDir)
		}
		fmt.Fprintf(cmd.OutOrStdout(), "purged %d URLs here and %d on %d fleet members\n", ans.Here, ans.There, ans.Members)
		return nil
	}
	return cmd
}
