package abi

import (
	"github.com/sandboxd/sandboxd/caps"
	"github.com/tetratelabs/wazero/api"
)

func procExit(g *Guest, m api.Memory, p []uint64) Errno {
	g.exit(uint32(p[0]))
	return 0
}

func argdataGet(g *Guest, m api.Memory, p []uint64) Errno {
	buf, n, out := uint32(p[0]), uint32(p[1]), uint32(p[2])
	size := uint32(len(g.argdata))
	if e := writeU32(m, out, size); e != 0 {
		return e
	}
	if n < size {
		return caps.ENOBUFS
	}
	if !m.Write(buf, g.argdata) {
		return caps.EFAULT
	}
	return 0
}
