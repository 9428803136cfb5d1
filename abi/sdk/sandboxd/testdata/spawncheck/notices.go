//go:build wasip1

package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/sandboxd/sandboxd/abi/sdk/sandboxd"
	"github.com/sandboxd/sandboxd/abi/sdk/sandboxd/peer"
)

// cutAt is where a notice read into a fixed buffer of 4 KiB was cut.
const cutAt = 4096

// cut queues a notice whose kind ends exactly at cutAt, so that the
// notice cut there still decodes, without its name, and runs the child.
func cut(mod uint32) {
	mine, theirs, err := sandboxd.DatagramChannel()
	check("datagram channel", err)
	kind := kindEndingAt(cutAt)
	sendDup(mine, notice("cap", "c1", "event", "grant", "kind", kind, "name", "after-the-cut"), 1)
	p := spawn(mod, "cut-child", map[string]uint32{"supervisor": theirs.Fd()})
	theirs.Close()
	wait(p, "cut")
}

// kindEndingAt returns a kind that makes the first at bytes of a notice
// exactly its cap, event and kind (keys sort in that order, before name).
func kindEndingAt(at int) string {
	for n := at - 64; n < at; n++ {
		k := strings.Repeat("k", n)
		if len(notice("cap", "c1", "event", "grant", "kind", k)) == at {
			return k
		}
	}
	fmt.Println("no kind ends a notice at", at)
	os.Exit(1)
	return ""
}

func cutChild() {
	sup, err := sandboxd.Supervisor()
	check("supervisor", err)
	before := openHandles()
	n, err := sup.RecvNotice()
	fmt.Printf("notice longer than 4 KiB: %v, event %s, kind %d bytes, name %q, handle %v\n",
		err, n.Event, len(n.Kind), n.Name, n.HasFD)
	if n.HasFD {
		check("close", sandboxd.Close(n.FD))
	}
	fmt.Printf("handles left open %d\n", openHandles()-before)
}

// abandon runs the child and answers on its supervisor channel: the
// first request only after the child has given up waiting for it, with a
// grant queued behind that late answer; the second with a refusal; the
// third not at all.
func abandon(mod uint32) {
	answerLate(mod, "abandon-child", func(mine *sandboxd.Conn) {
		_, late, err := sandboxd.Channel()
		check("channel", err)
		sendDup(mine, notice("event", "rpc", "name", "rpc"), late.Fd())
		late.Close()
		sendDup(mine, notice("event", "grant", "name", "granted", "kind", "stdio", "cap", "c2"), 1)
	})
}

// answerLate runs the child in mode with a supervisor channel and "ctl".
// Once the child has asked for a connection, it tells the child on ctl to
// give up waiting and waits for its word (the child has returned, or done
// what it does next); then answer answers on the supervisor channel, and
// the child's next request is refused.
func answerLate(mod uint32, mode string, answer func(mine *sandboxd.Conn)) {
	mine, theirs, err := sandboxd.DatagramChannel()
	check("datagram channel", err)
	ctl, ctlChild, err := sandboxd.Channel()
	check("channel", err)
	p := spawn(mod, mode, map[string]uint32{"supervisor": theirs.Fd(), "ctl": ctlChild.Fd()})
	theirs.Close()
	ctlChild.Close()
	awaitRequest(mine)
	_, err = ctl.Write([]byte("c")) // cancel the wait
	check("write ctl", err)
	_, err = ctl.Read(make([]byte, 1))
	check("read ctl", err)
	answer(mine)
	awaitRequest(mine)
	_, err = mine.Send(notice("event", "error", "error", "the second request is refused"))
	check("send", err)
	wait(p, mode)
}

// awaitRequest waits for a request for a connection on c.
func awaitRequest(c *sandboxd.Conn) {
	buf := make([]byte, 256)
	r, err := c.Recv(buf, nil)
	check("receive a request", err)
	if want := notice("request", "rpc"); string(buf[:r.N]) != string(want) {
		fmt.Printf("request %q, want %q\n", buf[:r.N], want)
		os.Exit(1)
	}
}

// ctlConn is a child's end of "ctl", on which its parent tells it when.
func ctlConn() *sandboxd.Conn {
	fd, ok := sandboxd.Handle("ctl")
	if !ok {
		fmt.Println("no handle named ctl")
		os.Exit(1)
	}
	ctl, err := sandboxd.NewConn(fd)
	check("ctl", err)
	return ctl
}

func abandonChild() {
	ctl := ctlConn()
	before := openHandles()
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		_, _ = ctl.Read(make([]byte, 1))
		cancel()
	}()
	_, err := peer.Connect(ctx)
	fmt.Printf("cancelled while waiting: %v (context.Canceled %v)\n", err, errors.Is(err, context.Canceled))
	_, err = ctl.Write([]byte("r"))
	check("write ctl", err)
	_, err = peer.Connect(context.Background())
	fmt.Printf("next connection: %v\n", err)
	for _, n := range peer.Pending() {
		fmt.Printf("pending: %s %s, handle %v\n", n.Event, n.Name, n.HasFD)
		if n.HasFD {
			check("close", sandboxd.Close(n.FD))
		}
	}
	fmt.Printf("handles left open %d\n", openHandles()-before)
	ctx, cancel = context.WithTimeout(context.Background(), time.Millisecond)
	defer cancel()
	_, err = peer.Connect(ctx)
	fmt.Printf("past its deadline: context.DeadlineExceeded %v\n", errors.Is(err, context.DeadlineExceeded))
}

// lost runs the child and answers its first request only once it has
// given up waiting and filled its handle table, with a grant behind the
// late answer, both carrying a handle it cannot take; its second request
// is refused.
func lost(mod uint32) {
	answerLate(mod, "lost-child", func(mine *sandboxd.Conn) {
		// The child's table is full by now.
		sendDup(mine, notice("event", "rpc", "name", "rpc"), 1)
		sendDup(mine, notice("event", "grant", "name", "granted", "kind", "stdio", "cap", "c3"), 1)
	})
}

func lostChild() {
	ctl := ctlConn()
	sup, err := sandboxd.Supervisor()
	check("supervisor", err)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		_, _ = ctl.Read(make([]byte, 1))
		cancel()
	}()
	_, err = peer.Connect(ctx)
	fmt.Printf("cancelled while waiting: context.Canceled %v\n", errors.Is(err, context.Canceled))
	for {
		if _, err := sandboxd.Dup(0); err != nil {
			break // the table is full
		}
	}
	_, err = ctl.Write([]byte("f"))
	check("write ctl", err)
	n, err := sup.RecvNotice()
	var lost *sandboxd.HandleLostError
	fmt.Printf("notice: %s %s (cap %s), fd %v, handle lost %v; error %v\n", n.Event, n.Name, n.Cap, n.HasFD, n.HandleLost, errors.As(err, &lost) && lost.Notice == n)
	_, err = peer.Connect(context.Background())
	fmt.Printf("next connection: %v\n", err)
}
