package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"syscall"

	"github.com/ipfs/boxo/blockservice"
	"github.com/ipfs/boxo/ipld/merkledag"
	"github.com/ipfs/go-cid"
	"github.com/pacman-cdn/pacman/caddymodule"
	"github.com/pacman-cdn/pacman/caddymodule/admin"
	"github.com/pacman-cdn/pacman/dag"
	"github.com/pacman-cdn/pacman/ingest"
	"github.com/pacman-cdn/pacman/node"
	"github.com/spf13/cobra"
	"golang.org/x/term"
)

// adminFlag adds --address, the admin endpoint of a Caddy that may run the
// data directory, as `caddy reload` takes it.
func adminFlag(cmd *cobra.Command) *string {
	return cmd.Flags().String("address", "localhost:2019", "admin endpoint of a running Caddy, used when it runs the data directory")
}

// oldAdminFlag keeps --admin, which stat and demo took before they took
// --address like every other command and `caddy reload`, as a deprecated
// alias setting the same value.
func oldAdminFlag(cmd *cobra.Command, address *string) {
	cmd.Flags().StringVar(address, "admin", *address, "")
	_ = cmd.Flags().MarkDeprecated("admin", "use --address")
}

// running is where a command works: the Caddy at address when it runs
// dataDir (an absolute path), else dataDir opened by the command itself.
// The command says which on its error stream, once.
type running struct {
	address, dataDir string
	// cmd names the command in what it says; say is where it says it.
	cmd  string
	say  io.Writer
	told *bool
}

// locate returns where cmd works. Given no data directory, it uses the one
// the Caddy at address runs, the way Kubo's commands find their daemon;
// with no Caddy there (or none running pacman), the default directory. A
// Caddy that runs several must be told which.
func locate(cmd *cobra.Command, address, dir string) (running, error) {
	a := running{address: address, cmd: cmd.Name(), say: cmd.ErrOrStderr(), told: new(bool)}
	if dir != "" {
		a.dataDir = admin.AbsDir(dir)
		return a, nil
	}
	a.dataDir = caddymodule.DefaultDataDir()
	var ans admin.RunningAnswer
	ok, err := a.getJSON(cmd.Context(), "/pacman/running", &ans)
	switch {
	case err != nil:
		return a, err
	case !ok || len(ans.DataDirs) == 0:
		return a, nil
	case len(ans.DataDirs) > 1:
		return a, fmt.Errorf("the Caddy at %s runs %d data directories (%s): choose one with --data-dir", address, len(ans.DataDirs), strings.Join(ans.DataDirs, ", "))
	}
	a.dataDir = ans.DataDirs[0]
	return a, nil
}

// getJSON asks the Caddy for route, with no data directory, and decodes
// its answer into v. It reports false, with no error, when no Caddy
// answers or the route is not there (a Caddy without pacman).
func (a running) getJSON(ctx context.Context, route string, v any) (bool, error) {
	resp, ok, err := a.send(ctx, http.MethodGet, route, nil)
	if !ok || err != nil {
		return false, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return false, nil
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(v); err != nil {
		return false, fmt.Errorf("the answer of the Caddy at %s: %w", a.address, err)
	}
	return true, nil
}

// send sends a request to the Caddy's admin endpoint. It reports false,
// with no error, when nothing listens there.
func (a running) send(ctx context.Context, method, target string, body io.Reader) (*http.Response, bool, error) {
	req, err := http.NewRequestWithContext(ctx, method, "http://"+a.address+target, body)
	if err != nil {
		return nil, false, err
	}
	resp, err := http.DefaultClient.Do(req)
	if errors.Is(err, syscall.ECONNREFUSED) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("asking the Caddy at %s: %w", a.address, err)
	}
	return resp, true, nil
}

// via says, once, that the command works through the Caddy.
func (a running) via() {
	if a.told != nil && !*a.told {
		*a.told = true
		fmt.Fprintf(a.say, "%s: via the Caddy at %s (data dir %s)\n", a.cmd, a.address, a.dataDir)
	}
}

// offline runs fn on the data directory opened here, after saying so.
func (a running) offline(ctx context.Context, fn func(context.Context, *node.Store) error) error {
	if a.told != nil && !*a.told {
		*a.told = true
		fresh := ""
		if _, err := os.Stat(a.dataDir); errors.Is(err, os.ErrNotExist) {
			fresh = ", a new one"
		}
		fmt.Fprintf(a.say, "%s: offline, in data dir %s%s (no Caddy at %s runs it)\n", a.cmd, a.dataDir, fresh, a.address)
	}
	return withStore(ctx, a.dataDir, fn)
}

// do sends a request for the node on the data directory. It reports false,
// with no error, when no Caddy answers at the address or none of its nodes
// runs the directory: the command then opens the directory itself.
func (a running) do(ctx context.Context, method, route string, q url.Values, body io.Reader) (*http.Response, bool, error) {
	if q == nil {
		q = url.Values{}
	}
	q.Set("data_dir", admin.AbsDir(a.dataDir))
	resp, ok, err := a.send(ctx, method, route+"?"+q.Encode(), body)
	if !ok || err != nil {
		return nil, false, err
	}
	if resp.StatusCode/100 == 2 {
		a.via()
		return resp, true, nil
	}
	defer resp.Body.Close()
	var apiErr struct {
		Error string `json:"error"`
	}
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	isAPIErr := json.Unmarshal(msg, &apiErr) == nil && apiErr.Error != ""
	if isAPIErr {
		msg = []byte(apiErr.Error)
	}
	if resp.StatusCode == http.StatusNotFound && (!isAPIErr || strings.Contains(apiErr.Error, admin.ErrNotRunning.Error())) {
		// A Caddy without pacman (no such route), or not running this
		// directory.
		return nil, false, nil
	}
	return nil, false, fmt.Errorf("the Caddy at %s: %s: %s", a.address, resp.Status, strings.TrimSpace(string(msg)))
}

