package guestrpc

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	capnp "capnproto.org/go/capnp/v3"
	"capnproto.org/go/capnp/v3/exc"
	"capnproto.org/go/capnp/v3/rpc"
	"capnproto.org/go/capnp/v3/rpc/transport"
	rpccp "capnproto.org/go/capnp/v3/std/capnp/rpc"
	"github.com/sandboxd/sandboxd/abi"
	"github.com/sandboxd/sandboxd/caps"
	"github.com/sandboxd/sandboxd/daemon"
	"github.com/sandboxd/sandboxd/examples/pipeline/pipelineapi"
	"github.com/sandboxd/sandboxd/schemas/guest"
)

// rawPeer launches a guest whose connection the test writes raw bytes to.
func (h *harness) rawPeer(t testing.TB, grants ...string) (net.Conn, <-chan struct{}) {
	t.Helper()
	mine, theirs := net.Pipe()
	done := make(chan struct{})
	h.srv.Serve(h.launch(t, grants...), &notifyClose{Conn: theirs, done: done})
	t.Cleanup(func() { _ = mine.Close() })
	return mine, done
}

// notifyClose closes done when the daemon closes its end.
type notifyClose struct {
	net.Conn
	done chan struct{}
}

func (c *notifyClose) Close() error {
	select {
	case <-c.done:
	default:
		close(c.done)
	}
	return c.Conn.Close()
}

func TestMalformedMessagesEndOnlyThatGuestsConnection(t *testing.T) {
	h := newHarness(t, Limits{MaxMessageSize: 4096})
	a, b := h.peer(t, "chan:jobs"), h.peer(t, "chan:jobs")
	st := newStore()
	publishStore(t, a, "jobs", "store", st)
	for name, msg := range map[string][]byte{
		// A segment table announcing 2^31 segments.
		"segments": {0xff, 0xff, 0xff, 0x7f, 0, 0, 0, 0},
		// One segment larger than MaxMessageSize.
		"oversized": binary.LittleEndian.AppendUint32([]byte{0, 0, 0, 0}, 1<<20),
		// A well-framed message whose root pointer is garbage.
		"garbage": append([]byte{0, 0, 0, 0, 2, 0, 0, 0}, 0xde, 0xad, 0xbe, 0xef, 0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4, 5, 6, 7, 8),
	} {
		raw, closed := h.rawPeer(t, "chan:jobs")
		go func() { _, _ = raw.Write(msg) }()
		<-closed // the daemon hung up on it
		t.Logf("%s: connection closed by the daemon", name)
	}
	// The daemon and the other guests are unaffected.
	s, err := obtainStore(t, b, "jobs", "store")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Release()
	if err := put(testCtx(t), s, "after", "ok"); err != nil || st.get("after") != "ok" {
		t.Fatalf("call between well-behaved guests after the malformed ones: %v", err)
	}
}

func TestFloodBeyondCallsInFlightDisconnectsTheFlooderOnly(t *testing.T) {
	const limit = 8
	h := newHarness(t, Limits{MaxCallsInFlight: limit})
	a, flooder, other := h.peer(t, "chan:jobs"), h.peer(t, "chan:jobs"), h.peer(t, "chan:jobs")
	st := newStore()
	st.block = make(chan struct{}) // the store never answers: calls pile up
	publishStore(t, a, "jobs", "store", st)
	s, err := obtainStore(t, flooder, "jobs", "store")
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 2*limit)
	for i := 0; i < 2*limit; i++ {
		go func() { errs <- put(testCtx(t), s, "k", "v") }()
	}
	// Every call fails: those in flight when the flooder is cut off, and
	// those past the limit. None of them waits for the store.
	for i := 0; i < 2*limit; i++ {
		if err := <-errs; err == nil {
			t.Fatal("a flooding call succeeded against a store that never answers")
		}
	}
	close(st.block)
	// Another guest still reaches the store.
	s2, err := obtainStore(t, other, "jobs", "store")
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Release()
	if err := put(testCtx(t), s2, "other", "ok"); err != nil || st.get("other") != "ok" {
		t.Fatalf("another guest's call after the flood: %v", err)
	}
	// And the flooder's copies of the service are gone with its connection.
	// go-capnp closes them as it shuts their forwarders down, once the calls
	// they were serving have ended, which may be after the server's last
	// change of services: no event of the server's follows, so look until
	// they are gone (only a hang reaches hangGuard).
	for deadline := time.Now().Add(hangGuard); len(h.held(flooder.g.ID(), caps.KindService)) > 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the flooder still holds its copies of the service %v after its connection was cut", hangGuard)
		}
	}
}

