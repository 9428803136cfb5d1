package server_test

import (
	"context"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/abi/abitest"
	"github.com/sandboxd/sandboxd/client"
	"github.com/sandboxd/sandboxd/daemon"
	"github.com/sandboxd/sandboxd/daemon/server"
)

// A launch whose client has gone before the guest starts (its connection
// closed: the CLI ended by Ctrl-C while the daemon compiled the module,
// telling its user that nothing ran) starts nothing: Supervisor.Launch
// gives up once the call's context has ended, which the connection's end
// ends.
func TestALaunchWhoseClientHasGoneStartsNothing(t *testing.T) {
	compiled := make(chan struct{})
	ended := make(chan error, 1)
	defer server.SetLaunchCompiled(func(ctx context.Context) {
		close(compiled)
		select {
		case <-ctx.Done():
		case <-time.After(server.HangGuard):
		}
	}, func(err error) { ended <- err })()
	started := make(chan *daemon.Guest, 1)
	defer server.SetLaunchStarted(func(g *daemon.Guest) { started <- g })()
	d := startDaemon(t, server.Limits{})
	c, err := client.Dial(context.Background(), d.socket)
	if err != nil {
		t.Fatal(err)
	}
	spin := abitest.WAT(t, spinWAT)
	go func() {
		g, err := c.Launch(context.Background(), client.LaunchRequest{Name: "spin.wat", Wasm: spin})
		if err == nil {
			g.Release()
		}
	}()
	select {
	case <-compiled:
	case <-time.After(server.HangGuard):
		t.Fatal("the launch never compiled its module")
	}
	c.Close()
	select {
	case err := <-ended:
		if err == nil {
			t.Error("the launch of a client that has gone succeeded")
		}
	case <-time.After(server.HangGuard):
		t.Fatal("the launch of a client that has gone never returned")
	}
	select {
	case g := <-started:
		g.Kill("test over")
		<-g.Done()
		t.Fatalf("the launch of a client that has gone started guest %s", g.ID())
	default:
	}
}
