package testutil

import (
	"context"
	"fmt"
	"io"
	"testing"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"
)

// Pacman runs `caddy pacman args...` as Caddy's command line does, its
// standard output to stdout and its errors discarded (they are returned).
// The test must link the package that registers the command,
// caddymodule/cli.
func Pacman(t testing.TB, stdout io.Writer, args ...string) error {
	t.Helper()
	def, ok := caddycmd.Commands()["pacman"]
	if !ok {
		return fmt.Errorf("no pacman command is registered: import caddymodule/cli")
	}
	cmd := &cobra.Command{Use: def.Name, SilenceUsage: true, SilenceErrors: true}
	def.CobraFunc(cmd)
	cmd.SetArgs(args)
	cmd.SetOut(stdout)
	cmd.SetErr(io.Discard)
	return cmd.ExecuteContext(context.Background())
}
