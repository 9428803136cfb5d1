package abi

import (
	"encoding/binary"
	"strings"

	"github.com/sandboxd/sandboxd/abi/argdata"
	"github.com/sandboxd/sandboxd/caps"
	"github.com/tetratelabs/wazero/api"
)

// WASI preview1 arguments, environment, clocks and proc_raise.

// wasiStringsSizes returns the count and total NUL-terminated size of ss,
// or E2BIG when they would not fit the guest's 32-bit address space with a
// sane margin.
func wasiStringsSizes(ss []string) (count, size uint32, e Errno) {
	total := 0
	for _, s := range ss {
		total += len(s) + 1
		if total > wasiMaxArgsOrEnvBytes {
			return 0, 0, caps.E2BIG
		}
	}
	return uint32(len(ss)), uint32(total), 0
}

// wasiStringsGet writes the pointer array at ptrs and the NUL-terminated
// strings at buf, as args_get and environ_get do. Both regions are
// bounds-checked before anything is written.
func wasiStringsGet(m api.Memory, ss []string, ptrs, buf uint32) Errno {
	count, size, e := wasiStringsSizes(ss)
	if e != 0 {
		return e
	}
	pv, e := read(m, ptrs, count*4)
	if e != 0 {
		return e
	}
	bv, e := read(m, buf, size)
	if e != 0 {
		return e
	}
	off := uint32(0)
	for i, s := range ss {
		binary.LittleEndian.PutUint32(pv[i*4:], buf+off)
		off += uint32(copy(bv[off:], s))
		bv[off] = 0
		off++
	}
	return 0
}

func wasiStringsSizesGet(m api.Memory, ss []string, countOut, sizeOut uint32) Errno {
	count, size, e := wasiStringsSizes(ss)
	if e != 0 {
		return e
	}
	if e := writeU32(m, countOut, count); e != 0 {
		return e
	}
	return writeU32(m, sizeOut, size)
}

// wasiArgs and wasiEnv are the guest's WASI argv and environment: those
// it was launched with, or, for a guest started from argdata alone (a
// child of proc_spawn or proc_exec), the "args" sequence and "env" map of
// that argdata, in the shape StartupArgdata writes. So a spawned Go or C
// program sees in os.Args and getenv what its parent put in the argdata.
//
// The argdata is read where it lies, not decoded whole: its parent chose
// it (up to MaxArgdataBytes), and decoded it takes many times its size (a
// seq of nulls, a byte each, some 370 times) at every call that asks.
func wasiArgs(g *Guest) []string {
	if g.args != nil {
		return g.args
	}
	v, ok := startupEntry(g, "args")
	if !ok || len(v) == 0 || argdata.Type(v[0]) != argdata.TypeSeq {
		return nil
	}
	var out []string
	argdata.Entries(v, func(it []byte) bool {
		if s, ok := argdataString(it); ok {
			out = append(out, s)
		}
		return true
	})
	return out
}

func wasiEnv(g *Guest) []string {
	if g.env != nil {
		return g.env
	}
	v, ok := startupEntry(g, "env")
	if !ok || len(v) == 0 || argdata.Type(v[0]) != argdata.TypeMap {
		return nil
	}
	var out []string
	var key []byte
	isKey := true
	argdata.Entries(v, func(e []byte) bool {
		if isKey {
			key, isKey = e, false
			return true
		}
		ks, ok1 := argdataString(key)
		vs, ok2 := argdataString(e)
		if ok1 && ok2 && ks != "" && !strings.Contains(ks, "=") {
			out = append(out, ks+"="+vs)
		}
		isKey = true
		return true
	})
	return out
}

