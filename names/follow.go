package names

import (
	"context"
	"fmt"
	"time"

	"github.com/ipfs/boxo/ipns"
	"github.com/ipfs/boxo/path"
)

// MaxDepth bounds the records one path may lead through.
const MaxDepth = 8

// Resolver resolves IPNS keys to paths; Store is one.
type Resolver interface {
	Resolve(ctx context.Context, name ipns.Name) (path.Path, time.Duration, error)
}

// Follow follows p through the records of the IPNS keys it names, with
// what follows each key kept after its record's value, until it names
// /ipfs/ content or a name that is not a key (a DNSLink domain, for the
// caller to look up). It returns that path and the least of ttl and the
// records' TTLs. A missing record is ErrNoRecord.
func Follow(ctx context.Context, rs Resolver, p path.Path, ttl time.Duration) (path.Path, time.Duration, error) {
	for range MaxDepth {
		segs := p.Segments()
		if p.Namespace() != path.IPNSNamespace {
			return p, ttl, nil
		}
		key, err := ipns.NameFromString(segs[1])
		if err != nil {
			return p, ttl, nil // a domain
		}
		value, t, err := rs.Resolve(ctx, key)
		if err != nil {
			return nil, 0, err
		}
		ttl = min(ttl, max(t, time.Second))
		if p, err = path.Join(value, segs[2:]...); err != nil {
			return nil, 0, fmt.Errorf("the record of %s names %s: %w", key, value, err)
		}
	}
	return nil, 0, fmt.Errorf("%s leads through more than %d names", p, MaxDepth)
}
