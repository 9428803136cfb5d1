package abi

import (
	"bytes"
	"encoding/binary"

	"github.com/sandboxd/sandboxd/abi/argdata"
	"github.com/sandboxd/sandboxd/caps"
	"github.com/tetratelabs/wazero/api"
)

// WASI preview1 arguments, environment, clocks and proc_raise.

// wasiString is one string of a guest's WASI argv or environment: one
// it was launched with (s), or one of its argdata, read where it lies: an
// argument (a), or an environment entry (a, then "=", then b, when kv).
type wasiString struct {
	s    string
	a, b []byte
	kv   bool
}

// size is the string's length, without its NUL.
func (w wasiString) size() int {
	if w.kv {
		return len(w.a) + 1 + len(w.b)
	}
	return len(w.s) + len(w.a)
}

// put copies the string, without its NUL, to dst, which has room for it.
func (w wasiString) put(dst []byte) int {
	n := copy(dst, w.s)
	n += copy(dst[n:], w.a)
	if w.kv {
		dst[n] = '='
		n++
		n += copy(dst[n:], w.b)
	}
	return n
}

// wasiStrings calls fn with each string of a guest's WASI argv or
// environment, in order, until fn returns false; every call gives the
// same strings.
type wasiStrings func(fn func(wasiString) bool)

// launchedStrings are the strings a guest was launched with.
func launchedStrings(ss []string) wasiStrings {
	return func(fn func(wasiString) bool) {
		for _, s := range ss {
			if !fn(wasiString{s: s}) {
				return
			}
		}
	}
}

// wasiStringsSizes returns the count and total NUL-terminated size of ss,
// or E2BIG when they would not fit the guest's 32-bit address space with a
// sane margin.
func wasiStringsSizes(ss wasiStrings) (count, size uint32, e Errno) {
	n, total := 0, 0
	ss(func(w wasiString) bool {
		n++
		total += w.size() + 1
		return total <= wasiMaxArgsOrEnvBytes
	})
	if total > wasiMaxArgsOrEnvBytes {
		return 0, 0, caps.E2BIG
	}
	return uint32(n), uint32(total), 0
}

// wasiStringsGet writes the pointer array at ptrs and the NUL-terminated
// strings at buf, as args_get and environ_get do. Both regions are
// bounds-checked before anything is written.
func wasiStringsGet(m api.Memory, ss wasiStrings, ptrs, buf uint32) Errno {
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
	wasiStringsPut(ss, pv, bv, buf)
	return 0
}

// wasiStringsPut writes the strings of ss, each NUL-terminated, to bv,
// which is at buf in the guest's memory, and their addresses to pv; both
// have the room wasiStringsSizes said.
func wasiStringsPut(ss wasiStrings, pv, bv []byte, buf uint32) {
	i, off := 0, 0
	ss(func(w wasiString) bool {
		if 4*i+4 > len(pv) || off+w.size()+1 > len(bv) {
			return false
		}
		binary.LittleEndian.PutUint32(pv[4*i:], buf+uint32(off))
		off += w.put(bv[off:])
		bv[off] = 0
		off++
		i++
		return true
	})
}

func wasiStringsSizesGet(m api.Memory, ss wasiStrings, countOut, sizeOut uint32) Errno {
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
// The argdata is read where it lies, neither decoded nor copied: its
// parent chose it (up to MaxArgdataBytes), and decoded it takes many
// times its size (a seq of nulls, a byte each, some 370 times), as a
// slice of its strings does (of empty strings, three bytes each, 27
// times), at every call that asks.
func wasiArgs(g *Guest) wasiStrings {
	if g.args != nil {
		return launchedStrings(g.args)
	}
	v, ok := startupEntry(g, "args")
	return func(fn func(wasiString) bool) {
		if !ok || len(v) == 0 || argdata.Type(v[0]) != argdata.TypeSeq {
			return
		}
		argdata.Entries(v, func(it []byte) bool {
			if s, ok := argdataString(it); ok {
				return fn(wasiString{a: s})
			}
			return true
		})
	}
}

func wasiEnv(g *Guest) wasiStrings {
	if g.env != nil {
		return launchedStrings(g.env)
	}
	v, ok := startupEntry(g, "env")
	return func(fn func(wasiString) bool) {
		if !ok || len(v) == 0 || argdata.Type(v[0]) != argdata.TypeMap {
			return
		}
		var key []byte
		isKey := true
		argdata.Entries(v, func(e []byte) bool {
			if isKey {
				key, isKey = e, false
				return true
			}
			isKey = true
			ks, ok1 := argdataString(key)
			vs, ok2 := argdataString(e)
			if ok1 && ok2 && len(ks) > 0 && bytes.IndexByte(ks, '=') < 0 {
				return fn(wasiString{a: ks, b: vs, kv: true})
			}
			return true
		})
	}
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
			match = ok && string(s) == key
		} else if match {
			out, found = e, true
			return false
		}
		isKey = !isKey
		return true
	})
	return out, found
}

// argdataString returns the bytes of an entry that is a string, without
// its NUL, where they lie (a string is its type tag, its bytes and a NUL,
// as argdata.Decode reads it); any other entry is not read at all.
func argdataString(e []byte) ([]byte, bool) {
	if len(e) < 2 || argdata.Type(e[0]) != argdata.TypeString || e[len(e)-1] != 0 {
		return nil, false
	}
	return e[1 : len(e)-1], true
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
