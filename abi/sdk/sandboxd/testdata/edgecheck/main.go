//go:build wasip1

// Command edgecheck uses the SDK the way a guest's author would, at the
// edges its documentation speaks of, and prints one line per check. It
// expects a directory "bin" holding edgecheck.wasm (itself) for spawn.
//
//	edgecheck startup    Args, Env and Handles are the caller's to change
//	edgecheck channels   Send and Recv with handles: short fds, no bytes, a closed peer
//	edgecheck spawn      Spawn's refusals, Wait twice, Close of a running child
//	edgecheck module     OpenModule beneath a directory that gives little
//	edgecheck stdio      File of the standard streams
//
// The children spawn starts run in the modes exit, count and block.
package main

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"syscall"

	"github.com/sandboxd/sandboxd/abi/sdk/sandboxd"
)

func main() {
	args := sandboxd.Args()
	if len(args) < 2 {
		fmt.Println("usage: edgecheck startup|channels|spawn")
		os.Exit(2)
	}
	modes := map[string]func([]string){
		"startup":  startup,
		"channels": channels,
		"spawn":    spawn,
		"module":   module,
		"stdio":    stdio,
		"exit":     func(a []string) { n, _ := strconv.Atoi(a[0]); os.Exit(n) },
		"count":    func([]string) { os.Exit(len(sandboxd.Handles())) },
		"block":    block,
	}
	run, ok := modes[args[1]]
	if !ok {
		fmt.Println("no mode", args[1])
		os.Exit(2)
	}
	run(args[2:])
}

