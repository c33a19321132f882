package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/ipfs/boxo/blockservice"
	"github.com/ipfs/boxo/ipld/merkledag"
	"github.com/ipfs/go-cid"
	"github.com/pacman-cdn/pacman/caddymodule"
	"github.com/pacman-cdn/pacman/dag"
	"github.com/pacman-cdn/pacman/httpurl"
	"github.com/pacman-cdn/pacman/ingest"
	"github.com/pacman-cdn/pacman/node"
)

// bodyIdle is how long an admin upload or download may stall before it is
// cut: Caddy's admin server gives a whole request 10 s, too little for a
// large file, so each read and write moves the deadline on instead.
const bodyIdle = time.Minute

// storeRoutes are the admin routes through which `caddy pacman add`,
// `import`, `export`, `verify`, `pin`, `unpin` and `ls` work in a running
// Caddy, whose store they could not open themselves:
//
//	POST /pacman/add?data_dir=DIR        the file's bytes → {"cid": …}
//	POST /pacman/import?data_dir=DIR     a CAR → {"roots": […], "blocks": n}
//	GET  /pacman/export?data_dir=DIR&cid=CID[&index_only=1] → a CARv1
//	POST /pacman/verify?data_dir=DIR[&repair=1] → the report
//	POST /pacman/pin?data_dir=DIR&cid=CID   → {"cid": …, "blocks": n, "bytes": n}
//	POST /pacman/unpin?data_dir=DIR&cid=CID → {"cid": …, "blocks": n, "bytes": n}
//	GET  /pacman/ls?data_dir=DIR         → {"pins": [{"cid": …, "incomplete": true}, …]}
//	GET  /pacman/running                 → {"data_dirs": […]}, the directories run here
//	POST /pacman/purge?data_dir=DIR&prefix=URL → {"here": n, "members": n, "there": n}
//
// DIR names the data directory of the node to use (as a path the node can
// stat; the command sends an absolute one). A node not running there is
// 404, so the command opens the directory itself.
func storeRoutes() []caddy.AdminRoute {
	route := func(pattern, method string, fn func(http.ResponseWriter, *http.Request, *node.Node) error) caddy.AdminRoute {
		return caddy.AdminRoute{Pattern: pattern, Handler: caddy.AdminHandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
			if r.Method != method {
				return caddy.APIError{HTTPStatus: http.StatusMethodNotAllowed, Err: fmt.Errorf("use %s", method)}
			}
			run, err := runningAt(r.URL.Query().Get("data_dir"))
			if err != nil {
				return err
			}
			return fn(w, r, run.Edge().Node())
		})}
	}
	return []caddy.AdminRoute{
		{Pattern: "/pacman/running", Handler: caddy.AdminHandlerFunc(adminRunning)},
		route("/pacman/add", http.MethodPost, adminAdd),
		route("/pacman/import", http.MethodPost, adminImport),
		route("/pacman/export", http.MethodGet, adminExport),
		route("/pacman/verify", http.MethodPost, adminVerify),
		route("/pacman/pin", http.MethodPost, adminPin),
		route("/pacman/unpin", http.MethodPost, adminUnpin),
		route("/pacman/ls", http.MethodGet, adminLs),
		{Pattern: "/pacman/purge", Handler: caddy.AdminHandlerFunc(adminPurge)},
	}
}

// PurgeAnswer is what /pacman/purge answers: the names marked stale on
// this edge, the fleet members told, and the names they marked.
type PurgeAnswer struct {
	Here    int `json:"here"`
	Members int `json:"members"`
	There   int `json:"there"`
}

// adminPurge marks stale, on the edge and every live fleet member, what
// they know of the names (origin_pull's URLs) under ?prefix=: the next
// request for each revalidates it.
func adminPurge(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodPost {
		return caddy.APIError{HTTPStatus: http.StatusMethodNotAllowed, Err: fmt.Errorf("use POST")}
	}
	prefix := r.URL.Query().Get("prefix")
	if _, err := httpurl.Parse(prefix); err != nil {
		return caddy.APIError{HTTPStatus: http.StatusBadRequest, Err: fmt.Errorf("prefix: %w", err)}
	}
	run, err := runningAt(r.URL.Query().Get("data_dir"))
	if err != nil {
		return err
	}
	var ans PurgeAnswer
	ans.Here, ans.Members, ans.There = run.Edge().Purge(r.Context(), prefix)
	return answer(w, ans)
}

// ErrNotRunning says no node of this Caddy uses a data directory: the
// command asking opens the directory itself.
var ErrNotRunning = errors.New("no pacman node runs on this data directory here")

