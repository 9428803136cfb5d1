//go:build wasip1

// Command delegate shows delegation and revocation between guests. It
// holds a directory "data" (read-write) and a directory "bin" with
// child.wasm. It gives a child guest a read-only, revocable view of data
// over a channel, lets the child read through it, revokes it, and shows
// that the child's handle — and the file the child opened through it —
// no longer work, while its own handle still does.
//
//	sandboxd run --grant dir:./data=data --grant dir:./bin=bin:ro delegate.wasm
package main

import (
	"bufio"
	"fmt"
	"os"
	"strings"

	"github.com/sandboxd/sandboxd/abi/sdk/sandboxd"
)

func fail(what string, err error) {
	fmt.Fprintf(os.Stderr, "delegate: %s: %v\n", what, err)
	os.Exit(1)
}

func main() {
	data, ok1 := sandboxd.Handle("data")
	bin, ok2 := sandboxd.Handle("bin")
	if !ok1 || !ok2 {
		fail("handles", fmt.Errorf("want grants named data and bin, have %v", sandboxd.Handles()))
	}

	// A read-only copy of data, wrapped so that it can be taken back.
	fwd, rev := readOnlyRevocable(data)

	mine, theirs, err := sandboxd.Channel()
	if err != nil {
		fail("channel", err)
	}
	mod, err := sandboxd.OpenModule(bin, "child.wasm")
	if err != nil {
		fail("open child", err)
	}
	p, err := sandboxd.Spawn(mod, sandboxd.SpawnConfig{
		Args:    []string{"child"},
		Handles: map[string]uint32{"ctl": theirs.Fd()},
	})
	if err != nil {
		fail("spawn", err)
	}
	theirs.Close()
	sandboxd.Close(mod)

	// The directory travels over the channel; the child gets its own
	// handle, derived from fwd, so this one can be closed.
	if _, err := mine.Send([]byte("dir\n"), fwd); err != nil {
		fail("send", err)
	}
	sandboxd.Close(fwd)

	lines := bufio.NewReader(mine)
	relay := func(until string) {
		for {
			line, err := lines.ReadString('\n')
			if err != nil {
				fail("read from child", err)
			}
			line = strings.TrimSuffix(line, "\n")
			if line == until {
				return
			}
			fmt.Println("child:", line)
		}
	}
	relay("ready")

	if err := sandboxd.Revoke(rev); err != nil {
		fail("revoke", err)
	}
	fmt.Println("parent: revoked the child's view of data")
	if _, err := mine.Write([]byte("revoked\n")); err != nil {
		fail("write", err)
	}
	relay("done")

	st, err := p.Wait()
	if err != nil {
		fail("wait", err)
	}
	fmt.Println("parent: child", st)
	_, err = os.Stat("/data/new.txt")
	fmt.Println("parent: child created new.txt:", err == nil)
	b, err := os.ReadFile("/data/notes.txt")
	fmt.Printf("parent: still reads notes.txt: %q %v\n", b, err)
}

// readOnlyRevocable returns a read-only copy of dir wrapped in a revocable
// forwarder, and the revoker that takes it back.
func readOnlyRevocable(dir uint32) (fwd, rev uint32) {
	ro, err := sandboxd.Dup(dir)
	if err != nil {
		fail("dup", err)
	}
	if err := sandboxd.Narrow(ro, sandboxd.RightsReadOnlyDir, sandboxd.RightsReadOnlyFile); err != nil {
		fail("narrow", err)
	}
	fwd, rev, err = sandboxd.Revocable(ro)
	if err != nil {
		fail("revocable", err)
	}
	sandboxd.Close(ro)
	return fwd, rev
}
