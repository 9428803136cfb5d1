package abi

import (
	"crypto/rand"
	"runtime"
	"time"

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

// monoBase anchors the monotonic clock: time.Since reads Go's monotonic
// clock without a system call.
var monoBase = time.Now()

func clockNow(g *Guest, id uint32) (uint64, Errno) {
	switch id {
	case clockMonotonic:
		return uint64(time.Since(monoBase)), 0
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
