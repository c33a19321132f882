package names

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"time"

	"github.com/ipfs/boxo/ipns"
	"github.com/ipfs/boxo/path"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

// keyName is what a publishing key may be called.
var keyName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// Keys are the private keys names are published with, one file per key in
// a directory: whoever holds a key's file can publish its name, so keys
// may be copied between edges.
type Keys struct {
	Dir string
}

// Key returns the key called name, generating an Ed25519 key on first use.
func (k Keys) Key(name string) (crypto.PrivKey, error) {
	if !keyName.MatchString(name) {
		return nil, fmt.Errorf("key name %q: use 1 to 64 of A-Z a-z 0-9 _ -", name)
	}
	file := filepath.Join(k.Dir, name)
	raw, err := os.ReadFile(file)
	if err == nil {
		sk, err := crypto.UnmarshalPrivateKey(raw)
		if err != nil {
			return nil, fmt.Errorf("reading key %s: %w", file, err)
		}
		return sk, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("reading key %s: %w", file, err)
	}
	sk, _, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		return nil, fmt.Errorf("generating key %s: %w", name, err)
	}
	if raw, err = crypto.MarshalPrivateKey(sk); err != nil {
		return nil, fmt.Errorf("encoding key %s: %w", name, err)
	}
	if err := os.MkdirAll(k.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("saving key %s: %w", name, err)
	}
	// O_EXCL: two publishers starting at once cannot make two keys.
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return k.Key(name)
	}
	if err != nil {
		return nil, fmt.Errorf("saving key %s: %w", name, err)
	}
	if _, err := f.Write(raw); err != nil {
		f.Close()
		os.Remove(file)
		return nil, fmt.Errorf("saving key %s: %w", name, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(file)
		return nil, fmt.Errorf("saving key %s: %w", name, err)
	}
	return sk, f.Close()
}

// Publish signs a record pointing sk's name at value, valid for lifetime
// and cached for ttl, with the sequence after the record kept, and keeps
// it; a running node announces it. It returns the name.
func Publish(s *Store, sk crypto.PrivKey, value path.Path, lifetime, ttl time.Duration) (ipns.Name, error) {
	id, err := peer.IDFromPrivateKey(sk)
	if err != nil {
		return ipns.Name{}, fmt.Errorf("the key's peer ID: %w", err)
	}
	name := ipns.NameFromPeer(id)
	var seq uint64
	if old, err := s.Get(name); err == nil {
		if n, err := old.Sequence(); err == nil {
			seq = n + 1
		}
	}
	rec, err := ipns.NewRecord(sk, value, seq, time.Now().Add(lifetime), ttl, ipns.WithV1Compatibility(true))
	if err != nil {
		return name, fmt.Errorf("signing the record of %s: %w", name, err)
	}
	data, err := ipns.MarshalRecord(rec)
	if err != nil {
		return name, fmt.Errorf("encoding the record of %s: %w", name, err)
	}
	return name, s.Put(name, data)
}
