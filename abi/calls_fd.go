package abi

import (
	"github.com/sandboxd/sandboxd/caps"
	"github.com/tetratelabs/wazero/api"
)

func fdClose(g *Guest, m api.Memory, p []uint64) Errno {
	return caps.ErrnoOf(g.table.Remove(uint32(p[0])))
}

// readv reads into iov from c's resource, waiting while a pollable
// resource has nothing to read.
func (g *Guest) readv(c *caps.Cap, iov [][]byte) (int, Errno) {
	res := c.Resource()
	r, ok := res.(caps.Reader)
	if !ok {
		return 0, caps.EBADF
	}
	total := 0
	for _, b := range iov {
		if len(b) == 0 {
			continue
		}
		for {
			n, err := r.Read(b)
			if err == caps.EAGAIN && total == 0 && c.Flags()&caps.FlagNonblock == 0 {
				if pl, ok := res.(caps.Pollable); ok {
					if e := g.waitReady(c, pl, caps.EventRead); e != 0 {
						return 0, e
					}
					continue
				}
			}
			if err != nil && err != caps.EAGAIN {
				if total > 0 {
					return total, 0
				}
				return 0, caps.ErrnoOf(err)
			}
			total += n
			if n < len(b) || err == caps.EAGAIN {
				return total, 0
			}
			break
		}
	}
	return total, 0
}

// writev writes iov to c's resource, waiting while a pollable resource
// cannot take more. It returns after a partial write rather than wait
// again, as POSIX write does on a full pipe.
func (g *Guest) writev(c *caps.Cap, iov [][]byte) (int, Errno) {
	res := c.Resource()
	w, ok := res.(caps.Writer)
	if !ok {
		return 0, caps.EBADF
	}
	total := 0
	for _, b := range iov {
		for len(b) > 0 {
			n, err := w.Write(b)
			total += n
			b = b[n:]
			if err == caps.EAGAIN && total == 0 && c.Flags()&caps.FlagNonblock == 0 {
				if pl, ok := res.(caps.Pollable); ok {
					if e := g.waitReady(c, pl, caps.EventWrite); e != 0 {
						return 0, e
					}
					continue
				}
			}
			if err != nil {
				if total > 0 {
					return total, 0
				}
				return 0, caps.ErrnoOf(err)
			}
		}
	}
	return total, 0
}

func fdRead(g *Guest, m api.Memory, p []uint64) Errno {
	c, err := g.table.Acquire(uint32(p[0]), caps.RightFDRead, 0)
	if err != nil {
		return caps.ErrnoOf(err)
	}
	defer c.Release()
	iov, e := iovecs(m, uint32(p[1]), uint32(p[2]))
	if e != 0 {
		return e
	}
	n, e := g.readv(c, iov)
	if e != 0 {
		return e
	}
	return writeU32(m, uint32(p[3]), uint32(n))
}

func fdWrite(g *Guest, m api.Memory, p []uint64) Errno {
	c, err := g.table.Acquire(uint32(p[0]), caps.RightFDWrite, 0)
	if err != nil {
		return caps.ErrnoOf(err)
	}
	defer c.Release()
	iov, e := iovecs(m, uint32(p[1]), uint32(p[2]))
	if e != 0 {
		return e
	}
	n, e := g.writev(c, iov)
	if e != 0 {
		return e
	}
	return writeU32(m, uint32(p[3]), uint32(n))
}
