package abi

import (
	"encoding/binary"
	"io"
	"math"
	"time"

	"github.com/sandboxd/sandboxd/caps"
	"github.com/tetratelabs/wazero/api"
)

// wasiPollSub is one decoded subscription of poll_oneoff.
type wasiPollSub struct {
	userdata uint64
	typ      uint8
	errno    Errno

	deadline int64 // clock: monotonic ns (clockNow's monotonic clock)

	c    *caps.Cap     // fd: acquired for the whole call
	pl   caps.Pollable // fd: nil when the resource is always ready
	want caps.Events
}

// wasiPollOneoff waits until at least one subscription is ready and
// reports every one that is.
//
// A subscription that cannot be waited on (bad fd, missing right, unknown
// clock or type) is ready at once with its error in event.error, as WASI
// specifies. Handles that do not implement caps.Pollable (regular files,
// stdio, directories) are always ready, as POSIX poll reports regular
// files. The wait parks one goroutine on the guest's Waiter and ends when
// a polled resource may have become ready, the earliest clock expires, a
// polled handle is revoked (its event then carries ENOTCAPABLE), or the
// guest is killed (the guest unwinds). Polled handles stay acquired for
// the call, so revoking one waits until the poll has woken and let go.
func wasiPollOneoff(g *Guest, m api.Memory, p []uint64) Errno {
	in, out, n, nOut := uint32(p[0]), uint32(p[1]), uint32(p[2]), uint32(p[3])
	if n == 0 || n > wasiMaxSubscriptions {
		return caps.EINVAL
	}
	raw, e := read(m, in, n*wasiSubscriptionSize)
	if e != 0 {
		return e
	}
	if _, e := read(m, out, n*wasiEventSize); e != 0 {
		return e
	}
	if _, e := read(m, nOut, 4); e != 0 {
		return e
	}

	subs := make([]wasiPollSub, n)
	var held []*caps.Cap
	defer func() {
		for _, c := range held {
			c.Release()
		}
	}()
	now, _ := clockNow(g, clockMonotonic)
	for i := range subs {
		s := &subs[i]
		b := raw[i*wasiSubscriptionSize:]
		s.userdata = binary.LittleEndian.Uint64(b[0:])
		s.typ = b[8]
		switch s.typ {
		case wasiEventtypeClock:
			s.deadline, s.errno = wasiClockDeadline(g, int64(now),
				binary.LittleEndian.Uint32(b[16:]), binary.LittleEndian.Uint64(b[24:]),
				binary.LittleEndian.Uint16(b[40:]))
		case wasiEventtypeFDRead, wasiEventtypeFDWrite:
			need, want := caps.RightPollFDReadwrite|caps.RightFDRead, caps.EventRead
			if s.typ == wasiEventtypeFDWrite {
				need, want = caps.RightPollFDReadwrite|caps.RightFDWrite, caps.EventWrite
			}
			c, err := g.table.Acquire(binary.LittleEndian.Uint32(b[16:]), need, 0)
			if err != nil {
				s.errno = caps.ErrnoOf(err)
				continue
			}
			held = append(held, c)
			s.c, s.want = c, want
			s.pl, _ = c.Resource().(caps.Pollable)
		default:
			s.errno = caps.EINVAL
		}
	}

	ready := make([]caps.Events, n)
	var cancels []func()
	for {
		now, _ := clockNow(g, clockMonotonic)
		nready := 0
		earliest := int64(math.MaxInt64)
		cancels = cancels[:0]
		for i := range subs {
			s := &subs[i]
			switch {
			case s.errno != 0:
				nready++
			case s.typ == wasiEventtypeClock:
				if s.deadline <= int64(now) {
					ready[i] = caps.EventRead
					nready++
				} else {
					earliest = min(earliest, s.deadline)
				}
			case s.c.Revoked():
				s.errno = caps.ENOTCAPABLE
				nready++
			case s.pl == nil:
				ready[i] = s.want
				nready++
			default:
				// Register only while nothing is ready yet: once one
				// event is, the call returns without waiting.
				var w *caps.Waiter
				if nready == 0 {
					w = g.waiter
				}
				ev, cancel := s.pl.Poll(s.want, w)
				cancels = append(cancels, cancel)
				if ev != 0 {
					ready[i] = ev
					nready++
				}
			}
		}
		if nready > 0 {
			for _, cancel := range cancels {
				cancel()
			}
			return wasiWriteEvents(m, subs, ready, out, nOut)
		}
		g.pollWait(held, earliest-int64(now))
		for _, cancel := range cancels {
			cancel()
		}
	}
}

