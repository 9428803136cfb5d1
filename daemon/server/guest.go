package server

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	"capnproto.org/go/capnp/v3/exc"
	"github.com/sandboxd/sandboxd/abi"
	"github.com/sandboxd/sandboxd/caps"
	"github.com/sandboxd/sandboxd/daemon"
	"github.com/sandboxd/sandboxd/schemas"
)

// guestRecord is what the server keeps about a guest it launched, beside
// the Supervisor's own record: its output and how it is attached.
type guestRecord struct {
	g        *daemon.Guest
	pid      int32    // of the launching client
	args     []string // as the guest sees them, program name first
	detached bool
	name     string     // launch --name, or ""
	stdin    *stdinSink // launch -i: what feeds the guest's stdin, or nil
	output   *outputLog
	attached *outputSink // nil if the launch gave no OutputSink
	// ctx ends when the guest must stop writing to its attached sink:
	// killed, timed out, exited, or the server closing.
	ctx    context.Context
	cancel context.CancelFunc
}

// kill ends the guest. It first stops attached output, so that a guest
// blocked on a client that does not read its output ends at once.
func (r *guestRecord) kill(reason string) {
	r.cancel()
	r.g.Kill(reason)
}

// watch runs once per launched guest, once it is done (watchEnd: on the
// guest's goroutine, or on one of its own): it gives the guest's place under
// --max-guests back, closes the output, drains the attached sink, and
// retires the record.
//
// The place is given back first: draining waits for the client to
// acknowledge the last output it was sent, which a client that is hung or
// stuck writing it out may never do, and a guest that has ended must not
// keep its principal from launching. What waits meanwhile is bounded
// apart from --max-guests: each sink with output in flight holds at
// least callOverhead of its connection's window (connOutputWindow) until
// the client acknowledges it, and the connection's end fails the calls.
func (s *Server) watch(r *guestRecord) {
	s.mu.Lock()
	s.dropRunning(r.g.Principal().UID)
	s.mu.Unlock()
	r.output.close()
	if r.attached != nil {
		r.attached.finish(r.ctx)
	}
	r.cancel()
	s.retire(r.g.Principal().UID, r.g.ID())
}

// dropRunning counts one guest of uid as ended. Called with s.mu held.
func (s *Server) dropRunning(uid uint32) {
	if s.running[uid]--; s.running[uid] <= 0 {
		delete(s.running, uid)
	}
}

// retire forgets records of exited guests of principal uid the Supervisor
// no longer lists, so the server keeps exactly as much history as the
// Supervisor, which keeps it per principal.
func (s *Server) retire(uid uint32, id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := append(s.exited[uid], id)
	for len(ids) > 0 {
		if _, ok := s.sup.Guest(ids[0]); ok {
			break
		}
		if r := s.records[ids[0]]; r != nil && r.name != "" {
			delete(s.names, r.name)
		}
		delete(s.records, ids[0])
		ids = ids[1:]
	}
	if len(ids) == 0 {
		delete(s.exited, uid)
		return
	}
	s.exited[uid] = ids
}

// record returns the record of the guest with that id, or that name.
func (s *Server) record(id string) (*guestRecord, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.records[id]
	if !ok {
		if named, found := s.byNameLocked(id); found {
			r, ok = s.records[named]
		}
	}
	return r, ok
}

// outputSink sends a guest's output to a client's OutputSink as Cap'n
// Proto stream calls. At most outputWindow bytes are in flight; past that
// the guest's write waits (pipe semantics) until the client acknowledges,
// the guest is killed, or the server closes. After the first failed call
// (the client went away or its writer failed) output goes to the kept log
// only.
type outputSink struct {
	ctx  context.Context
	sink schemas.OutputSink
	lim  *outputLimiter

	// Writes to the guest's stdout and stderr are sent in turns, in the
	// order they were kept in the log (outputLog.record takes each its
	// turn with its time), one at a time. A write waiting for its turn
	// stops waiting as any write does (write), and gives its turn up.
	mu      sync.Mutex
	next    uint64          // the next turn to hand out
	serving uint64          // the turn whose write may send now
	givenUp map[uint64]bool // turns given up before they came
	served  chan struct{}   // closed, and replaced, when serving moves on
	failed  bool            // guarded by holding the turn being served
}

