package daemon

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/sandboxd/sandboxd/abi"
)

// MaxMemPerUser bounds each principal's running guests apart: alice's
// full budget refuses her next launch, naming the budget and what is in
// use, and leaves bob's launches alone; her budget comes back as her
// guests end, and a launch it refused left nothing behind.
func TestMemoryBudgetIsPerPrincipal(t *testing.T) {
	const mem, stack = 1 << 20, 64 << 10
	const charge = mem + stack
	s, err := New(context.Background(), Options{CacheDir: testCache, MaxMemPerUser: 2 * charge})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	m := compile(t, s, guests+"spin.wat")
	alice, bob := Principal{UID: 1000, Name: "alice"}, Principal{UID: 1001, Name: "bob"}
	launch := func(p Principal) (*Guest, error) {
		return s.Launch(context.Background(), LaunchSpec{Principal: p, Module: m, MemoryLimit: mem, MaxStack: stack})
	}
	var gs []*Guest
	for _, p := range []Principal{alice, alice, bob} {
		g, err := launch(p)
		if err != nil {
			t.Fatalf("launch for %s: %v", p, err)
		}
		gs = append(gs, g)
	}
	_, err = launch(alice)
	var be *BudgetError
	if !errors.As(err, &be) || be.Used != 2*charge || be.Asked != charge || be.Budget != 2*charge {
		t.Fatalf("alice's third launch: %v, want a *BudgetError", err)
	}
	for _, want := range []string{"alice's running guests hold 2176KiB", "--max-mem-per-user 2176KiB", "asks 1088KiB more"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if got := s.MemoryInUse(alice.UID); got != 2*charge {
		t.Errorf("alice's memory in use after the refusal: %d, want %d", got, 2*charge)
	}
	if g, err := launch(bob); err != nil {
		t.Errorf("bob's second launch: %v", err)
	} else {
		gs = append(gs, g)
	}
	gs[0].Kill("test")
	waitExit(t, gs[0], HangGuard)
	if got := s.MemoryInUse(alice.UID); got != charge {
		t.Errorf("alice's memory in use after one guest ended: %d, want %d", got, charge)
	}
	g, err := launch(alice)
	if err != nil {
		t.Fatalf("alice's launch after one guest ended: %v", err)
	}
	gs = append(gs, g)
	for _, g := range gs {
		g.Kill("test")
		waitExit(t, g, HangGuard)
	}
	if a, b := s.MemoryInUse(alice.UID), s.MemoryInUse(bob.UID); a != 0 || b != 0 {
		t.Errorf("memory in use once every guest ended: alice %d, bob %d", a, b)
	}
	// A launch without a memory limit counts the wasm32 maximum.
	if _, err := s.Launch(context.Background(), LaunchSpec{Principal: alice, Module: m}); !errors.As(err, &be) || be.Asked != MaxMemoryLimit+abi.DefaultMaxStack {
		t.Errorf("a launch without --mem: %v, want a *BudgetError asking %d", err, MaxMemoryLimit+abi.DefaultMaxStack)
	}
}