// pollWait blocks until the guest's waiter fires, d nanoseconds pass (no
// limit when d is MaxInt64-ish), one of cs is revoked, or the guest is
// killed (then it unwinds the guest and does not return). Revocation
// reaches the same waiter through Cap.WatchRevoke, so one select serves
// any number of handles.
func (g *Guest) pollWait(cs []*caps.Cap, d int64) {
	for _, c := range cs {
		defer c.WatchRevoke(g.waiter)()
	}
	var timeout <-chan time.Time
	if d < math.MaxInt64/2 {
		t := time.NewTimer(time.Duration(d))
		defer t.Stop()
		timeout = t.C
	}
	select {
	case <-g.waiter.C():
	case <-timeout:
	case <-g.ctx.Done():
		g.killed()
	}
}

// wasiClockDeadline converts a clock subscription to a deadline on the
// monotonic clock. Relative timeouts count from now; absolute ones are
// converted through the named clock's current reading. Arithmetic
// saturates, so huge timeouts mean "never" rather than overflow.
func wasiClockDeadline(g *Guest, now int64, id uint32, timeout uint64, flags uint16) (int64, Errno) {
	cid := cloudClockOfWASI(id)
	if cid == 0 {
		return 0, caps.EINVAL
	}
	if flags&^wasiSubclockAbstime != 0 {
		return 0, caps.EINVAL
	}
	rel := timeout
	if flags&wasiSubclockAbstime != 0 {
		cur, e := clockNow(g, cid)
		if e != 0 {
			return 0, e
		}
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

// wasiWriteEvents writes one event per ready subscription, in
// subscription order.
func wasiWriteEvents(m api.Memory, subs []wasiPollSub, ready []caps.Events, out, nOut uint32) Errno {
	buf, e := read(m, out, uint32(len(subs))*wasiEventSize)
	if e != 0 {
		return e
	}
	k := 0
	for i := range subs {
		s := &subs[i]
		if s.errno == 0 && ready[i] == 0 {
			continue
		}
		var ev [wasiEventSize]byte
		binary.LittleEndian.PutUint64(ev[0:], s.userdata)
		binary.LittleEndian.PutUint16(ev[8:], uint16(s.errno))
		ev[10] = s.typ
		if s.errno == 0 && s.typ != wasiEventtypeClock {
			binary.LittleEndian.PutUint64(ev[16:], wasiBytesAvailable(s))
			if ready[i]&caps.EventHangup != 0 {
				binary.LittleEndian.PutUint16(ev[24:], wasiEventFDReadHangup)
			}
		}
		copy(buf[k*wasiEventSize:], ev[:])
		k++
	}
	return writeU32(m, nOut, uint32(k))
}

// wasiBytesAvailable is event.nbytes: for a file, what remains to read
// past its offset; for anything else, 0 (unknown), which the libraries
// that consume it treat as "ready".
func wasiBytesAvailable(s *wasiPollSub) uint64 {
	if s.want != caps.EventRead || s.pl != nil {
		return 0
	}
	pos, ok := s.c.Resource().(caps.Positional)
	st, ok2 := s.c.Resource().(caps.Stater)
	if !ok || !ok2 {
		return 0
	}
	off, err := pos.Seek(0, io.SeekCurrent)
	if err != nil {
		return 0
	}
	fs, err := st.Stat()
	if err != nil || fs.Size < uint64(off) {
		return 0
	}
	return fs.Size - uint64(off)
}