// outputWindow is how many bytes of output may be in flight to one client
// sink, and maxOutputCall the most one stream call carries.
const (
	outputWindow  = 256 << 10
	maxOutputCall = 64 << 10
	// callOverhead is what a stream call's message counts beyond its data.
	callOverhead = 1 << 10
	// connOutputWindow bounds the output in flight on all the sinks of one
	// connection together (16 sinks' windows): a client's many sinks
	// (attached guests, logs calls) cannot each queue a window's worth in
	// the daemon while the client reads none of it.
	connOutputWindow = 16 * outputWindow
)

// newOutputSink streams to sink within outputWindow, and within conn, the
// window of every sink of the connection together (nil: none).
func newOutputSink(ctx context.Context, sink schemas.OutputSink, conn *outputLimiter) *outputSink {
	lim := newOutputLimiter(outputWindow)
	lim.conn = conn
	sink.SetFlowLimiter(lim)
	return &outputSink{ctx: ctx, sink: sink, lim: lim, served: make(chan struct{})}
}

// take hands out the next turn.
func (o *outputSink) take() uint64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	t := o.next
	o.next++
	return t
}

// writeStops are what ends one write's wait for the client, besides the
// guest's output context: the capability written through revoked, or the
// guest writing (perhaps a spawned child of the launched guest, which
// writes through a copy of its stream) killed. Either may be nil.
type writeStops struct{ revoked, ended <-chan struct{} }

// await waits until turn t is served and reports true; if a stop is closed
// or the guest's output context ends first, it gives t up and reports
// false.
func (o *outputSink) await(t uint64, stop writeStops) bool {
	for {
		o.mu.Lock()
		if o.serving == t {
			o.mu.Unlock()
			return true
		}
		served := o.served
		o.mu.Unlock()
		select {
		case <-served:
		case <-stop.revoked:
			o.done(t)
			return false
		case <-stop.ended:
			o.done(t)
			return false
		case <-o.ctx.Done():
			o.done(t)
			return false
		}
	}
}

// done ends turn t, served or given up: the next turn not given up is
// served.
func (o *outputSink) done(t uint64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if t != o.serving {
		if o.givenUp == nil {
			o.givenUp = make(map[uint64]bool)
		}
		o.givenUp[t] = true
		return
	}
	o.serving++
	for o.givenUp[o.serving] {
		delete(o.givenUp, o.serving)
		o.serving++
	}
	close(o.served)
	o.served = make(chan struct{})
}

// write streams p to the client in turn t. A write waiting for its turn,
// or for the client to acknowledge earlier ones, also ends when a stop is
// closed (the capability written through was revoked: Revoke waits for
// the write; or the guest writing was killed) or the guest's output
// context ends. A wait for the client so
// cut short fails the stream, as a client going away does: output goes to
// the kept log only.
func (o *outputSink) write(t uint64, st stream, p []byte, at int64, stop writeStops) {
	if !o.await(t, stop) {
		return
	}
	defer o.done(t)
	o.lim.setStop(stop)
	defer o.lim.setStop(writeStops{})
	for len(p) > 0 && !o.failed {
		n := min(len(p), maxOutputCall)
		chunk := p[:n]
		if o.lim.reserve(o.ctx, int64(n)+callOverhead, stop) != nil {
			o.failed = true
			break
		}
		err := o.sink.Write(o.ctx, func(a schemas.OutputSink_write_Params) error {
			a.SetStream(schemas.StdStream(st))
			a.SetTime(at)
			return a.SetData(chunk)
		})
		o.lim.unreserve() // if the call was not sent
		// go-capnp asks the flow limiter after a call is sent and ignores
		// its error: a wait that ended early shows only here.
		if err != nil || o.lim.takeCutShort() {
			o.failed = true
		}
		p = p[n:]
	}
}