// runningAt returns the edge whose data directory is dir.
func runningAt(dir string) (*caddymodule.Running, error) {
	want, err := os.Stat(dir)
	if err != nil {
		return nil, caddy.APIError{HTTPStatus: http.StatusNotFound, Err: fmt.Errorf("%w: %v", ErrNotRunning, err)}
	}
	var found *caddymodule.Running
	caddymodule.EachRunning(func(dataDir string, r *caddymodule.Running) bool {
		if fi, err := os.Stat(dataDir); err == nil && os.SameFile(fi, want) {
			found = r
			return false
		}
		return true
	})
	if found == nil {
		return nil, caddy.APIError{HTTPStatus: http.StatusNotFound, Err: fmt.Errorf("%w: %s", ErrNotRunning, dir)}
	}
	return found, nil
}

// RunningAnswer is the answer of GET /pacman/running.
type RunningAnswer struct {
	DataDirs []string `json:"data_dirs"`
}

// adminRunning answers the data directories of the nodes this Caddy
// runs: a command given no --data-dir uses the one it finds here.
func adminRunning(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodGet {
		return caddy.APIError{HTTPStatus: http.StatusMethodNotAllowed, Err: fmt.Errorf("use GET")}
	}
	out := RunningAnswer{DataDirs: []string{}}
	caddymodule.EachRunning(func(dataDir string, _ *caddymodule.Running) bool {
		out.DataDirs = append(out.DataDirs, AbsDir(dataDir))
		return true
	})
	slices.Sort(out.DataDirs)
	return answer(w, out)
}

// idleBody moves the request's read deadline on with every read.
type idleBody struct {
	r  io.Reader
	rc *http.ResponseController
}

func (b idleBody) Read(p []byte) (int, error) {
	_ = b.rc.SetReadDeadline(time.Now().Add(bodyIdle))
	return b.r.Read(p)
}

// idleWriter moves the response's write deadline on with every write, and
// counts the bytes written.
type idleWriter struct {
	w  io.Writer
	rc *http.ResponseController
	n  int64
}

func (w *idleWriter) Write(p []byte) (int, error) {
	_ = w.rc.SetWriteDeadline(time.Now().Add(bodyIdle))
	n, err := w.w.Write(p)
	w.n += int64(n)
	return n, err
}

// adminAdd imports the body as one file, announces it and answers its CID.
func adminAdd(w http.ResponseWriter, r *http.Request, nd *node.Node) error {
	rc := http.NewResponseController(w)
	dag := merkledag.NewDAGService(blockservice.New(nd.Blockstore(), nil))
	c, err := ingest.Import(r.Context(), dag, idleBody{r.Body, rc})
	if err != nil {
		return caddy.APIError{HTTPStatus: importStatus(err), Err: fmt.Errorf("importing %q: %w", r.URL.Query().Get("name"), err)}
	}
	if err := pinHeld(r.Context(), nd, c); err != nil {
		return err
	}
	return answer(w, map[string]any{"cid": c.String()})
}

// adminImport imports the blocks of the CAR in the body, checking each
// against its CID, and announces its roots.
func adminImport(w http.ResponseWriter, r *http.Request, nd *node.Node) error {
	rc := http.NewResponseController(w)
	roots, n, err := ingest.ImportCAR(r.Context(), nd.Blockstore(), idleBody{r.Body, rc})
	if err != nil {
		return caddy.APIError{HTTPStatus: importStatus(err), Err: fmt.Errorf("importing the CAR: %w", err)}
	}
	for _, c := range roots {
		if err := pinHeld(r.Context(), nd, c); err != nil {
			return err
		}
	}
	// Pins are on disk when they return; a CAR without roots is
	// synced here.
	if len(roots) == 0 {
		if err := nd.Sync(r.Context()); err != nil {
			return caddy.APIError{HTTPStatus: http.StatusInternalServerError, Err: err}
		}
	}
	out := make([]string, len(roots))
	for i, c := range roots {
		out[i] = c.String()
	}
	return answer(w, map[string]any{"roots": out, "blocks": n})
}

// importStatus is the status of a failed import: 507 when the store's disk
// is full, else the upload's fault.
func importStatus(err error) int {
	if errors.Is(err, node.ErrNoSpace) {
		return http.StatusInsufficientStorage
	}
	return http.StatusBadRequest
}

// pinHeld pins imported content and tells routing.
func pinHeld(ctx context.Context, nd *node.Node, c cid.Cid) error {
	if _, err := nd.PinHeld(ctx, c); err != nil {
		return caddy.APIError{HTTPStatus: http.StatusInternalServerError, Err: err}
	}
	return nil
}

