// Command goguest is a GOOS=wasip1 test guest: an unmodified Go program,
// one program for every mode so that the tests build and compile one Go
// program instead of one for each.
//
//	goguest fs       package os on the preopens /data (read-write) and /ro
//	                 (read-only), one line per step (fs.go)
//	goguest echo N   fd 3 is a listening socket: net.FileListener, serve each
//	                 connection in its own goroutine (so Go's netpoller waits
//	                 on several sockets and a timer at once through
//	                 poll_oneoff), upper-case one line per connection for N
//	                 connections, then exit
//	goguest accept   accept once on fd 3 and print the error Accept returns
//	goguest conn     fd 3 is a connected stream (a socket or a channel end):
//	                 net.FileConn, read one line, answer it upper-cased
package main

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

func main() {
	mode := ""
	if len(os.Args) > 1 {
		mode = os.Args[1]
	}
	switch {
	case mode == "fs":
		files()
	case mode == "conn":
		conn()
	case mode == "echo" && len(os.Args) > 2:
		n, err := strconv.Atoi(os.Args[2])
		if err != nil {
			usage()
		}
		echo(listener(), n)
	case mode == "accept":
		_, err := listener().Accept()
		fmt.Println("accept:", err)
	default:
		usage()
	}
}

func usage() {
	fmt.Println("usage: goguest fs|echo N|accept|conn")
	os.Exit(2)
}

func fail(what string, err error) {
	fmt.Println(what+":", err)
	os.Exit(1)
}

// conn answers one line, upper-cased, on the connected stream at fd 3.
func conn() {
	c, err := net.FileConn(os.NewFile(3, "conn"))
	if err != nil {
		fail("fileconn", err)
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		fail("read", err)
	}
	fmt.Fprint(c, strings.ToUpper(line))
	c.Close()
	fmt.Println("answered")
}

// listener is the listening socket at fd 3.
func listener() net.Listener {
	l, err := net.FileListener(os.NewFile(3, "listener"))
	if err != nil {
		fail("filelistener", err)
	}
	return l
}

// echo serves n connections at once, each in its own goroutine, each one
// line upper-cased after a timer, so that Go's netpoller waits on several
// sockets and a timer at once.
func echo(l net.Listener, n int) {
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		c, err := l.Accept()
		if err != nil {
			fail("accept", err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.Close()
			line, err := bufio.NewReader(c).ReadString('\n')
			if err != nil {
				fmt.Println("read:", err)
				return
			}
			time.Sleep(10 * time.Millisecond) // a timer while sockets are polled
			fmt.Fprint(c, strings.ToUpper(line))
		}()
	}
	wg.Wait()
	fmt.Println("served", n)
}
