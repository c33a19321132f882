package cli

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
)

// TestDemoLiveNeedsFFmpeg: `demo --live` without ffmpeg on the PATH says
// what to install before it starts anything.
func TestDemoLiveNeedsFFmpeg(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	var out bytes.Buffer
	err := runCommand(t, demoCommand(), &out, "--live", "--listen", "127.0.0.1:0", "--address", "off")
	if !errors.Is(err, errNoFFmpeg) || !strings.Contains(err.Error(), "apt install ffmpeg") {
		t.Errorf("demo --live without ffmpeg: %v", err)
	}
	if strings.Contains(out.String(), "http://") {
		t.Errorf("it started, printing %q", out.String())
	}
	if err := runDemo(context.Background(), demoConfig{live: true, seeders: 1, listen: "127.0.0.1:0", admin: "off"}, &out); !errors.Is(err, errNoFFmpeg) {
		t.Errorf("runDemo: %v", err)
	}
}
