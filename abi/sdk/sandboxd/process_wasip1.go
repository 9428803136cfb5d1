//go:build wasip1

package sandboxd

import (
	"fmt"
	"math"
	"runtime"
	"syscall"
	"unsafe"
)

// Process is a child guest started by Spawn. Closing its handle (Close)
// kills the child if it is still running.
type Process struct {
	fd uint32
}

// Fd returns the process handle.
func (p *Process) Fd() uint32 { return p.fd }

// ExitStatus is how a child ended: its exit code, and the CloudABI signal
// that ended it (0 when it exited by itself).
type ExitStatus struct {
	Code   uint32
	Signal uint8
}

func (s ExitStatus) String() string {
	if s.Signal != 0 {
		return fmt.Sprintf("signal %d (exit status %d)", s.Signal, s.Code)
	}
	return fmt.Sprintf("exit status %d", s.Code)
}

// Spawn starts a child guest from a module handle (see OpenModule) with
// the arguments, environment and handles in cfg. Each handle the child
// gets is a new capability derived from this guest's, with the same
// rights: narrow or wrap it (Narrow, Revocable) first to give less.
func Spawn(module uint32, cfg SpawnConfig) (*Process, error) {
	data, fds := cfg.encode()
	return SpawnArgdata(module, data, fds)
}

// SpawnArgdata starts a child guest with raw argdata and exactly the
// handles in fds, which the child numbers 0, 1, … in list order. The
// list holds at most as many handles as this guest's table can
// (its --max-fds): a longer one is E2BIG, as is Spawn's
// with more handles than that, counting stdin, stdout and stderr.
func SpawnArgdata(module uint32, data []byte, fds []uint32) (*Process, error) {
	out := new(uint32)
	if len(data) == 0 {
		data = []byte{} // the empty (null) argdata
	}
	if len(fds) == 0 {
		fds = []uint32{}
	}
	e := proc_spawn(module, unsafe.Pointer(unsafe.SliceData(data)), uint32(len(data)),
		unsafe.Pointer(unsafe.SliceData(fds)), uint32(len(fds)), unsafe.Pointer(out))
	runtime.KeepAlive(data)
	runtime.KeepAlive(fds)
	if err := errnoErr(e); err != nil {
		return nil, err
	}
	return &Process{fd: *out}, nil
}

// Wait blocks until the child exits and returns how it ended. The wait is
// in the host: no other goroutine of this guest runs until it returns.
func (p *Process) Wait() (ExitStatus, error) {
	st, _, err := p.wait(math.MaxUint64)
	return st, err
}

// Exited reports whether the child has ended, and how, without waiting.
func (p *Process) Exited() (ExitStatus, bool, error) {
	return p.wait(0)
}

// wait polls the process handle with a relative clock of timeout ns
// (MaxUint64: no clock).
func (p *Process) wait(timeout uint64) (ExitStatus, bool, error) {
	subs := new([2]subscription)
	evs := new([2]event)
	n := new(uint32)
	subs[0].userdata, subs[0].typ, subs[0].u[0] = 1, eventtypeProcTerminate, uint64(p.fd)
	nsubs := uint32(1)
	if timeout != math.MaxUint64 {
		subs[1].userdata, subs[1].typ = 2, eventtypeClock
		subs[1].u[1] = 1 // CloudABI's monotonic clock
		subs[1].u[2] = timeout
		nsubs = 2
	}
	if err := errnoErr(poll(unsafe.Pointer(subs), unsafe.Pointer(evs), nsubs, unsafe.Pointer(n))); err != nil {
		return ExitStatus{}, false, err
	}
	for i := range *n {
		ev := &evs[i]
		if ev.userdata != 1 {
			continue
		}
		if ev.errno != 0 {
			return ExitStatus{}, false, syscall.Errno(ev.errno)
		}
		return ExitStatus{Signal: uint8(ev.u[0] >> 32), Code: uint32(ev.u[1])}, true, nil
	}
	return ExitStatus{}, false, nil
}

// Close closes the process handle; a child still running is killed.
func (p *Process) Close() error { return Close(p.fd) }