func TestExportsBeyondTheLimitFailWithAnException(t *testing.T) {
	h := newHarness(t, Limits{MaxExports: 3})
	dir := t.TempDir()
	a := h.peer(t, "dir:"+dir+"=docs")
	var kept []guest.GuestHandle
	defer func() {
		for _, x := range kept {
			x.Release()
		}
	}()
	for i := 0; i < 3; i++ {
		hd, err := handOver(t, a, a.fd(t, "docs"), readOnlyDir, 0)
		if err != nil {
			t.Fatalf("handOver %d of 3: %v", i+1, err)
		}
		kept = append(kept, hd)
	}
	if _, err := handOver(t, a, a.fd(t, "docs"), readOnlyDir, 0); err == nil || !strings.Contains(err.Error(), "per-guest limit") {
		t.Fatalf("fourth export: %v", err)
	}
}

func TestCallingARevokedServiceInALoopKeepsNothingAlive(t *testing.T) {
	h := newHarness(t, Limits{})
	a, b := h.peer(t, "chan:jobs"), h.peer(t, "chan:jobs")
	s := servedStore(t, a, b, newStore())
	root := h.held(a.g.ID(), caps.KindService)[0]
	if _, err := h.sup.Revoke(root.ID, "test"); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 200; i++ {
		if err := put(testCtx(t), s, "k", "v"); err == nil {
			t.Fatalf("call %d on a revoked service succeeded", i)
		}
	}
	if n := len(h.held(b.g.ID(), caps.KindService)); n != 0 {
		t.Fatalf("%d live service capabilities after revoke", n)
	}
}

// go-capnp sends Finish 250 ms after a call returns: calls that have
// returned do not count against MaxCallsInFlight, or a guest calling
// faster than that would be cut off.
func TestCallsThatReturnedAreNotInFlight(t *testing.T) {
	const limit = 4
	h := newHarness(t, Limits{MaxCallsInFlight: limit})
	a, b := h.peer(t, "chan:jobs"), h.peer(t, "chan:jobs")
	st := newStore()
	s := servedStore(t, a, b, st)
	for i := 0; i < 20*limit; i++ {
		if err := put(testCtx(t), s, "k", "v"); err != nil {
			t.Fatalf("sequential call %d with at most one in flight: %v", i+1, err)
		}
		<-st.started
	}
}

func TestObtainingInALoopUsesTheCallersExportsNotThePublishers(t *testing.T) {
	h := newHarness(t, Limits{MaxExports: 4})
	a, greedy := h.peer(t, "chan:jobs"), h.peer(t, "chan:jobs")
	publishStore(t, a, "jobs", "store", newStore()) // one of a's 4
	var kept []pipelineapi.Store
	defer func() {
		for _, s := range kept {
			s.Release()
		}
	}()
	var err error
	for i := 0; i < 8 && err == nil; i++ {
		var s pipelineapi.Store
		if s, err = obtainStore(t, greedy, "jobs", "store"); err == nil {
			kept = append(kept, s)
		}
	}
	if err == nil || !strings.Contains(err.Error(), greedy.g.ID()) {
		t.Fatalf("obtaining past the limit: %v; want the caller's limit", err)
	}
	// The publisher can still publish (it has exports left).
	publishStore(t, a, "jobs", "store2", newStore())
}

// giver is a service whose obtain returns a new Store each time: an
// interface that hands out capabilities in its results.
type giver struct{ guest.GuestSupervisor_Server }

func (giver) Obtain(ctx context.Context, call guest.GuestSupervisor_obtain) error {
	res, err := call.AllocResults()
	if err != nil {
		return err
	}
	return res.SetService(capnp.Client(pipelineapi.Store_ServerToClient(newStore())))
}

