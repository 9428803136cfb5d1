//go:build wasip1

// Command docexamples runs the code examples of the package doc (doc.go)
// as written there, with what they leave out filled in around them, and
// prints what each did. It expects a directory "data" holding notes.txt
// and a directory "bin" holding docexamples.wasm (itself) as child.wasm.
// TestDocExamplesCompileAndRun checks that every example line of doc.go
// is here, in order.
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/sandboxd/sandboxd/abi/argdata"
	"github.com/sandboxd/sandboxd/abi/sdk/sandboxd"
)

func main() {
	switch sandboxd.Args()[0] {
	case "child":
		child()
		return
	case "supervised":
		supervised()
		return
	}
	dir, _ := sandboxd.Handle("data")
	bin, _ := sandboxd.Handle("bin")
	delegation(dir, bin)
	supervisor(bin)
	channels(dir)
	startup()
}

func startup() {
	args := sandboxd.Args()           // the guest's arguments
	fd, ok := sandboxd.Handle("data") // a grant by name
	f, err := sandboxd.File("data")   // the same, as an *os.File
	names, _ := f.Readdirnames(-1)
	fmt.Printf("startup: args %q, data at %d %v, File %v, entries %q\n", args, fd, ok, err, names)
	check(f.Close())
}

func delegation(dir, bin uint32) {
	ro, _ := sandboxd.Dup(dir)
	_ = sandboxd.Narrow(ro, sandboxd.RightsReadOnlyDir, sandboxd.RightsReadOnlyFile)
	fwd, rev, _ := sandboxd.Revocable(ro)
	mod, _ := sandboxd.OpenModule(bin, "child.wasm")
	p, _ := sandboxd.Spawn(mod, sandboxd.SpawnConfig{
		Args:    []string{"child"},
		Handles: map[string]uint32{"data": fwd},
	})
	// …: the child reads through its view and exits.
	if _, err := p.Wait(); err != nil {
		check(err)
	}
	_ = sandboxd.Revoke(rev) // the child's handle, and all it opened, now fail
	st, _ := p.Wait()
	_, ferr := sandboxd.Describe(fwd)
	_, derr := sandboxd.Describe(dir)
	fmt.Printf("delegation: child %s, forwarder revoked %v, own handle %v\n", st, sandboxd.IsNotCapable(ferr), derr)
}

// child is the delegation example's child.
func child() {
	dir, _ := sandboxd.Handle("data")
	f, err := sandboxd.OpenFileAt(dir, "notes.txt", false)
	check(err)
	b := make([]byte, 64)
	n, _ := f.Read(b)
	_, err = sandboxd.OpenFileAt(dir, "new.txt", true)
	fmt.Printf("child: read %q, create refused %v\n", b[:n], sandboxd.IsNotCapable(err))
}

// supervisor spawns this program with a supervisor channel of which it
// plays the daemon's end, and sends it a grant.
func supervisor(bin uint32) {
	mine, theirs, err := sandboxd.DatagramChannel()
	check(err)
	x, err := sandboxd.Dup(1)
	check(err)
	grant := argdata.StringMap(map[string]argdata.Value{"event": argdata.String("grant"),
		"name": argdata.String("logs"), "cap": argdata.String("c9"), "kind": argdata.String("stdio")}).Encode()
	_, err = mine.Send(grant, x)
	check(err)
	check(sandboxd.Close(x))
	mod, err := sandboxd.OpenModule(bin, "child.wasm")
	check(err)
	p, err := sandboxd.Spawn(mod, sandboxd.SpawnConfig{Args: []string{"supervised"}, Handles: map[string]uint32{"supervisor": theirs.Fd()}})
	check(err)
	st, err := p.Wait()
	check(err)
	fmt.Printf("supervisor: child %s\n", st)
}

func supervised() {
	sup, _ := sandboxd.Supervisor()
	n, err := sup.RecvNotice()         // n.Event "grant", n.Name, n.FD
	var lost *sandboxd.HandleLostError // errors.As(err, &lost): lost.Notice had one
	d, derr := sandboxd.Describe(n.FD)
	fmt.Printf("supervised: %s %s, fd %v (%s, %v), %v, lost %v\n", n.Event, n.Name, n.HasFD, d.Kind, derr, err, errors.As(err, &lost))
}

func channels(dir uint32) {
	fwd, _, err := sandboxd.Revocable(dir)
	check(err)
	buf, fds := make([]byte, 16), make([]uint32, 1)
	a, b, _ := sandboxd.Channel()
	_, _ = a.Send([]byte("here"), fwd) // b's side receives a new fd
	r, _ := b.Recv(buf, fds)           // fds[:r.NFDs] are now open
	d, err := sandboxd.Describe(fds[0])
	fmt.Printf("channels: %q with %d handle: %s %s %v\n", buf[:r.N], r.NFDs, d.Kind, d.Edge, err)
}

func check(err error) {
	if err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
}
