package abi

import (
	"crypto/rand"
	"runtime"
	"time"
	_ "unsafe" // for go:linkname

	"github.com/sandboxd/sandboxd/caps"
	"github.com/tetratelabs/wazero/api"
)

// CloudABI clock ids.
const (
	clockMonotonic      = 1
	clockProcessCPUTime = 2
	clockRealtime       = 3
	clockThreadCPUTime  = 4
)

// nanotime is the runtime's monotonic clock, read from the vDSO without a
// system call. time.Now would read the wall clock too, a second vDSO read
// that clock_time_get(MONOTONIC) does not need; wazero's WASI reads this one.
//
//go:linkname nanotime runtime.nanotime
func nanotime() int64

// monoBase anchors the guests' monotonic clock at the daemon's start, so
// that it does not tell a guest how long the host has been up.
var monoBase = nanotime()

// monotonicNow is the guests' monotonic clock in nanoseconds.
func monotonicNow() int64 { return nanotime() - monoBase }

func clockNow(g *Guest, id uint32) (uint64, Errno) {
	switch id {
	case clockMonotonic:
		return uint64(monotonicNow()), 0
	case clockRealtime:
		return uint64(time.Now().UnixNano()), 0
	case clockProcessCPUTime, clockThreadCPUTime:
		return uint64(time.Since(g.started)), 0
	}
	return 0, caps.EINVAL
}

func clockResGet(g *Guest, m api.Memory, p []uint64) Errno {
	clockID, resolutionOut := uint32(p[0]), uint32(p[1])
	switch clockID {
	case clockMonotonic, clockRealtime, clockProcessCPUTime, clockThreadCPUTime:
		return writeU64(m, resolutionOut, 1)
	}
	return caps.EINVAL
}

func clockTimeGet(g *Guest, m api.Memory, p []uint64) Errno {
	clockID, timeOut := uint32(p[0]), uint32(p[2])
	t, e := clockNow(g, clockID)
	if e != 0 {
		return e
	}
	return writeU64(m, timeOut, t)
}

func randomGet(g *Guest, m api.Memory, p []uint64) Errno {
	buf, bufLen := uint32(p[0]), uint32(p[1])
	b, e := read(m, buf, bufLen)
	if e != 0 {
		return e
	}
	_, _ = rand.Read(b)
	return 0
}

func threadYield(g *Guest, m api.Memory, p []uint64) Errno {
	runtime.Gosched()
	return 0
}

func noSys(g *Guest, m api.Memory, p []uint64) Errno { return caps.ENOSYS }