// errWriteStopped ends an output write whose capability was revoked while
// it waited for the client.
var errWriteStopped = errors.New("the output handle was revoked while its write waited for the client")

// errWriterKilled ends an output write whose guest was killed while it
// waited for the client.
var errWriterKilled = errors.New("the guest writing was killed while its write waited for the client")

// outputLimiter is an outputSink's flow limiter (flowcontrol.FlowLimiter):
// at most window bytes in stream calls not yet acknowledged. A call past
// it waits until the client acknowledges enough, its context ends (the
// guest killed, or the server closing), or the capability being written
// through is revoked or the guest writing killed (stop, set for the write
// in progress).
type outputLimiter struct {
	mu     sync.Mutex
	window int64
	avail  int64
	freed  chan struct{} // closed, and replaced, when bytes are given back
	stop   writeStops
	// cutShort is set when a wait ended before the client acknowledged
	// enough (stop, or the context): the call went without its window.
	cutShort bool
	// waiting counts calls waiting for the client (for tests); a
	// connection's limiter counts those of each of its sinks.
	waiting atomic.Int32
	// conn is the limiter of the connection the sink is on, whose window
	// bounds the bytes in flight on all its sinks together; nil for none.
	conn *outputLimiter
	// reserved is the room reserve took for the next call, which its
	// StartMessage counts it by.
	reserved int64
}

func newOutputLimiter(window int64) *outputLimiter {
	return &outputLimiter{window: window, avail: window, freed: make(chan struct{})}
}

func (l *outputLimiter) setStop(stop writeStops) {
	l.mu.Lock()
	l.stop = stop
	l.mu.Unlock()
}

// reserve waits until the sink's window, and its connection's, have room
// for a call of n bytes, and takes it for the next call, unless room is
// reserved already. go-capnp asks the flow limiter (StartMessage) only
// once it has sent the call, so a call that waited there would be queued
// for the client past the window: the sink's writer reserves first.
func (l *outputLimiter) reserve(ctx context.Context, n int64, stop writeStops) error {
	l.mu.Lock()
	held := l.reserved > 0
	l.mu.Unlock()
	if held {
		return nil
	}
	n = min(n, l.window)
	if err := l.takeBoth(ctx, n, stop); err != nil {
		return err
	}
	l.mu.Lock()
	l.reserved = n
	l.mu.Unlock()
	return nil
}

// takeBoth takes n bytes of the sink's window and then of its
// connection's, or neither.
func (l *outputLimiter) takeBoth(ctx context.Context, n int64, stop writeStops) error {
	err := l.take(ctx, n, stop, l.conn)
	if err == nil && l.conn != nil {
		if err = l.conn.take(ctx, n, stop, nil); err != nil {
			l.give(n)
		}
	}
	return err
}

// StartMessage counts a call sent by the room reserved for it, or if none
// was, waits for room as reserve does.
func (l *outputLimiter) StartMessage(ctx context.Context, size uint64) (gotResponse func(), err error) {
	n := min(int64(size), l.window) // a call larger than the window waits for all of it
	l.mu.Lock()
	stop, reserved := l.stop, l.reserved
	l.reserved = 0
	l.mu.Unlock()
	if reserved > 0 {
		n = reserved
	} else if err = l.takeBoth(ctx, n, stop); err != nil {
		l.mu.Lock()
		l.cutShort = true
		l.mu.Unlock()
		return nil, err
	}
	return func() { l.giveBoth(n) }, nil
}

// unreserve gives back the room reserved and not counted by a call (none
// was sent, or the stream had failed).
func (l *outputLimiter) unreserve() {
	l.mu.Lock()
	n := l.reserved
	l.reserved = 0
	l.mu.Unlock()
	if n > 0 {
		l.giveBoth(n)
	}
}

// giveBoth gives n bytes back to the sink's window and its connection's.
func (l *outputLimiter) giveBoth(n int64) {
	l.give(n)
	if l.conn != nil {
		l.conn.give(n)
	}
}

