package testutil

import (
	"crypto/rand"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/libp2p/go-libp2p/core/pnet"
)

// SwarmKey returns a fresh private-swarm key in Kubo's swarm.key format,
// and as the PSK it decodes to.
func SwarmKey(t testing.TB) (file string, psk pnet.PSK) {
	t.Helper()
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		t.Fatal(err)
	}
	file = "/key/swarm/psk/1.0.0/\n/base16/\n" + hex.EncodeToString(raw) + "\n"
	psk, err := pnet.DecodeV1PSK(strings.NewReader(file))
	if err != nil {
		t.Fatal(err)
	}
	return file, psk
}
