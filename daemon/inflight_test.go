package daemon

import (
	"context"
	"fmt"
	"testing"
)

// Handles a guest sends on its supervisor channel are closed by the
// daemon as they arrive: they never count as in flight.
func TestTheSupervisorChannelUnchargesWhatItDrops(t *testing.T) {
	s, err := New(context.Background(), Options{CacheDir: testCache, MaxInFlightPerUser: 5})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	m := compileWAT(t, s, fmt.Sprintf(sendLoopWAT, 300))
	g, err := s.Launch(context.Background(), LaunchSpec{Principal: alice, Module: m, SupervisorChannel: true})
	if err != nil {
		t.Fatal(err)
	}
	st := waitExit(t, g, HangGuard)
	if n, _ := s.InFlight(alice.UID); st.Code != 300*1000 || n != 0 {
		t.Fatalf("exit %d (1000 × sends made + errno), %d in flight; want 300 sends and none in flight", st.Code, n)
	}
}
