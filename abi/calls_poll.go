package abi

import (
	"encoding/binary"
	"io"
	"math"

	"github.com/sandboxd/sandboxd/caps"
	"github.com/tetratelabs/wazero/api"
)

// wasm32 layouts of poll's structures (CloudABI cloudabi_types_common.h).
const (
	subscriptionSize = 56
	eventSize        = 32

	// MaxPollSubscriptions bounds one poll call: the host decodes and
	// tracks every subscription for the duration of the call.
	MaxPollSubscriptions = 4096
)

// CloudABI event types, clock flags and event flags.
const (
	eventtypeClock         = 1
	eventtypeCondvar       = 2
	eventtypeFDRead        = 3
	eventtypeFDWrite       = 4
	eventtypeLockRdlock    = 5
	eventtypeLockWrlock    = 6
	eventtypeProcTerminate = 7

	subscriptionClockAbstime = 0x1
	eventFDReadwriteHangup   = 0x1
)

// pollSub is one subscription being waited on, in terms independent of
// any ABI's layout.
type pollSub struct {
	userdata uint64
	typ      uint8 // CloudABI eventtype
	errno    Errno // set when the subscription fails: it is then ready at once

	deadline int64 // clock: on the monotonic clock of clockNow, in ns

	c    *caps.Cap     // fd and process subscriptions, acquired for the call
	pl   caps.Pollable // nil when the resource is always ready
	want caps.Events
	hfd  int32 // the host descriptor of a caps.HostPollable, -1 otherwise
}

// pollResult is what one subscription reports.
type pollResult struct {
	ready    bool
	hangup   bool
	nbytes   uint64
	signal   uint8
	exitcode uint32
}

// poll waits until at least one subscription is ready and reports every
// one that is, in subscription order.
//
// A subscription that cannot be waited on (bad handle, missing right,
// unknown clock, unsupported type) is reported at once with its error in
// event.error: EBADF, ENOTCAPABLE, EINVAL; condvar and lock subscriptions
// get ENOSYS, since a guest without shared memory has one thread and
// waits on memory with wasm atomics. Resources that are not caps.Pollable
// (regular files, stdio, directories) are always ready, as POSIX poll
// reports regular files.
//
// The wait parks one goroutine: the guest's Waiter is registered with
// every polled resource and with the revocation of every polled handle,
// one timer stands for the earliest clock, and the guest's context ends
// the wait when the guest is killed or its deadline passes (the guest then
// unwinds). A handle revoked during the wait is reported with ENOTCAPABLE.
func poll(g *Guest, m api.Memory, p []uint64) Errno {
	in, out, nsubscriptions, neventsOut := uint32(p[0]), uint32(p[1]), uint32(p[2]), uint32(p[3])
	raw, e := pollArgs(m, in, out, nsubscriptions, neventsOut, subscriptionSize, eventSize)
	if e != 0 {
		return e
	}
	subs := make([]pollSub, nsubscriptions)
	defer releasePolled(subs)
	now := monotonicNow()
	for i := range subs {
		decodeSubscription(g, &subs[i], raw[i*subscriptionSize:(i+1)*subscriptionSize], now)
	}
	res := g.pollSubs(subs)
	return writeEvents(m, subs, res, out, neventsOut)
}

// pollArgs checks the arguments both ABIs' poll calls share before
// anything waits: a subscription count in 1..MaxPollSubscriptions, and the
// subscriptions, the events buffer and the count output all in bounds. It
// returns the raw subscriptions.
func pollArgs(m api.Memory, in, out, n, nOut, subSize, evSize uint32) ([]byte, Errno) {
	if n == 0 || n > MaxPollSubscriptions {
		return nil, caps.EINVAL
	}
	raw, e := read(m, in, n*subSize)
	if e != 0 {
		return nil, e
	}
	if _, e := read(m, out, n*evSize); e != 0 {
		return nil, e
	}
	if _, e := read(m, nOut, 4); e != 0 {
		return nil, e
	}
	return raw, 0
}

