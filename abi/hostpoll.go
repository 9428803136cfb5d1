package abi

import (
	"errors"
	"os"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/sandboxd/sandboxd/caps"
	"golang.org/x/sys/unix"
)

// hostPoller waits on the host descriptors of a guest's poll calls
// (sockets and listeners: caps.HostPollable) with one epoll instance per
// guest, which Go's netpoller watches like any other descriptor. A wait
// costs one parked goroutine, however many descriptors it covers, and no
// OS thread; a poll call finds what is ready with one poll(2) over all of
// its descriptors instead of one system call each.
//
// Registrations outlive the poll call that made them: each is one-shot
// (EPOLLONESHOT) and re-armed only after it fired, so a descriptor polled
// again and again costs no epoll_ctl while nothing happens on it. Go's
// wasip1 netpoller polls every socket a goroutine waits on whenever its
// scheduler runs out of work, so with many idle connections most of a
// poll's descriptors are the same from one call to the next. What a poll
// reports always comes from the level-triggered poll(2); epoll only ends
// waits. A registration that fires for a descriptor the current call does
// not poll costs one spurious wake-up (the caller looks again), never a
// wrong answer.
//
// A hostPoller is used by its guest's goroutine only (a guest runs one
// host call at a time), except for the watcher goroutine of watch, which
// only looks at the epoll instance and wakes the guest's Waiter.
type hostPoller struct {
	ep    int      // the epoll instance
	file  *os.File // owns ep; registered with Go's netpoller
	rc    syscall.RawConn
	armed map[int32]armedFD
	// kept is how many registrations armed held after forget last ran
	// (see arm).
	kept int
	pfds []unix.PollFd
	evs  []unix.EpollEvent
}

// hostPollKept is how many registrations a poller keeps before it
// forgets those of the descriptors the current call does not poll (or
// twice what it kept then, if more): a descriptor number is registered
// once for the socket it was made for, and a server guest that accepts,
// polls and closes connections, over and over, would otherwise keep one
// for every number it was given, each holding its closed socket: in a
// busy daemon, whose other guests hold the numbers it had, as many as the
// process has had descriptors open.
const hostPollKept = 64

// armedFD is the registration of one descriptor number: the resource it
// was made for (a number closed and reused by another resource is
// registered anew: the kernel dropped the old registration when the old
// descriptor closed) and the events armed and not yet delivered (0: the
// registration fired and is disabled until re-armed).
type armedFD struct {
	res    caps.Resource
	events uint32
}

// hostSub is one subscription of a poll call on a host descriptor.
type hostSub struct {
	fd    int32
	res   caps.Resource
	want  caps.Events
	ready caps.Events // set by check
}

// errNotPollable says that Go's netpoller would not take the epoll
// instance, so a watcher could not park on it.
var errNotPollable = errors.New("epoll instance not pollable by Go's netpoller")

// newHostPoller creates the epoll instance and registers it with Go's
// netpoller.
func newHostPoller() (*hostPoller, error) {
	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	if err := unix.SetNonblock(ep, true); err != nil {
		unix.Close(ep)
		return nil, err
	}
	f := os.NewFile(uintptr(ep), "poll")
	// Only a descriptor in Go's netpoller takes deadlines: without one a
	// watcher would block a thread, and cancelling it would not work.
	if err := f.SetReadDeadline(time.Time{}); err != nil {
		f.Close()
		return nil, errNotPollable
	}
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, err
	}
	return &hostPoller{ep: ep, file: f, rc: rc, armed: make(map[int32]armedFD)}, nil
}

// close closes the epoll instance, which ends a watcher still parked on it.
func (p *hostPoller) close() { p.file.Close() }

// check sets hs[i].ready to what each descriptor is ready for now, with
// one poll(2) that does not block.
func (p *hostPoller) check(hs []hostSub) {
	p.pfds = p.pfds[:0]
	for _, h := range hs {
		p.pfds = append(p.pfds, unix.PollFd{Fd: h.fd, Events: caps.PollRequest(h.want)})
	}
	for {
		_, err := unix.Poll(p.pfds, 0)
		if err != unix.EINTR {
			break
		}
	}
	for i := range hs {
		hs[i].ready = caps.PollReady(p.pfds[i].Revents, hs[i].want)
	}
}

