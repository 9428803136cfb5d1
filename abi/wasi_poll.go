package abi

import (
	"encoding/binary"
	"math"
	"time"

	"github.com/sandboxd/sandboxd/caps"
	"github.com/tetratelabs/wazero/api"
)

// wasiPollOneoff is poll with WASI's 48-byte subscriptions, 32-byte
// events and renumbered clocks and event types; the waiting is the native
// poll's (Guest.pollSubs), so both ABIs wait the same way.
//
// A subscription that cannot be waited on (bad fd, missing right, unknown
// clock or type) is ready at once with its error in event.error, as WASI
// specifies. Handles that do not implement caps.Pollable (regular files,
// stdio, directories) are always ready, as POSIX poll reports regular
// files. The wait parks one goroutine and ends when a polled resource may
// have become ready, the earliest clock expires, a polled handle is
// revoked (its event then carries ENOTCAPABLE), or the guest is killed
// (the guest unwinds).
func wasiPollOneoff(g *Guest, m api.Memory, p []uint64) Errno {
	in, out, nsubscriptions, neventsOut := uint32(p[0]), uint32(p[1]), uint32(p[2]), uint32(p[3])
	raw, e := pollArgs(m, in, out, nsubscriptions, neventsOut, wasiSubscriptionSize, wasiEventSize)
	if e != 0 {
		return e
	}
	subs := make([]pollSub, nsubscriptions)
	tags := make([]uint8, nsubscriptions)
	defer releasePolled(subs)
	now := monotonicNow()
	for i := range subs {
		s, b := &subs[i], raw[i*wasiSubscriptionSize:]
		s.userdata = binary.LittleEndian.Uint64(b[0:])
		tags[i] = b[8]
		switch tags[i] {
		case wasiEventtypeClock:
			s.typ = eventtypeClock
			id := cloudClockOfWASI(binary.LittleEndian.Uint32(b[16:]))
			if id == 0 {
				s.errno = caps.EINVAL
				continue
			}
			s.deadline, s.errno = clockDeadline(g, now, id,
				binary.LittleEndian.Uint64(b[24:]), binary.LittleEndian.Uint16(b[40:]))
		case wasiEventtypeFDRead:
			s.typ = eventtypeFDRead
			s.acquire(g, binary.LittleEndian.Uint32(b[16:]), caps.RightPollFDReadwrite, caps.EventRead)
		case wasiEventtypeFDWrite:
			s.typ = eventtypeFDWrite
			s.acquire(g, binary.LittleEndian.Uint32(b[16:]), caps.RightPollFDReadwrite, caps.EventWrite)
		default:
			s.errno = caps.EINVAL
		}
	}
	res := g.pollSubs(subs)

	buf, e := read(m, out, nsubscriptions*wasiEventSize)
	if e != 0 {
		return e
	}
	k := 0
	for i := range subs {
		s, r := &subs[i], &res[i]
		if s.errno == 0 && !r.ready {
			continue
		}
		var ev [wasiEventSize]byte
		binary.LittleEndian.PutUint64(ev[0:], s.userdata)
		binary.LittleEndian.PutUint16(ev[8:], uint16(s.errno))
		ev[10] = tags[i]
		if s.errno == 0 && s.typ != eventtypeClock {
			binary.LittleEndian.PutUint64(ev[16:], r.nbytes)
			if r.hangup {
				binary.LittleEndian.PutUint16(ev[24:], wasiEventFDReadHangup)
			}
		}
		copy(buf[k*wasiEventSize:], ev[:])
		k++
	}
	return writeU32(m, neventsOut, uint32(k))
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
	g.park()
	defer g.unpark()
	select {
	case <-g.waiter.C():
	case <-timeout:
	case <-g.ctx.Done():
		g.killed()
	}
}
