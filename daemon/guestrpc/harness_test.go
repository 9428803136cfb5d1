package guestrpc

import (
	"context"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	capnp "capnproto.org/go/capnp/v3"
	"capnproto.org/go/capnp/v3/rpc"
	"capnproto.org/go/capnp/v3/rpc/transport"
	"github.com/hashicorp/go-hclog"
	"github.com/sandboxd/sandboxd/abi/abitest"
	"github.com/sandboxd/sandboxd/daemon"
	"github.com/sandboxd/sandboxd/examples/pipeline/pipelineapi"
	"github.com/sandboxd/sandboxd/schemas/guest"
)

// hangGuard bounds waits that only a hang can reach: every wait in these
// tests is on an event (a reply, an exit), and a loaded 2-core machine
// answers in milliseconds; minutes means the code under test is stuck.
const hangGuard = 2 * time.Minute

// harness is a supervisor whose guests the test speaks for: each peer is
// a guest that sleeps, and the test plays its side of the Cap'n Proto
// connection natively, exactly as the guest would over its RPC channel.
type harness struct {
	sup *daemon.Supervisor
	srv *Server
	mod []byte
}

func newHarness(t testing.TB, lim Limits) *harness {
	t.Helper()
	return newLoggingHarness(t, lim, nil)
}

// newLoggingHarness is newHarness whose server logs to log, at debug
// level, when log is not nil.
func newLoggingHarness(t testing.TB, lim Limits, log *lines) *harness {
	t.Helper()
	return newHarnessOf(t, daemon.Options{}, lim, log)
}

// newHarnessOf is newLoggingHarness with a supervisor made with opts.
func newHarnessOf(t testing.TB, opts daemon.Options, lim Limits, log *lines) *harness {
	t.Helper()
	sup, err := daemon.New(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	sopts := Options{Limits: lim}
	if log != nil {
		sopts.Logger = hclog.New(&hclog.LoggerOptions{Output: log, Level: hclog.Debug})
	}
	srv := New(sup, sopts)
	sup.SetPeerServer(srv)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
		defer cancel()
		if err := sup.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return &harness{sup: sup, srv: srv, mod: abitest.WAT(t, "daemon/testdata/guests/sleep_poll.wat")}
}

// testPeer is one guest and the test's side of its connection.
type testPeer struct {
	g    *daemon.Guest
	conn *rpc.Conn
	sup  guest.GuestSupervisor
}

// peer launches a guest with grants and connects to its GuestSupervisor.
func (h *harness) peer(t testing.TB, grants ...string) *testPeer {
	t.Helper()
	g := h.launch(t, grants...)
	mine, theirs := net.Pipe()
	h.srv.Serve(g, theirs)
	conn := rpc.NewConn(transport.NewStream(mine), nil)
	t.Cleanup(func() { _ = conn.Close() })
	return &testPeer{g: g, conn: conn, sup: guest.GuestSupervisor(conn.Bootstrap(context.Background()))}
}

// launch launches a guest with grants that sleeps until the test ends.
func (h *harness) launch(t testing.TB, grants ...string) *daemon.Guest {
	t.Helper()
	ctx := context.Background()
	m, err := h.sup.Compile(ctx, "sleep.wasm", h.mod)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Release()
	spec := daemon.LaunchSpec{Principal: daemon.Principal{UID: uint32(os.Getuid())}, Module: m, SupervisorChannel: true}
	for _, text := range grants {
		gr, err := daemon.ParseGrant(text)
		if err != nil {
			t.Fatal(err)
		}
		spec.Grants = append(spec.Grants, gr)
	}
	g, err := h.sup.Launch(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Kill("test over") })
	return g
}

// fd returns the fd of the guest's handle named name.
func (p *testPeer) fd(t testing.TB, name string) uint32 {
	t.Helper()
	for _, e := range p.g.Handles() {
		if e.Cap.Name() == name {
			return e.FD
		}
	}
	t.Fatalf("guest %s has no handle %q", p.g.ID(), name)
	return 0
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	t.Cleanup(cancel)
	return ctx
}

// store is a Store a test peer serves: it records puts, and blocks each
// put until release is closed when block is set.
type store struct {
	mu      sync.Mutex
	puts    map[string]string
	block   chan struct{}
	started chan struct{} // receives once per put that has begun
}

func newStore() *store {
	return &store{puts: map[string]string{}, started: make(chan struct{}, 64)}
}

