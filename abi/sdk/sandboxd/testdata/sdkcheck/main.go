//go:build wasip1

// Command sdkcheck exercises the parts of the SDK the examples do not:
// datagram channels, truncation, spawning with raw argdata, exit codes,
// Exited, and the errors of refused calls. It expects a directory "bin"
// holding sdkcheck.wasm (itself), and prints one line per check.
//
//	sdkcheck            the checks
//	sdkcheck exit N     exits with status N
//	sdkcheck wait       exits 0 once its handle "ctl" says so
package main

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"syscall"

	"github.com/sandboxd/sandboxd/abi/argdata"
	"github.com/sandboxd/sandboxd/abi/sdk/sandboxd"
)

func main() {
	args := sandboxd.Args()
	if len(args) > 1 {
		child(args[1:])
		return
	}
	a, b, err := sandboxd.DatagramChannel()
	check("datagram channel", err)
	a.Send([]byte("one"))
	a.Send([]byte("two"))
	buf := make([]byte, 8)
	r1, _ := b.Recv(buf, nil)
	first := string(buf[:r1.N])
	r2, _ := b.Recv(buf, nil)
	fmt.Printf("datagrams keep boundaries: %q %q\n", first, buf[:r2.N])

	a.Send([]byte("a long message"))
	r, err := b.Recv(buf[:4], nil)
	fmt.Printf("short buffer: %q truncated=%v %v\n", buf[:r.N], r.DataTruncated, err)

	x, _ := sandboxd.Dup(1)
	y, _ := sandboxd.Dup(2)
	a.Send([]byte("h"), x, y)
	fds := make([]uint32, 1)
	r, err = b.Recv(buf, fds)
	fmt.Printf("two handles, room for one: got %d, truncated=%v %v\n", r.NFDs, r.FDsTruncated, err)
	d, err := sandboxd.Describe(fds[0])
	fmt.Printf("received handle: kind=%s edge=%s %v\n", d.Kind, d.Edge, err)

	err = sandboxd.Narrow(x, sandboxd.RightFDWrite|sandboxd.RightFDRead, 0)
	fmt.Printf("narrow to a right not held: not capable=%v\n", sandboxd.IsNotCapable(err))
	err = sandboxd.Narrow(x, sandboxd.RightFDWrite, 0)
	d, _ = sandboxd.Describe(x)
	fmt.Printf("narrow to fd_write: %v, now %s\n", err, d.Base)
	err = sandboxd.Revoke(x)
	fmt.Printf("revoke through a handle that is no revoker: %v\n", err == syscall.EINVAL)

	bin, ok := sandboxd.Handle("bin")
	if !ok {
		fmt.Println("no bin")
		os.Exit(1)
	}
	mod, err := sandboxd.OpenModule(bin, "sdkcheck.wasm")
	check("open module", err)
	p, err := sandboxd.Spawn(mod, sandboxd.SpawnConfig{Args: []string{"sdkcheck", "exit", "7"}})
	check("spawn", err)
	st, err := p.Wait()
	fmt.Printf("child exit: %s %v\n", st, err)

	mine, theirs, err := sandboxd.Channel()
	check("channel", err)
	p, err = sandboxd.Spawn(mod, sandboxd.SpawnConfig{Args: []string{"sdkcheck", "wait"}, Handles: map[string]uint32{"ctl": theirs.Fd()}})
	check("spawn", err)
	theirs.Close()
	_, done, err := p.Exited()
	fmt.Printf("blocked child exited: %v %v\n", done, err)
	mine.Write([]byte("go"))
	st, err = p.Wait()
	fmt.Printf("released child: %s %v\n", st, err)
	_, done, err = p.Exited()
	fmt.Printf("after wait, exited: %v %v\n", done, err)
	p.Close()

	// Raw argdata: the child's os.Args come from it.
	data := argdata.StringMap(map[string]argdata.Value{
		"args": argdata.Seq(argdata.String("sdkcheck"), argdata.String("exit"), argdata.String("5")),
	}).Encode()
	p, err = sandboxd.SpawnArgdata(mod, data, nil)
	check("spawn raw", err)
	st, err = p.Wait()
	fmt.Printf("child from raw argdata: %s %v\n", st, err)

	_, err = sandboxd.OpenModule(bin, "../escape.wasm")
	fmt.Printf("module outside bin: not capable=%v\n", sandboxd.IsNotCapable(err))

	// A handle that is not a socket is refused, and left open.
	_, cerr := sandboxd.NetConn("bin")
	_, lerr := sandboxd.NetListener("bin")
	_, derr := sandboxd.Describe(bin)
	fmt.Printf("NetConn and NetListener of a directory: %v %v, still open: %v\n",
		errors.Is(cerr, syscall.ENOTSOCK), errors.Is(lerr, syscall.ENOTSOCK), derr)
}

func child(args []string) {
	switch args[0] {
	case "exit":
		n, _ := strconv.Atoi(args[1])
		os.Exit(n)
	case "wait":
		fd, _ := sandboxd.Handle("ctl")
		c, err := sandboxd.NewConn(fd)
		if err != nil {
			os.Exit(3)
		}
		buf := make([]byte, 2)
		if _, err := c.Recv(buf, nil); err != nil {
			os.Exit(4)
		}
	}
}

func check(what string, err error) {
	if err != nil {
		fmt.Printf("%s: %v\n", what, err)
		os.Exit(1)
	}
}
