package abi

import (
	"context"
	"encoding/binary"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/abi/abitest"
	"github.com/sandboxd/sandboxd/caps"
)

// raiseGuest calls proc_raise with the u32 of its argdata (proc_exit
// with it, if the argdata's fifth byte is 1) and then exits with 1000 and
// the errno proc_raise returned.
const raiseGuest = `(module
  (import "sandboxd" "argdata_get" (func $argdata (param i32 i32 i32) (result i32)))
  (import "sandboxd" "proc_raise" (func $raise (param i32) (result i32)))
  (import "sandboxd" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (func (export "_start")
    (drop (call $argdata (i32.const 200) (i32.const 5) (i32.const 196)))
    (if (i32.load8_u (i32.const 204)) (then (call $exit (i32.load (i32.const 200)))))
    (call $exit (i32.add (i32.const 1000) (call $raise (i32.load (i32.const 200)))))))`

// runRaise runs raiseGuest with n and exit, and returns its status and
// what a process handle on it would report.
func runRaise(t *testing.T, rt *Runtime, m *Module, n uint32, exit bool) (ExitStatus, uint8, uint32) {
	t.Helper()
	data := binary.LittleEndian.AppendUint32(nil, n)
	if exit {
		data = append(data, 1)
	} else {
		data = append(data, 0)
	}
	tbl := caps.NewTable(caps.NewKernel(nil), &caps.Holder{ID: "g"}, 0)
	g := rt.NewGuest(m, GuestConfig{ID: "g", Table: tbl, Argdata: data})
	g.Start(context.Background())
	select {
	case <-g.Done():
	case <-time.After(HangGuard):
		t.Fatalf("raise %d: still running after %v", n, HangGuard)
	}
	sig, code := (&process{g: g}).termination()
	return g.Status(), sig, code
}

// Every signal number is applied as documented: 0 and every number past
// 26 (256+16 is not SIGTERM) EINVAL, CHLD, CONT, PIPE, URG and the stops
// return, every other signal (KILL included) ends the guest with 128+sig
// and the signal; proc_exit's every code is reported as it is, and an
// exit with 128+sig is not a signal.
func TestProcRaiseAndProcExitWithEveryNumber(t *testing.T) {
	rt := newCacheRuntime(t, 4)
	m, err := rt.Compile(context.Background(), "raise", abitest.WATText(t, raiseGuest))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Release()
	returns := map[uint32]bool{4: true, 5: true, 11: true, 21: true, 14: true, 18: true, 19: true, 20: true}
	for _, n := range []uint32{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 255, 256 + 16, 1 << 31, 1<<32 - 1} {
		st, sig, code := runRaise(t, rt, m, n, false)
		want := ExitStatus{Code: 1000 + uint32(caps.EINVAL)}
		wsig, wcode := uint8(0), want.Code
		switch {
		case returns[n]:
			want.Code, wcode = 1000, 1000
		case n >= 1 && n <= 26:
			want = ExitStatus{Code: 128 + n, Signal: uint8(n)}
			wsig, wcode = uint8(n), 0
		}
		if st != want || sig != wsig || code != wcode {
			t.Errorf("raise %d: status %+v, handle reports signal %d exit %d; want %+v, %d, %d", n, st, sig, code, want, wsig, wcode)
		}
	}
	for _, n := range []uint32{0, 1, 137, 144, 255, 256, 1 << 31, 1<<32 - 1} {
		st, sig, code := runRaise(t, rt, m, n, true)
		if st != (ExitStatus{Code: n}) || sig != 0 || code != n {
			t.Errorf("exit %d: status %+v, handle reports signal %d exit %d", n, st, sig, code)
		}
	}
}
