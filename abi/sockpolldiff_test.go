package abi

import (
	"encoding/binary"
	"math"
	"net"
	"os"
	"testing"

	"github.com/sandboxd/sandboxd/caps"
	"golang.org/x/sys/unix"
)

// Poll on granted sockets, in both ABIs, against what poll(2) does with
// the same subscriptions where Linux has them.

// pollTestSub is one subscription, in terms both ABIs share: typ is the
// native event type, clock the native clock id.
type pollTestSub struct {
	ud        uint64
	typ       uint8
	fd        uint32
	clock     uint32
	timeout   uint64
	precision uint64
	abs       bool
}

// pollTestEvent is what one event says.
type pollTestEvent struct {
	ud     uint64
	errno  caps.Errno
	typ    uint8 // the native event type
	hangup bool
}

const (
	pollTestIn  = 1024
	pollTestOut = 16384
)

// putSubs writes subs, at in, in the layout of the native ABI or WASI's.
func putSubs(p *sbxSock, wasi bool, subs []pollTestSub, in uint32) {
	size := subscriptionSize
	if wasi {
		size = wasiSubscriptionSize
	}
	buf := make([]byte, len(subs)*size)
	for i, s := range subs {
		b := buf[i*size:]
		binary.LittleEndian.PutUint64(b[0:], s.ud)
		var flags uint16
		if s.abs {
			flags = subscriptionClockAbstime
		}
		if wasi {
			b[8] = map[uint8]uint8{eventtypeClock: wasiEventtypeClock, eventtypeFDRead: wasiEventtypeFDRead, eventtypeFDWrite: wasiEventtypeFDWrite}[s.typ]
			binary.LittleEndian.PutUint32(b[16:], s.fd)
			if s.typ == eventtypeClock {
				binary.LittleEndian.PutUint32(b[16:], map[uint32]uint32{1: 1, 3: 0}[s.clock])
				binary.LittleEndian.PutUint64(b[24:], s.timeout)
				binary.LittleEndian.PutUint64(b[32:], s.precision)
				binary.LittleEndian.PutUint16(b[40:], flags)
			}
			continue
		}
		b[10] = s.typ
		binary.LittleEndian.PutUint32(b[16:], s.fd)
		if s.typ == eventtypeClock {
			binary.LittleEndian.PutUint64(b[16:], 0)
			binary.LittleEndian.PutUint32(b[24:], s.clock)
			binary.LittleEndian.PutUint64(b[32:], s.timeout)
			binary.LittleEndian.PutUint64(b[40:], s.precision)
			binary.LittleEndian.PutUint16(b[48:], flags)
		}
	}
	p.m.Write(in, buf)
}

// pollSubsCall polls subs through the native poll or WASI's poll_oneoff
// and returns the errno and the events.
func pollSubsCall(t testing.TB, p *sbxSock, wasi bool, n uint32, subs []pollTestSub) (caps.Errno, []pollTestEvent) {
	if n != uint32(len(subs)) {
		putSubs(p, wasi, subs, pollTestIn)
		return pollCallAt(t, p, wasi, n, pollTestIn, pollTestOut)
	}
	return pollSubsCallAt(t, p, wasi, subs, pollTestIn, pollTestOut)
}

// pollSubsCallAt is pollSubsCall with the subscriptions at in and the
// events at out.
func pollSubsCallAt(t testing.TB, p *sbxSock, wasi bool, subs []pollTestSub, in, out uint32) (caps.Errno, []pollTestEvent) {
	putSubs(p, wasi, subs, in)
	return pollCallAt(t, p, wasi, uint32(len(subs)), in, out)
}

// pollCallAt polls n subscriptions at in, with room for the events at out.
func pollCallAt(t testing.TB, p *sbxSock, wasi bool, n, in, out uint32) (caps.Errno, []pollTestEvent) {
	p.put32(sbxOut, 0xdead)
	fn := poll
	if wasi {
		fn = wasiPollOneoff
	}
	e := p.call(t, fn, uint64(in), uint64(out), uint64(n), sbxOut)
	if e != 0 {
		if got := p.get32(sbxOut); got != 0xdead {
			t.Fatalf("poll failed with errno %d and wrote nevents %d", e, got)
		}
		return e, nil
	}
	var evs []pollTestEvent
	for i := range p.get32(sbxOut) {
		b, _ := p.m.Read(out+uint32(i*eventSize), eventSize)
		ev := pollTestEvent{ud: binary.LittleEndian.Uint64(b[0:]), errno: caps.Errno(binary.LittleEndian.Uint16(b[8:]))}
		if wasi {
			ev.typ = map[uint8]uint8{wasiEventtypeClock: eventtypeClock, wasiEventtypeFDRead: eventtypeFDRead, wasiEventtypeFDWrite: eventtypeFDWrite}[b[10]]
			ev.hangup = binary.LittleEndian.Uint16(b[24:])&wasiEventFDReadHangup != 0
		} else {
			ev.typ = b[10]
			ev.hangup = binary.LittleEndian.Uint16(b[28:])&eventFDReadwriteHangup != 0
		}
		evs = append(evs, ev)
	}
	return 0, evs
}

