//go:build wasip1

// Command handlecheck checks that the SDK closes every handle it receives
// but does not return to its caller. It expects a directory "bin" holding
// handlecheck.wasm (itself): it spawns itself, plays the daemon's side of
// the child's supervisor channel, and prints one line per check.
//
//	handlecheck             the checks
//	handlecheck supervisor  reads the notices its parent queued on "supervisor"
//	handlecheck names       takes its handles "s" and "d" (stream and datagram channel ends)
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"

	"github.com/sandboxd/sandboxd/abi/argdata"
	"github.com/sandboxd/sandboxd/abi/sdk/sandboxd"
	"github.com/sandboxd/sandboxd/abi/sdk/sandboxd/peer"
)

func main() {
	if args := sandboxd.Args(); len(args) > 1 {
		child(args[1])
		return
	}
	bin, ok := sandboxd.Handle("bin")
	if !ok {
		fmt.Println("no handle named bin")
		os.Exit(1)
	}
	mod, err := sandboxd.OpenModule(bin, "handlecheck.wasm")
	check("open module", err)
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
	spawn(mod, "supervisor", map[string]uint32{"supervisor": theirs.Fd()})
	theirs.Close()
}

// names runs a child with a stream and a datagram channel end.
func names(mod uint32) {
	_, s, err := sandboxd.Channel()
	check("channel", err)
	_, d, err := sandboxd.DatagramChannel()
	check("datagram channel", err)
	spawn(mod, "names", map[string]uint32{"s": s.Fd(), "d": d.Fd()})
}

func child(mode string) {
	switch mode {
	case "supervisor":
		supervisorChild()
	case "names":
		namesChild()
	}
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

// notice encodes a supervisor notice of the given key/value strings.
func notice(kv ...string) []byte {
	m := map[string]argdata.Value{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = argdata.String(kv[i+1])
	}
	return argdata.StringMap(m).Encode()
}

// sendDup sends data on c with a new handle on fd, and closes this
// guest's copy: the receiver then holds the only one.
func sendDup(c *sandboxd.Conn, data []byte, fd uint32) {
	x, err := sandboxd.Dup(fd)
	check("dup", err)
	_, err = c.Send(data, x)
	check("send", err)
	check("close", sandboxd.Close(x))
}

// spawn runs this module as a child in mode with the named handles, and
// waits for it.
func spawn(mod uint32, mode string, handles map[string]uint32) {
	p, err := sandboxd.Spawn(mod, sandboxd.SpawnConfig{Args: []string{"handlecheck", mode}, Handles: handles})
	check("spawn", err)
	st, err := p.Wait()
	check("wait", err)
	if st.Code != 0 || st.Signal != 0 {
		fmt.Printf("child %s: %s\n", mode, st)
		os.Exit(1)
	}
	check("close", p.Close())
}

// openHandles counts the handles open in this guest's table (it is far
// shorter than 256 slots here).
func openHandles() int {
	n := 0
	for fd := range uint32(256) {
		if _, err := sandboxd.Describe(fd); !errors.Is(err, syscall.EBADF) {
			n++
		}
	}
	return n
}

func check(what string, err error) {
	if err != nil {
		fmt.Printf("%s: %v\n", what, err)
		os.Exit(1)
	}
}
