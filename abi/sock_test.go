package abi_test

import (
	"bytes"
	"context"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/sandboxd/sandboxd/abi/abitest"
	"github.com/sandboxd/sandboxd/caps"
)

const sockGuest = "abi/testdata/guests/deleg/sock.c"

// Handles sent with messages: truncation when ri_fds is short, PEEK,
// datagram truncation, refusal of closed and revoked handles, rights that
// stay narrowed, handles arriving with their message's first byte on a
// stream, shutdown and hang-up, and bad arguments.
func TestSockSendRecvPassHandlesWithCloudABISemantics(t *testing.T) {
	h, log := observedHarness(t)
	st := h.runMode(t, abitest.C(t, sockGuest), h.table("s"), "fdpass")
	if st.Err() != nil || st.Code != 0 {
		t.Fatalf("status %+v\n%s", st, h.stdout.String())
	}
	expectStdout(t, h, `truncated: ok three fds 1 flags 1 new fd bytes
peek: ok peek fds 0
then read: ok peek fds 1
data truncated: ok long len 4 flags 8
send closed fd: EBADF
send revoked: ENOTCAPABLE
nothing was sent: EAGAIN
narrowed: rights kept write ENOTCAPABLE read obj
stream: ok ab fds 0
stream: ok cd fds 1
shutdown how 0: EINVAL
shutdown a byte object: ENOTSOCK
shutdown: ok
after peer SHUT_WR: ok len 0
send after SHUT_WR: EPIPE
after peer close: ok len 0
send to closed peer: EPIPE
send flags: EINVAL
recv flags: EINVAL
send on a byte object: ENOTSOCK
recv_out out of memory: EFAULT
accept on a channel: EINVAL
`)
	// Every handle that travelled was derived for delegation with no
	// holder, then adopted by the receiver; the two that did not fit were
	// closed without ever being adopted.
	derived, adopted := 0, 0
	for _, e := range log.all(caps.EventDerive) {
		if e.Cap.Edge == caps.EdgeDelegate {
			derived++
			if e.Cap.Holder != "" {
				t.Fatalf("in-flight capability derived with holder %q", e.Cap.Holder)
			}
		}
	}
	for _, e := range log.all(caps.EventAdopt) {
		if e.Cap.Holder != "s" {
			t.Fatalf("adopted by %q", e.Cap.Holder)
		}
		adopted++
	}
	if derived != 6 || adopted != 4 {
		t.Fatalf("%d delegated, %d adopted; want 6 and 4", derived, adopted)
	}
}

// A guest serves one connection taken from a real loopback listener: the
// connection is a child capability of the listener's, with rights within
// its inheriting rights, and carries bytes both ways.
func TestSockAcceptOnLoopbackListener(t *testing.T) {
	h, log := observedHarness(t)
	tbl := h.table("srv")
	addr, lc := h.grantListener(t, tbl)
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	g := h.startMode(t, ctx, abitest.C(t, sockGuest), tbl, "server")
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte("hello sandbox\n")); err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	reply, err := io.ReadAll(conn) // until the guest's SHUT_WR
	if err != nil || string(reply) != "HELLO SANDBOX\n" {
		t.Fatalf("reply %q, %v", reply, err)
	}
	if st := g.Wait(); st.Err() != nil || st.Code != 0 {
		t.Fatalf("status %+v", st)
	}
	expectStdout(t, h, `served: accept ok kind stream recv ok send ok 14 shutdown ok fd passing ENOTSUP
non-blocking accept: EAGAIN
`)
	_, inh := lc.Rights()
	var accepted []caps.Info
	for _, e := range log.all(caps.EventDerive) {
		if e.Cap.Edge == caps.EdgeAccept {
			accepted = append(accepted, e.Cap)
		}
	}
	if len(accepted) != 1 {
		t.Fatalf("%d accepted capabilities, want 1", len(accepted))
	}
	a := accepted[0]
	if a.Parent != lc.ID() || a.Kind != caps.KindSocket || a.Holder != "srv" || !a.Base.Subset(inh) || !a.Inheriting.Subset(inh) {
		t.Fatalf("accepted capability %+v; listener %s inheriting %v", a, lc.ID(), inh)
	}
}

