package cli

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/pacman-cdn/pacman/node"
)

// demoStream is the stream `demo --live` publishes; its edge serves the
// ladder's multivariant playlist at demoLivePath.
const (
	demoStream   = "demo"
	demoLivePath = "/live/" + demoStream + "/master.m3u8"
)

// publisherStart bounds how long the demo's publisher takes to start.
const publisherStart = 30 * time.Second

// liveDemo is the live half of `demo --live`: a publisher, run as a
// second Caddy from a Caddyfile as an operator runs one, and the encoder
// that publishes the ladder to it.
type liveDemo struct {
	ffmpeg    string
	dir       string
	token     string
	http      string  // the publisher's base URL
	addr      string  // its libp2p address, ending in /p2p/{id}
	id        peer.ID // its peer ID, which the edge trusts
	publisher *child
	encoder   *child
}

// child is a process the demo runs; done is closed once it has exited.
type child struct {
	cmd  *exec.Cmd
	done chan struct{}
}

// errNoFFmpeg says what `demo --live` needs that is not installed.
var errNoFFmpeg = errors.New("demo --live encodes its stream with ffmpeg, which is not on the PATH: install it (Debian and Ubuntu: apt install ffmpeg), or run the demo without --live")

// newLiveDemo checks that the encoder is installed and prepares the
// publisher's data directory, under dir, and its identity.
func newLiveDemo(dir string) (*liveDemo, error) {
	ffmpeg, err := exec.LookPath("ffmpeg")
	if err != nil {
		return nil, errNoFFmpeg
	}
	var secret [16]byte
	if _, err := rand.Read(secret[:]); err != nil {
		return nil, err
	}
	l := &liveDemo{ffmpeg: ffmpeg, dir: dir, token: hex.EncodeToString(secret[:])}
	if l.id, err = node.Identity(filepath.Join(dir, "data")); err != nil {
		return nil, fmt.Errorf("the demo's publisher: %w", err)
	}
	return l, nil
}

// startPublisher runs the publisher, `caddy run` of a Caddyfile with the
// ingest route (0.333 s parts) and the live resolver, and waits until it
// answers.
func (l *liveDemo) startPublisher(ctx context.Context) error {
	httpPort, err := freePort()
	if err != nil {
		return err
	}
	p2pPort, err := freePort()
	if err != nil {
		return err
	}
	l.http = "http://127.0.0.1:" + strconv.Itoa(httpPort)
	l.addr = fmt.Sprintf("/ip4/127.0.0.1/tcp/%d/p2p/%s", p2pPort, l.id)
	caddyfile := fmt.Sprintf(`{
	admin off
	pacman {
		data_dir %s
		listen /ip4/127.0.0.1/tcp/%d
	}
}
%s {
	pacman_live_ingest /ingest/* {
		token {env.PACMAN_DEMO_TOKEN}
		part_target 333ms
	}
	pacman {
		resolve live /live/
	}
}
`, filepath.Join(l.dir, "data"), p2pPort, l.http)
	config := filepath.Join(l.dir, "Caddyfile")
	if err := os.WriteFile(config, []byte(caddyfile), 0o644); err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("finding this program to run the publisher: %w", err)
	}
	l.publisher, err = l.start(ctx, "publisher.log", self, "run", "--adapter", "caddyfile", "--config", config)
	if err != nil {
		return err
	}
	for deadline := time.Now().Add(publisherStart); ; time.Sleep(100 * time.Millisecond) {
		// Any answer will do: the live resolver knows no stream yet.
		if resp, err := http.Get(l.http + "/live/"); err == nil {
			resp.Body.Close()
			return nil
		}
		select {
		case <-l.publisher.done:
			return fmt.Errorf("the demo's publisher exited; see %s", filepath.Join(l.dir, "publisher.log"))
		default:
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("the demo's publisher did not start; see %s", filepath.Join(l.dir, "publisher.log"))
		}
	}
}

// startEncoder runs ffmpeg, coding a test pattern into README's
// three-rendition low-latency ladder and PUTting it to the publisher.
func (l *liveDemo) startEncoder(ctx context.Context) (err error) {
	l.encoder, err = l.start(ctx, "encoder.log", l.ffmpeg, "-hide_banner", "-loglevel", "error", "-re",
		"-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25",
		"-filter_complex", "[0:v]split=3[a][b][c];[b]scale=320:180[b2];[c]scale=160:90[c2]",
		"-map", "[a]", "-map", "[b2]", "-map", "[c2]", "-pix_fmt", "yuv420p",
		"-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency", "-g", "50",
		"-b:v:0", "600k", "-b:v:1", "250k", "-b:v:2", "100k", "-adaptation_sets", "id=0,streams=v",
		"-f", "dash", "-ldash", "1", "-seg_duration", "2", "-frag_duration", "0.32", "-frag_type", "duration",
		"-hls_playlist", "1", "-use_template", "1", "-use_timeline", "0",
		"-method", "PUT", "-http_persistent", "1",
		"-http_opts", "headers=Authorization\\: Bearer "+l.token+"\r\n",
		l.http+"/ingest/"+demoStream+"/manifest.mpd")
	return err
}

// start runs a child of the demo, its output to logName in l.dir; it is
// interrupted when ctx ends.
func (l *liveDemo) start(ctx context.Context, logName, name string, args ...string) (*child, error) {
	log, err := os.Create(filepath.Join(l.dir, logName))
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), "PACMAN_DEMO_TOKEN="+l.token)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 10 * time.Second
	cmd.SysProcAttr = childAttr()
	if err := cmd.Start(); err != nil {
		log.Close()
		return nil, fmt.Errorf("starting %s: %w", filepath.Base(name), err)
	}
	c := &child{cmd: cmd, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		log.Close()
		close(c.done)
	}()
	return c, nil
}

// close stops the encoder, then the publisher, and waits for both.
func (l *liveDemo) close() {
	for _, c := range []*child{l.encoder, l.publisher} {
		if c == nil {
			continue
		}
		_ = c.cmd.Process.Signal(os.Interrupt)
		select {
		case <-c.done:
		case <-time.After(10 * time.Second):
			_ = c.cmd.Process.Kill()
			<-c.done
		}
	}
}

// freePort returns a TCP port free on loopback now.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
