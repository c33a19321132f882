package gateway

import (
	"net/http"
	"strings"

	"github.com/pacman-cdn/pacman/gateway/contentpath"
)

// IPFSPaths resolves the path gateway's /ipfs/{cid}[/path]: the URL names
// the content itself, so responses are immutable.
type IPFSPaths struct{}

// Resolve claims paths under /ipfs/.
func (IPFSPaths) Resolve(r *http.Request) (Content, bool, error) {
	if !strings.HasPrefix(r.URL.EscapedPath(), "/ipfs/") {
		return Content{}, false, nil
	}
	root, segments, err := contentpath.Parse(r.URL)
	if err != nil {
		return Content{}, true, err
	}
	return Content{Root: root, Segments: segments}, true, nil
}

var _ Resolver = IPFSPaths{}
