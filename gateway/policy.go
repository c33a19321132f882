package gateway

import (
	"errors"
	"fmt"

	"github.com/ipfs/go-cid"
)

// Access says what a gateway may fetch from the network for its visitors.
// The zero value is the closed AccessLocal: an open gateway on someone's
// domain gets used to host phishing and malware under that domain.
type Access int

const (
	// AccessLocal serves only content whose blocks the node already holds
	// (imported, pinned or cached); nothing is fetched for a visitor.
	AccessLocal Access = iota
	// AccessAllowList fetches from the network only for root CIDs on the
	// allow list, and otherwise serves what the node holds.
	AccessAllowList
	// AccessOpen fetches any CID from the network.
	AccessOpen
)

// ParseAccess parses "local", "allowlist" or "open".
func ParseAccess(s string) (Access, error) {
	switch s {
	case "local":
		return AccessLocal, nil
	case "allowlist":
		return AccessAllowList, nil
	case "open":
		return AccessOpen, nil
	}
	return AccessLocal, fmt.Errorf("access must be local, allowlist or open, not %q", s)
}

// CIDSet is a set of CIDs, such as an allow or deny list.
type CIDSet interface {
	Contains(c cid.Cid) bool
}

// Policy decides which requests the gateway answers and from where.
type Policy struct {
	// Access is what may be fetched from the network.
	Access Access
	// Allowed holds the root CIDs AccessAllowList fetches for.
	Allowed CIDSet
	// Denied holds CIDs never served, whatever Access says: requests whose
	// root or target is on it get 410.
	Denied CIDSet
}

var (
	// errNotHeld reports content a closed gateway does not hold.
	errNotHeld = errors.New("this gateway serves only content it holds (access local)")
	// errNotAllowed reports a root outside the allow list that is not held.
	errNotAllowed = errors.New("this CID is not on the gateway's allow list and not held locally (access allowlist)")
	// errDenied reports content on the deny list.
	errDenied = errors.New("this content is blocked by the gateway's deny list")
)

// fetchesFor reports whether a request for root may use the network, and
// if not, the error to answer with when a block is not held.
func (p Policy) fetchesFor(root cid.Cid) (bool, error) {
	switch p.Access {
	case AccessOpen:
		return true, nil
	case AccessAllowList:
		if p.Allowed != nil && p.Allowed.Contains(root) {
			return true, nil
		}
		return false, errNotAllowed
	default:
		return false, errNotHeld
	}
}

// denied reports whether c is on the deny list.
func (p Policy) denied(c cid.Cid) bool {
	return p.Denied != nil && p.Denied.Contains(c)
}
