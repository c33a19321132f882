package e2e

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestXcaddyBuild builds Caddy with pacman the way every Caddy user does,
// with the real xcaddy and the line README gives, from this checkout: the
// module's root package registers all of pacman, so the binary lists
// every module. (Without a root package xcaddy stopped at the module
// proxy's 403 for a package that does not exist.)
func TestXcaddyBuild(t *testing.T) {
	xcaddy := need(t, "xcaddy")
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "caddy")
	build := exec.Command(xcaddy, "build", "v2.11.9", "--with", "github.com/pacman-cdn/pacman@v0.0.0="+root, "--output", bin)
	build.Dir = t.TempDir()
	start := time.Now()
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("xcaddy build: %v\n%s", err, out)
	}
	t.Logf("xcaddy built Caddy with pacman in %v", time.Since(start).Round(time.Second))
	out, err := exec.Command(bin, "list-modules").Output()
	if err != nil {
		t.Fatal(err)
	}
	var mods []string
	for _, m := range strings.Fields(string(out)) {
		if strings.Contains(m, "pacman") {
			mods = append(mods, m)
		}
	}
	// The app, its two handlers, the admin routes and the plugins.
	for _, want := range []string{"pacman", "http.handlers.pacman", "http.handlers.pacman_live_ingest", "pacman.sources.origin", "pacman.policies.local", "pacman.resolvers.ipfs"} {
		found := false
		for _, m := range mods {
			found = found || m == want
		}
		if !found {
			t.Errorf("the xcaddy-built Caddy lacks %s; it has %v", want, mods)
		}
	}
	if out, err := exec.Command(bin, "pacman", "--help").CombinedOutput(); err != nil || !strings.Contains(string(out), "add") {
		t.Errorf("caddy pacman --help: %v\n%s", err, out)
	}
}
