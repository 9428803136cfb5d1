package abi_test

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/abi"
	"github.com/sandboxd/sandboxd/abi/abitest"
	"github.com/sandboxd/sandboxd/caps"
)

// stallingWriter is a stream whose writes wait, as the daemon's do for a
// client that does not read its output, until they are told to stop.
type stallingWriter struct{ entered chan struct{} }

func (w stallingWriter) Write(p []byte) (int, error) { return w.WriteUntil(p, nil, nil) }

func (w stallingWriter) WriteUntil(p []byte, revoked, ended <-chan struct{}) (int, error) {
	select {
	case w.entered <- struct{}{}:
	default:
	}
	select {
	case <-revoked:
	case <-ended:
	}
	return 0, errors.New("the write stopped waiting")
}

// A guest whose write waits on a stream that can stop waiting (the
// daemon's, while its client does not read) is ended by Kill. A spawned
// child writing to its parent's stdout has only its own kill (its parent
// closing its process handle, or its tree's end) to stop that wait: no
// connection or revocation of its own ends it.
func TestKillEndsAWriteWaitingOnAStoppableStream(t *testing.T) {
	h := newHarness(t)
	holder := &caps.Holder{ID: "writer"}
	tbl := caps.NewTable(h.k, holder, 0)
	w := stallingWriter{entered: make(chan struct{}, 1)}
	for _, s := range []*caps.Stdio{caps.NewStdin(bytes.NewReader(nil)), caps.NewStdout("stdout", w), caps.NewStdout("stderr", &h.stderr)} {
		if _, err := tbl.Insert(h.k.Mint(holder, s, caps.RightsTTYBase, 0, s.Describe(), "test")); err != nil {
			t.Fatal(err)
		}
	}
	m, err := h.rt.Compile(context.Background(), "hello", abitest.WAT(t, "abi/testdata/guests/hello.wat"))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Release()
	g := h.rt.NewGuest(m, abi.GuestConfig{ID: "writer", Table: tbl})
	g.Start(context.Background())
	select {
	case <-w.entered:
	case <-time.After(hangGuard):
		t.Fatalf("the guest did not write within %v", hangGuard)
	}
	killAndAwait(t, g, "a guest whose write waits on a stoppable stream")
}

// stallingReader is a stream whose reads wait, as the daemon's stdin does
// for a client that does not write, until they are told to stop.
type stallingReader struct{ entered chan struct{} }

func (r stallingReader) Read(p []byte) (int, error) { return r.ReadUntil(p, nil, nil) }

func (r stallingReader) ReadUntil(p []byte, revoked, ended <-chan struct{}) (int, error) {
	select {
	case r.entered <- struct{}{}:
	default:
	}
	select {
	case <-revoked:
		return 0, caps.ENOTCAPABLE
	case <-ended:
		return 0, errors.New("the read stopped waiting")
	}
}

// A guest whose read waits on a stream that can stop waiting (the
// daemon's stdin, while its client does not write) is ended by Kill: a
// spawned child reading its parent's stdin has only its own kill to stop
// that wait while its parent lives.
func TestKillEndsAReadWaitingOnAStoppableStream(t *testing.T) {
	h := newHarness(t)
	holder := &caps.Holder{ID: "reader"}
	tbl := caps.NewTable(h.k, holder, 0)
	r := stallingReader{entered: make(chan struct{}, 1)}
	for _, s := range []*caps.Stdio{caps.NewStdin(r), caps.NewStdout("stdout", &h.stdout), caps.NewStdout("stderr", &h.stderr)} {
		if _, err := tbl.Insert(h.k.Mint(holder, s, caps.RightsTTYBase, 0, s.Describe(), "test")); err != nil {
			t.Fatal(err)
		}
	}
	m, err := h.rt.Compile(context.Background(), "cat", abitest.WAT(t, "daemon/testdata/guests/cat.wat"))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Release()
	g := h.rt.NewGuest(m, abi.GuestConfig{ID: "reader", Table: tbl})
	g.Start(context.Background())
	select {
	case <-r.entered:
	case <-time.After(hangGuard):
		t.Fatalf("the guest did not read within %v", hangGuard)
	}
	killAndAwait(t, g, "a guest whose read waits on a stoppable stream")
}