// take waits until n bytes of the window are free, and takes them; or
// returns why it stopped waiting: ctx ended, or a stop was closed. also,
// if not nil, counts the wait too.
func (l *outputLimiter) take(ctx context.Context, n int64, stop writeStops, also *outputLimiter) error {
	for {
		l.mu.Lock()
		if l.avail >= n {
			l.avail -= n
			l.mu.Unlock()
			return nil
		}
		freed := l.freed
		l.mu.Unlock()
		if err := l.wait(ctx, freed, stop, also); err != nil {
			return err
		}
	}
}

func (l *outputLimiter) wait(ctx context.Context, freed <-chan struct{}, stop writeStops, also *outputLimiter) error {
	l.waiting.Add(1)
	defer l.waiting.Add(-1)
	if also != nil {
		also.waiting.Add(1)
		defer also.waiting.Add(-1)
	}
	select {
	case <-freed:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-stop.revoked:
		return errWriteStopped
	case <-stop.ended:
		return errWriterKilled
	}
}

// takeCutShort reports whether a wait was cut short since it was last
// asked.
func (l *outputLimiter) takeCutShort() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	cut := l.cutShort
	l.cutShort = false
	return cut
}

func (l *outputLimiter) give(n int64) {
	l.mu.Lock()
	l.avail += n
	close(l.freed)
	l.freed = make(chan struct{})
	l.mu.Unlock()
}

func (l *outputLimiter) Release() {}

// finish waits until every call sent has been answered, or ctx ends,
// then releases the sink. A connection shutting down fails the calls it
// has not sent yet only once every call it serves has returned, so a call
// finishing its sink (logs) must stop waiting when it is cancelled.
func (o *outputSink) finish(ctx context.Context) {
	if t := o.take(); o.await(t, writeStops{}) {
		defer o.done(t)
	}
	streamed := make(chan struct{})
	go func() {
		defer close(streamed)
		_ = o.sink.WaitStreaming()
	}()
	select {
	case <-streamed:
	case <-ctx.Done():
	}
	o.sink.Release()
}

// guestServer is a Guest object handed to one client. The object that
// launch returns owns a non-detached guest: when the client releases it
// or disconnects, the guest is killed.
type guestServer struct {
	c        *serverConn
	r        *guestRecord
	owner    bool
	killOnce sync.Once // killForClient's
}

// newGuestClient hands the client a Guest object for r.
func (c *serverConn) newGuestClient(r *guestRecord, owner bool) (schemas.Guest, error) {
	if err := c.takeObject(); err != nil {
		return schemas.Guest{}, err
	}
	s := &guestServer{c: c, r: r, owner: owner}
	if s.kills() {
		c.own(s)
	}
	return schemas.Guest_ServerToClient(s), nil
}

// kills reports whether the object owns a guest that is not detached:
// the client's release of it, or its end, kills the guest.
func (s *guestServer) kills() bool { return s.owner && !s.r.detached }

// Shutdown runs when the client has released the object (or
// disconnected).
func (s *guestServer) Shutdown() {
	s.c.dropObject()
	if s.kills() {
		s.c.disown(s)
		s.killForClient()
	}
}

// killForClient kills the guest, once, if it is still running: its
// client released the owning object, or went away.
func (s *guestServer) killForClient() {
	s.killOnce.Do(func() {
		select {
		case <-s.r.g.Done():
		default:
			if s.c.s.ctx.Err() != nil { // Close ends the connections
				s.c.log.Info("killing guest: the daemon is shutting down", "guest", s.r.g.ID())
				s.r.kill("the daemon is shutting down")
				return
			}
			s.c.log.Info("killing guest: the client that launched it went away", "guest", s.r.g.ID())
			s.r.kill("the launching client disconnected")
		}
	})
}

func (s *guestServer) Info(ctx context.Context, call schemas.Guest_info) error {
	res, err := call.AllocResults()
	if err != nil {
		return err
	}
	i, err := res.NewInfo()
	if err != nil {
		return err
	}
	return fillGuestInfo(i, s.r)
}

