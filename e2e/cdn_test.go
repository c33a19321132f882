package e2e

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// servedFile puts size random bytes on a pacman seeder and returns them
// with their URL on an empty gateway peered with it.
func servedFile(t *testing.T, size int) ([]byte, string) {
	t.Helper()
	data, u := servedFileWithGateway(t, size)
	return data, u.url
}

func fetch(t *testing.T, url string, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return resp, body
}

// TestNginxSlice puts nginx in front of pacman as a CDN would, with the
// slice module turning every request into cached 1 MiB range requests:
// whole-file and mid-file responses are byte-exact, and a second pass is
// served from nginx's cache.
func TestNginxSlice(t *testing.T) {
	nginx := need(t, "nginx")
	data, upstream := servedFile(t, 5<<20+4321)
	origin, path := upstream[:indexPath(upstream)], upstream[indexPath(upstream):]
	dir := t.TempDir()
	port := freePort(t)
	user := ""
	if os.Geteuid() == 0 {
		user = "user root;" // workers must write the cache in this root-owned temp dir
	}
	conf := fmt.Sprintf(`%s
worker_processes 1;
daemon off;
pid %[2]s/nginx.pid;
error_log %[2]s/error.log warn;
events { worker_connections 64; }
http {
	access_log off;
	client_body_temp_path %[2]s/body;
	proxy_temp_path %[2]s/proxy;
	fastcgi_temp_path %[2]s/fastcgi;
	uwsgi_temp_path %[2]s/uwsgi;
	scgi_temp_path %[2]s/scgi;
	proxy_cache_path %[2]s/cache levels=1:2 keys_zone=pacman:10m max_size=1g inactive=1h use_temp_path=off;
	server {
		listen 127.0.0.1:%[3]d;
		location / {
			slice 1m;
			proxy_cache pacman;
			proxy_cache_key $uri$is_args$args$slice_range;
			proxy_set_header Range $slice_range;
			proxy_cache_valid 200 206 1h;
			proxy_http_version 1.1;
			proxy_pass %[4]s;
			add_header X-Cache-Status $upstream_cache_status always;
		}
	}
}
`, user, dir, port, origin)
	confPath := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(nginx, "-c", confPath, "-p", dir+"/")
	// In its own process group, so the workers stop with the master.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
		if t.Failed() {
			e, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Logf("nginx error log:\n%s", e)
		}
	})
	cdn := fmt.Sprintf("http://127.0.0.1:%d%s", port, path)
	// Wait on a path nginx does not cache (an error), so the first pass
	// below is the first to fill the cache.
	waitHTTP(t, fmt.Sprintf("http://127.0.0.1:%d/ipfs/", port))

	for pass, want := range []string{"MISS", "HIT"} {
		resp, body := fetch(t, cdn)
		if resp.StatusCode != 200 || !bytes.Equal(body, data) {
			t.Fatalf("pass %d, whole file: status %d, %d bytes, equal %v", pass, resp.StatusCode, len(body), bytes.Equal(body, data))
		}
		if got := resp.Header.Get("X-Cache-Status"); got != want {
			t.Errorf("pass %d, whole file: X-Cache-Status %q, want %s", pass, got, want)
		}
		resp, body = fetch(t, cdn, "Range", "bytes=2500000-4200000")
		if resp.StatusCode != 206 || !bytes.Equal(body, data[2500000:4200001]) {
			t.Fatalf("pass %d, mid-file range: status %d, %d bytes", pass, resp.StatusCode, len(body))
		}
		if got := resp.Header.Get("Content-Range"); got != fmt.Sprintf("bytes 2500000-4200000/%d", len(data)) {
			t.Errorf("pass %d: Content-Range %q", pass, got)
		}
	}
	// The range lies in slices the first pass cached: a HIT as well.
	if resp, _ := fetch(t, cdn, "Range", "bytes=1048576-1048600"); resp.Header.Get("X-Cache-Status") != "HIT" {
		t.Errorf("cached slice: X-Cache-Status %q, want HIT", resp.Header.Get("X-Cache-Status"))
	}
}

// indexPath returns the index of the path in an http://host:port/path URL.
func indexPath(u string) int {
	for i := len("http://"); i < len(u); i++ {
		if u[i] == '/' {
			return i
		}
	}
	return len(u)
}

// TestAria2 downloads with 8 connections of ranges at once.
func TestAria2(t *testing.T) {
	aria2c := need(t, "aria2c")
	data, url := servedFile(t, 12<<20+99)
	dir := t.TempDir()
	start := time.Now()
	run(t, 2*time.Minute, aria2c, "-q", "-x", "8", "-s", "8", "-k", "1M", "--allow-overwrite=true", "-d", dir, "-o", "out.bin", url)
	got, err := os.ReadFile(filepath.Join(dir, "out.bin"))
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("aria2c: %d bytes, err %v, equal %v", len(got), err, bytes.Equal(got, data))
	}
	t.Logf("aria2c -x 8 -s 8: %d MiB in %v", len(data)>>20, time.Since(start))
}

// TestCurlResume cuts a curl download part-way, as a dropped connection
// would, and resumes it with curl -C -.
func TestCurlResume(t *testing.T) {
	curl := need(t, "curl")
	data, url := servedFile(t, 6<<20+7)
	const cut = 2<<20 + 12345
	proxy := cuttingProxy(t, url[len("http://"):indexPath(url)], cut)
	out := filepath.Join(t.TempDir(), "out.bin")
	// Exit code 18: a partial file, the transfer ended before its length.
	cmd := exec.Command(curl, "-s", "-w", "%{http_code}", "--max-time", "60", "-o", out, "http://"+proxy+url[indexPath(url):])
	status, err := cmd.Output()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 18 {
		t.Fatalf("cut download: curl ended with %v, want exit code 18 (partial file)", err)
	}
	if string(status) != "200" {
		t.Fatalf("cut download: status %s", status)
	}
	partial, err := os.ReadFile(out)
	if err != nil || len(partial) == 0 || len(partial) >= len(data) || !bytes.Equal(partial, data[:len(partial)]) {
		t.Fatalf("cut download left %d bytes (%v), a prefix of the file: %v", len(partial), err, bytes.HasPrefix(data, partial))
	}
	run(t, time.Minute, curl, "-s", "-f", "-C", "-", "-o", out, url)
	got, err := os.ReadFile(out)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("resumed from %d: %d bytes, equal %v", len(partial), len(got), bytes.Equal(got, data))
	}
	t.Logf("resumed at byte %d of %d", len(partial), len(data))
}

// cuttingProxy listens on loopback and relays each connection to target,
// closing it once limit bytes have come back from target: a connection
// dropped mid-response, at a known point and whatever the client's speed.
func cuttingProxy(t *testing.T, target string, limit int64) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				up, err := net.Dial("tcp", target)
				if err != nil {
					return
				}
				defer up.Close()
				go io.Copy(up, c)
				io.CopyN(c, up, limit)
			}()
		}
	}()
	return ln.Addr().String()
}
