// Command sockact is a GOOS=wasip1 test guest that finds its sockets the
// way systemd socket activation hands them over: LISTEN_FDS handles from
// fd 3, named by LISTEN_FDNAMES (sd_listen_fds(3)). It uses only the
// standard library: net.FileConn for a connected socket, net.FileListener
// for a listener or a dialer.
//
//	sockact conn NAME     read a line from the connection NAME, answer it
//	                      upper-cased, then read until the stream ends and
//	                      print how it ended
//	sockact dial NAME N   open N connections through the dialer NAME, send
//	                      "ping I" on each and print the answer, then read
//	                      from all of them until each ends, printing how
//	sockact serve NAME N  serve N connections accepted on NAME: answer the
//	                      first line of each upper-cased, then read it
//	                      until it ends
package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
)

// activated returns the handle LISTEN_FDNAMES names name.
func activated(name string) (*os.File, error) {
	n, err := strconv.Atoi(os.Getenv("LISTEN_FDS"))
	if err != nil {
		return nil, errors.New("no LISTEN_FDS: not socket-activated")
	}
	names := strings.Split(os.Getenv("LISTEN_FDNAMES"), ":")
	for i := 0; i < n && i < len(names); i++ {
		if names[i] == name {
			return os.NewFile(uintptr(3+i), name), nil
		}
	}
	return nil, fmt.Errorf("no socket named %q in LISTEN_FDNAMES=%q", name, os.Getenv("LISTEN_FDNAMES"))
}

func main() {
	f, err := activated(os.Args[2])
	if err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
	switch os.Args[1] {
	case "conn":
		c, err := net.FileConn(f)
		check("fileconn", err)
		r := bufio.NewReader(c)
		line, err := r.ReadString('\n')
		check("read", err)
		_, err = io.WriteString(c, strings.ToUpper(line))
		check("write", err)
		fmt.Println("answered")
		fmt.Println("ended:", drain(r))
	case "dial":
		n, _ := strconv.Atoi(os.Args[3])
		l, err := net.FileListener(f)
		check("filelistener", err)
		dial(l, n)
	case "serve":
		n, _ := strconv.Atoi(os.Args[3])
		l, err := net.FileListener(f)
		check("filelistener", err)
		serve(l, n)
	}
}

func check(what string, err error) {
	if err != nil {
		fmt.Printf("%s: %v\n", what, err)
		os.Exit(1)
	}
}

// drain reads until the stream ends and says how: "EOF" or the error.
func drain(r io.Reader) string {
	_, err := io.Copy(io.Discard, r)
	if err == nil {
		return "EOF"
	}
	return err.Error()
}

func dial(l net.Listener, n int) {
	readers := make([]*bufio.Reader, n)
	for i := range readers {
		c, err := l.Accept()
		check("dial", err)
		fmt.Fprintf(c, "ping %d\n", i)
		readers[i] = bufio.NewReader(c)
		line, err := readers[i].ReadString('\n')
		check("read", err)
		fmt.Print(line)
	}
	ended := make([]string, n)
	var wg sync.WaitGroup
	for i, r := range readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ended[i] = drain(r)
		}()
	}
	wg.Wait()
	for i, e := range ended {
		fmt.Printf("connection %d ended: %s\n", i, e)
	}
}

func serve(l net.Listener, n int) {
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		c, err := l.Accept()
		check("accept", err)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.Close()
			r := bufio.NewReader(c)
			line, err := r.ReadString('\n')
			if err == nil {
				io.WriteString(c, strings.ToUpper(line))
				drain(r)
			}
		}()
	}
	wg.Wait()
	fmt.Println("served", n)
}
