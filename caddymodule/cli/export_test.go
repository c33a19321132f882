package cli

import (
	"context"
	"io"
	"testing"

	"github.com/spf13/cobra"
)

// What the external tests (package cli_test) need of its internals.

// runCommand runs cmd with args, its output to stdout.
func runCommand(t *testing.T, cmd *cobra.Command, stdout io.Writer, args ...string) error {
	t.Helper()
	cmd.SetArgs(args)
	cmd.SetOut(stdout)
	cmd.SetErr(io.Discard)
	return cmd.ExecuteContext(context.Background())
}

// RunDemo runs `caddy pacman demo` with the given files, seeders and
// addresses.
func RunDemo(ctx context.Context, files []string, seeders int, listen, admin string, w io.Writer) error {
	return runDemo(ctx, demoConfig{files: files, seeders: seeders, listen: listen, admin: admin}, w)
}
