package abi

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/caps"
	"golang.org/x/sys/unix"
)

// sock_accept on listeners and dialers with nothing to take, against
// accept(2) and connect(2).

// acceptGuest is a guest with one handle, res, at fd 0 (with the rights a
// grant of kind gives it), and the guest memory of env.
func acceptGuest(t testing.TB, env *fuzzEnv, res caps.Resource, kind caps.Kind, nonblock bool) *sbxSock {
	t.Helper()
	k := caps.NewKernel(nil)
	h := &caps.Holder{ID: "accept"}
	tbl := caps.NewTable(k, h, 64)
	b, inh := caps.GrantRights(kind, false)
	c := k.Mint(h, res, b, inh, "l", "accept")
	if nonblock {
		c.SetFlags(caps.FlagNonblock)
	}
	fd, err := tbl.Insert(c)
	if err != nil {
		t.Fatal(err)
	}
	p := &sbxSock{own: fd, peer: -1}
	p.m = env.mod.Memory()
	p.g = env.rt.NewGuest(&Module{compiledModule: &compiledModule{}}, GuestConfig{ID: "accept", Table: tbl, Args: []string{"accept"}})
	p.g.ctx, p.g.cancel = context.WithCancelCause(context.Background())
	return p
}

// accept calls the native sock_accept, or WASI's with no flags.
func (p *sbxSock) accept(t testing.TB, wasi bool) caps.Errno {
	if wasi {
		return p.call(t, wasiSockAccept, uint64(p.own), 0, sbxOut)
	}
	return p.call(t, sockAccept, uint64(p.own), sbxOut)
}

// A listener with nothing pending: a non-blocking accept is EAGAIN, as
// accept(2) on a non-blocking socket is, and a blocking one waits for the
// next connection and takes it.
func TestSockAcceptWithNothingPending(t *testing.T) {
	env := newFuzzEnv(t)
	for _, wasi := range []bool{false, true} {
		nl, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		l, err := caps.NewListener(nl, "test")
		if err != nil {
			t.Fatal(err)
		}
		p := acceptGuest(t, env, l, caps.KindListener, true)
		if e := p.accept(t, wasi); e != caps.EAGAIN {
			t.Fatalf("wasi %v: non-blocking accept with nothing pending: errno %d, want EAGAIN", wasi, e)
		}
		c, _ := p.g.table.Get(p.own)
		c.SetFlags(0)
		waits, _ := p.g.Blocked()
		done := make(chan struct{})
		var e caps.Errno
		go func() {
			defer close(done)
			e = p.accept(t, wasi)
		}()
		if !awaitParked(t, p.g, waits, done) {
			t.Fatalf("wasi %v: blocking accept with nothing pending returned at once: errno %d", wasi, e)
		}
		client, err := net.Dial("tcp", nl.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		<-done
		if e != 0 || p.get32(sbxOut) == int(p.own) {
			t.Fatalf("wasi %v: blocking accept: errno %d, fd %d", wasi, e, p.get32(sbxOut))
		}
		client.Close()
		p.close()
	}
}

// A dialer whose target refuses: a blocking accept returns ECONNREFUSED,
// connect(2)'s error (docs/GRANTS.md); a non-blocking one is EAGAIN while
// the attempt runs, poll reports the dialer readable once it has ended,
// and the next accept returns the error. Each accept after tries again.
func TestSockAcceptOnADialerWhoseTargetRefuses(t *testing.T) {
	env := newFuzzEnv(t)
	nl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := nl.Addr().String()
	nl.Close() // nothing listens there now
	for _, wasi := range []bool{false, true} {
		d, err := caps.NewDialer("tcp", []string{addr}, time.Minute, "test")
		if err != nil {
			t.Fatal(err)
		}
		p := acceptGuest(t, env, d, caps.KindDialer, false)
		for i := range 2 {
			if e := p.accept(t, wasi); e != caps.ECONNREFUSED {
				t.Fatalf("wasi %v: blocking accept %d on a refused target: errno %d, want ECONNREFUSED", wasi, i, e)
			}
		}
		c, _ := p.g.table.Get(p.own)
		c.SetFlags(caps.FlagNonblock)
		if e := p.accept(t, wasi); e != caps.EAGAIN {
			t.Fatalf("wasi %v: non-blocking accept: errno %d, want EAGAIN while the attempt runs", wasi, e)
		}
		e, evs := pollSubsCall(t, p, wasi, 1, []pollTestSub{{ud: 9, typ: eventtypeFDRead, fd: p.own}})
		if e != 0 || len(evs) != 1 || evs[0].errno != 0 {
			t.Fatalf("wasi %v: poll on the dialer: errno %d, %+v", wasi, e, evs)
		}
		if e := p.accept(t, wasi); e != caps.ECONNREFUSED {
			t.Fatalf("wasi %v: accept once the attempt ended: errno %d, want ECONNREFUSED", wasi, e)
		}
		p.close()
	}
}

// sock_shutdown on a listener or a dialer is EINVAL, whatever the handle's
// rights: a difference docs/ABI.md keeps on purpose. Linux's shutdown(2)
// with SHUT_RD on a listening TCP socket stops it listening; a guest that
// is done with a listener closes its handle.
func TestSockShutdownOnAListenerOrDialer(t *testing.T) {
	env := newFuzzEnv(t)
	nl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l, err := caps.NewListener(nl, "test")
	if err != nil {
		t.Fatal(err)
	}
	d, err := caps.NewDialer("tcp", []string{nl.Addr().String()}, time.Minute, "test")
	if err != nil {
		t.Fatal(err)
	}
	for _, res := range []caps.Resource{l, d} {
		p := acceptGuest(t, env, res, caps.KindListener, true)
		for _, how := range []uint64{shutRD, shutWR, shutRD | shutWR} {
			// WASI's sock_shutdown is the native one (wasi.go).
			if e := p.call(t, sockShutdown, uint64(p.own), how); e != caps.EINVAL {
				t.Fatalf("%v: shutdown %d: errno %d, want EINVAL", res.Kind(), how, e)
			}
		}
		p.close()
	}
	lfd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(lfd)
	if err := unix.Bind(lfd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(lfd, 1); err != nil {
		t.Fatal(err)
	}
	if err := unix.Shutdown(lfd, unix.SHUT_RD); err != nil {
		t.Fatalf("Linux: shutdown of a listening socket: %v, want success", err)
	}
}
