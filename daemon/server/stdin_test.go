package server_test

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/abi/abitest"
	"github.com/sandboxd/sandboxd/client"
	"github.com/sandboxd/sandboxd/daemon/server"
)

// oneByteThenBlock returns one byte, then blocks until release is closed.
type oneByteThenBlock struct {
	sent    bool
	release chan struct{}
}

func (r *oneByteThenBlock) Read(p []byte) (int, error) {
	if !r.sent {
		r.sent = true
		p[0] = 'x'
		return 1, nil
	}
	<-r.release
	return 0, io.EOF
}

// A client streams stdin to a guest that never reads it, and disconnects
// with its write waiting in the daemon, or with none sent yet. The
// connection releases its objects only once every call in progress has
// returned, so a waiting write must end with it; and the launch's answer
// holds two capabilities (the Guest and the stdin sink), each of which
// must be let go. Either way the guest of a client that went away is
// killed, as any other is.
func TestAGuestStreamingStdinIsKilledWhenItsClientGoes(t *testing.T) {
	for _, tc := range []struct {
		name    string
		writing bool
	}{{"a write waiting", true}, {"no write sent", false}} {
		t.Run(tc.name, func(t *testing.T) {
			d := startDaemon(t, server.Limits{})
			ctx := context.Background()
			c, err := client.Dial(ctx, d.socket)
			if err != nil {
				t.Fatal(err)
			}
			in := &oneByteThenBlock{sent: !tc.writing, release: make(chan struct{})}
			defer close(in.release)
			g, err := c.Launch(ctx, client.LaunchRequest{Name: "sleep_poll.wat", Wasm: abitest.WAT(t, sleepWAT), StdinStream: in})
			if err != nil {
				t.Fatal(err)
			}
			id := g.ID()
			if tc.writing {
				eventually(t, server.HangGuard, "the stdin write reaches the daemon and waits for the guest", func() bool {
					return server.StdinWritesWaiting(d.srv, id) == 1
				})
			}
			g.Release()
			c.Close()
			dg, ok := d.sup.Guest(id)
			if !ok {
				t.Fatalf("no guest %s", id)
			}
			select {
			case <-dg.Done():
			case <-time.After(server.HangGuard):
				t.Fatal("the guest of a client that disconnected is still running")
			}
			if _, st := dg.Status(); st.Killed != "the launching client disconnected" {
				t.Fatalf("status %+v; want killed because its client disconnected", st)
			}
		})
	}
}