// json sends a request and decodes its JSON answer into v.
func (a running) json(ctx context.Context, method, route string, q url.Values, body io.Reader, v any) (bool, error) {
	resp, ok, err := a.do(ctx, method, route, q, body)
	if !ok || err != nil {
		return ok, err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		return true, fmt.Errorf("the answer of the Caddy at %s: %w", a.address, err)
	}
	return true, nil
}

// add streams each path to the running node: a file as it is, with the
// progress bar; a directory built in a scratch store first and sent as a
// CAR. It reports false when no running node has the data directory.
func (a running) add(cmd *cobra.Command, paths []string) (bool, error) {
	ctx := cmd.Context()
	for i, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			return i > 0, err
		}
		var c cid.Cid
		var ok bool
		if fi.IsDir() {
			c, ok, err = a.addDir(ctx, p)
		} else {
			c, ok, err = a.addFile(ctx, p, fi.Size())
		}
		if err != nil {
			return true, err
		}
		if !ok {
			if i > 0 {
				return true, fmt.Errorf("the Caddy at %s stopped running %s", a.address, a.dataDir)
			}
			return false, nil
		}
		fmt.Fprintf(cmd.OutOrStdout(), "%s  %s\n", c, p)
	}
	return true, nil
}

func (a running) addFile(ctx context.Context, p string, size int64) (cid.Cid, bool, error) {
	f, err := os.Open(p)
	if err != nil {
		return cid.Undef, false, err
	}
	defer f.Close()
	var body io.Reader = f
	if term.IsTerminal(int(os.Stderr.Fd())) {
		bar := newProgressBar(os.Stderr, p, size)
		defer bar.finish()
		body = &countingReader{r: f, update: bar.update}
	}
	var out struct{ CID string }
	ok, err := a.json(ctx, http.MethodPost, "/pacman/add", url.Values{"name": {p}}, body, &out)
	if !ok || err != nil {
		return cid.Undef, ok, err
	}
	c, err := cid.Decode(out.CID)
	return c, true, err
}

// addDir imports a tree into a scratch store, as `add` does offline, and
// streams it to the running node as a CAR.
func (a running) addDir(ctx context.Context, p string) (cid.Cid, bool, error) {
	scratch, err := os.MkdirTemp("", "pacman-add-")
	if err != nil {
		return cid.Undef, false, err
	}
	defer os.RemoveAll(scratch)
	s, err := node.OpenStore(scratch)
	if err != nil {
		return cid.Undef, false, err
	}
	defer s.Close()
	bs := blockservice.New(s.Blockstore, nil)
	root, err := ingest.ImportDir(ctx, merkledag.NewDAGService(bs), p)
	if err != nil {
		return cid.Undef, false, fmt.Errorf("adding %s: %w", p, err)
	}
	pr, pw := io.Pipe()
	go func() {
		_, err := dag.ExportCAR(ctx, bs, root, pw)
		pw.CloseWithError(err)
	}()
	var out struct{ Roots []string }
	ok, err := a.json(ctx, http.MethodPost, "/pacman/import", nil, pr, &out)
	pr.Close()
	if !ok || err != nil {
		return cid.Undef, ok, err
	}
	if len(out.Roots) != 1 || out.Roots[0] != root.String() {
		return cid.Undef, true, fmt.Errorf("the running node took %v for %s, want %s", out.Roots, p, root)
	}
	return root, true, nil
}

// countingReader reports the bytes read so far.
type countingReader struct {
	r      io.Reader
	n      int64
	update func(int64)
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	c.update(c.n)
	return n, err
}

// importCARs sends each CAR file to the running node and prints its roots.
func (a running) importCARs(cmd *cobra.Command, paths []string) (bool, error) {
	for i, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			return i > 0, err
		}
		var out struct {
			Roots  []string
			Blocks int
		}
		ok, err := a.json(cmd.Context(), http.MethodPost, "/pacman/import", nil, f, &out)
		f.Close()
		if err != nil {
			return true, fmt.Errorf("importing %s: %w", p, err)
		}
		if !ok {
			if i > 0 {
				return true, fmt.Errorf("the Caddy at %s stopped running %s", a.address, a.dataDir)
			}
			return false, nil
		}
		fmt.Fprintf(cmd.ErrOrStderr(), "%s: %d blocks\n", p, out.Blocks)
		for _, r := range out.Roots {
			fmt.Fprintln(cmd.OutOrStdout(), r)
		}
	}
	return true, nil
}

// export copies the running node's CAR of root to stdout.
func (a running) export(cmd *cobra.Command, root cid.Cid, indexOnly bool) (bool, error) {
	q := url.Values{"cid": {root.String()}}
	if indexOnly {
		q.Set("index_only", "1")
	}
	resp, ok, err := a.do(cmd.Context(), http.MethodGet, "/pacman/export", q, nil)
	if !ok || err != nil {
		return ok, err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(cmd.OutOrStdout(), resp.Body); err != nil {
		return true, fmt.Errorf("exporting %s: %w", root, err)
	}
	return true, nil
}
