package abi

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/sandboxd/sandboxd/caps"
)

// shortWriter takes up to room bytes in all, then fails with err.
type shortWriter struct {
	got  []byte
	room int
	err  error
}

func (w *shortWriter) Write(p []byte) (int, error) {
	n := min(len(p), w.room)
	w.got = append(w.got, p[:n]...)
	w.room -= n
	if n < len(p) {
		return n, w.err
	}
	return n, nil
}

// A write to a standard stream reports the bytes that went out before its
// writer failed, and the failure itself when none did.
func TestStdioWriteReportsPartialWritesAndErrors(t *testing.T) {
	k := caps.NewKernel(nil)
	h := &caps.Holder{ID: "g"}
	g := &Guest{}
	writev := func(s *caps.Stdio, iov ...[]byte) (int, Errno) {
		return g.writev(k.Mint(h, s, caps.RightsTTYBase, 0, s.Describe(), "test"), iov)
	}
	w := &shortWriter{room: 4, err: caps.EPIPE}
	n, e := writev(caps.NewStdout("stdout", w), []byte("abc"), []byte("def"), []byte("ghi"))
	if n != 4 || e != 0 || string(w.got) != "abcd" {
		t.Fatalf("partial write: n=%d errno=%v wrote %q; want 4 bytes, no error, \"abcd\"", n, e, w.got)
	}
	n, e = writev(caps.NewStdout("stdout", w), []byte("more"))
	if n != 0 || e != caps.EPIPE {
		t.Fatalf("write to a failed stream: n=%d errno=%v; want EPIPE", n, e)
	}
	n, e = writev(caps.NewStdin(strings.NewReader("")), []byte("x"))
	if n != 0 || e != caps.EBADF {
		t.Fatalf("write to stdin: n=%d errno=%v; want EBADF", n, e)
	}
}

// The context a guest runs under finds its guest by a type assertion, and
// still behaves as the context it wraps: values, cancellation and its
// cause pass through, and a context wrapped around it finds the guest by
// value.
func TestGuestContextCarriesTheGuestAndItsParent(t *testing.T) {
	g := &Guest{}
	type key struct{}
	parent, cancel := context.WithCancelCause(context.WithValue(context.Background(), key{}, "v"))
	ctx := withGuest(parent, g)
	if guestOf(ctx) != g || ctx.Value(guestKey{}) != g {
		t.Fatal("withGuest: the guest is not found")
	}
	if ctx.Value(key{}) != "v" {
		t.Fatal("withGuest hides its parent's values")
	}
	if guestOf(context.WithValue(ctx, key{}, "w")) != g {
		t.Fatal("a context derived from a guest's does not find the guest")
	}
	if guestOf(parent) != nil {
		t.Fatal("a context without a guest found one")
	}
	fired := make(chan struct{})
	stop := context.AfterFunc(ctx, func() { close(fired) })
	defer stop()
	cancel(errors.New("killed"))
	<-fired
	if ctx.Err() == nil || context.Cause(ctx).Error() != "killed" {
		t.Fatalf("after cancel: err %v, cause %v", ctx.Err(), context.Cause(ctx))
	}
}

// fillingMessenger is a stream that fills up to chunk bytes of whatever
// it is asked to receive into, without writing them.
type fillingMessenger struct{ chunk int }

func (m fillingMessenger) Kind() caps.Kind   { return caps.KindSocket }
func (m fillingMessenger) Describe() string  { return "filling" }
func (m fillingMessenger) Close() error      { return nil }
func (m fillingMessenger) CarriesCaps() bool { return false }
func (m fillingMessenger) Send([][]byte, []*caps.Cap) (int, error) {
	return 0, caps.ENOTSUP
}
func (m fillingMessenger) Recv(iov [][]byte, _ int, _ bool) (int, []*caps.Cap, caps.RecvFlags, error) {
	n := 0
	for _, b := range iov {
		n += len(b)
	}
	return min(n, m.chunk), nil, 0, nil
}

// A receive with WAITALL into many buffers over the same memory stops at
// maxIOTotal bytes, as a read does, so that the count the guest is told
// fits its u32 and is the count received.
func TestAWaitallReceiveIsBoundedAsAReadIs(t *testing.T) {
	k := caps.NewKernel(nil)
	m := fillingMessenger{chunk: 64 << 20}
	c := k.Mint(&caps.Holder{ID: "g"}, m, caps.RightFDRead, 0, "s", "test")
	buf := make([]byte, 8<<20)
	iov := make([][]byte, 1024) // 8 GiB, all of it buf
	for i := range iov {
		iov[i] = buf
	}
	g := &Guest{kernel: k}
	total, _, _, e := g.recvLoop(c, m, iov, 0, false, true)
	if e != 0 || total != maxIOTotal {
		t.Fatalf("received %d bytes (errno %v); want maxIOTotal, %d", total, e, maxIOTotal)
	}
}
