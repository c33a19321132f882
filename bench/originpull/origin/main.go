// Command origin is a plain HTTP origin for the origin_pull bench: it
// serves one file of SIZE bytes at /videos/film.mp4, with Range and an
// ETag, each response after -latency and at most -rate bytes a second,
// and answers /count with the body bytes it has sent.
package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"flag"
	"fmt"
	"log"
	"net/http"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// counting counts the body bytes written through it, paced by lim.
type counting struct {
	http.ResponseWriter
	n   *atomic.Int64
	lim *rate.Limiter
	ctx context.Context
}

func (c counting) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		chunk := p
		if c.lim != nil {
			chunk = p[:min(len(p), c.lim.Burst())]
			if err := c.lim.WaitN(c.ctx, len(chunk)); err != nil {
				return written, err
			}
		}
		n, err := c.ResponseWriter.Write(chunk)
		c.n.Add(int64(n))
		written += n
		if err != nil {
			return written, err
		}
		p = p[len(chunk):]
	}
	return written, nil
}

func main() {
	addr := flag.String("addr", "127.0.0.1:9901", "listen address")
	size := flag.Int("size", 256<<20, "file size in bytes")
	latency := flag.Duration("latency", 0, "delay before each response")
	perSec := flag.Int("rate", 0, "bytes a second each response is sent at; 0 for no limit")
	flag.Parse()
	data := make([]byte, 0, *size+sha256.Size)
	seed := sha256.Sum256([]byte("bench"))
	for len(data) < *size {
		seed = sha256.Sum256(seed[:])
		data = append(data, seed[:]...)
	}
	data = data[:*size]
	var sent atomic.Int64
	http.HandleFunc("/videos/film.mp4", func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(*latency)
		w.Header().Set("ETag", `"film"`)
		c := counting{ResponseWriter: w, n: &sent, ctx: r.Context()}
		if *perSec > 0 {
			c.lim = rate.NewLimiter(rate.Limit(*perSec), 64<<10)
		}
		http.ServeContent(c, r, "film.mp4", time.Time{}, bytes.NewReader(data))
	})
	http.HandleFunc("/count", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, sent.Load()) })
	log.Fatal(http.ListenAndServe(*addr, nil))
}