// arm makes sure that every descriptor of hs has a registration armed for
// what it wants, after taking in the events delivered since the last
// call. failed[i] is true for each descriptor it could not register (the
// caller waits on those some other way); failed is reused.
func (p *hostPoller) arm(hs []hostSub, failed []bool) []bool {
	p.drain()
	failed = failed[:0]
	for _, h := range hs {
		want := epollMask(h.want)
		a, ok := p.armed[h.fd]
		if ok && a.res != h.res {
			ok, a = false, armedFD{}
		}
		if ok && a.events&want == want {
			failed = append(failed, false)
			continue
		}
		ev := unix.EpollEvent{Events: a.events | want | unix.EPOLLONESHOT, Fd: h.fd}
		op := unix.EPOLL_CTL_ADD
		if ok {
			op = unix.EPOLL_CTL_MOD
		}
		err := unix.EpollCtl(p.ep, op, int(h.fd), &ev)
		switch {
		case err == unix.EEXIST && op == unix.EPOLL_CTL_ADD:
			// Registered for this descriptor under a resource this map
			// no longer remembers: take the registration over.
			err = unix.EpollCtl(p.ep, unix.EPOLL_CTL_MOD, int(h.fd), &ev)
		case err == unix.ENOENT && op == unix.EPOLL_CTL_MOD:
			err = unix.EpollCtl(p.ep, unix.EPOLL_CTL_ADD, int(h.fd), &ev)
		}
		if err != nil {
			delete(p.armed, h.fd)
			failed = append(failed, true)
			continue
		}
		p.armed[h.fd] = armedFD{res: h.res, events: a.events | want}
		failed = append(failed, false)
	}
	if len(p.armed) > max(hostPollKept, 2*p.kept) {
		p.forget(hs)
	}
	return failed
}

// forget drops the registrations of the descriptors hs does not poll.
// The kernel dropped those of closed descriptors already; one of a
// descriptor still open stays with the kernel, and is taken over when it
// is polled again (arm's EEXIST), or fires once for nothing: a spurious
// wake-up (see hostPoller), never a wrong answer. Each run costs
// what the map holds, which has doubled since the last: amortised, a
// constant per registration.
func (p *hostPoller) forget(hs []hostSub) {
	polled := make(map[int32]struct{}, len(hs))
	for _, h := range hs {
		polled[h.fd] = struct{}{}
	}
	for fd := range p.armed {
		if _, ok := polled[fd]; !ok {
			delete(p.armed, fd)
		}
	}
	p.kept = len(p.armed)
}

// drain takes the events epoll has delivered off its ready list: their
// registrations are disabled (one-shot) until arm re-arms them. A
// watcher would otherwise wake at once for events already seen.
func (p *hostPoller) drain() {
	if p.evs == nil {
		p.evs = make([]unix.EpollEvent, 64)
	}
	for {
		n, err := unix.EpollWait(p.ep, p.evs, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil || n <= 0 {
			return
		}
		for _, ev := range p.evs[:n] {
			if a, ok := p.armed[ev.Fd]; ok {
				a.events = 0
				p.armed[ev.Fd] = a
			}
		}
		if n < len(p.evs) {
			return
		}
	}
}

// watch wakes w when an armed registration fires, from one goroutine
// parked in Go's netpoller on the epoll instance. The returned function
// ends the watcher and returns once it has gone.
func (p *hostPoller) watch(w *caps.Waiter) (cancel func()) {
	var stop atomic.Bool
	done := make(chan struct{})
	go func() {
		defer close(done)
		err := p.rc.Read(func(fd uintptr) bool {
			// Events queued before the netpoller's registration was
			// reset for this read made no edge this read can see: look.
			return stop.Load() || epollReadable(int(fd))
		})
		if err == nil && !stop.Load() {
			w.Wake()
		}
	}()
	return func() {
		stop.Store(true)
		_ = p.file.SetReadDeadline(aLongTimeAgo) // unparks the watcher
		<-done
		_ = p.file.SetReadDeadline(time.Time{})
	}
}

// aLongTimeAgo is a deadline in the past: setting it ends a read parked
// in the netpoller at once.
var aLongTimeAgo = time.Unix(1, 0)

// epollReadable reports whether the epoll instance ep has events queued.
func epollReadable(ep int) bool {
	pfd := []unix.PollFd{{Fd: int32(ep), Events: unix.POLLIN}}
	for {
		n, err := unix.Poll(pfd, 0)
		if err == unix.EINTR {
			continue
		}
		return err != nil || n > 0
	}
}

// epollMask is the epoll events for want, hang-ups included (epoll always
// reports EPOLLHUP and EPOLLERR). The peer's shutting down of its sending
// side (EPOLLRDHUP) ends only a wait to read: it leaves a full socket
// unwritable (caps.PollReady), and a registration for writing that it
// fired would fire again at every re-arm.
func epollMask(want caps.Events) uint32 {
	var ev uint32
	if want&caps.EventRead != 0 {
		ev |= unix.EPOLLIN | unix.EPOLLRDHUP
	}
	if want&caps.EventWrite != 0 {
		ev |= unix.EPOLLOUT
	}
	return ev
}

// hostPoller returns the guest's poller, creating it on first use, or nil
// when it cannot be created (poll then waits on each descriptor alone).
func (g *Guest) hostPoller() *hostPoller {
	if g.hpoll == nil && !g.hpollFailed {
		p, err := newHostPoller()
		if err != nil {
			g.hpollFailed = true
			g.log.Debug("poll waits on each socket alone", "error", err)
			return nil
		}
		g.hpoll = p
	}
	return g.hpoll
}