// startupEntry returns the encoding of a key's value in the guest's
// argdata, if the argdata is a valid map that has the key.
func startupEntry(g *Guest, key string) ([]byte, bool) {
	if len(g.argdata) == 0 || argdata.Type(g.argdata[0]) != argdata.TypeMap || !argdata.Valid(g.argdata) {
		return nil, false
	}
	var out []byte
	found, isKey, match := false, true, false
	argdata.Entries(g.argdata, func(e []byte) bool {
		if isKey {
			s, ok := argdataString(e)
			match = ok && s == key
		} else if match {
			out, found = e, true
			return false
		}
		isKey = !isKey
		return true
	})
	return out, found
}

// argdataString decodes an entry that is a string; any other entry is
// not decoded at all.
func argdataString(e []byte) (string, bool) {
	if len(e) == 0 || argdata.Type(e[0]) != argdata.TypeString {
		return "", false
	}
	v, err := argdata.Decode(e)
	if err != nil {
		return "", false
	}
	return v.Str()
}

func wasiArgsGet(g *Guest, m api.Memory, p []uint64) Errno {
	argv, argvBuf := uint32(p[0]), uint32(p[1])
	return wasiStringsGet(m, wasiArgs(g), argv, argvBuf)
}

func wasiArgsSizesGet(g *Guest, m api.Memory, p []uint64) Errno {
	argcOut, argvBufSizeOut := uint32(p[0]), uint32(p[1])
	return wasiStringsSizesGet(m, wasiArgs(g), argcOut, argvBufSizeOut)
}

func wasiEnvironGet(g *Guest, m api.Memory, p []uint64) Errno {
	environ, environBuf := uint32(p[0]), uint32(p[1])
	return wasiStringsGet(m, wasiEnv(g), environ, environBuf)
}

func wasiEnvironSizesGet(g *Guest, m api.Memory, p []uint64) Errno {
	countOut, bufSizeOut := uint32(p[0]), uint32(p[1])
	return wasiStringsSizesGet(m, wasiEnv(g), countOut, bufSizeOut)
}

func wasiClockResGet(g *Guest, m api.Memory, p []uint64) Errno {
	id, resolutionOut := uint32(p[0]), uint32(p[1])
	if cloudClockOfWASI(id) == 0 {
		return caps.EINVAL
	}
	return writeU64(m, resolutionOut, 1)
}

// wasiClockTimeGet is called on every time.Now and timer check of a Go
// guest, so it allocates nothing.
func wasiClockTimeGet(g *Guest, m api.Memory, p []uint64) Errno {
	id, timeOut := uint32(p[0]), uint32(p[2])
	cloudID := cloudClockOfWASI(id)
	if cloudID == 0 {
		return caps.EINVAL
	}
	t, e := clockNow(g, cloudID)
	if e != 0 {
		return e
	}
	return writeU64(m, timeOut, t)
}

// wasiProcRaise translates a WASI signal to CloudABI's numbering. Signals
// CloudABI lacks (prof, winch, poll, pwr) are ignored, as their default
// action in POSIX is to ignore or, for prof, to terminate a process that
// no profiler here could have asked for.
func wasiProcRaise(g *Guest, m api.Memory, p []uint64) Errno {
	sig := uint32(p[0])
	if sig >= uint32(len(wasiSignalToCloud)) {
		return caps.EINVAL
	}
	cs := wasiSignalToCloud[sig]
	if cs == 0 {
		return 0
	}
	return raiseCloudSignal(g, cs)
}

// raiseCloudSignal applies a CloudABI signal's fixed default action:
// signals whose action is to be ignored (chld, cont, pipe, urg; CloudABI
// ignores pipe, since writes report EPIPE) and the job-control stops,
// which have no meaning for a guest, return at once; every other signal
// ends the guest with status 128+sig, recording the signal.
func raiseCloudSignal(g *Guest, sig uint8) Errno {
	switch sig {
	case 4, 5, 11, 21: // chld, cont, pipe, urg
		return 0
	case 14, 18, 19, 20: // stop, tstp, ttin, ttou
		return 0
	}
	if sig == 0 || sig > 26 {
		return caps.EINVAL
	}
	g.signal = sig
	g.exit(128 + uint32(sig))
	return 0
}