// A guest blocked in sock_recv gets ENOTCAPABLE when its handle is
// revoked, and Revoke returns only after the call let go.
func TestBlockedSockRecvEndsWithENOTCAPABLEOnRevoke(t *testing.T) {
	h := newHarness(t)
	tbl := h.table("r")
	c, ours := h.channelEnd(t, tbl, false)
	g := h.startMode(t, context.Background(), abitest.C(t, sockGuest), tbl, "recv-block")
	awaitMessage(t, ours, "waiting")
	awaitBlocked(t, g, 0)
	done := make(chan struct{})
	go func() {
		h.k.Revoke(c, "test")
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(hangGuard):
		t.Fatalf("Revoke still waiting %v later: the blocked recv never let go", hangGuard)
	}
	if st := g.Wait(); st.Err() != nil || st.Code != 0 {
		t.Fatalf("status %+v", st)
	}
	expectStdout(t, h, "recv returned: ENOTCAPABLE\nsend on the revoked handle: ENOTCAPABLE\n")
}

// WAITALL on a stream keeps receiving until the buffer is full.
func TestSockRecvWaitallGathersStream(t *testing.T) {
	h := newHarness(t)
	tbl := h.table("w")
	_, ours := h.channelEnd(t, tbl, false)
	g := h.startMode(t, context.Background(), abitest.C(t, sockGuest), tbl, "waitall")
	awaitMessage(t, ours, "waiting")
	n := awaitBlocked(t, g, 0)
	ours.Write([]byte("12"))
	awaitBlocked(t, g, n) // took "12", waits for the rest
	ours.Write([]byte("345"))
	if st := g.Wait(); st.Err() != nil || st.Code != 0 {
		t.Fatalf("status %+v", st)
	}
	expectStdout(t, h, "waitall: ok 12345\n")
}

// A WAITALL that receives handles returns with them at once, with the
// bytes of their message, rather than keep them while it waits for the
// rest of its data (docs/ABI.md, receiving handles): the handles are the
// guest's when the call returns, and closed with its table when it ends,
// so nothing stays in flight. (It used to keep waiting, holding them.)
func TestWaitallEndsWithTheMessageThatBringsHandles(t *testing.T) {
	h := newHarness(t)
	tbl := h.table("w")
	_, ours := h.channelEnd(t, tbl, false)
	g := h.startMode(t, context.Background(), abitest.C(t, sockGuest), tbl, "waitall")
	awaitMessage(t, ours, "waiting")
	awaitBlocked(t, g, 0)
	obj := h.k.Mint(&caps.Holder{ID: "test"}, caps.NewByteObject(), caps.RightsByteObjectBase, 0, "obj", "test")
	x, err := h.k.Derive(obj, caps.Derivation{Edge: caps.EdgeDelegate, Base: caps.RightFDRead})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ours.Send([][]byte{[]byte("12")}, []*caps.Cap{x}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-g.Done():
	case <-time.After(hangGuard):
		g.Kill("test over")
		t.Fatalf("the WAITALL still waits %v after handles came", hangGuard)
	}
	if st := g.Wait(); st.Err() != nil || st.Code != 0 {
		t.Fatalf("status %+v", st)
	}
	if got := h.stdout.String(); !strings.HasPrefix(got, "waitall: ok 12") {
		t.Fatalf("stdout %q, want the WAITALL to return 12 with the handle", got)
	}
	if in := x.Info(); in.Holder != "w" || !in.Closed {
		t.Fatalf("the handle sent: %+v; want adopted by the guest and closed with its table", in)
	}
	h.k.Close(obj)
	if s := h.k.Snapshot(); len(s) != 0 {
		t.Fatalf("%d capabilities left in the graph", len(s))
	}
}

// sock_accept on a dialer opens a connection to its one target: the same
// native server code that takes a connection from a listener serves one it
// dialed, and the connection is a child capability of the dialer's.
func TestSockAcceptOnDialerConnectsToItsTarget(t *testing.T) {
	h, log := observedHarness(t)
	tbl := h.table("cli")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	d, err := caps.NewDialer("tcp", []string{l.Addr().String()}, hangGuard, "test")
	if err != nil {
		t.Fatal(err)
	}
	b, i := caps.GrantRights(caps.KindDialer, false)
	dc := h.k.Mint(tbl.Holder(), d, b, i, "db", "test grant")
	if _, err := tbl.Insert(dc); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	g := h.startMode(t, ctx, abitest.C(t, sockGuest), tbl, "server")
	conn, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte("hello target\n")); err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(hangGuard))
	reply, err := io.ReadAll(conn) // until the guest's SHUT_WR
	if err != nil || string(reply) != "HELLO TARGET\n" {
		t.Fatalf("reply %q, %v", reply, err)
	}
	if st := g.Wait(); st.Err() != nil || st.Code != 0 {
		t.Fatalf("status %+v", st)
	}
	// The non-blocking accept starts a second attempt and returns EAGAIN.
	expectStdout(t, h, `served: accept ok kind stream recv ok send ok 13 shutdown ok fd passing ENOTSUP
non-blocking accept: EAGAIN
`)
	var accepted []caps.Info
	for _, e := range log.all(caps.EventDerive) {
		if e.Cap.Edge == caps.EdgeAccept {
			accepted = append(accepted, e.Cap)
		}
	}
	if len(accepted) != 1 || accepted[0].Parent != dc.ID() || accepted[0].Kind != caps.KindSocket {
		t.Fatalf("accepted capabilities %+v; want one socket, a child of the dialer %s", accepted, dc.ID())
	}
}

