package caddymodule

import "github.com/pacman-cdn/pacman/node"

// What the external tests (package caddymodule_test, which import the
// plugins that import this package) need of its internals.

// RunningNode returns the node the pool holds for dataDir, or nil.
func RunningNode(dataDir string) *node.Node {
	var n *node.Node
	EachRunning(func(dir string, r *Running) bool {
		if dir == dataDir {
			n = r.Edge().Node()
		}
		return true
	})
	return n
}
