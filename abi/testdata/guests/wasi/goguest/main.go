// Command goguest is a GOOS=wasip1 test guest: an unmodified Go program,
// one program for every mode so that the tests compile one Go module.
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
	if len(os.Args) < 2 {
		fmt.Println("usage: goguest fs|echo N|accept|conn")
		os.Exit(2)
	}
	if os.Args[1] == "fs" {
		files()
		return
	}
	if os.Args[1] == "conn" {
		c, err := net.FileConn(os.NewFile(3, "conn"))
		if err != nil {
			fmt.Println("fileconn:", err)
			os.Exit(1)
		}
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil {
			fmt.Println("read:", err)
			os.Exit(1)
		}
		fmt.Fprint(c, strings.ToUpper(line))
		c.Close()
		fmt.Println("answered")
		return
	}
	l, err := net.FileListener(os.NewFile(3, "listener"))
	if err != nil {
		fmt.Println("filelistener:", err)
		os.Exit(1)
	}
	switch os.Args[1] {
	case "echo":
		n, _ := strconv.Atoi(os.Args[2])
		var wg sync.WaitGroup
		for i := 0; i < n; i++ {
			c, err := l.Accept()
			if err != nil {
				fmt.Println("accept:", err)
				os.Exit(1)
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
	case "accept":
		_, err := l.Accept()
		fmt.Println("accept:", err)
	}
}