func TestCapabilitiesInResultsCountAgainstTheCaller(t *testing.T) {
	h := newHarness(t, Limits{MaxExports: 4})
	a, greedy := h.peer(t, "chan:jobs"), h.peer(t, "chan:jobs")
	f, rel := a.sup.Publish(testCtx(t), func(p guest.GuestSupervisor_publish_Params) error {
		_ = p.SetChannel("jobs")
		_ = p.SetName("giver")
		return p.SetService(capnp.Client(guest.GuestSupervisor_ServerToClient(giver{})))
	})
	defer rel()
	if _, err := f.Struct(); err != nil {
		t.Fatal(err)
	}
	g, err := obtainStore(t, greedy, "jobs", "giver")
	if err != nil {
		t.Fatal(err)
	}
	remote := guest.GuestSupervisor(g)
	defer remote.Release()
	var kept []capnp.Client
	defer func() {
		for _, c := range kept {
			c.Release()
		}
	}()
	for i := 0; i < 8 && err == nil; i++ {
		f, rel := remote.Obtain(testCtx(t), nil)
		var res guest.GuestSupervisor_obtain_Results
		if res, err = f.Struct(); err == nil {
			kept = append(kept, res.Service().AddRef())
		}
		rel()
	}
	if err == nil || !strings.Contains(err.Error(), greedy.g.ID()) {
		t.Fatalf("results past the limit: %v; want the caller's limit", err)
	}
	publishStore(t, a, "jobs", "store", newStore()) // the giver's budget is intact
}

// A call the guest finishes (cancels) before the daemon has returned it
// is still the daemon's to carry out: its Finish must not make room for
// another, or a guest could queue calls behind one that waits without
// bound, each holding its message.
func TestCallsFinishedBeforeTheyReturnStillCountAsInFlight(t *testing.T) {
	const limit = 4
	h := newHarness(t, Limits{MaxCallsInFlight: limit})
	raw, closed := h.rawPeer(t, "chan:jobs")
	go func() { _, _ = io.Copy(io.Discard, raw) }()
	enc := capnp.NewEncoder(raw)
	send := func(msg *capnp.Message, err error) bool {
		return err == nil && enc.Encode(msg) == nil
	}
	bm, seg, _ := capnp.NewMessage(capnp.SingleSegment(nil))
	m, _ := rpccp.NewRootMessage(seg)
	b, _ := m.NewBootstrap()
	b.SetQuestionId(0)
	if !send(bm, nil) {
		t.Fatal("bootstrap not sent")
	}
	// An obtain of a service never published waits (question 1); the
	// calls pipelined on its result wait with it, in the daemon's queue
	// for its answer, whether or not the guest finishes them.
	if !send(obtainCarrying(1, 1, 0)) {
		t.Fatal("obtain not sent")
	}
	sent := 0
	for q := uint32(2); q < 2+2*limit; q++ {
		if !send(pipelinedOn(q, 1)) || !send(finishOf(q)) {
			break // the daemon hung up
		}
		sent++
	}
	select {
	case <-closed:
	case <-time.After(hangGuard):
		t.Fatalf("the guest still has its connection with %d calls the daemon has not returned (limit %d), each finished", sent+1, limit)
	}
}

// pipelinedOn is a raw Call of handles (question q) on the service in
// the results of question on.
func pipelinedOn(q, on uint32) (*capnp.Message, error) {
	msg, call, pa, err := newCall(q, on, methodHandles)
	if err != nil {
		return nil, err
	}
	ops, _ := pa.NewTransform(1)
	ops.At(0).SetGetPointerField(0)
	payload, _ := call.NewParams()
	params, _ := guest.NewGuestSupervisor_handles_Params(call.Segment())
	err = payload.SetContent(params.ToPtr())
	return msg, err
}

// GuestSupervisor's method ids (schemas/guest.capnp), for raw calls.
const (
	methodHandles = 0
	methodObtain  = 2
)

// newCall is a raw Call message of GuestSupervisor's method method, as
// question q, on the answer to question on; its caller fills in the
// target's transform and the parameters.
func newCall(q, on uint32, method uint16) (*capnp.Message, rpccp.Call, rpccp.PromisedAnswer, error) {
	msg, seg, err := capnp.NewMessage(capnp.SingleSegment(nil))
	if err != nil {
		return nil, rpccp.Call{}, rpccp.PromisedAnswer{}, err
	}
	m, _ := rpccp.NewRootMessage(seg)
	call, _ := m.NewCall()
	call.SetQuestionId(q)
	call.SetInterfaceId(guest.GuestSupervisor_TypeID)
	call.SetMethodId(method)
	tgt, _ := call.NewTarget()
	pa, err := tgt.NewPromisedAnswer()
	pa.SetQuestionId(on)
	return msg, call, pa, err
}