// startup changes what Handles, Env and Args returned, as a guest that
// builds a child's handles from its own would, and looks again.
func startup([]string) {
	h := sandboxd.Handles()
	h["extra"] = 9
	delete(h, "bin")
	e := sandboxd.Env()
	e["K"] = "changed"
	sandboxd.Args()[0] = "changed"
	_, extra := sandboxd.Handle("extra")
	_, bin := sandboxd.Handle("bin")
	st, _ := sandboxd.StartupData()
	st.Handles["extra2"] = 10
	_, extra2 := sandboxd.Handle("extra2")
	fmt.Printf("after changing the maps: Handle(extra) %v, Handle(extra2) %v, Handle(bin) %v, env %v, args %q\n",
		extra, extra2, bin, sandboxd.Env(), sandboxd.Args())
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

// dups returns n new handles on this guest's stdout.
func dups(n int) []uint32 {
	fds := make([]uint32, n)
	for i := range fds {
		var err error
		fds[i], err = sandboxd.Dup(1)
		check("dup", err)
	}
	return fds
}

// sendDups sends data on c with n new handles, and closes this guest's
// copies: what stays open afterwards is what the receiver holds.
func sendDups(c *sandboxd.Conn, data []byte, n int) error {
	fds := dups(n)
	_, err := c.Send(data, fds...)
	for _, fd := range fds {
		check("close", sandboxd.Close(fd))
	}
	return err
}

func channels([]string) {
	for _, kind := range []string{"stream", "datagram"} {
		mk := sandboxd.Channel
		if kind == "datagram" {
			mk = sandboxd.DatagramChannel
		}
		a, b, err := mk()
		check("channel", err)
		channelEdges(kind, a, b)
	}
}

func channelEdges(kind string, a, b *sandboxd.Conn) {
	buf, fds := make([]byte, 8), make([]uint32, 1)
	before := openHandles()
	check("send", sendDups(a, []byte("h"), 3))
	r, err := b.Recv(buf, fds)
	fmt.Printf("%s: three handles, room for one: %+v %v, open after %d, after closing it %d\n",
		kind, r, err, openHandles()-before, openHandles()-before-boolInt(sandboxd.Close(fds[0]) == nil))
	check("send", sendDups(a, nil, 1))
	r, err = b.Recv(buf, fds)
	fmt.Printf("%s: handle with no bytes: %+v %v\n", kind, r, err)
	check("close", sandboxd.Close(fds[0]))
	check("send", sendDups(a, nil, 1))
	_, err = a.Send([]byte("z"))
	check("send", err)
	r, err = b.Recv(buf, nil)
	fmt.Printf("%s: handle with no bytes, no room: %+v %v %q, open after %d\n", kind, r, err, buf[:r.N], openHandles()-before)
	if kind == "datagram" {
		r, err = b.Recv(buf, nil)
		fmt.Printf("%s: then %+v %v %q\n", kind, r, err, buf[:r.N])
		_, err = a.Send(nil)
		check("send", err)
		r, err = b.Recv(buf, fds)
		fmt.Printf("%s: a datagram of 0 bytes: %+v %v\n", kind, r, err)
	}
	_, err = a.Send([]byte("x"), 77)
	fmt.Printf("%s: send of a handle not open: %v\n", kind, errors.Is(err, syscall.EBADF))
	check("close", a.Close())
	r, err = b.Recv(buf, fds)
	fmt.Printf("%s: peer closed: %+v %v\n", kind, r, err)
	_, err = b.Send([]byte("x"))
	fmt.Printf("%s: send to a closed peer: %v\n", kind, errors.Is(err, syscall.EPIPE))
	check("close", b.Close())
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func spawn([]string) {
	bin, _ := sandboxd.Handle("bin")
	mod, err := sandboxd.OpenModule(bin, "edgecheck.wasm")
	check("open module", err)
	_, err = sandboxd.Spawn(200, sandboxd.SpawnConfig{})
	var errno syscall.Errno
	fmt.Printf("module not open: %v (syscall.Errno %v)\n", err, errors.As(err, &errno))
	_, err = sandboxd.Spawn(1, sandboxd.SpawnConfig{})
	fmt.Printf("stdout as module: not capable %v\n", sandboxd.IsNotCapable(err))

	p, err := sandboxd.Spawn(mod, sandboxd.SpawnConfig{Args: []string{"edgecheck", "exit", "3"},
		Handles: map[string]uint32{"a": 1, "b": 1, "stdout": 2}})
	check("spawn", err)
	st, err := p.Wait()
	st2, err2 := p.Wait()
	st3, done, err3 := p.Exited()
	fmt.Printf("one handle under two names: %s %v; again %s %v; exited %s %v %v\n", st, err, st2, err2, st3, done, err3)
	check("close", p.Close())
	_, err = p.Wait()
	fmt.Printf("wait after close: %v\n", errors.Is(err, syscall.EBADF))

	many := map[string]uint32{}
	for i, fd := range dups(100) {
		many["h"+strconv.Itoa(i)] = fd
	}
	p, err = sandboxd.Spawn(mod, sandboxd.SpawnConfig{Args: []string{"edgecheck", "count"}, Handles: many})
	check("spawn", err)
	st, err = p.Wait()
	fmt.Printf("100 named handles: the child has %d %v\n", st.Code, err)

	for _, n := range []int{1021, 1022} {
		h := map[string]uint32{}
		for i := range n {
			h["h"+strconv.Itoa(i)] = 1
		}
		p, err = sandboxd.Spawn(mod, sandboxd.SpawnConfig{Args: []string{"edgecheck", "count"}, Handles: h})
		if err != nil {
			fmt.Printf("%d names for one handle: %v (E2BIG %v)\n", n, err, errors.Is(err, syscall.E2BIG))
			continue
		}
		st, err = p.Wait()
		fmt.Printf("%d names for one handle: the child has %d %v\n", n, st.Code, err)
	}

	a, b, err := sandboxd.Channel()
	check("channel", err)
	p, err = sandboxd.Spawn(mod, sandboxd.SpawnConfig{Args: []string{"edgecheck", "block"}, Handles: map[string]uint32{"ctl": b.Fd()}})
	check("spawn", err)
	check("close", b.Close())
	fmt.Printf("close of a running child: %v\n", p.Close())
	r, err := a.Recv(make([]byte, 4), nil)
	fmt.Printf("its channel end went with it: %+v %v\n", r, err)

	p, err = sandboxd.SpawnArgdata(mod, nil, nil)
	check("spawn", err)
	st, err = p.Wait()
	fmt.Printf("null argdata, no handles: %s %v\n", st, err)
}

// module opens this program with OpenModule beneath copies of "bin"
// whose inheriting rights are the rights OpenModule's doc names, and
// proc_exec alone, and spawns it from each.
func module([]string) {
	bin, _ := sandboxd.Handle("bin")
	d, err := sandboxd.Describe(bin)
	check("describe", err)
	for _, inh := range []sandboxd.Rights{
		sandboxd.RightProcExec | sandboxd.RightFDRead | sandboxd.RightFileStatFGet,
		sandboxd.RightProcExec,
		sandboxd.RightFDRead | sandboxd.RightFileStatFGet,
	} {
		dir, err := sandboxd.Dup(bin)
		check("dup", err)
		check("narrow", sandboxd.Narrow(dir, d.Base, inh))
		mod, err := sandboxd.OpenModule(dir, "edgecheck.wasm")
		if err != nil {
			fmt.Printf("beneath a directory that gives %s: %v (not capable %v)\n", inh, err, sandboxd.IsNotCapable(err))
			continue
		}
		md, err := sandboxd.Describe(mod)
		check("describe", err)
		p, err := sandboxd.Spawn(mod, sandboxd.SpawnConfig{Args: []string{"edgecheck", "exit", "4"}})
		check("spawn", err)
		st, err := p.Wait()
		fmt.Printf("beneath a directory that gives %s: module %s, child %s %v\n", inh, md.Base, st, err)
	}
}

// stdio takes the standard streams with File, as a guest that looks
// every handle up by name would, and drops stdout's to the collector.
func stdio([]string) {
	in, ierr := sandboxd.File("stdin")
	errf, eerr := sandboxd.File("stderr")
	fmt.Printf("File(stdin) is os.Stdin %v %v, File(stderr) is os.Stderr %v %v\n", in == os.Stdin, ierr, errf == os.Stderr, eerr)
	func() {
		f, err := sandboxd.File("stdout")
		check("File", err)
		fmt.Fprintf(f, "File(stdout) is os.Stdout %v\n", f == os.Stdout)
	}()
	for range 3 {
		runtime.GC()
		runtime.Gosched()
	}
	_, err := sandboxd.Describe(1)
	fmt.Printf("after it was dropped, stdout is open: %v\n", err)
	_, err = sandboxd.File("stdout")
	fmt.Printf("second File(stdout): %v\n", errors.Is(err, sandboxd.ErrHandleTaken))
}

// block waits until its handle "ctl" says something, or closes.
func block([]string) {
	fd, _ := sandboxd.Handle("ctl")
	c, err := sandboxd.NewConn(fd)
	check("conn", err)
	_, err = c.Recv(make([]byte, 2), nil)
	check("recv", err)
}

func check(what string, err error) {
	if err != nil {
		fmt.Printf("%s: %v\n", what, err)
		os.Exit(1)
	}
}
