//go:build wasip1

// Command delegate shows delegation and revocation between guests. It
// gives a child guest a read-only, revocable view of a directory over a
// channel, lets the child read through it, revokes it, and shows that the
// child's handle — and the file the child opened through it — no longer
// work, while its own handle still does.
//
// It needs two directory grants:
//
//   - data (read-write), holding a file notes.txt for the child to read;
//   - bin (read-only), holding the child, child.wasm, built from ./child.
//
// From this directory:
//
//	mkdir -p data bin && echo 'hello from data' > data/notes.txt
//	GOOS=wasip1 GOARCH=wasm go build -o bin/child.wasm ./child
//	GOOS=wasip1 GOARCH=wasm go build -o delegate.wasm .
//	sandboxd run --grant dir:./data=data --grant dir:./bin=bin:ro delegate.wasm
//
// It exits 0 when every step went as described, and 1, with a line on
// stderr saying what went wrong, when one did not: a grant or file is
// missing, the child could not use its view before the revocation, or
// could use it after.
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
		fail("handles", fmt.Errorf("want directory grants named data and bin (--grant dir:./data=data --grant dir:./bin=bin:ro), have %v", sandboxd.Handles()))
	}
	if _, err := os.Stat("/data/notes.txt"); err != nil {
		fail("data/notes.txt", fmt.Errorf("%v: the child reads it: create it (echo 'hello from data' > data/notes.txt)", err))
	}

	// A read-only copy of data, wrapped so that it can be taken back.
	fwd, rev := readOnlyRevocable(data)

	mine, theirs, err := sandboxd.Channel()
	if err != nil {
		fail("channel", err)
	}
	mod, err := sandboxd.OpenModule(bin, "child.wasm")
	if err != nil {
		fail("open bin/child.wasm", fmt.Errorf("%v: build the child into the bin grant (GOOS=wasip1 GOARCH=wasm go build -o bin/child.wasm ./child)", err))
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
	report(st)
}

// report prints how the child ended and what it left, and fails unless
// every step went as described.
func report(st sandboxd.ExitStatus) {
	fmt.Println("parent: child", st)
	_, err := os.Stat("/data/new.txt")
	created := err == nil
	fmt.Println("parent: child created new.txt:", created)
	b, err := os.ReadFile("/data/notes.txt")
	fmt.Printf("parent: still reads notes.txt: %q %v\n", b, err)
	switch {
	case st.Code != 0 || st.Signal != 0:
		fail("child", fmt.Errorf("%v: a step went otherwise than described (its lines above say which)", st))
	case created:
		fail("child", fmt.Errorf("it created new.txt through a read-only view"))
	case err != nil:
		fail("read notes.txt after the revocation", err)
	}
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