// finishOf is a raw Finish of question q.
func finishOf(q uint32) (*capnp.Message, error) {
	msg, seg, err := capnp.NewMessage(capnp.SingleSegment(nil))
	if err != nil {
		return nil, err
	}
	m, _ := rpccp.NewRootMessage(seg)
	f, err := m.NewFinish()
	f.SetQuestionId(q)
	return msg, err
}

// deafStore is a Store that never returns a put, even once its caller
// has cancelled it: a serving guest that has stopped answering.
type deafStore struct {
	started chan struct{}
	stop    chan struct{}
}

func (s *deafStore) Put(ctx context.Context, call pipelineapi.Store_put) error {
	call.Go()
	s.started <- struct{}{}
	<-s.stop
	return nil
}

// A caller that calls and cancels in a loop gets its own calls back at
// once, but the daemon's calls to the serving guest stay open until that
// guest returns them: they must be bounded at the serving guest, and a
// call past the bound refused as overloaded rather than sent.
func TestCallsToAGuestThatNeverReturnsAreBounded(t *testing.T) {
	const limit = 4
	// The caller's own bound (MaxCallsInFlight) counts a call it cancelled
	// until the daemon has returned it, which the caller cannot see: it
	// is set above every call the loop makes, so that only the bound at
	// the serving guest (MaxForwarded) refuses, however late the daemon
	// returns the cancelled ones (at MaxCallsInFlight 4 a busy machine
	// once ended the caller's connection at call 5).
	h := newHarness(t, Limits{MaxCallsInFlight: 4*limit + 1, MaxForwarded: limit})
	a, b := h.peer(t, "chan:jobs"), h.peer(t, "chan:jobs")
	st := &deafStore{started: make(chan struct{}, 8*limit), stop: make(chan struct{})}
	defer close(st.stop)
	s := servedStore(t, a, b, st)
	reached, refused := 0, 0
	for i := 0; i < 4*limit; i++ {
		ctx, cancel := context.WithCancel(testCtx(t))
		errc := make(chan error, 1)
		go func() { errc <- put(ctx, s, "k", "v") }()
		select {
		case <-st.started: // the call reached the store: give up on it
			reached++
			cancel()
			<-errc
		case err := <-errc:
			cancel()
			if !exc.IsType(err, exc.Overloaded) || !strings.Contains(err.Error(), a.g.ID()) {
				t.Fatalf("call %d, refused before it reached the store: %v; want an overloaded exception naming the serving guest", i+1, err)
			}
			refused++
		}
	}
	if reached > limit || refused == 0 {
		t.Fatalf("%d calls reached a guest that has returned none (limit %d), %d refused", reached, limit, refused)
	}
}

// obtainCarrying is a raw Call of obtain (question q, pipelined on the
// bootstrap question 0) whose parameters carry caps capabilities the guest
// says it serves, export ids from base on. With caps 0 it is a call of
// handles instead, which returns at once.
func obtainCarrying(q uint32, caps int, base uint32) (*capnp.Message, error) {
	method := uint16(methodHandles)
	if caps > 0 {
		method = methodObtain
	}
	msg, call, _, err := newCall(q, 0, method)
	if err != nil {
		return nil, err
	}
	payload, _ := call.NewParams()
	params, _ := guest.NewGuestSupervisor_obtain_Params(call.Segment())
	_ = params.SetChannel("jobs")
	_ = params.SetName("never published") // the call waits, holding its parameters
	_ = payload.SetContent(params.ToPtr())
	ct, err := payload.NewCapTable(int32(caps))
	for i := 0; i < caps; i++ {
		ct.At(i).SetSenderHosted(base + uint32(i))
	}
	return msg, err
}

// returnOf reads the daemon's messages on raw and closes the channel it
// returns when the daemon returns question q; it ends when raw does.
func returnOf(raw net.Conn, q uint32) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		dec := capnp.NewDecoder(raw)
		for {
			msg, err := dec.Decode()
			if err != nil {
				return
			}
			m, err := rpccp.ReadRootMessage(msg)
			if err != nil || m.Which() != rpccp.Message_Which_return {
				continue
			}
			if ret, err := m.Return(); err == nil && ret.AnswerId() == q {
				close(done)
				return
			}
		}
	}()
	return done
}

