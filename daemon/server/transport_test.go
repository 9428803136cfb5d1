package server

import (
	"github.com/sandboxd/sandboxd/internal/rpctest"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

// deadlineConn records the read deadlines set on a connection.
type deadlineConn struct {
	net.Conn
	mu        sync.Mutex
	deadlines []time.Time
}

func (c *deadlineConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	c.deadlines = append(c.deadlines, t)
	c.mu.Unlock()
	return c.Conn.SetReadDeadline(t)
}

// last is the deadline set last; zero if none was.
func (c *deadlineConn) last() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.deadlines) == 0 {
		return time.Time{}
	}
	return c.deadlines[len(c.deadlines)-1]
}

// The bootstrap timeout bounds a connection until its first message has
// arrived, and no longer: an idle client that has spoken costs nothing.
func TestTheFirstMessageEndsTheBootstrapDeadline(t *testing.T) {
	ours, theirs := net.Pipe()
	defer theirs.Close()
	conn := &deadlineConn{Conn: ours}
	lim := Limits{BootstrapTimeout: time.Hour}.WithDefaults()
	before := time.Now()
	tr := newLimitedTransport(conn, lim, hclog.NewNullLogger())
	defer tr.Close()
	if d := conn.last(); d.Before(before.Add(time.Hour)) || d.After(time.Now().Add(time.Hour)) {
		t.Fatalf("a new connection's read deadline is %v, want an hour after it was accepted (%v)", d, before)
	}
	for q := range uint32(2) {
		msg, err := rpctest.Bootstrap(q)
		if err != nil {
			t.Fatal(err)
		}
		go func() { _, _ = theirs.Write(msg) }() // a pipe: the write waits for the read
		in, err := tr.RecvMessage()
		if err != nil {
			t.Fatalf("message %d: %v", q+1, err)
		}
		in.Release()
		if d := conn.last(); !d.IsZero() {
			t.Fatalf("after message %d the connection still has a read deadline (%v)", q+1, d)
		}
	}
}

// The transport reads ahead of the message it decodes, yet charges each
// message with its own bytes: those it holds (MaxHeldBytes) must not
// include the start of the next one.
func TestEachMessageIsChargedItsOwnBytes(t *testing.T) {
	ours, theirs := net.Pipe()
	defer theirs.Close()
	tr := newLimitedTransport(ours, Limits{}.WithDefaults(), hclog.NewNullLogger())
	defer tr.Close()
	boot, err := rpctest.Bootstrap(0)
	if err != nil {
		t.Fatal(err)
	}
	fin, err := rpctest.Finish(0)
	if err != nil {
		t.Fatal(err)
	}
	go func() { _, _ = theirs.Write(append(append([]byte{}, boot...), fin...)) }()
	var held []uint64
	for i, want := range []int{len(boot), len(fin)} {
		in, err := tr.RecvMessage()
		if err != nil {
			t.Fatalf("message %d: %v", i+1, err)
		}
		tr.mu.Lock()
		held = append(held, tr.held)
		tr.mu.Unlock()
		if got := tr.codec.lastSize; got != uint64(want) {
			t.Errorf("message %d charged %d bytes, want its %d", i+1, got, want)
		}
		defer in.Release()
	}
	if want := uint64(len(boot)); held[0] != want {
		t.Errorf("held after the first message: %d bytes, want %d", held[0], want)
	}
	if want := uint64(len(boot) + len(fin)); held[1] != want {
		t.Errorf("held after both: %d bytes, want %d", held[1], want)
	}
}
