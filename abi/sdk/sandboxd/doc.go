// Package sandboxd is the Go guest SDK for sandboxd: it gives a program
// built with GOOS=wasip1 GOARCH=wasm the native calls that WASI preview1
// has no words for — its named handles, what each handle is and where it
// came from, revocable delegation, channels that carry handles, and
// spawning child guests with exactly the handles it chooses.
//
// A guest uses the standard library for everything else: files, directories
// and sockets it was granted are ordinary *os.File values, opened by path
// under their grant's name ("/data/x" for a grant named data) or taken from
// Handle and File. The two views share one handle table: an fd from this
// package is the fd os and net use, and the rights checked are the same.
//
// Startup data:
//
//	args := sandboxd.Args()            // the guest's arguments
//	fd, ok := sandboxd.Handle("data")  // a grant by name
//	f, err := sandboxd.File("data")    // the same, as an *os.File
//
// A named handle has one owner. File, NetConn, NetListener, DialFunc and
// Supervisor each take the name, and what they return closes the handle
// when it is closed. Another of them for a name already taken, even after
// its owner was closed, fails with ErrHandleTaken, rather than return a
// second value that would close the handle under the first (or wrap
// whatever handle later reuses its number). A second owner needs a
// handle of its own: Dup the fd from Handle, which only looks it up.
// The standard streams have theirs already: File of a handle at fd 0, 1
// or 2 returns os.Stdin, os.Stdout or os.Stderr.
//
// Delegation: give a child guest a read-only view of a directory that can
// be taken back.
//
//	ro, _ := sandboxd.Dup(dir)
//	_ = sandboxd.Narrow(ro, sandboxd.RightsReadOnlyDir, sandboxd.RightsReadOnlyFile)
//	fwd, rev, _ := sandboxd.Revocable(ro)
//	mod, _ := sandboxd.OpenModule(bin, "child.wasm")
//	p, _ := sandboxd.Spawn(mod, sandboxd.SpawnConfig{
//		Args:    []string{"child"},
//		Handles: map[string]uint32{"data": fwd},
//	})
//	…
//	_ = sandboxd.Revoke(rev) // the child's handle, and all it opened, now fail
//	st, _ := p.Wait()
//
// Handles granted or delegated while the guest runs arrive as notices on
// its supervisor channel; RecvNotice reads each whole, whatever its length,
// and says when the guest's full handle table made it lose the handle:
//
//	sup, _ := sandboxd.Supervisor()
//	n, err := sup.RecvNotice()                 // n.Event "grant", n.Name, n.FD
//	var lost *sandboxd.HandleLostError         // errors.As(err, &lost): lost.Notice had one
//
// Channels carry bytes and handles between guests:
//
//	a, b, _ := sandboxd.Channel()
//	_, _ = a.Send([]byte("here"), fwd)        // b's side receives a new fd
//	r, _ := b.Recv(buf, fds)                   // fds[:r.NFDs] are now open
//
// Errors are syscall.Errno values with WASI's numbering (which is
// CloudABI's). A missing right is syscall.ENOTCAPABLE; Go's wasip1 port
// does not count it as fs.ErrPermission, so test for it with
// IsNotCapable.
//
// Blocking: Conn.Recv, Conn.Send, Conn.RecvNotice, the net.Conn of
// NetConn and Accept on the net.Listener of NetListener (and so DialFunc)
// wait through Go's netpoller, so other goroutines keep running. Process.Wait waits in the
// host and holds up every goroutine of this guest until the child exits;
// use Process.Exited to check without waiting.
package sandboxd
