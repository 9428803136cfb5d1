//go:build wasip1

// Command child is the child of examples/delegate. It receives a
// directory handle over the channel named "ctl", uses it, reports each
// step on the channel, and tries again after the parent revoked it. It
// exits 1 if a step did not go as the parent's comment describes: the
// view did not work before the revocation, or still worked after it.
package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"syscall"

	"github.com/sandboxd/sandboxd/abi/sdk/sandboxd"
)

func result(err error) string {
	switch {
	case err == nil:
		return "ok"
	case sandboxd.IsNotCapable(err):
		return "not capable"
	}
	return err.Error()
}

func main() {
	ctlFd, ok := sandboxd.Handle("ctl")
	if !ok {
		os.Exit(2)
	}
	ctl, err := sandboxd.NewConn(ctlFd)
	if err != nil {
		os.Exit(2)
	}
	say := func(format string, args ...any) { fmt.Fprintf(ctl, format+"\n", args...) }
	good := true
	// expect notes whether err is what the step should give: nil, or
	// refused for want of a right (not capable).
	expect := func(err error, capable bool) {
		if (err == nil) != capable || (err != nil && !sandboxd.IsNotCapable(err)) {
			good = false
		}
	}

	buf := make([]byte, 4)
	fds := make([]uint32, 1)
	r, err := ctl.Recv(buf, fds)
	if err != nil || r.NFDs != 1 {
		say("receive: %v (%d handles)", err, r.NFDs)
		os.Exit(1)
	}
	dir := fds[0]
	d, err := sandboxd.Describe(dir)
	say("received %s handle: edge=%s base=%s (%v)", d.Kind, d.Edge, d.Base, result(err))
	expect(err, true)

	fd, err := syscall.Openat(int(dir), "notes.txt", syscall.O_RDONLY, 0)
	var notes *os.File
	if err == nil {
		notes = os.NewFile(uintptr(fd), "notes.txt")
		b, err := io.ReadAll(notes)
		say("read notes.txt: %q (%s)", b, result(err))
		expect(err, true)
	} else {
		say("open notes.txt: %s", result(err))
		good = false
	}
	_, err = syscall.Openat(int(dir), "new.txt", syscall.O_WRONLY|syscall.O_CREAT, 0o644)
	say("create new.txt: %s", result(err))
	expect(err, false)
	say("ready")

	line, err := bufio.NewReader(ctl).ReadString('\n')
	if err != nil || line != "revoked\n" {
		say("waiting for the parent: %q %v", line, err)
		os.Exit(1)
	}
	if notes != nil {
		_, err = notes.ReadAt(make([]byte, 1), 0)
		say("read the open notes.txt again: %s", result(err))
		expect(err, false)
	}
	_, err = syscall.Openat(int(dir), "notes.txt", syscall.O_RDONLY, 0)
	say("open notes.txt again: %s", result(err))
	expect(err, false)
	_, err = sandboxd.Describe(dir)
	say("describe the handle: %s", result(err))
	expect(err, false)
	say("done")
	if !good {
		os.Exit(1)
	}
}