// awaitExit waits for the guest to exit. Every write to the attached sink
// was queued on the connection before the guest's write returned, so
// before it exited: a reply sent after this reaches the client after all
// of the output (one connection keeps the order), and need not wait for
// the client to acknowledge it.
func (s *guestServer) awaitExit(ctx context.Context) error {
	select {
	case <-s.r.g.Done():
		return nil
	case <-ctx.Done():
		return fmt.Errorf("waiting for guest %s: %w", s.r.g.ID(), context.Cause(ctx))
	}
}

// statusResults is the results of a call that answers with the guest's
// exit status (wait, kill).
type statusResults interface {
	NewStatus() (schemas.ExitStatus, error)
}

// replyExitStatus waits for the guest to end, then answers the call
// whose results alloc allocates with its exit status.
func replyExitStatus[R statusResults](ctx context.Context, s *guestServer, alloc func() (R, error)) error {
	if err := s.awaitExit(ctx); err != nil {
		return err
	}
	res, err := alloc()
	if err != nil {
		return err
	}
	st, err := res.NewStatus()
	if err != nil {
		return err
	}
	_, status := s.r.g.Status()
	return fillExitStatus(st, status)
}

func (s *guestServer) Wait(ctx context.Context, call schemas.Guest_wait) error {
	call.Go()
	return replyExitStatus(ctx, s, call.AllocResults)
}

func (s *guestServer) Kill(ctx context.Context, call schemas.Guest_kill) error {
	call.Go()
	reason, err := call.Args().Reason()
	if err != nil {
		return err
	}
	if reason == abi.KilledByTimeout {
		// The status of a guest its launch's timeout ended: a kill so
		// recorded would pass for one (wait exits 124).
		return fmt.Errorf("%skill reason %q is what the daemon records when a guest's launch timeout passes: give another reason", reasonRequest, reason)
	}
	if reason == "" {
		reason = "killed"
	}
	reason = clipReason(reason)
	if running, _ := s.r.g.Status(); running {
		s.c.log.Info("killing guest", "guest", s.r.g.ID(), "reason", reason)
	}
	s.r.kill(reason)
	return replyExitStatus(ctx, s, call.AllocResults)
}

func (s *guestServer) Logs(ctx context.Context, call schemas.Guest_logs) error {
	call.Go()
	a := call.Args()
	if !a.HasSink() {
		return errors.New("logs: no sink given")
	}
	sink := newOutputSink(ctx, a.Sink().AddRef(), s.c.output)
	follow := a.Follow()
	q := logQuery{tail: a.Tail(), since: a.Since(), skip: [2]bool{streamStdout: a.SkipStdout(), streamStderr: a.SkipStderr()}}
	off, lost := s.r.output.startAt(q)
	if lost {
		off = 0 // readFrom counts what was dropped
	}
	end := s.r.output.size() // without follow, where the output ends
	var dropped uint64
	var err error
	for {
		// A piece at a time, once there is room to send it: a call
		// waiting for the client holds no copy of the log.
		if sink.lim.reserve(ctx, maxOutputCall+callOverhead, writeStops{}) != nil {
			err = fmt.Errorf("logs of %s: %w", s.r.g.ID(), context.Cause(ctx))
			break
		}
		chunks, next, d, grew, closed := s.r.output.readFrom(off, maxOutputCall)
		dropped += d
		off = next
		for _, ch := range chunks {
			if !q.skip[ch.stream] {
				sink.write(sink.take(), ch.stream, ch.data, ch.time, writeStops{})
			}
		}
		if len(chunks) > 0 && (follow || off < end) {
			continue // there may be more kept already
		}
		sink.lim.unreserve() // not held while waiting for output
		if !follow || closed {
			break
		}
		select {
		case <-grew:
			continue
		case <-ctx.Done():
			err = fmt.Errorf("logs of %s: %w", s.r.g.ID(), context.Cause(ctx))
		case <-s.c.s.ctx.Done():
			// Disconnected, as the connection's end is about to say:
			// the client has lost the daemon, not been refused.
			err = exc.New(exc.Disconnected, "", "logs: the daemon is shutting down")
		}
		break
	}
	sink.finish(ctx)
	if err == nil && ctx.Err() != nil {
		err = fmt.Errorf("logs of %s: %w", s.r.g.ID(), context.Cause(ctx))
	}
	if err != nil {
		return err
	}
	if sink.failed {
		return errors.New("logs: the sink failed to take the output")
	}
	res, err := call.AllocResults()
	if err != nil {
		return err
	}
	res.SetDropped(dropped)
	return nil
}

