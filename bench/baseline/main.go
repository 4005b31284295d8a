// Command baseline is the yardstick of bench/run.sh: a bare net/http
// handler answering every request with the same page of -size bytes, so
// that gatecheck's pages can be compared with what the machine does at
// best in the same run.
//
//	go run ./bench/baseline -addr 127.0.0.1:0 -size 12345
//
// It prints "serving http://ADDR/" once it listens.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "address to listen on")
	size := flag.Int("size", 10000, "bytes of the page")
	flag.Parse()
	if *size < 0 {
		fmt.Fprintln(os.Stderr, "baseline: -size must not be negative")
		os.Exit(2)
	}
	page := bytes.Repeat([]byte("x"), *size)
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "baseline:", err)
		os.Exit(1)
	}
	fmt.Printf("serving http://%s/\n", ln.Addr())
	err = http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write(page)
	}))
	fmt.Fprintln(os.Stderr, "baseline:", err)
	os.Exit(1)
}
