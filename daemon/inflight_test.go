package daemon

import (
	"context"
	"testing"

	"github.com/sandboxd/sandboxd/abi/abitest"
)

// sendNWAT sends its stdin handle on fd 3 300 times and exits with the
// number of sends that failed.
const sendNWAT = `(module
  (import "sandboxd" "sock_send" (func $send (param i32 i32 i32) (result i32)))
  (import "sandboxd" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 200) "x")
  (func (export "_start")
    (local $i i32) (local $bad i32)
    (i32.store (i32.const 100) (i32.const 200))
    (i32.store (i32.const 104) (i32.const 1))
    (i32.store (i32.const 300) (i32.const 0))
    (i32.store (i32.const 0) (i32.const 100))
    (i32.store (i32.const 4) (i32.const 1))
    (i32.store (i32.const 8) (i32.const 300))
    (i32.store (i32.const 12) (i32.const 1))
    (i32.store16 (i32.const 16) (i32.const 0))
    (block $done
      (loop $again
        (br_if $done (i32.ge_u (local.get $i) (i32.const 300)))
        (if (call $send (i32.const 3) (i32.const 0) (i32.const 64))
          (then (local.set $bad (i32.add (local.get $bad) (i32.const 1)))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $again)))
    (call $exit (local.get $bad))))`

// Handles a guest sends on its supervisor channel are closed by the
// daemon as they arrive: they never count as in flight.
func TestTheSupervisorChannelUnchargesWhatItDrops(t *testing.T) {
	s, err := New(context.Background(), Options{CacheDir: testCache, MaxInFlightPerUser: 5})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	m, err := s.Compile(context.Background(), "sendn.wat", abitest.WATText(t, sendNWAT))
	if err != nil {
		t.Fatal(err)
	}
	p := Principal{UID: 1000, GID: 1000, Name: "alice"}
	g, err := s.Launch(context.Background(), LaunchSpec{Principal: p, Module: m, SupervisorChannel: true})
	if err != nil {
		t.Fatal(err)
	}
	st := waitExit(t, g, HangGuard)
	if n, _ := s.InFlight(p.UID); st.Code != 0 || n != 0 {
		t.Fatalf("exit %d (failed sends), %d in flight", st.Code, n)
	}
}
