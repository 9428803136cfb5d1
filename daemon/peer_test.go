package daemon

import (
	"context"
	"io"
	"strings"
	"testing"

	"github.com/sandboxd/sandboxd/abi/abitest"
)

// echoPeers is a PeerServer that answers "ping" with "pong" on each
// connection it is given.
type echoPeers struct{ served chan *Guest }

func (e *echoPeers) Serve(g *Guest, conn io.ReadWriteCloser) {
	e.served <- g
	go func() {
		buf := make([]byte, 4)
		if _, err := io.ReadFull(conn, buf); err == nil && string(buf) == "ping" {
			_, _ = conn.Write([]byte("pong"))
		}
	}()
}

func TestGuestAsksForACapnpConnectionOnItsSupervisorChannel(t *testing.T) {
	s := newSupervisor(t)
	peers := &echoPeers{served: make(chan *Guest, 2)}
	s.SetPeerServer(peers)
	m, err := s.Compile(context.Background(), "ask_rpc.wasm", abitest.C(t, "daemon/testdata/peer/ask_rpc.c"))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Release()
	var out abitest.Buffer
	g, err := s.Launch(context.Background(), LaunchSpec{Module: m, SupervisorChannel: true, Stdout: &out})
	if err != nil {
		t.Fatal(err)
	}
	st := waitExit(t, g, HangGuard)
	if st.Code != 0 {
		t.Fatalf("guest exited %d; output:\n%s", st.Code, out.String())
	}
	lines := strings.Split(out.String(), "\n")
	if len(lines) != 4 {
		t.Fatalf("output:\n%s", out.String())
	}
	for i, want := range []string{"request is not argdata", "event\x00\x85\brpc", "already has a Cap'n Proto connection open", "pong"} {
		if !strings.Contains(lines[i], want) {
			t.Errorf("line %d %q: want %q", i+1, lines[i], want)
		}
	}
	if len(peers.served) != 1 || <-peers.served != g {
		t.Fatal("the peer server was not given exactly this guest's one connection")
	}
}

func TestWithoutAPeerServerTheRequestIsRefused(t *testing.T) {
	s := newSupervisor(t)
	m, err := s.Compile(context.Background(), "ask_rpc.wasm", abitest.C(t, "daemon/testdata/peer/ask_rpc.c"))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Release()
	var out abitest.Buffer
	g, err := s.Launch(context.Background(), LaunchSpec{Module: m, SupervisorChannel: true, Stdout: &out})
	if err != nil {
		t.Fatal(err)
	}
	if st := waitExit(t, g, HangGuard); st.Code != 99 || !strings.Contains(out.String(), "serves no Cap'n Proto") {
		t.Fatalf("exit %d, output:\n%s", st.Code, out.String())
	}
}
