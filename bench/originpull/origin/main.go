// Command origin is a plain HTTP origin for the origin_pull bench: it
// serves one file of SIZE bytes at /videos/film.mp4, with Range and an
// ETag, and answers /count with the body bytes it has sent.
package main

import (
	"bytes"
	"crypto/sha256"
	"flag"
	"fmt"
	"log"
	"net/http"
	"sync/atomic"
	"time"
)

// counting counts the body bytes written through it.
type counting struct {
	http.ResponseWriter
	n *atomic.Int64
}

func (c counting) Write(p []byte) (int, error) {
	n, err := c.ResponseWriter.Write(p)
	c.n.Add(int64(n))
	return n, err
}

func main() {
	addr := flag.String("addr", "127.0.0.1:9901", "listen address")
	size := flag.Int("size", 256<<20, "file size in bytes")
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
		w.Header().Set("ETag", `"film"`)
		http.ServeContent(counting{w, &sent}, r, "film.mp4", time.Time{}, bytes.NewReader(data))
	})
	http.HandleFunc("/count", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, sent.Load()) })
	log.Fatal(http.ListenAndServe(*addr, nil))
}