// Each capability in a message costs the daemon an import (hundreds of
// bytes) for a descriptor of 16: a guest's calls in flight, each a
// message of at most MaxMessageSize, must not hold many times that.
func TestCapabilitiesInAMessageCannotMultiplyTheDaemonsMemory(t *testing.T) {
	h := newHarness(t, Limits{})
	raw, closed := h.rawPeer(t, "chan:jobs")
	last := returnOf(raw, 100)
	enc := capnp.NewEncoder(raw)
	bm, seg, _ := capnp.NewMessage(capnp.SingleSegment(nil))
	m, _ := rpccp.NewRootMessage(seg)
	b, _ := m.NewBootstrap()
	b.SetQuestionId(0)
	if err := enc.Encode(bm); err != nil {
		t.Fatal(err)
	}
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	before, sent := ms.HeapAlloc, 0
	const calls, each = 4, 60000 // under 1 MiB each
	for i := uint32(0); i < calls; i++ {
		msg, err := obtainCarrying(i+1, each, i*each)
		if err != nil {
			t.Fatal(err)
		}
		data, _ := msg.Marshal()
		sent += len(data)
		if err := enc.Encode(msg); err != nil {
			break // the daemon hung up
		}
	}
	if msg, err := obtainCarrying(100, 0, 0); err == nil && enc.Encode(msg) == nil {
		select {
		case <-last: // every message before it has been read
		case <-closed:
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&ms)
	if grown := int64(ms.HeapAlloc) - int64(before); grown > 4*int64(sent) {
		t.Fatalf("a guest's %d calls carrying %d capabilities each (%d bytes sent) grew the daemon's heap by %d MiB", calls, each, sent, grown>>20)
	}
}

// stallingConn is the daemon's end of a guest's connection that stops
// taking writes once stall is closed, as a guest that no longer reads its
// connection: the write waits (waiting is closed) until the daemon
// closes it.
type stallingConn struct {
	net.Conn
	stall, waiting, closed chan struct{}
	waitOnce, closeOnce    sync.Once
}

func (c *stallingConn) Write(p []byte) (int, error) {
	select {
	case <-c.stall:
		c.waitOnce.Do(func() { close(c.waiting) })
		<-c.closed
		return 0, io.ErrClosedPipe
	default:
		return c.Conn.Write(p)
	}
}

func (c *stallingConn) Close() error {
	c.closeOnce.Do(func() { close(c.closed) })
	return c.Conn.Close()
}

// Calls forwarded to a guest that has stopped reading its connection wait
// in the daemon's queue of messages for it, unsent: they are forwarded
// and not returned, and count against MaxForwarded as those sent do.
func TestCallsQueuedForAGuestThatStoppedReadingAreBounded(t *testing.T) {
	const limit = 4
	h := newHarness(t, Limits{MaxForwarded: limit})
	g := h.launch(t, "chan:jobs")
	mine, theirs := net.Pipe()
	sc := &stallingConn{Conn: theirs, stall: make(chan struct{}), waiting: make(chan struct{}), closed: make(chan struct{})}
	h.srv.Serve(g, sc)
	conn := rpc.NewConn(transport.NewStream(mine), nil)
	t.Cleanup(func() { _ = conn.Close() })
	a := &testPeer{g: g, conn: conn, sup: guest.GuestSupervisor(conn.Bootstrap(context.Background()))}
	b := h.peer(t, "chan:jobs")
	s := servedStore(t, a, b, newStore())
	close(sc.stall)
	errs := make(chan error, 4*limit)
	go func() { errs <- put(testCtx(t), s, "k", "v") }()
	<-sc.waiting // the daemon's first message to the guest is stuck
	for i := 0; i < 2*limit; i++ {
		go func() { errs <- put(testCtx(t), s, "k", "v") }()
	}
	if err := <-errs; !exc.IsType(err, exc.Overloaded) {
		t.Fatalf("%d calls forwarded to a guest that reads nothing (limit %d); the first to end: %v, want one refused as overloaded", 2*limit+1, limit, err)
	}
}

// The daemon's answers to a guest's own calls, waiting or returned and
// not finished, are not calls forwarded to it: a guest busy calling must
// not be refused calls to its services.
func TestAGuestsOwnCallsDoNotCountAsCallsForwardedToIt(t *testing.T) {
	const limit = 4
	h := newHarness(t, Limits{MaxForwarded: limit})
	a, b := h.peer(t, "chan:jobs"), h.peer(t, "chan:jobs")
	s := servedStore(t, a, b, newStore())
	waiting, stop := context.WithCancel(testCtx(t))
	for i := 0; i < 2*limit; i++ {
		// Returned, and kept: not finished.
		f, rel := a.sup.Handles(testCtx(t), nil)
		defer rel()
		if _, err := f.Struct(); err != nil {
			t.Fatal(err)
		}
		// Waiting for a service never published.
		_, orel := a.sup.Obtain(waiting, func(p guest.GuestSupervisor_obtain_Params) error {
			_ = p.SetChannel("jobs")
			return p.SetName("never")
		})
		defer orel()
	}
	defer stop() // before the obtains are released, which waits for them
	// The obtains have reached the daemon once a later call has returned.
	f, rel := a.sup.Handles(testCtx(t), nil)
	defer rel()
	if _, err := f.Struct(); err != nil {
		t.Fatal(err)
	}
	if err := put(testCtx(t), s, "k", "v"); err != nil {
		t.Fatalf("a call to a guest with %d calls of its own returned and %d waiting (limit %d calls forwarded): %v", 2*limit, 2*limit, limit, err)
	}
}

// obtainPadded is a raw Call of obtain (question q, pipelined on the
// bootstrap question 0) of a name never published, so that it waits,
// holding its message: padded with pad bytes nothing points at, which
// the daemon reads and keeps with the rest.
func obtainPadded(q uint32, pad int) *capnp.Message {
	msg, call, _, _ := newCall(q, 0, methodObtain)
	payload, _ := call.NewParams()
	params, _ := guest.NewGuestSupervisor_obtain_Params(call.Segment())
	_ = params.SetChannel("jobs")
	_ = params.SetName("never published")
	_ = payload.SetContent(params.ToPtr())
	_, _ = capnp.NewData(call.Segment(), make([]byte, pad))
	return msg
}

// What the daemon holds of a guest's Cap'n Proto messages counts against
// its user's memory budget (serve --max-mem-per-user): each call in
// flight (up to MaxCallsInFlight, 128) keeps its message, up to 1 MiB,
// until it returns, so one guest charged its --mem and --max-stack held
// 128 MB more of the daemon's memory. A message past the budget ends the
// guest's connection, saying so, as a message past the guest's other
// bounds does, and what its messages held is given back.
func TestAGuestsCapnpMessagesCountAgainstTheMemoryBudgetPerUser(t *testing.T) {
	const pad = 1<<20 - 4096
	log := newLines()
	uid := uint32(os.Getuid())
	// Room for the guest (launched with no --mem: the wasm32 maximum and
	// the default stack) and 16 of its padded calls.
	const room = 16 << 20
	h := newHarnessOf(t, daemon.Options{MaxMemPerUser: daemon.MaxMemoryLimit + abi.DefaultMaxStack + room}, Limits{}, log)
	raw, closed := h.rawPeer(t, "chan:jobs")
	last := returnOf(raw, 200)
	// The guest's own charge, its --mem and --max-stack.
	held := uint64(daemon.MaxMemoryLimit + abi.DefaultMaxStack)
	if used := h.sup.MemoryInUse(uid); used != held {
		t.Fatalf("before its first message the guest holds %d bytes of the budget, not its own charge %d", used, held)
	}
	enc := capnp.NewEncoder(raw)
	bm, seg, _ := capnp.NewMessage(capnp.SingleSegment(nil))
	m, _ := rpccp.NewRootMessage(seg)
	b, _ := m.NewBootstrap()
	b.SetQuestionId(0)
	if err := enc.Encode(bm); err != nil {
		t.Fatal(err)
	}
	sent := 0
	for q := uint32(1); q < uint32(DefaultLimits.MaxCallsInFlight); q++ {
		if err := enc.Encode(obtainPadded(q, pad)); err != nil {
			break // the daemon hung up
		}
		sent++
		if used := h.sup.MemoryInUse(uid); used > held+room {
			t.Fatalf("after %d calls of 1 MiB: %d bytes of the budget in use, more than the guest's %d and the %d of room left", sent, used, held, room)
		}
	}
	// A call that returns at once: its return says that the daemon read
	// every call before it and kept the connection.
	if msg, err := obtainCarrying(200, 0, 0); err == nil && enc.Encode(msg) == nil {
		select {
		case <-last:
			t.Fatalf("the daemon read %d calls of 1 MiB, which it keeps until they return, from a guest whose user has room for 16, and serves on", sent)
		case <-closed:
		}
	}
	<-closed
	if !strings.Contains(log.String(), "memory budget") {
		t.Errorf("the daemon's log does not say why it ended the connection:\n%s", log)
	}
	awaitMemoryInUse(t, h, uid, func(used uint64) bool { return used == held },
		fmt.Sprintf("the guest's own %d bytes in use: what its messages held was not given back", held))
}

// Calls that have returned, and the returns the serving guest sent, give
// back what their messages were charged: guests calling each other in a
// loop under a budget hold no more of it when they stop than before. The
// calls carry twice the slack allowed while the connections are open (32
// MiB against 16 MiB), so that a charge kept until its connection ends
// fails the check made while they are open; 200 calls carried 12.5 MiB,
// within the slack, and only the check after the connections closed could
// fail, which a charge given back at a connection's end passes.
func TestReturnedCallsGiveBackWhatTheirMessagesWereCharged(t *testing.T) {
	uid := uint32(os.Getuid())
	h := newHarnessOf(t, daemon.Options{MaxMemPerUser: 4 * (daemon.MaxMemoryLimit + abi.DefaultMaxStack)}, Limits{}, nil)
	a, b := h.peer(t, "chan:jobs"), h.peer(t, "chan:jobs")
	// The two guests' own charges, their --mem and --max-stack (the
	// harness launches them with the defaults): what is in use just after
	// they connect may hold a message of their connection's start too.
	guests := 2 * uint64(daemon.MaxMemoryLimit+abi.DefaultMaxStack)
	if used := h.sup.MemoryInUse(uid); used < guests {
		t.Fatalf("the two guests hold %d bytes of the budget, less than their own charges %d", used, guests)
	}
	st := newStore()
	publishStore(t, a, "jobs", "store", st)
	s, err := obtainStore(t, b, "jobs", "store")
	if err != nil {
		t.Fatal(err)
	}
	const calls, slack = 512, 16 << 20
	for i := 0; i < calls; i++ {
		if err := put(testCtx(t), s, "k", strings.Repeat("v", 64<<10)); err != nil {
			t.Fatalf("call %d: %v", i+1, err)
		}
		<-st.started
	}
	// The calls of the last moments may still be held, until their
	// Finish (go-capnp sends it a while after the return): how many
	// depends on the machine's speed, so this waits for what they held
	// to come back within the slack, which a charge kept until the
	// connection ends never does.
	awaitMemoryInUse(t, h, uid, func(used uint64) bool { return used <= guests+slack },
		fmt.Sprintf("after %d calls of 64 KiB that returned, at most %d bytes in use (the guests' own and %d)", calls, guests+slack, slack))
	s.Release()
	// What go-capnp holds until Finish (sent 250 ms after a return) and
	// the publication are let go with the connections.
	a.conn.Close()
	b.conn.Close()
	awaitMemoryInUse(t, h, uid, func(used uint64) bool { return used == guests },
		fmt.Sprintf("the guests' own %d bytes in use: a message's charge was not given back", guests))
}

// awaitMemoryInUse waits until what uid has in use satisfies ok, and
// fails saying want if it has not after hangGuard.
func awaitMemoryInUse(t *testing.T, h *harness, uid uint32, ok func(uint64) bool, want string) {
	t.Helper()
	deadline := time.Now().Add(hangGuard)
	for !ok(h.sup.MemoryInUse(uid)) {
		if time.Now().After(deadline) {
			t.Fatalf("after %v, %d bytes in use; want %s", hangGuard, h.sup.MemoryInUse(uid), want)
		}
		time.Sleep(time.Millisecond)
	}
}
