package caps

import (
	"os"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// hostWatch wakes the waiters of one host descriptor (a socket, a
// listener) when it may have become readable or writable, through Go's
// netpoller. It keeps one registration for the descriptor's lifetime: a
// duplicate of it, added to the netpoller on the first wait, and at most
// one parked goroutine per direction, which waits only while somebody
// does. A wait costs a map insert and a wake-up, not a dup(2), an
// epoll_ctl(2) pair and a new goroutine.
//
// The duplicate gives the watchers their own registration, so that they
// never hold the connection's own read or write lock. close ends them.
type hostWatch struct {
	rc syscall.RawConn // the descriptor watched

	mu      sync.Mutex
	f       *os.File        // the duplicate; nil until the first wait
	frc     syscall.RawConn // f's
	waiters [2]map[*Waiter]struct{}
	running [2]bool
	arm     [2]chan struct{} // wakes a direction's parked loop
	closed  bool
}

const (
	dirRead = iota
	dirWrite
)

var dirEvents = [2]Events{EventRead, EventWrite}

func newHostWatch(rc syscall.RawConn) *hostWatch {
	h := &hostWatch{rc: rc}
	for d := range h.arm {
		h.waiters[d] = make(map[*Waiter]struct{})
		h.arm[d] = make(chan struct{}, 1)
	}
	return h
}

// poll reports which of want the descriptor is ready for now; when none,
// it registers w to be woken, and returns the function that unregisters
// it.
func (h *hostWatch) poll(want Events, w *Waiter) (Events, func()) {
	var ready Events
	if err := h.rc.Control(func(fd uintptr) { ready = readiness(int(fd), want) }); err != nil {
		// Closed under us: every operation now fails at once, so it is
		// "ready" in the sense that it will not block.
		return want | EventHangup, noop
	}
	if ready&want != 0 || w == nil {
		return ready, noop
	}
	return ready, h.watch(want, w)
}

// watch registers w for the directions of want.
func (h *hostWatch) watch(want Events, w *Waiter) func() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed || h.open() != nil {
		w.Wake() // let the caller retry the operation and see the error
		return noop
	}
	for d, ev := range dirEvents {
		if want&ev == 0 {
			continue
		}
		h.waiters[d][w] = struct{}{}
		if !h.running[d] {
			h.running[d] = true
			go h.loop(d)
		}
		select {
		case h.arm[d] <- struct{}{}:
		default:
		}
	}
	return func() {
		h.mu.Lock()
		delete(h.waiters[dirRead], w)
		delete(h.waiters[dirWrite], w)
		h.mu.Unlock()
	}
}

// open makes the duplicate the watchers wait on. Called with h.mu held.
func (h *hostWatch) open() error {
	if h.f != nil {
		return nil
	}
	var dup int
	if err := control(h.rc, func(fd int) (err error) {
		dup, err = unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
		return err
	}); err != nil {
		return err
	}
	f := os.NewFile(uintptr(dup), "poll")
	frc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return err
	}
	h.f, h.frc = f, frc
	return nil
}

// loop is direction d's watcher: while somebody waits, it parks in the
// netpoller until the descriptor may be ready, then wakes every waiter.
func (h *hostWatch) loop(d int) {
	rawWait := h.frc.Read
	if d == dirWrite {
		rawWait = h.frc.Write
	}
	for h.armed(d) {
		checked := false
		err := rawWait(func(fd uintptr) bool {
			if checked {
				return true // the netpoller saw an edge
			}
			checked = true
			// Readiness that arrived before this wait produced no edge it
			// can see: look once.
			return readiness(int(fd), dirEvents[d])&(dirEvents[d]|EventHangup) != 0
		})
		h.mu.Lock()
		for w := range h.waiters[d] {
			w.Wake()
		}
		clear(h.waiters[d])
		h.mu.Unlock()
		if err != nil {
			return // the duplicate is closed
		}
	}
}

// armed waits until somebody waits in direction d, and reports false once
// the watch is closed.
func (h *hostWatch) armed(d int) bool {
	for {
		h.mu.Lock()
		closed, waiting := h.closed, len(h.waiters[d]) > 0
		h.mu.Unlock()
		if closed {
			return false
		}
		if waiting {
			return true
		}
		<-h.arm[d]
	}
}

// close ends the watchers and wakes whoever still waits: the descriptor is
// going away.
func (h *hostWatch) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return
	}
	h.closed = true
	if h.f != nil {
		h.f.Close() // evicts a parked watcher
	}
	for d := range h.arm {
		for w := range h.waiters[d] {
			w.Wake()
		}
		clear(h.waiters[d])
		select {
		case h.arm[d] <- struct{}{}:
		default:
		}
	}
}