func sameEvents(a, b []pollTestEvent) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// The same socket polled twice for reading is reported twice once data
// comes, each event with its own userdata, as poll(2) reports an fd listed
// twice in both entries; a clock that never expires is not.
func TestSockPollSameSocketTwice(t *testing.T) {
	env := newFuzzEnv(t)
	for _, wasi := range []bool{false, true} {
		p := newSbxSock(t, env, "tcp")
		subs := []pollTestSub{
			{ud: 0x1111_2222_3333_4444, typ: eventtypeFDRead, fd: p.own},
			{ud: math.MaxUint64, typ: eventtypeFDRead, fd: p.own},
			{ud: 7, typ: eventtypeClock, clock: 1, timeout: math.MaxUint64},
		}
		waits, _ := p.g.Blocked()
		done := make(chan struct{})
		var e caps.Errno
		var evs []pollTestEvent
		go func() {
			defer close(done)
			e, evs = pollSubsCall(t, p, wasi, 3, subs)
		}()
		if !awaitParked(t, p.g, waits, done) {
			t.Fatalf("wasi %v: poll on an idle socket returned at once: errno %d, %+v", wasi, e, evs)
		}
		if _, err := unix.Write(p.peer, []byte("x")); err != nil {
			t.Fatal(err)
		}
		<-done
		want := []pollTestEvent{{ud: subs[0].ud, typ: eventtypeFDRead}, {ud: subs[1].ud, typ: eventtypeFDRead}}
		if e != 0 || !sameEvents(evs, want) {
			t.Fatalf("wasi %v: errno %d, events %+v, want %+v", wasi, e, evs, want)
		}
		p.close()
	}
}

// Clocks: a relative timeout of 0, an absolute time in the past (on the
// realtime and the monotonic clock) expire at once, whatever the
// precision; a huge relative or absolute timeout never does.
func TestSockPollClocksPastZeroAndHuge(t *testing.T) {
	env := newFuzzEnv(t)
	for _, wasi := range []bool{false, true} {
		p := newSbxSock(t, env, "unix")
		subs := []pollTestSub{
			{ud: 1, typ: eventtypeClock, clock: 1, timeout: 0, precision: math.MaxUint64},
			{ud: 2, typ: eventtypeClock, clock: 3, timeout: 1, abs: true},
			{ud: 3, typ: eventtypeClock, clock: 1, timeout: math.MaxUint64},
			{ud: 4, typ: eventtypeClock, clock: 3, timeout: math.MaxUint64, abs: true},
			{ud: 5, typ: eventtypeClock, clock: 1, timeout: 0, abs: true},
			{ud: 6, typ: eventtypeClock, clock: 1, timeout: math.MaxInt64 + 1},
		}
		e, evs := pollSubsCall(t, p, wasi, uint32(len(subs)), subs)
		want := []pollTestEvent{{ud: 1, typ: eventtypeClock}, {ud: 2, typ: eventtypeClock}, {ud: 5, typ: eventtypeClock}}
		if e != 0 || !sameEvents(evs, want) {
			t.Fatalf("wasi %v: errno %d, events %+v, want %+v", wasi, e, evs, want)
		}
		p.close()
	}
}

// No subscription, or more than MaxPollSubscriptions, is EINVAL, and
// nothing is written (WASI runtimes refuse an empty poll_oneoff too; Linux's
// poll(2) of no descriptors only sleeps, which a guest does with a clock).
func TestSockPollSubscriptionCounts(t *testing.T) {
	env := newFuzzEnv(t)
	p := newSbxSock(t, env, "unix")
	defer p.close()
	for _, wasi := range []bool{false, true} {
		for _, n := range []uint32{0, MaxPollSubscriptions + 1, math.MaxUint32} {
			if e, _ := pollSubsCall(t, p, wasi, n, nil); e != caps.EINVAL {
				t.Fatalf("wasi %v: poll of %d subscriptions: errno %d, want EINVAL", wasi, n, e)
			}
		}
	}
}

