// Command httpd is an ordinary Go HTTP server that finds its listening
// socket the way systemd socket activation hands it over (LISTEN_FDS,
// LISTEN_FDNAMES, fds from 3; sd_listen_fds(3)), with nothing but the
// standard library. The same source runs as a sandboxd guest and as a
// native program:
//
//	GOOS=wasip1 GOARCH=wasm go build -o httpd.wasm .
//	sandboxd run --grant listen:127.0.0.1:8080=web httpd.wasm
//	systemd-socket-activate -l 127.0.0.1:8080 --fdname=web ./httpd
//
// GET /hello?n=N answers "hello N" and the request count so far.
package main

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
)

func main() {
	l, err := listener("web")
	if err != nil {
		fmt.Fprintf(os.Stderr, "httpd: %v\n", err)
		os.Exit(2)
	}
	var served atomic.Int64
	http.HandleFunc("/hello", func(w http.ResponseWriter, r *http.Request) {
		n := served.Add(1)
		fmt.Fprintf(w, "hello %s (%d)\n", r.URL.Query().Get("n"), n)
	})
	fmt.Fprintln(os.Stderr, "httpd: serving")
	err = http.Serve(l, nil)
	fmt.Fprintf(os.Stderr, "httpd: %v\n", err)
	os.Exit(1)
}

// listener returns the socket-activated listener named name.
func listener(name string) (net.Listener, error) {
	n, err := strconv.Atoi(os.Getenv("LISTEN_FDS"))
	if err != nil {
		return nil, errors.New("no LISTEN_FDS in the environment: start me with a listener, e.g. --grant listen:127.0.0.1:8080=web")
	}
	for i, fdName := range strings.Split(os.Getenv("LISTEN_FDNAMES"), ":") {
		if i < n && fdName == name {
			return net.FileListener(os.NewFile(uintptr(3+i), name))
		}
	}
	return nil, fmt.Errorf("no socket named %q in LISTEN_FDNAMES=%q", name, os.Getenv("LISTEN_FDNAMES"))
}
