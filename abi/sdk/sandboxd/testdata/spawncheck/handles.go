//go:build wasip1

package main

import (
	"context"
	"errors"
	"fmt"
	"syscall"

	"github.com/sandboxd/sandboxd/abi/sdk/sandboxd"
	"github.com/sandboxd/sandboxd/abi/sdk/sandboxd/peer"
)

// handles checks that the SDK closes every handle it receives but does
// not return to its caller, and that a named handle has one owner.
func handles(mod uint32) {
	supervise(mod)
	names(mod)
}

// supervise queues on a child's supervisor channel the notices that lead
// the SDK's error paths, each with a handle, and runs the child.
func supervise(mod uint32) {
	mine, theirs, err := sandboxd.DatagramChannel()
	check("datagram channel", err)
	// A notice that is not argdata.
	sendDup(mine, []byte{0xff}, 1)
	// A refusal of the connection (the daemon's carries no handle).
	sendDup(mine, notice("event", "error", "error", "no connection for you"), 1)
	// The connection, on a handle that cannot be made non-blocking.
	_, b, err := sandboxd.Channel()
	check("channel", err)
	check("narrow", sandboxd.Narrow(b.Fd(), sandboxd.RightFDRead|sandboxd.RightFDWrite|sandboxd.RightPollFDReadwrite|sandboxd.RightFileStatFGet, 0))
	sendDup(mine, notice("event", "rpc", "name", "rpc"), b.Fd())
	b.Close()
	p := spawn(mod, "supervisor", map[string]uint32{"supervisor": theirs.Fd()})
	theirs.Close()
	wait(p, "supervisor")
}

// names runs a child with a stream and a datagram channel end.
func names(mod uint32) {
	_, s, err := sandboxd.Channel()
	check("channel", err)
	_, d, err := sandboxd.DatagramChannel()
	check("datagram channel", err)
	wait(spawn(mod, "names", map[string]uint32{"s": s.Fd(), "d": d.Fd()}), "names")
}

func supervisorChild() {
	sup, err := sandboxd.Supervisor()
	check("supervisor", err)
	before := openHandles()
	n, err := sup.RecvNotice()
	fmt.Printf("notice that is not argdata: error %v, handle returned %v, handles left open %d\n",
		err != nil, n.HasFD, openHandles()-before)
	_, err = peer.Connect(context.Background())
	fmt.Printf("refused connection: %v, handles left open %d\n", err, openHandles()-before)
	_, err = peer.Connect(context.Background())
	fmt.Printf("connection that cannot be set up: not capable %v, handles left open %d\n",
		sandboxd.IsNotCapable(err), openHandles()-before)
	_, err = sandboxd.NetConn("supervisor")
	fmt.Printf("NetConn of the channel Supervisor owns: %v\n", err)
}

func namesChild() {
	d, _ := sandboxd.Handle("d")
	_, err := sandboxd.NetListener("d")
	_, derr := sandboxd.Describe(d)
	fmt.Printf("NetListener of a datagram channel: %v, still open: %v\n", errors.Is(err, syscall.EOPNOTSUPP), derr)
	_, err = sandboxd.DialFunc("d")
	_, derr = sandboxd.Describe(d)
	fmt.Printf("DialFunc of a datagram channel: %v, still open: %v\n", errors.Is(err, syscall.EOPNOTSUPP), derr)

	// One owner per named handle: closing a second would close the
	// first's handle under it.
	c, err := sandboxd.NetConn("s")
	check("NetConn", err)
	_, err = sandboxd.NetConn("s")
	fmt.Printf("second NetConn: %v\n", err)
	_, lerr := sandboxd.NetListener("s")
	_, derr = sandboxd.DialFunc("s")
	_, ferr := sandboxd.File("s")
	fmt.Printf("NetListener, DialFunc and File of it refused: %v %v %v\n",
		errors.Is(lerr, sandboxd.ErrHandleTaken), errors.Is(derr, sandboxd.ErrHandleTaken), errors.Is(ferr, sandboxd.ErrHandleTaken))
	_, err = c.Write([]byte("x"))
	fmt.Printf("the first still writes: %v\n", err)
	check("close", c.Close())
	_, err = sandboxd.NetConn("s")
	fmt.Printf("NetConn after the first is closed refused: %v\n", errors.Is(err, sandboxd.ErrHandleTaken))
	// A call refused for the kind of handle does not own it.
	_, err = sandboxd.File("d")
	fmt.Printf("File after NetListener refused it: %v\n", err)
	_, err = sandboxd.File("d")
	fmt.Printf("second File refused: %v\n", errors.Is(err, sandboxd.ErrHandleTaken))
}