// Handles sent and not yet received count against the sender's
// GuestConfig.InFlight until they are received or dropped, at any depth of
// nesting: a chain of channel ends, each queued in the next, cannot grow
// past it while the guest holds two handles.
func TestHandlesInFlightAreBounded(t *testing.T) {
	h := newHarness(t)
	h.inflight = caps.NewInFlightLimit(8)
	var logs bytes.Buffer
	h.logger = hclog.New(&hclog.LoggerOptions{Output: &logs, Level: hclog.Warn})
	var copies atomic.Int32 // copies made to travel on a channel
	h.k = caps.NewKernel(func(e caps.Event) {
		if e.Type == caps.EventDerive && strings.HasPrefix(e.Cap.Origin, "sent on ") {
			copies.Add(1)
		}
	})
	st := h.runMode(t, abitest.C(t, sockGuest), h.table("s"), "inflight")
	if st.Err() != nil || st.Code != 0 {
		t.Fatalf("status %+v\n%s", st, h.stdout.String())
	}
	expectStdout(t, h, `queued: 8, then ENOBUFS
received one: ok fds 1
send one more: ok
and another: ENOBUFS
chain: 9 ends, then ENOBUFS
after the chain was dropped: ok
`)
	// 8 queued, one more, 8 links of the chain and the last: a refused
	// send makes no copy (none for the audit log to record and drop).
	if n := copies.Load(); n != 18 {
		t.Fatalf("%d copies made for sending, want 18: one for each handle sent, none for a refused send", n)
	}
	// The operator is told once, whatever the number of refusals.
	if n := strings.Count(logs.String(), "sock_send failed with ENOBUFS"); n != 1 {
		t.Fatalf("%d warnings about refused sends, want 1:\n%s", n, logs.String())
	}
	// The last one sent was queued in a channel the guest's exit closed.
	if n := h.inflight.InFlight(); n != 0 {
		t.Fatalf("%d handles still charged as in flight after the guest ended; want 0", n)
	}
}

// sendFDsWAT sends "x" with two handles, fd 3 twice, on fd 3, and exits
// with sock_send's errno.
const sendFDsWAT = `(module
  (import "sandboxd" "sock_send" (func $send (param i32 i32 i32) (result i32)))
  (import "sandboxd" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 200) "x")
  (func (export "_start")
    (i32.store (i32.const 100) (i32.const 200))
    (i32.store (i32.const 104) (i32.const 1))
    (i32.store (i32.const 300) (i32.const 3))
    (i32.store (i32.const 304) (i32.const 3))
    (i32.store (i32.const 0) (i32.const 100))
    (i32.store (i32.const 4) (i32.const 1))
    (i32.store (i32.const 8) (i32.const 300))
    (i32.store (i32.const 12) (i32.const 2))
    (call $exit (call $send (i32.const 3) (i32.const 0) (i32.const 64)))))`

// Handles attached to a send on a host socket are ENOTSUP, whatever else
// would have refused them (here the bound on handles in flight), and no
// copy of them is made to travel where none can go.
func TestSockSendOfHandlesOnAHostSocketIsENOTSUP(t *testing.T) {
	h, log := observedHarness(t)
	h.inflight = caps.NewInFlightLimit(1)
	tbl := h.table("s")
	h.grantSocketPairs(t, tbl, 1)
	st := h.runMode(t, abitest.WATText(t, sendFDsWAT), tbl, "")
	if st.Err() != nil || st.Code != uint32(caps.ENOTSUP) {
		t.Fatalf("status %+v: want exit %d (ENOTSUP)", st, caps.ENOTSUP)
	}
	for _, e := range log.all(caps.EventDerive) {
		if e.Cap.Edge == caps.EdgeDelegate {
			t.Fatalf("a copy was derived to travel on a host socket: %+v", e.Cap)
		}
	}
}