// A subscription on a closed handle, or on a revoked one, is reported at
// once with EBADF or ENOTCAPABLE in its event (poll(2) says POLLNVAL for
// a closed descriptor), beside the other subscriptions that are ready.
func TestSockPollClosedAndRevokedHandles(t *testing.T) {
	env := newFuzzEnv(t)
	for _, wasi := range []bool{false, true} {
		p := newSbxSock(t, env, "tcp")
		own, peer := sockDiffConn(t, "unix")
		unix.Close(peer)
		f := os.NewFile(uintptr(own), "other")
		conn, err := net.FileConn(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		s, err := caps.NewSocket(conn, "other")
		if err != nil {
			t.Fatal(err)
		}
		b, inh := caps.GrantRights(caps.KindSocket, false)
		c := p.g.kernel.Mint(p.g.table.Holder(), s, b, inh, "other", "sockdiff")
		fd, err := p.g.table.Insert(c)
		if err != nil {
			t.Fatal(err)
		}
		p.g.kernel.Revoke(c, "test")
		subs := []pollTestSub{
			{ud: 1, typ: eventtypeFDRead, fd: 40},
			{ud: 2, typ: eventtypeFDWrite, fd: fd},
			{ud: 3, typ: eventtypeFDWrite, fd: p.own},
			{ud: 4, typ: eventtypeFDRead, fd: p.own},
		}
		e, evs := pollSubsCall(t, p, wasi, 4, subs)
		want := []pollTestEvent{{ud: 1, errno: caps.EBADF, typ: eventtypeFDRead}, {ud: 2, errno: caps.ENOTCAPABLE, typ: eventtypeFDWrite}, {ud: 3, typ: eventtypeFDWrite}}
		if e != 0 || !sameEvents(evs, want) {
			t.Fatalf("wasi %v: errno %d, events %+v, want %+v", wasi, e, evs, want)
		}
		p.close()
	}
}

// The most subscriptions a poll takes, every one on a socket with data
// (a few sockets, each listed many times), are all reported, in order,
// each with its userdata.
func TestSockPollManySubscriptions(t *testing.T) {
	env := newFuzzEnv(t)
	for _, wasi := range []bool{false, true} {
		p := newSbxSock(t, env, "unix")
		if _, ok := p.m.Grow(8); !ok { // room for 4096 subscriptions and events
			t.Fatal("cannot grow the guest's memory")
		}
		if _, err := unix.Write(p.peer, []byte("x")); err != nil {
			t.Fatal(err)
		}
		subs := make([]pollTestSub, MaxPollSubscriptions)
		for i := range subs {
			subs[i] = pollTestSub{ud: uint64(i) << 20, typ: eventtypeFDRead, fd: p.own}
		}
		e, evs := pollSubsCallAt(t, p, wasi, subs, 1<<16, 5<<16)
		if e != 0 || len(evs) != len(subs) {
			t.Fatalf("wasi %v: errno %d, %d events, want %d", wasi, e, len(evs), len(subs))
		}
		for i, ev := range evs {
			if ev != (pollTestEvent{ud: subs[i].ud, typ: eventtypeFDRead}) {
				t.Fatalf("wasi %v: event %d is %+v", wasi, i, ev)
			}
		}
		p.close()
	}
}

// A socket whose send buffer is full is not writable, and poll waits; once
// the peer reads, poll reports it writable, as poll(2) does (both ABIs,
// TCP and unix).
func TestSockPollWritableOnceTheFullBufferDrains(t *testing.T) {
	env := newFuzzEnv(t)
	for _, network := range []string{"tcp", "unix"} {
		for _, wasi := range []bool{false, true} {
			p := newSbxSock(t, env, network)
			data := make([]byte, 32000)
			if r := p.do(t, sockDiffOp{kind: sdFill, size: len(data)}, data); r.errno != caps.EAGAIN {
				t.Fatalf("filling: %+v", r)
			}
			waits, _ := p.g.Blocked()
			done := make(chan struct{})
			var e caps.Errno
			var evs []pollTestEvent
			go func() {
				defer close(done)
				e, evs = pollSubsCall(t, p, wasi, 1, []pollTestSub{{ud: 5, typ: eventtypeFDWrite, fd: p.own}})
			}()
			if !awaitParked(t, p.g, waits, done) {
				t.Fatalf("%s wasi %v: poll for writing on a full socket returned at once: errno %d, %+v", network, wasi, e, evs)
			}
			if err := unix.SetNonblock(p.peer, false); err != nil {
				t.Fatal(err)
			}
			read := make(chan struct{})
			go func() {
				defer close(read)
				buf := make([]byte, 64<<10)
				for {
					if n, err := unix.Read(p.peer, buf); n <= 0 || err != nil {
						return
					}
				}
			}()
			<-done
			unix.Shutdown(p.peer, unix.SHUT_RDWR) // ends the reader
			<-read
			if want := []pollTestEvent{{ud: 5, typ: eventtypeFDWrite}}; e != 0 || !sameEvents(evs, want) {
				t.Fatalf("%s wasi %v: errno %d, events %+v, want %+v", network, wasi, e, evs, want)
			}
			p.close()
		}
	}
}
