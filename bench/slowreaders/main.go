// Command slowreaders holds many slow readers on one file of a running
// edge, spread over several client addresses, then times fresh 100-byte
// ranges from a new address and from an attacker's: slow readers must
// cost their own connections, never the route's budget.
//
//	go run ./bench/slowreaders -url http://127.0.0.1:8099/ipfs/{big} -fresh http://127.0.0.1:8099/ipfs/{small} -readers 2000 -addrs 20
//
// Each reader asks for the rest of the file from its own offset with a
// 4 KiB receive buffer, takes the status line and then one byte a second.
// Loopback addresses 127.0.0.2 on are the readers', 127.0.0.200 the fresh
// client's.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/url"
	"sync"
	"syscall"
	"time"
)

func main() {
	target := flag.String("url", "", "the file the slow readers read")
	fresh := flag.String("fresh", "", "another file, asked for a fresh range")
	size := flag.Int64("size", 100<<20, "bytes in the file at -url")
	readers := flag.Int("readers", 200, "slow readers")
	addrs := flag.Int("addrs", 1, "client addresses the readers are spread over (at most 190)")
	settle := flag.Duration("settle", 8*time.Second, "time the readers get before the fresh ranges")
	flag.Parse()
	if *target == "" || *fresh == "" || *addrs < 1 || *addrs > 190 {
		flag.Usage()
		log.Fatal("need -url, -fresh and 1 ≤ -addrs ≤ 190")
	}
	u, err := url.Parse(*target)
	if err != nil {
		log.Fatal(err)
	}
	var (
		mu     sync.Mutex
		status = map[string]int{}
		wg     sync.WaitGroup
		conns  []net.Conn
	)
	for i := range *readers {
		src := net.ParseIP(fmt.Sprintf("127.0.0.%d", 2+i%*addrs))
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: src}, Timeout: 5 * time.Second, Control: smallReceiveBuffer}
		c, err := d.Dial("tcp", u.Host)
		if err != nil {
			mu.Lock()
			status["dial error"]++
			mu.Unlock()
			continue
		}
		conns = append(conns, c)
		off := int64(i) * 7919 * 65536 % *size
		fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\nRange: bytes=%d-\r\n\r\n", u.RequestURI(), u.Host, off)
		wg.Go(func() {
			r := bufio.NewReaderSize(c, 64)
			line, err := r.ReadString('\n')
			code := "no answer"
			if err == nil && len(line) >= 12 {
				code = line[9:12]
			}
			mu.Lock()
			status[code]++
			mu.Unlock()
			for {
				time.Sleep(time.Second)
				if _, err := r.ReadByte(); err != nil {
					return
				}
			}
		})
	}
	time.Sleep(*settle)
	mu.Lock()
	fmt.Printf("%d slow readers over %d addresses, first status lines: %v\n", *readers, *addrs, status)
	mu.Unlock()
	for _, from := range []string{"127.0.0.200", "127.0.0.2"} {
		for _, file := range []string{*fresh, *target} {
			code, took, err := rangeFrom(from, file)
			if err != nil {
				fmt.Printf("from %s, %s: %v after %v\n", from, file, err, took.Round(time.Millisecond))
				continue
			}
			fmt.Printf("from %s, %s: %d in %v\n", from, file, code, took.Round(time.Millisecond))
		}
	}
	for _, c := range conns {
		_ = c.Close()
	}
	wg.Wait()
}

// rangeFrom asks for 100 bytes of file from the address from.
func rangeFrom(from, file string) (int, time.Duration, error) {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	cl := http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DialContext: d.DialContext}}
	req, err := http.NewRequest(http.MethodGet, file, nil)
	if err != nil {
		return 0, 0, err
	}
	req.Header.Set("Range", "bytes=50000-50099")
	start := time.Now()
	resp, err := cl.Do(req)
	if err != nil {
		return 0, time.Since(start), err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return 0, time.Since(start), err
	}
	return resp.StatusCode, time.Since(start), nil
}

// smallReceiveBuffer makes the kernel take little of the response before
// the reader's window closes.
func smallReceiveBuffer(_, _ string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
	})
	if err != nil {
		return err
	}
	return serr
}