func (s *store) Put(ctx context.Context, call pipelineapi.Store_put) error {
	s.started <- struct{}{}
	if s.block != nil {
		call.Go()
		select {
		case <-s.block:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	k, _ := call.Args().Key()
	v, _ := call.Args().Value()
	s.mu.Lock()
	s.puts[k] = string(v)
	s.mu.Unlock()
	return nil
}

func (s *store) get(k string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.puts[k]
}

// publishStore serves st from p and publishes it as name on channel.
func publishStore(t testing.TB, p *testPeer, channel, name string, st pipelineapi.Store_Server) {
	t.Helper()
	if err := publishing(t, p, channel, name, st); err != nil {
		t.Fatalf("publish %s on %s: %v", name, channel, err)
	}
}

// publishing reports whether p publishing st as name on channel
// succeeds.
func publishing(t testing.TB, p *testPeer, channel, name string, st pipelineapi.Store_Server) error {
	t.Helper()
	return publishingClient(t, p, channel, name, capnp.Client(pipelineapi.Store_ServerToClient(st)))
}

// publishingClient reports whether p publishing c, any object the
// test serves, as name on channel succeeds.
func publishingClient(t testing.TB, p *testPeer, channel, name string, c capnp.Client) error {
	t.Helper()
	f, rel := p.sup.Publish(testCtx(t), func(a guest.GuestSupervisor_publish_Params) error {
		_ = a.SetChannel(channel)
		_ = a.SetName(name)
		return a.SetService(c)
	})
	defer rel()
	_, err := f.Struct()
	return err
}

// obtainStore obtains the Store published as name on channel.
func obtainStore(t testing.TB, p *testPeer, channel, name string) (pipelineapi.Store, error) {
	t.Helper()
	f, rel := p.sup.Obtain(testCtx(t), func(a guest.GuestSupervisor_obtain_Params) error {
		_ = a.SetChannel(channel)
		return a.SetName(name)
	})
	defer rel()
	res, err := f.Struct()
	if err != nil {
		return pipelineapi.Store{}, err
	}
	return pipelineapi.Store(res.Service().AddRef()), nil
}

func put(ctx context.Context, s pipelineapi.Store, k, v string) error {
	f, rel := s.Put(ctx, func(a pipelineapi.Store_put_Params) error {
		_ = a.SetKey(k)
		return a.SetValue([]byte(v))
	})
	defer rel()
	_, err := f.Struct()
	return err
}

// lines collects a guest's output and lets a test wait for a string in it.
type lines struct {
	mu      sync.Mutex
	b       strings.Builder
	changed chan struct{}
	exited  <-chan struct{} // the guest's Done, once launched
}

func newLines() *lines { return &lines{changed: make(chan struct{})} }

func (o *lines) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.b.Write(p)
	close(o.changed)
	o.changed = make(chan struct{})
	return len(p), nil
}

func (o *lines) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.String()
}

// waitFor waits until the output contains s, failing if the guest exits
// first.
func (o *lines) waitFor(t testing.TB, s string) {
	t.Helper()
	deadline := time.After(hangGuard)
	for {
		o.mu.Lock()
		has, changed := strings.Contains(o.b.String(), s), o.changed
		o.mu.Unlock()
		if has {
			return
		}
		select {
		case <-changed:
		case <-o.exited:
			if !strings.Contains(o.String(), s) {
				t.Fatalf("the guest exited without writing %q:\n%s", s, o.String())
			}
			return
		case <-deadline:
			t.Fatalf("no %q in the output after %s:\n%s", s, hangGuard, o.String())
		}
	}
}

// publishAndObtain has a publish srv as name on its channel "jobs", and
// returns b's copy of it, obtained there; the copy is released when the
// test ends.
func publishAndObtain(t testing.TB, a, b *testPeer, name string, srv capnp.Client) capnp.Client {
	t.Helper()
	if err := publishingClient(t, a, "jobs", name, srv); err != nil {
		t.Fatal(err)
	}
	s, err := obtainStore(t, b, "jobs", name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Release)
	return capnp.Client(s)
}

// giverPair launches a, granted a directory it holds as "docs", and b,
// both holding channel "jobs"; a publishes there as "giver" a service
// that hands over its docs handle (handGiver), and g is b's copy of it.
func giverPair(t testing.TB, h *harness) (a, b *testPeer, g guest.GuestSupervisor) {
	t.Helper()
	a, b = h.peer(t, "chan:jobs", "dir:"+t.TempDir()+"=docs"), h.peer(t, "chan:jobs")
	hg := &handGiver{self: a.sup, fd: a.fd(t, "docs")}
	g = guest.GuestSupervisor(publishAndObtain(t, a, b, "giver", capnp.Client(guest.GuestSupervisor_ServerToClient(hg))))
	return a, b, g
}

// servedStore has a publish st as "store" on its channel "jobs", and
// returns b's copy of it (publishAndObtain).
func servedStore(t testing.TB, a, b *testPeer, st pipelineapi.Store_Server) pipelineapi.Store {
	t.Helper()
	return pipelineapi.Store(publishAndObtain(t, a, b, "store", capnp.Client(pipelineapi.Store_ServerToClient(st))))
}
