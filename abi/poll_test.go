package abi_test

import (
	"context"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/abi"
	"github.com/sandboxd/sandboxd/abi/abitest"
	"github.com/sandboxd/sandboxd/abi/argdata"
	"github.com/sandboxd/sandboxd/caps"
)

const pollGuest = "abi/testdata/guests/poll/poll.c"

// startMode starts wasm with tbl and the argdata string mode, which the
// test guests read to pick a scenario.
func (h *harness) startMode(t testing.TB, ctx context.Context, wasm []byte, tbl *caps.Table, mode string) *abi.Guest {
	t.Helper()
	m, err := h.rt.Compile(context.Background(), "guest", wasm)
	if err != nil {
		t.Fatal(err)
	}
	g := h.rt.NewGuest(m, abi.GuestConfig{ID: tbl.Holder().ID, Table: tbl, Argdata: argdata.String(mode).Encode(), InFlight: h.inflight, Logger: h.logger})
	g.Start(ctx)
	return g
}

// runMode runs wasm in mode to completion, within hangGuard.
func (h *harness) runMode(t testing.TB, wasm []byte, tbl *caps.Table, mode string) abi.ExitStatus {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	return h.startMode(t, ctx, wasm, tbl, mode).Wait()
}

// channelEnd puts one end of a new channel in tbl and returns its
// capability and the other end, for the test to use directly.
func (h *harness) channelEnd(t testing.TB, tbl *caps.Table, dgram bool) (*caps.Cap, *caps.Channel) {
	t.Helper()
	a, b := caps.NewChannelPair(dgram, "test")
	c := h.k.Mint(tbl.Holder(), a, caps.RightsSocketBase, caps.RightsSocketInheriting, "chan", "test")
	if _, err := tbl.Insert(c); err != nil {
		t.Fatal(err)
	}
	return c, b
}

// awaitMessage blocks until the guest sends want on the channel.
func awaitMessage(t testing.TB, ch *caps.Channel, want string) {
	t.Helper()
	w := caps.NewWaiter()
	deadline := time.After(hangGuard)
	var got []byte
	for {
		buf := make([]byte, 64)
		n, _, _, err := ch.Recv([][]byte{buf}, 0, false)
		if err == nil && n == 0 {
			t.Fatalf("channel closed after %q, waiting for %q", got, want)
		}
		got = append(got, buf[:n]...)
		if string(got) == want {
			return
		}
		if len(got) >= len(want) {
			t.Fatalf("guest sent %q, want %q", got, want)
		}
		ready, cancel := ch.Poll(caps.EventRead, w)
		if ready == 0 {
			select {
			case <-w.C():
			case <-deadline:
				t.Fatalf("guest did not send %q", want)
			}
		}
		cancel()
	}
}

func expectStdout(t testing.TB, h *harness, want string) {
	t.Helper()
	if got := h.stdout.String(); got != want {
		t.Fatalf("stdout differs:\n%s\ngot:\n%s", lineDiff(got, want), got)
	}
}

// Clocks never fire early, the earliest of several fires alone, absolute
// deadlines work on both clocks, and a ready handle ends the wait at once.
func TestPollClocksHonourTimeoutsInOrder(t *testing.T) {
	h := newHarness(t)
	st := h.runMode(t, abitest.C(t, pollGuest), h.table("p"), "clocks")
	if st.Err() != nil || st.Code != 0 {
		t.Fatalf("status %+v", st)
	}
	expectStdout(t, h, `relative: ok events 1 userdata 7 type 1 error ok early no
two clocks: ok events 1 first userdata 1
absolute realtime: ok events 1 early no
absolute monotonic: ok events 1 early no
absolute past: ok events 1 userdata 5
ready handle: ok events 1 userdata 8 type 4 waited<1s yes
`)
}

// Subscriptions that cannot be waited on are reported at once, each with
// its own error; the call itself fails only for bad arguments.
func TestPollReportsPerSubscriptionErrors(t *testing.T) {
	h := newHarness(t)
	st := h.runMode(t, abitest.C(t, pollGuest), h.table("p"), "errors")
	if st.Err() != nil || st.Code != 0 {
		t.Fatalf("status %+v", st)
	}
	expectStdout(t, h, `no subscriptions: EINVAL
too many: EINVAL
events out of memory: EFAULT
per-subscription errors: ok events 7
  userdata 1 type 3 error EBADF
  userdata 2 type 3 error ENOTCAPABLE
  userdata 3 type 2 error ENOSYS
  userdata 4 type 6 error ENOSYS
  userdata 5 type 99 error EINVAL
  userdata 6 type 1 error EINVAL
  userdata 7 type 7 error EINVAL
`)
}

