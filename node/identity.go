package node

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

// identityFile is the name, in the data directory, of the node's private key.
const identityFile = "identity.key"

// Identity returns the peer ID of the node on data directory dir, making
// the directory and its identity on first use, as the node's first start
// would: the ID a node will have is known before it ever runs.
func Identity(dir string) (peer.ID, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("making data directory: %w", err)
	}
	key, err := loadOrCreateIdentity(dir)
	if err != nil {
		return "", err
	}
	return peer.IDFromPrivateKey(key)
}

// loadOrCreateIdentity returns the node's private key, creating and saving
// an Ed25519 key on first use so the peer ID survives restarts.
func loadOrCreateIdentity(dir string) (crypto.PrivKey, error) {
	path := filepath.Join(dir, identityFile)
	raw, err := os.ReadFile(path)
	if err == nil {
		key, err := crypto.UnmarshalPrivateKey(raw)
		if err != nil {
			return nil, fmt.Errorf("reading identity %s: %w", path, err)
		}
		return key, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("reading identity: %w", err)
	}
	key, _, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		return nil, fmt.Errorf("generating identity: %w", err)
	}
	raw, err = crypto.MarshalPrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encoding identity: %w", err)
	}
	if err := writeDurably(path, raw); err != nil {
		return nil, fmt.Errorf("saving identity: %w", err)
	}
	return key, nil
}

// writeDurably writes data to path through a temporary file, syncing the
// file before the rename and the directory after it: a power cut leaves
// either no file or the whole one, never an empty key the node then
// refuses to start with.
func writeDurably(path string, data []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	dir, err := os.Open(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer dir.Close()
	return dir.Sync()
}
