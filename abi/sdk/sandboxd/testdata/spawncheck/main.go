//go:build wasip1

// Command spawncheck checks what the SDK makes of the notices and handles
// it is given. It expects a directory "bin" holding spawncheck.wasm
// (itself): it spawns itself, plays the daemon's side of the child's
// supervisor channel, and the child prints one line per check.
//
//	spawncheck cut            a notice longer than 4 KiB
//	spawncheck abandon        an answer that comes after the wait for it ended
//	spawncheck lost           notices whose handles the receiver cannot take
//	spawncheck handles        handles the SDK receives but does not return, and
//	                          named handles with one owner
//
// The children it spawns run in the modes cut-child, abandon-child,
// lost-child (notices.go), supervisor and names (handles.go).
package main

import (
	"errors"
	"fmt"
	"os"
	"syscall"

	"github.com/sandboxd/sandboxd/abi/argdata"
	"github.com/sandboxd/sandboxd/abi/sdk/sandboxd"
)

func main() {
	args := sandboxd.Args()
	if len(args) != 2 {
		fmt.Println("usage: spawncheck cut|abandon|lost|handles")
		os.Exit(2)
	}
	modes := map[string]func(){
		"cut":           func() { cut(module()) },
		"abandon":       func() { abandon(module()) },
		"lost":          func() { lost(module()) },
		"handles":       func() { handles(module()) },
		"cut-child":     cutChild,
		"abandon-child": abandonChild,
		"lost-child":    lostChild,
		"supervisor":    supervisorChild,
		"names":         namesChild,
	}
	run, ok := modes[args[1]]
	if !ok {
		fmt.Println("no mode", args[1])
		os.Exit(2)
	}
	run()
}

// module opens this program, bin/spawncheck.wasm, to spawn it.
func module() uint32 {
	bin, ok := sandboxd.Handle("bin")
	if !ok {
		fmt.Println("no handle named bin")
		os.Exit(1)
	}
	mod, err := sandboxd.OpenModule(bin, "spawncheck.wasm")
	check("open module", err)
	return mod
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

// spawn starts this module as a child in mode with the named handles.
func spawn(mod uint32, mode string, handles map[string]uint32) *sandboxd.Process {
	p, err := sandboxd.Spawn(mod, sandboxd.SpawnConfig{Args: []string{"spawncheck", mode}, Handles: handles})
	check("spawn", err)
	return p
}

// wait waits for the child p in mode, which must exit 0.
func wait(p *sandboxd.Process, mode string) {
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