// decodeSubscription reads one 56-byte subscription and acquires the
// handle it names.
func decodeSubscription(g *Guest, s *pollSub, b []byte, now int64) {
	s.userdata = binary.LittleEndian.Uint64(b[0:])
	s.typ = b[10]
	switch s.typ {
	case eventtypeClock:
		s.deadline, s.errno = clockDeadline(g, now,
			binary.LittleEndian.Uint32(b[24:]), binary.LittleEndian.Uint64(b[32:]),
			binary.LittleEndian.Uint16(b[48:]))
	case eventtypeFDRead, eventtypeFDWrite:
		fd := binary.LittleEndian.Uint32(b[16:])
		if s.typ == eventtypeFDWrite {
			s.acquire(g, fd, caps.RightPollFDReadwrite|caps.RightFDWrite, caps.EventWrite)
			break
		}
		// The read right is the resource's (readRight): looked up on the
		// capability acquired, not in the table a second time.
		if s.acquire(g, fd, caps.RightPollFDReadwrite, caps.EventRead); s.errno == 0 {
			if b, _ := s.c.Rights(); b&readRight(s.c) == 0 {
				s.c.Release()
				s.c, s.pl, s.hfd, s.errno = nil, nil, -1, caps.ENOTCAPABLE
			}
		}
	case eventtypeProcTerminate:
		// The kind is checked before the right, which no other kind of
		// handle can hold: a handle that is not a process is EINVAL, as
		// docs/ABI.md says, not a missing right.
		s.acquire(g, binary.LittleEndian.Uint32(b[16:]), 0, caps.EventRead)
		if s.errno != 0 {
			break
		}
		if _, ok := s.c.Resource().(*process); !ok {
			s.errno = caps.EINVAL
		} else if err := s.c.Check(caps.RightPollProcTerminate, 0); err != nil {
			s.errno = caps.ErrnoOf(err)
		}
	case eventtypeCondvar, eventtypeLockRdlock, eventtypeLockWrlock:
		s.errno = caps.ENOSYS
	default:
		s.errno = caps.EINVAL
	}
}

// readRight is the right an fd_read subscription on c needs besides
// poll_fd_readwrite: fd_read, or on a listener or dialer, which has
// nothing to read and is readable when a connection can be taken,
// sock_accept.
func readRight(c *caps.Cap) caps.Rights {
	if _, ok := c.Resource().(caps.Acceptor); ok {
		return caps.RightSockAccept
	}
	return caps.RightFDRead
}

func (s *pollSub) acquire(g *Guest, fd uint32, need caps.Rights, want caps.Events) {
	c, e := g.acquire(fd, need)
	if e != 0 {
		s.errno = e
		return
	}
	s.c, s.want = c, want
	s.pl, _ = c.Resource().(caps.Pollable)
	s.hfd = -1
	if hp, ok := s.pl.(caps.HostPollable); ok {
		if fd, ok := hp.PollFD(); ok {
			s.hfd = int32(fd)
		}
	}
}

func releasePolled(subs []pollSub) {
	for i := range subs {
		if subs[i].c != nil {
			subs[i].c.Release()
		}
	}
}

// clockDeadline converts a clock subscription (CloudABI clock id) to a
// deadline on the monotonic clock. Relative timeouts count from now;
// absolute ones are converted through the named clock's current reading,
// once, so a later step of the realtime clock does not move the deadline.
// Arithmetic saturates: a huge timeout means "never".
func clockDeadline(g *Guest, now int64, id uint32, timeout uint64, flags uint16) (int64, Errno) {
	if flags&^subscriptionClockAbstime != 0 {
		return 0, caps.EINVAL
	}
	cur, e := clockNow(g, id)
	if e != 0 {
		return 0, e
	}
	rel := timeout
	if flags&subscriptionClockAbstime != 0 {
		if timeout <= cur {
			return now, 0
		}
		rel = timeout - cur
	}
	if rel > uint64(math.MaxInt64-now) {
		return math.MaxInt64, 0
	}
	return now + int64(rel), 0
}

