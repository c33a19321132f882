package caddymodule

import (
	"context"
	"io"
	"testing"

	"github.com/pacman-cdn/pacman/node"
	"github.com/spf13/cobra"
)

// What the external tests (package caddymodule_test, which import the
// plugins that import this package) need of its internals.

// StatCommand is `caddy pacman stat`.
var StatCommand = statCommand

// runCommand runs cmd with args, its output to stdout.
func runCommand(t *testing.T, cmd *cobra.Command, stdout io.Writer, args ...string) error {
	t.Helper()
	cmd.SetArgs(args)
	cmd.SetOut(stdout)
	cmd.SetErr(io.Discard)
	return cmd.ExecuteContext(context.Background())
}

// LsCommand is lsCommand.
var LsCommand = lsCommand

// AddCommand is addCommand.
var AddCommand = addCommand

// RunCommand is runCommand.
var RunCommand = runCommand

// RunDemo runs `caddy pacman demo` with the given files, seeders and
// addresses.
func RunDemo(ctx context.Context, files []string, seeders int, listen, admin string, w io.Writer) error {
	return runDemo(ctx, demoConfig{files: files, seeders: seeders, listen: listen, admin: admin}, w)
}

// RunningNode returns the node the pool holds for dataDir, or nil.
func RunningNode(dataDir string) *node.Node {
	var n *node.Node
	nodes.Range(func(k, v any) bool {
		if k == dataDir {
			n = v.(*nodeDestructor).Node
		}
		return true
	})
	return n
}

// NameCommand is `caddy pacman name`.
var NameCommand = nameCommand