func (s *guestServer) Caps(ctx context.Context, call schemas.Guest_caps) error {
	entries := s.r.g.Handles()
	pending := s.r.g.Pending()
	res, err := call.AllocResults()
	if err != nil {
		return err
	}
	l, err := res.NewHandles(int32(len(entries) + len(pending)))
	if err != nil {
		return err
	}
	for i, e := range entries {
		if err := fillHandle(l.At(i), e.FD, e.Cap, s.c.auth); err != nil {
			return err
		}
	}
	for i, c := range pending {
		h := l.At(len(entries) + i)
		h.SetPending(true)
		if err := fillHandle(h, 0, c, s.c.auth); err != nil {
			return err
		}
	}
	return nil
}

func (s *guestServer) Handle(ctx context.Context, call schemas.Guest_handle) error {
	fd := call.Args().Fd()
	var found *caps.Cap
	for _, e := range s.r.g.Handles() {
		if e.FD == fd {
			found = e.Cap
			break
		}
	}
	if found == nil {
		if running, _ := s.r.g.Status(); !running {
			return fmt.Errorf("guest %s has exited: its handles are closed", s.r.g.ID())
		}
		return fmt.Errorf("guest %s has no handle %d: list them with `sandboxd caps %s`", s.r.g.ID(), fd, s.r.g.ID())
	}
	return returnCap(s.c, call.AllocResults, found, false, false)
}

func (s *guestServer) Grant(ctx context.Context, call schemas.Guest_grant) error {
	call.Go()
	text, err := call.Args().Grant()
	if err != nil {
		return err
	}
	gr, err := s.c.parseGrant(text)
	if err != nil {
		return grantFailure(err)
	}
	if running, _ := s.r.g.Status(); !running {
		return fmt.Errorf("guest %s has exited: %v", s.r.g.ID(), daemon.ErrGuestEnded)
	}
	c, err := s.grant(ctx, gr)
	if errors.Is(err, daemon.ErrGuestEnded) {
		return err // it exited meanwhile: the grant itself was fine
	}
	if err != nil {
		return grantFailure(err)
	}
	s.c.log.Debug("granted to running guest", "guest", s.r.g.ID(), "grant", gr.String(), "cap", c.ID())
	res, err := call.AllocResults()
	if err != nil {
		return err
	}
	info, err := res.NewInfo()
	if err != nil {
		return err
	}
	return fillCapInfo(info, c, s.c.auth)
}

// grant sets up gr, or copies the capability a cap: grant names, and
// sends it to the guest.
func (s *guestServer) grant(ctx context.Context, gr daemon.Grant) (*caps.Cap, error) {
	var c *caps.Cap
	if gr.Kind == daemon.GrantCap {
		from, err := s.c.lookupOwnedCap(gr.Source)
		if err != nil {
			return nil, &daemon.GrantError{Grant: gr, Err: err}
		}
		if c, err = s.r.g.Delegate(ctx, capDelegation(from, gr)); err != nil {
			return nil, &daemon.GrantError{Grant: gr, Err: err}
		}
		return c, nil
	}
	return s.r.g.Grant(ctx, s.c.principal, gr)
}

// forget drops the record of an ended guest the Supervisor has forgotten,
// and frees its name.
func (s *Server) forget(r *guestRecord) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := r.g.ID()
	delete(s.records, id)
	if r.name != "" {
		delete(s.names, r.name)
	}
	uid := r.g.Principal().UID
	if s.exited[uid] = slices.DeleteFunc(s.exited[uid], func(e string) bool { return e == id }); len(s.exited[uid]) == 0 {
		delete(s.exited, uid)
	}
}
