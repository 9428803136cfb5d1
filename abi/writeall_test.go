package abi

import (
	"bytes"
	"testing"

	"github.com/sandboxd/sandboxd/caps"
)

// fd_write on a blocking handle to a stream that is full writes every
// byte, waiting for room as often as it takes, as write(2) on a blocking
// pipe or SOCK_STREAM socket does: it returned after the part the
// channel's buffer took (262,144 of 300,000 bytes), a short count a C
// program that does not loop on write loses the rest to.
func TestFdWriteOnABlockingStreamWritesEveryByte(t *testing.T) {
	for _, name := range []string{"fd_write", "wasi fd_write"} {
		p := newSbxPair(t, newFdDiffEnv(t), false)
		w, err := p.g.table.Get(p.end[0])
		if err != nil {
			t.Fatal(err)
		}
		w.SetFlags(0) // blocking
		r, err := p.g.table.Get(p.end[1])
		if err != nil {
			t.Fatal(err)
		}
		data := bytes.Repeat([]byte("0123456789"), 30000)
		p.m.Write(fdDataAt, data)
		p.put32(fdIOVAt, fdDataAt)
		p.put32(fdIOVAt+4, uint32(len(data)))
		handler := pdHandlers[name]
		waits, _ := p.g.Blocked()
		done := make(chan struct{})
		var e caps.Errno
		go func() {
			defer close(done)
			e = p.call(t, handler, uint64(p.end[0]), fdIOVAt, 1, fdOut)
		}()
		var got []byte
		if awaitParked(t, p.g, waits, done) {
			got = drainChannel(t, r.Resource().(*caps.Channel), len(data))
		}
		<-done
		if e != 0 || p.get32(fdOut) != len(data) {
			t.Fatalf("%s of %d bytes on a blocking stream: errno %v, %d bytes written; want all of them", name, len(data), e, p.get32(fdOut))
		}
		if !bytes.Equal(got, data) {
			t.Fatalf("%s: the other end read %d bytes, not the %d written", name, len(got), len(data))
		}
		p.close()
	}
}

// drainChannel reads n bytes from ch, waiting for each part.
func drainChannel(t *testing.T, ch *caps.Channel, n int) []byte {
	t.Helper()
	var got []byte
	buf := make([]byte, 64<<10)
	w := caps.NewWaiter()
	for len(got) < n {
		k, err := ch.Read(buf)
		got = append(got, buf[:k]...)
		if err == caps.EAGAIN {
			if ready, cancel := ch.Poll(caps.EventRead, w); ready == 0 {
				<-w.C()
				cancel()
			} else {
				cancel()
			}
			continue
		}
		if err != nil || k == 0 {
			t.Fatalf("reading the channel after %d bytes: %d, %v", len(got), k, err)
		}
	}
	return got
}