// PinAnswer is what /pacman/pin and /pacman/unpin answer.
type PinAnswer struct {
	CID string `json:"cid"`
	node.PinReport
}

// adminPin pins the DAG under cid, fetching from peers what the store
// lacks. A pin that makes no progress for bodyIdle is cut, as is one whose
// command went away; either is undone.
func adminPin(w http.ResponseWriter, r *http.Request, nd *node.Node) error {
	root, err := cidParam(r)
	if err != nil {
		return err
	}
	// The admin server cuts a request (cancels its context) 10 s after
	// it began reading it: each block moves that on.
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Now().Add(bodyIdle))
	rep, err := nd.Pin(r.Context(), root, func(node.PinReport) { _ = rc.SetReadDeadline(time.Now().Add(bodyIdle)) })
	if err != nil {
		return caddy.APIError{HTTPStatus: http.StatusBadGateway, Err: err}
	}
	return answer(w, PinAnswer{root.String(), rep})
}

// adminUnpin removes the pin of cid.
func adminUnpin(w http.ResponseWriter, r *http.Request, nd *node.Node) error {
	root, err := cidParam(r)
	if err != nil {
		return err
	}
	rep, err := nd.Unpin(r.Context(), root)
	if errors.Is(err, node.ErrNotPinned) {
		return caddy.APIError{HTTPStatus: http.StatusNotFound, Err: err}
	}
	if err != nil {
		return caddy.APIError{HTTPStatus: http.StatusInternalServerError, Err: err}
	}
	return answer(w, PinAnswer{root.String(), rep})
}

// adminLs lists the pins.
func adminLs(w http.ResponseWriter, r *http.Request, nd *node.Node) error {
	pins, err := nd.Pins(r.Context())
	if err != nil {
		return caddy.APIError{HTTPStatus: http.StatusInternalServerError, Err: err}
	}
	return answer(w, map[string]any{"pins": PinList(pins)})
}

// PinEntry is a pin as /pacman/ls answers it.
type PinEntry struct {
	CID        string `json:"cid"`
	Incomplete bool   `json:"incomplete,omitempty"`
}

// PinList is pins as /pacman/ls answers them.
func PinList(pins []node.Pinned) []PinEntry {
	out := make([]PinEntry, len(pins))
	for i, p := range pins {
		out[i] = PinEntry{p.Root.String(), p.Incomplete}
	}
	return out
}

// cidParam reads the request's cid parameter.
func cidParam(r *http.Request) (cid.Cid, error) {
	s := r.URL.Query().Get("cid")
	c, err := cid.Decode(s)
	if err != nil {
		return cid.Undef, caddy.APIError{HTTPStatus: http.StatusBadRequest, Err: fmt.Errorf("%q is not a CID: %w", s, err)}
	}
	return c, nil
}

// adminExport streams the DAG under cid, from the store alone, as a CARv1.
func adminExport(w http.ResponseWriter, r *http.Request, nd *node.Node) error {
	q := r.URL.Query()
	root, err := cidParam(r)
	if err != nil {
		return err
	}
	if ok, err := nd.Blockstore().Has(r.Context(), root); err != nil || !ok {
		return caddy.APIError{HTTPStatus: http.StatusNotFound, Err: fmt.Errorf("%s is not in the store", root)}
	}
	export := dag.ExportCAR
	if q.Get("index_only") == "1" {
		export = dag.ExportIndexCAR
	}
	w.Header().Set("Content-Type", "application/vnd.ipld.car; version=1")
	out := &idleWriter{w: w, rc: http.NewResponseController(w)}
	if _, err = export(r.Context(), blockservice.New(nd.Blockstore(), nil), root, out); err != nil && out.n > 0 {
		// Past the first byte an error cannot be a status: the
		// connection is cut, so the command sees the CAR end early
		// rather than an error appended to it.
		panic(http.ErrAbortHandler)
	}
	return err
}

// adminVerify checks every stored block against its CID.
func adminVerify(w http.ResponseWriter, r *http.Request, nd *node.Node) error {
	rep, err := nd.Verify(r.Context(), r.URL.Query().Get("repair") == "1")
	if err != nil {
		return caddy.APIError{HTTPStatus: http.StatusInternalServerError, Err: err}
	}
	return answer(w, rep)
}

func answer(w http.ResponseWriter, v any) error {
	w.Header().Set("Content-Type", "application/json")
	return json.NewEncoder(w).Encode(v)
}

// AbsDir returns dir as an absolute path: the form in which commands send
// a data directory and the admin routes answer one.
func AbsDir(dir string) string {
	if abs, err := filepath.Abs(dir); err == nil {
		return abs
	}
	return dir
}