// A guest polling a channel wakes when another guest writes to it, sees
// the channel writable, and sees the hang-up when the writer exits.
func TestPollWakesOnChannelWrittenByAnotherGuest(t *testing.T) {
	h := newHarness(t)
	a, b := caps.NewChannelPair(false, "between guests")
	reader, writer := h.table("reader"), h.table("writer")
	for _, x := range []struct {
		t  *caps.Table
		ch *caps.Channel
	}{{reader, a}, {writer, b}} {
		if _, err := x.t.Insert(h.k.Mint(x.t.Holder(), x.ch, caps.RightsSocketBase, 0, "chan", "test")); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	wasm := abitest.C(t, pollGuest)
	r := h.startMode(t, ctx, wasm, reader, "read")
	w := h.startMode(t, ctx, wasm, writer, "write-later")
	if st := w.Wait(); st.Err() != nil {
		t.Fatalf("writer %+v", st)
	}
	if st := r.Wait(); st.Err() != nil || st.Code != 0 {
		t.Fatalf("reader %+v", st)
	}
	expectStdout(t, h, `read: ok events 1 userdata 1 type 3 error ok
data: ok ping
writable: ok events 1 type 4
hangup: ok events 1 flags 1
`)
}

func TestPollBlockedGuestEndsPromptlyOnKill(t *testing.T) {
	h := newHarness(t)
	tbl := h.table("p")
	_, ours := h.channelEnd(t, tbl, false)
	g := h.startMode(t, context.Background(), abitest.C(t, pollGuest), tbl, "block")
	awaitMessage(t, ours, "waiting")
	start := time.Now()
	killAndAwait(t, g, "guest blocked in poll")
	if strings.Contains(h.stdout.String(), "poll returned") {
		t.Fatal("poll returned to the guest instead of ending it")
	}
	t.Logf("killed %v after Kill", time.Since(start))
}

func TestPollBlockedGuestEndsAtContextDeadline(t *testing.T) {
	h := newHarness(t)
	tbl := h.table("p")
	h.channelEnd(t, tbl, false)
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	g := h.startMode(t, ctx, abitest.C(t, pollGuest), tbl, "block")
	select {
	case <-g.Done():
	case <-time.After(hangGuard):
		t.Fatalf("guest outlived its context's deadline by %v", hangGuard)
	}
	if st := g.Status(); st.Killed != "timeout" {
		t.Fatalf("status %+v", st)
	}
	if time.Since(start) < 300*time.Millisecond {
		t.Fatal("ended before its deadline")
	}
}

// Revoking a handle a guest is polling ends the wait with ENOTCAPABLE in
// that subscription's event, and Revoke returns once the poll let go.
func TestPollReportsENOTCAPABLEWhenPolledHandleIsRevoked(t *testing.T) {
	h := newHarness(t)
	tbl := h.table("p")
	c, ours := h.channelEnd(t, tbl, false)
	g := h.startMode(t, context.Background(), abitest.C(t, pollGuest), tbl, "poll-revoke")
	awaitMessage(t, ours, "waiting")
	awaitBlocked(t, g, 0)
	r := h.k.Revoke(c, "test")
	if len(r.Revoked) != 1 {
		t.Fatalf("receipt %+v", r)
	}
	if st := g.Wait(); st.Err() != nil || st.Code != 0 {
		t.Fatalf("status %+v", st)
	}
	expectStdout(t, h, "poll returned: ok events 1 error ENOTCAPABLE\n")
}

// poll's proc_terminate reports how each child ended: its exit code, the
// signal it raised, nothing for ignored signals, SIGABRT for a trap.
func TestPollWaitsForProcessTermination(t *testing.T) {
	h := newHarness(t)
	tbl := h.table("p")
	h.grantModule(t, tbl, "child", abitest.C(t, "abi/testdata/guests/poll/child.c"))
	st := h.runMode(t, abitest.C(t, pollGuest), tbl, "proc")
	if st.Err() != nil || st.Code != 0 {
		t.Fatalf("status %+v\n%s", st, h.stdout.String())
	}
	expectStdout(t, h, `exit: spawn ok poll ok type 7 signal 0 code 42 kind process
raise: spawn ok poll ok type 7 signal 16 code 0 kind process
ignore: spawn ok poll ok type 7 signal 0 code 5 kind process
trap: spawn ok poll ok type 7 signal 1 code 0 kind process
fd_read on a process: ENOTCAPABLE
`)
}

// A guest waiting in poll is a parked goroutine: a hundred of them do not
// hold a hundred OS threads.
func TestGuestsBlockedInPollHoldNoThreads(t *testing.T) {
	h := newHarness(t)
	wasm := abitest.C(t, pollGuest)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const n = 100
	before := osThreads(t)
	var gs []*abi.Guest
	for i := range n {
		tbl := h.table("p" + strconv.Itoa(i))
		_, ours := h.channelEnd(t, tbl, false)
		gs = append(gs, h.startMode(t, ctx, wasm, tbl, "block"))
		awaitMessage(t, ours, "waiting")
	}
	for _, g := range gs {
		awaitBlocked(t, g, 0)
	}
	during := osThreads(t)
	cancel()
	for _, g := range gs {
		<-g.Done()
	}
	if during-before > n/4 {
		t.Fatalf("%d guests blocked in poll: threads %d → %d", n, before, during)
	}
	t.Logf("%d guests blocked in poll: threads %d → %d", n, before, during)
}

// osThreads reads this process's thread count from /proc.
func osThreads(t testing.TB) int {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatalf("reading the thread count: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "Threads:"); ok {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatal("no Threads line in /proc/self/status")
	return 0
}