// pollSubs blocks until at least one subscription is ready (or failed) and
// returns what each reports. It is the one waiting loop behind poll; the
// handles in subs stay acquired by the caller for the call, so revoking
// one waits until this loop has woken and the call let go.
//
// Host descriptors (sockets, listeners) are looked at together, with one
// poll(2), and waited on together through the guest's hostPoller; other
// pollable resources each register the guest's Waiter.
func (g *Guest) pollSubs(subs []pollSub) []pollResult {
	pc := g.newPollCall(subs)
	defer pc.cancelAll() // also when a kill unwinds the guest from pollWait
	for {
		now := monotonicNow()
		pc.cancelAll()
		nready, earliest := pc.pass(now)
		if nready > 0 {
			for i := range subs {
				if pc.res[i].ready {
					subs[i].report(&pc.res[i])
				}
			}
			return pc.res
		}
		if len(pc.hs) > 0 {
			pc.armHost()
		}
		g.pollWait(pc.held, earliest-now)
	}
}

// pollCall is one poll call's subscriptions, what they report, and what
// the current pass registered to wake the guest.
type pollCall struct {
	g    *Guest
	subs []pollSub
	res  []pollResult
	held []*caps.Cap // the handles the wait watches for revocation

	// hs are the subscriptions on host descriptors, in subscription
	// order, waited on through hp; hostAt[i] is subs[i]'s index in hs, or
	// -1. hs is nil when there are none or the guest has no hostPoller.
	hp     *hostPoller
	hs     []hostSub
	hostAt []int
	failed []bool

	cancels []func()
}

func (g *Guest) newPollCall(subs []pollSub) *pollCall {
	pc := &pollCall{g: g, subs: subs, res: make([]pollResult, len(subs))}
	for i := range subs {
		s := &subs[i]
		if s.c == nil {
			continue
		}
		pc.held = append(pc.held, s.c)
		if s.errno != 0 || s.hfd < 0 || s.typ == eventtypeProcTerminate {
			continue
		}
		if pc.hostAt == nil {
			if pc.hp = g.hostPoller(); pc.hp == nil {
				continue // no poller: each waits on its own (Poll)
			}
			pc.hostAt = make([]int, len(subs))
			for j := range pc.hostAt {
				pc.hostAt[j] = -1
			}
		}
		pc.hostAt[i] = len(pc.hs)
		pc.hs = append(pc.hs, hostSub{fd: s.hfd, res: s.c.Resource(), want: s.want})
	}
	return pc
}

func (pc *pollCall) cancelAll() {
	for _, cancel := range pc.cancels {
		cancel()
	}
	pc.cancels = pc.cancels[:0]
}

// pass looks at every subscription once: how many are ready (or failed),
// and the earliest deadline of the clocks that are not.
func (pc *pollCall) pass(now int64) (nready int, earliest int64) {
	earliest = math.MaxInt64
	if len(pc.hs) > 0 {
		pc.hp.check(pc.hs)
	}
	for i := range pc.subs {
		// Register only while nothing is ready: once something is, the
		// call returns without waiting.
		ready, deadline := pc.look(i, now, nready == 0)
		if ready {
			nready++
		}
		earliest = min(earliest, deadline)
	}
	return nready, earliest
}

// look reports whether subs[i] is ready (or failed), filling in its
// result, and the deadline of a clock still to come (MaxInt64 otherwise).
// A pollable resource that is not a host descriptor gets the guest's
// Waiter registered when register is set.
func (pc *pollCall) look(i int, now int64, register bool) (bool, int64) {
	s, r := &pc.subs[i], &pc.res[i]
	switch {
	case s.errno != 0:
		return true, math.MaxInt64
	case s.typ == eventtypeClock:
		if s.deadline > now {
			return false, s.deadline
		}
		r.ready = true
		return true, math.MaxInt64
	case s.c.Revoked():
		s.errno = caps.ENOTCAPABLE
		return true, math.MaxInt64
	case s.pl == nil:
		r.ready = true
		return true, math.MaxInt64
	}
	var ev caps.Events
	if pc.hs != nil && pc.hostAt[i] >= 0 {
		ev = pc.hs[pc.hostAt[i]].ready
	} else {
		var w *caps.Waiter
		if register {
			w = pc.g.waiter
		}
		var cancel func()
		ev, cancel = s.pl.Poll(s.want, w)
		pc.cancels = append(pc.cancels, cancel)
	}
	if ev == 0 {
		return false, math.MaxInt64
	}
	r.ready = true
	r.hangup = ev&caps.EventHangup != 0
	return true, math.MaxInt64
}

