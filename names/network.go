package names

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/ipfs/boxo/ipns"
	"github.com/ipfs/boxo/path"
)

// lookupTimeout bounds one lookup of a record through routing.
const lookupTimeout = 20 * time.Second

// Routing finds records beyond the store and announces them: the DHT and
// delegated routing (/routing/v1/ipns), as the node has them.
type Routing interface {
	// GetValue returns the best record under an IPNS routing key.
	GetValue(ctx context.Context, key string) ([]byte, error)
	// PutValue announces a record under its routing key.
	PutValue(ctx context.Context, key string, value []byte) error
}

// Network resolves names through the store and, when the store holds no
// record confirmed within the record's TTL, through routing; every record
// found is verified and kept (a newer one replaces the one kept), so a
// name still resolves from its last record when routing cannot answer.
type Network struct {
	Store *Store
	// Routing, if set, is asked for records the store lacks or holds
	// stale, and told of records published.
	Routing Routing

	mu   sync.Mutex
	told map[ipns.Name]os.FileInfo // the file of each record as routing was last told it
}

// Raw returns the bytes of name's record, verified.
func (n *Network) Raw(ctx context.Context, name ipns.Name) ([]byte, error) {
	local, localErr := n.Store.Raw(ctx, name)
	if n.Routing == nil || localErr == nil && n.Store.fresh(name, local) {
		return local, localErr
	}
	ctx, cancel := context.WithTimeout(ctx, lookupTimeout)
	defer cancel()
	data, err := n.Routing.GetValue(ctx, string(name.RoutingKey()))
	if err != nil {
		if localErr == nil {
			return local, nil // stale, but the best known
		}
		return nil, fmt.Errorf("%w %s (routing: %v)", ErrNoRecord, name, err)
	}
	if err := n.Store.Put(name, data); err != nil {
		if localErr == nil {
			// Not newer than the one kept, or not valid: the kept one
			// stands, and is as fresh as routing knows.
			n.Store.confirm(name)
			return local, nil
		}
		return nil, err
	}
	return data, nil
}

// Resolve returns the path name's record points to and how long it may be
// cached.
func (n *Network) Resolve(ctx context.Context, name ipns.Name) (path.Path, time.Duration, error) {
	data, err := n.Raw(ctx, name)
	if err != nil {
		return nil, 0, err
	}
	rec, err := ipns.UnmarshalRecord(data)
	if err != nil {
		return nil, 0, fmt.Errorf("the record of %s: %w", name, err)
	}
	return valueOf(name, rec)
}

// Announce tells routing of the records kept that it has not been told of
// as they are now (every one of them when all is set, as routing forgets),
// and returns how many it told. A record published by the command line
// while Caddy runs is announced on the next pass; one that routing refused
// is tried again on the next.
func (n *Network) Announce(ctx context.Context, all bool) (int, error) {
	if n.Routing == nil {
		return 0, nil
	}
	names, err := n.Store.Names()
	if err != nil {
		return 0, err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.told == nil {
		n.told = make(map[ipns.Name]os.FileInfo)
	}
	var errs []error
	told := 0
	for _, name := range names {
		if !all && !n.Store.changed(name, n.told[name]) {
			continue
		}
		data, fi, err := n.Store.read(name)
		if err != nil {
			continue // expired, or damaged: nothing to announce
		}
		pctx, cancel := context.WithTimeout(ctx, lookupTimeout)
		err = n.Routing.PutValue(pctx, string(name.RoutingKey()), data)
		cancel()
		if err != nil {
			errs = append(errs, fmt.Errorf("announcing %s: %w", name, err))
			continue
		}
		n.told[name] = fi
		told++
	}
	return told, errors.Join(errs...)
}
