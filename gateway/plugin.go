package gateway

import (
	"errors"
	blocks "github.com/ipfs/go-block-format"
	"net/http"
	"time"

	"github.com/ipfs/go-cid"
)

// Resolver turns a request into the content it names
// (pacman.resolvers.*): /ipfs/{cid}[/path], a friendly name from a
// catalog, a mutable name. Resolvers are tried in order until one claims
// the request.
type Resolver interface {
	// Resolve returns what r names, and false when the request is not
	// this resolver's to answer. An error is answered with its status
	// (see StatusError) and stops the search.
	Resolve(r *http.Request) (Content, bool, error)
}

// Content is what a resolver found a request to name.
type Content struct {
	// Root is the CID the path starts from.
	Root cid.Cid
	// Segments are the unescaped path segments below Root.
	Segments []string
	// TTL is how long the name may be cached before it is looked up
	// again: responses carry Cache-Control max-age=TTL. Zero means the
	// URL names the content itself (a CID), which never changes: the
	// response is immutable.
	TTL time.Duration
	// Path is the content path the URL resolved to, sent as X-Ipfs-Path;
	// empty means the request's own path.
	Path string
	// Site is set when the request's origin belongs to the content (a
	// DNSLink host): Segments end with the request's own path, and a path
	// that does not exist is looked up in the site's _redirects file.
	// Requests on a subdomain origin are always so.
	Site bool
	// Block, if set, is Root's block, made by the resolver (a live
	// playlist): it is served as if the store held it, and never stored.
	Block blocks.Block
	// Serve, if set, answers the request instead of the gateway, and the
	// fields above are unset: the URL names no CID yet (a file of an
	// origin_pull origin not pulled yet), and the resolver proxies it
	// from where it is. Policies, which rule on CIDs, do not apply.
	Serve http.Handler
}

// RecordResolver is a Resolver of mutable names that can also answer with
// the signed record behind a name, for clients that verify it themselves
// (?format=ipns-record).
type RecordResolver interface {
	// Record returns the record r names, and false when the request is
	// not this resolver's to answer.
	Record(r *http.Request) (Record, bool, error)
}

// Record is a signed name record, served as it is.
type Record struct {
	// Data is the record's bytes.
	Data []byte
	// Name names the record's file: {Name}.ipns-record.
	Name string
	// TTL is how long the record may be cached.
	TTL time.Duration
}

// Verdict is what a policy says of a request.
type Verdict int

const (
	// Pass has no opinion: the request is neither kept from the network
	// nor let onto it by this policy.
	Pass Verdict = iota
	// Local serves only what the edge, its fleet and the operator's own
	// origin hold; nothing is fetched from the open network.
	Local
	// Fetch may fetch from the open network.
	Fetch
	// Deny refuses the request.
	Deny
)

// Decision is a policy's verdict with its reason: the error a denied
// request is answered with, or that a Local request gets for a block that
// is not held. A StatusError chooses the status.
type Decision struct {
	Verdict Verdict
	Reason  error
}

// Policy decides what may be served and fetched (pacman.policies.*). Every
// policy must allow a request: any Deny refuses it, any Local keeps it off
// the open network, and only a Fetch with no Local lets it on; with no
// opinion at all the request stays off the network.
type Policy interface {
	// Decide rules on content whose root or any CID on its path is c.
	Decide(c cid.Cid) Decision
}

// StatusError is an error that chooses its HTTP status. Plugins return it
// to answer with a status of their choosing; its message is shown to the
// client, so it must not carry what a peer or an origin said.
type StatusError struct {
	Status int
	Err    error
}

// Error returns the message shown to the client.
func (e *StatusError) Error() string { return e.Err.Error() }

// Unwrap returns the cause.
func (e *StatusError) Unwrap() error { return e.Err }

// Errorf returns a StatusError with status and a message.
func Errorf(status int, msg string) error {
	return &StatusError{Status: status, Err: errors.New(msg)}
}

// decide combines the policies' decisions on a request for root: whether
// it may use the open network, and if not, the error for a block not held;
// or the denial.
func decide(policies []Policy, root cid.Cid) (network bool, notHeld, denied error) {
	fetch, local := false, false
	for _, p := range policies {
		d := p.Decide(root)
		switch d.Verdict {
		case Deny:
			return false, nil, denial(d)
		case Local:
			if !local {
				local, notHeld = true, d.Reason
			}
		case Fetch:
			fetch = true
		}
	}
	if notHeld == nil {
		notHeld = errNotHeld
	}
	return fetch && !local, notHeld, nil
}

// deny returns the denial of the first of cids a policy denies, or nil:
// every CID a response carries is checked, not only its root.
func deny(policies []Policy, cids []cid.Cid) error {
	for _, c := range cids {
		for _, p := range policies {
			if d := p.Decide(c); d.Verdict == Deny {
				return denial(d)
			}
		}
	}
	return nil
}

func denial(d Decision) error {
	if d.Reason == nil {
		return errDenied
	}
	return d.Reason
}