// armHost registers the host descriptors with the guest's hostPoller and
// starts its watcher; a descriptor that cannot be registered waits on its
// own (Poll).
func (pc *pollCall) armHost() {
	pc.failed = pc.hp.arm(pc.hs, pc.failed)
	for i := range pc.subs {
		if k := pc.hostAt[i]; k >= 0 && pc.failed[k] {
			ev, cancel := pc.subs[i].pl.Poll(pc.subs[i].want, pc.g.waiter)
			pc.cancels = append(pc.cancels, cancel)
			if ev != 0 {
				pc.g.waiter.Wake() // ready since check: look again
			}
		}
	}
	pc.cancels = append(pc.cancels, pc.hp.watch(pc.g.waiter))
}

// report fills in what a ready subscription says about its object: the
// exit of a process, or the bytes left to read in a file.
func (s *pollSub) report(r *pollResult) {
	switch {
	case s.typ == eventtypeProcTerminate:
		r.signal, r.exitcode = s.c.Resource().(*process).termination()
	case s.typ == eventtypeFDRead && hasBytesLeft(s):
		r.nbytes = bytesLeft(s.c.Resource())
	}
}

// hasBytesLeft reports whether an fd_read event on s counts the bytes
// left to read: on an object that is always ready with an end to read
// to, a file (not pollable) or a byte object (pollable, and always
// ready), rather than a stream's.
func hasBytesLeft(s *pollSub) bool {
	if s.pl == nil {
		return true
	}
	_, ok := s.c.Resource().(*caps.ByteObject)
	return ok
}

// bytesLeft is event.nbytes for an always-ready resource: what remains to
// read past its offset for a file or byte object, 0 (unknown) otherwise.
func bytesLeft(res caps.Resource) uint64 {
	pos, ok1 := res.(caps.Positional)
	st, ok2 := res.(caps.Stater)
	if !ok1 || !ok2 {
		return 0
	}
	off, err := pos.Seek(0, io.SeekCurrent)
	if err != nil || off < 0 {
		return 0
	}
	fs, err := st.Stat()
	if err != nil || fs.Size < uint64(off) {
		return 0
	}
	return fs.Size - uint64(off)
}

// writeEvents writes one 32-byte event per ready or failed subscription,
// in subscription order, and their count.
func writeEvents(m api.Memory, subs []pollSub, res []pollResult, out, nOut uint32) Errno {
	buf, e := read(m, out, uint32(len(subs))*eventSize)
	if e != 0 {
		return e
	}
	k := 0
	for i := range subs {
		s, r := &subs[i], &res[i]
		if s.errno == 0 && !r.ready {
			continue
		}
		var ev [eventSize]byte
		binary.LittleEndian.PutUint64(ev[0:], s.userdata)
		binary.LittleEndian.PutUint16(ev[8:], uint16(s.errno))
		ev[10] = s.typ
		if s.errno == 0 {
			switch s.typ {
			case eventtypeFDRead, eventtypeFDWrite:
				binary.LittleEndian.PutUint64(ev[16:], r.nbytes)
				if r.hangup {
					binary.LittleEndian.PutUint16(ev[28:], eventFDReadwriteHangup)
				}
			case eventtypeProcTerminate:
				ev[20] = r.signal
				binary.LittleEndian.PutUint32(ev[24:], r.exitcode)
			}
		}
		copy(buf[k*eventSize:], ev[:])
		k++
	}
	return writeU32(m, nOut, uint32(k))
}
