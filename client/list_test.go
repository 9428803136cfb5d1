package client_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/sandboxd/sandboxd/abi/abitest"
	"github.com/sandboxd/sandboxd/client"
)

func TestGuestsPagesThroughWhatListReturnsInTheSameOrder(t *testing.T) {
	defer client.SetGuestsPage(2)()
	ctx := context.Background()
	c := dial(t, serve(t))
	idle := abitest.WAT(t, "daemon/testdata/guests/idle.wat")
	hello := abitest.WAT(t, "daemon/testdata/server/hello_wasi.wat")
	for range 5 {
		g, err := c.Launch(ctx, client.LaunchRequest{Name: "idle.wat", Wasm: idle, Labels: []string{"tier=idle"}})
		if err != nil {
			t.Fatal(err)
		}
		defer g.Release()
	}
	ended, err := c.Launch(ctx, client.LaunchRequest{Name: "hello_wasi.wat", Wasm: hello, GuestName: "greeter"})
	if err != nil {
		t.Fatal(err)
	}
	if st, err := ended.Wait(ctx); err != nil || st.Code != 7 {
		t.Fatalf("hello_wasi.wat: %+v, %v", st, err)
	}
	ended.Release()

	listed, err := c.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var want, wantRunning []client.GuestSummary
	for _, g := range listed {
		want = append(want, g.Summary())
		if g.Running {
			wantRunning = append(wantRunning, g.Summary())
		}
	}
	for _, all := range []bool{true, false} {
		var got []client.GuestSummary
		if err := c.Guests(ctx, all, func(g client.GuestSummary) error {
			got = append(got, g)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		w := wantRunning
		if all {
			w = want
		}
		if !slices.EqualFunc(got, w, summariesEqual) {
			t.Errorf("Guests(all %v), two a page:\n got %+v\nwant %+v", all, got, w)
		}
	}
	// An error from f ends the listing with that error, with the next
	// page already asked for; the connection serves on.
	stop := errors.New("enough")
	seen := 0
	if err := c.Guests(ctx, true, func(client.GuestSummary) error {
		if seen++; seen == 3 {
			return stop
		}
		return nil
	}); err != stop || seen != 3 {
		t.Errorf("Guests with f failing at the third guest: %v after %d guests, want %v after 3", err, seen, stop)
	}
	if n, err := countGuests(ctx, c); err != nil || n != 6 {
		t.Errorf("Guests after a listing f ended: %d guests, %v", n, err)
	}
	if len(want) != 6 || len(wantRunning) != 5 {
		t.Errorf("List: %d guests, %d running; want 6 and 5", len(want), len(wantRunning))
	}
}

func countGuests(ctx context.Context, c *client.Client) (int, error) {
	n := 0
	err := c.Guests(ctx, true, func(client.GuestSummary) error { n++; return nil })
	return n, err
}

func summariesEqual(a, b client.GuestSummary) bool {
	return a.ID == b.ID && a.Name == b.Name && a.GuestName == b.GuestName && a.Principal == b.Principal &&
		a.Running == b.Running && a.Status == b.Status && a.Started.Equal(b.Started) && a.Handles == b.Handles &&
		slices.Equal(a.Labels, b.Labels)
}
