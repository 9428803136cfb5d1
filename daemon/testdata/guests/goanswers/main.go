//go:build wasip1

// Command goanswers checks that the daemon answers each request a guest
// sends on its supervisor channel once, in order, however full the
// channel is, and what the SDK makes of an answer or a notice whose
// handle the guest cannot take. It prints what it found and exits 0, or
// says what went wrong and exits 1.
//
//	goanswers many N     sends N requests without reading (every hundredth
//	                     empty, the others unknown), then reads N answers
//	goanswers connect N  waits for a line on stdin, sends N requests whose
//	                     answers it discards (Conn.DiscardAnswer), then
//	                     connects with peer.Connect and says how many
//	                     notices it read past
//	goanswers stuck N    sends N requests without reading, then connects
//	                     with a deadline, reads the N answers, and checks
//	                     that the next answer is to its next request
//	goanswers fulltable  fills its handle table, says "full", and after
//	                     each line on stdin: connects, then reads a notice;
//	                     then frees one fd and connects again
//	goanswers notices    reads the notices on its supervisor channel with
//	                     RecvNotice and prints one line for each: its event
//	                     and kind, how many bytes its name has, and whether
//	                     a handle came with it (which it closes); a notice
//	                     RecvNotice fails on is printed and ends it with 1
package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/sandboxd/sandboxd/abi/argdata"
	"github.com/sandboxd/sandboxd/abi/sdk/sandboxd"
	"github.com/sandboxd/sandboxd/abi/sdk/sandboxd/peer"
)

func main() {
	args := sandboxd.Args()
	switch {
	case len(args) == 3 && args[1] == "many":
		many(count(args[2]))
	case len(args) == 3 && args[1] == "connect":
		connect(count(args[2]))
	case len(args) == 3 && args[1] == "stuck":
		stuck(count(args[2]))
	case len(args) == 2 && args[1] == "fulltable":
		fullTable()
	case len(args) == 2 && args[1] == "notices":
		notices()
	default:
		fmt.Println("usage: goanswers many N | connect N | stuck N | fulltable | notices")
		os.Exit(2)
	}
}

// request is the i-th request many sends, and what its answer must say.
func request(i int) (req []byte, want string) {
	if i%100 == 50 {
		return nil, `unknown request ""`
	}
	name := fmt.Sprintf("x%05d", i)
	return argdata.StringMap(map[string]argdata.Value{"request": argdata.String(name)}).Encode(), strconv.Quote(name)
}

func count(s string) int {
	n, err := strconv.Atoi(s)
	check("count", err)
	return n
}

// send sends the first n requests of request on sup.
func send(sup *sandboxd.Conn, n int) {
	for i := range n {
		send1(sup, i)
	}
}

func many(n int) {
	sup, err := sandboxd.Supervisor()
	check("supervisor", err)
	send(sup, n)
	readAnswers(sup, 0, n)
	fmt.Printf("answers %d in order\n", n)
}

// readAnswers reads the answers to requests from to to-1 of request.
func readAnswers(sup *sandboxd.Conn, from, to int) {
	for i := from; i < to; i++ {
		a, err := sup.RecvNotice()
		check(fmt.Sprintf("answer %d", i), err)
		if _, want := request(i); a.Event != "error" || !strings.Contains(a.Name, want) {
			fmt.Printf("answer %d is %s %q, want an error saying %s\n", i, a.Event, a.Name, want)
			os.Exit(1)
		}
	}
}

// stuck fills both directions of its supervisor channel with n requests
// (n is as many as the two hold), so that a request for a connection
// cannot be sent until it reads, and connects with a deadline.
func stuck(n int) {
	sup, err := sandboxd.Supervisor()
	check("supervisor", err)
	send(sup, n)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err = peer.Connect(ctx)
	fmt.Printf("connect: deadline exceeded %v\n", errors.Is(err, context.DeadlineExceeded))
	readAnswers(sup, 0, n)
	// Connect sent no request, so none is owed an answer: the next
	// answer is to the next request.
	send1(sup, n)
	readAnswers(sup, n, n+1)
	fmt.Printf("answers %d in order, and then the next\n", n)
}

// send1 sends request i on sup.
func send1(sup *sandboxd.Conn, i int) {
	req, _ := request(i)
	_, err := sup.Send(req)
	check(fmt.Sprintf("request %d", i), err)
}

func connect(n int) {
	if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
		check("stdin", err)
	}
	sup, err := sandboxd.Supervisor()
	check("supervisor", err)
	send(sup, n)
	for range n {
		sup.DiscardAnswer()
	}
	// The connection is left open: the test's server does not speak
	// Cap'n Proto, so closing it would wait for an answer.
	_, err = peer.Connect(context.Background())
	fmt.Printf("connect: %v\n", err)
	pending := peer.Pending()
	for _, n := range pending {
		if n.HasFD {
			check("close", sandboxd.Close(n.FD))
		}
	}
	fmt.Printf("pending %d\n", len(pending))
}

func check(what string, err error) {
	if err != nil {
		fmt.Printf("%s: %v\n", what, err)
		os.Exit(1)
	}
}

// fullTable connects, and reads a notice, with its handle table full.
func fullTable() {
	sup, err := sandboxd.Supervisor()
	check("supervisor", err)
	in := bufio.NewReader(os.Stdin)
	var dups []uint32
	for {
		fd, err := sandboxd.Dup(0)
		if err != nil {
			break // EMFILE: the table is full
		}
		dups = append(dups, fd)
	}
	fmt.Println("full")
	line(in)
	_, err = peer.Connect(context.Background())
	fmt.Printf("connect: %v%s\n", err, lostNotice(err))
	for _, n := range peer.Pending() {
		fmt.Printf("pending %s %s: fd %v, handle lost %v\n", n.Event, n.Name, n.HasFD, n.HandleLost)
	}
	fmt.Println("read")
	line(in)
	n, err := sup.RecvNotice()
	fmt.Printf("notice %s %s %s: fd %v, error %v%s\n", n.Event, n.Name, n.Cap, n.HasFD, err, lostNotice(err))
	check("close", sandboxd.Close(dups[0]))
	_, err = peer.Connect(context.Background())
	fmt.Printf("connect again: %v\n", err)
}

// line waits for a line on in.
func line(in *bufio.Reader) {
	_, err := in.ReadString('\n')
	check("stdin", err)
}

// lostNotice describes the notice of a *sandboxd.HandleLostError in err.
func lostNotice(err error) string {
	var lost *sandboxd.HandleLostError
	if !errors.As(err, &lost) {
		return ""
	}
	n := lost.Notice
	return fmt.Sprintf(" [lost: %s %s, cap %v, handle lost %v]", n.Event, n.Name, n.Cap != "", n.HandleLost)
}

// notices prints a line for each notice on its supervisor channel.
func notices() {
	sup, err := sandboxd.Supervisor()
	check("supervisor", err)
	for {
		n, err := sup.RecvNotice()
		check("receive", err)
		fmt.Printf("notice %s %s name=%d bytes handle=%v\n", n.Event, n.Kind, len(n.Name), n.HasFD)
		if n.HasFD {
			_ = sandboxd.Close(n.FD)
		}
	}
}
