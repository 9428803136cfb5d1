package daemon

import (
	"context"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/sandboxd/sandboxd/abi/abitest"
	"github.com/sandboxd/sandboxd/caps"
)

// launchAnswers launches testdata/guests/goanswers with args and a
// supervisor channel, and returns it with its output.
func launchAnswers(t *testing.T, s *Supervisor, stdin io.Reader, args ...string) (*Guest, *abitest.Buffer) {
	t.Helper()
	m, err := s.Compile(context.Background(), "goanswers", abitest.Go(t, "daemon/testdata/guests/goanswers"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Release)
	out := &abitest.Buffer{}
	g, err := s.Launch(context.Background(), LaunchSpec{Module: m, Args: args, SupervisorChannel: true, Stdin: stdin, Stdout: out, Stderr: out})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Kill("test over"); <-g.Done() })
	return g, out
}

// Every request a guest sends on its supervisor channel is answered once,
// in order, even when the guest sends more than its channel holds answers
// before it reads one: a request that finds no room for its answer waits
// until the guest has read. Once 1,024 answers waited unread, the daemon
// dropped the answer to each later request, and the guest waited for ever
// for the first of them (until HangGuard here). An empty request is
// answered too: it ended the daemon's reading, unanswered.
func TestEveryRequestOnTheSupervisorChannelIsAnsweredInOrder(t *testing.T) {
	s := newSupervisor(t)
	n := caps.ChannelMaxMessages + 276
	g, out := launchAnswers(t, s, nil, "many", fmt.Sprint(n))
	st := waitExit(t, g, HangGuard)
	if want := fmt.Sprintf("answers %d in order\n", n); st.Code != 0 || out.String() != want {
		t.Fatalf("exit %+v, output %q; want %q", st, out.String(), want)
	}
}

// A Connect made while the guest's supervisor channel is full of
// delegations it has not read is answered: the daemon keeps room for an
// answer, so a delegation that would take it is refused. The answer, a
// 257th handle, did not fit, and the guest was refused with "it is not
// reading its supervisor channel and it is full" as it went to read it.
func TestConnectIsAnsweredWhenGrantsFillTheSupervisorChannel(t *testing.T) {
	s := newSupervisor(t)
	s.SetPeerServer(&echoPeers{served: make(chan *Guest, 1)})
	stdin, start := io.Pipe()
	defer start.Close()
	g, out := launchAnswers(t, s, stdin, "connect", "0")
	obj := s.k.Mint(&caps.Holder{ID: "test"}, caps.NewByteObject(), caps.RightsByteObjectBase, 0, "obj", "test")
	defer s.k.Close(obj)
	sent := 0
	for ; ; sent++ {
		_, err := g.SendCap(context.Background(), obj, fmt.Sprint("obj", sent))
		if err != nil {
			if !strings.Contains(err.Error(), "is full") {
				t.Fatalf("delegation %d: %v; want it refused for a full channel", sent, err)
			}
			break
		}
	}
	if _, err := io.WriteString(start, "go\n"); err != nil {
		t.Fatal(err)
	}
	st := waitExit(t, g, HangGuard)
	if want := fmt.Sprintf("connect: <nil>\npending %d\n", sent); st.Code != 0 || out.String() != want {
		t.Fatalf("exit %+v, output %q; want %q", st, out.String(), want)
	}
}

// A Connect made after as many requests as the guest's supervisor channel
// holds answers (their answers discarded, as a Connect whose context
// ended discards its own) is answered once the guest reads: the request
// waits for room. Its answer was dropped, and so Connect waited for ever
// (until HangGuard here), as every later one would: each took the answer
// to the request before it.
func TestConnectIsAnsweredAfterAChannelFullOfAnswers(t *testing.T) {
	s := newSupervisor(t)
	s.SetPeerServer(&echoPeers{served: make(chan *Guest, 1)})
	g, out := launchAnswers(t, s, strings.NewReader("go\n"), "connect", fmt.Sprint(caps.ChannelMaxMessages))
	st := waitExit(t, g, HangGuard)
	if want := "connect: <nil>\npending 0\n"; st.Code != 0 || out.String() != want {
		t.Fatalf("exit %+v, output %q; want %q", st, out.String(), want)
	}
}

// A request waits while the guest's supervisor channel has no room for
// its answer, so once as many wait as the channel holds, the guest cannot
// send another until it reads. peer.Connect then gives up when its
// context ends, having sent nothing, so no answer is owed for it: it
// waited to send for ever (until HangGuard here).
func TestConnectGivesUpWaitingToSendItsRequest(t *testing.T) {
	s := newSupervisor(t)
	s.SetPeerServer(&echoPeers{served: make(chan *Guest, 1)})
	n := 2 * caps.ChannelMaxMessages // answers waiting, and requests waiting for room
	g, out := launchAnswers(t, s, nil, "stuck", fmt.Sprint(n))
	st := waitExit(t, g, HangGuard)
	if want := fmt.Sprintf("connect: deadline exceeded true\nanswers %d in order, and then the next\n", n); st.Code != 0 || out.String() != want {
		t.Fatalf("exit %+v, output %q; want %q", st, out.String(), want)
	}
}

// A guest whose handle table is full is told when a notice's handle could
// not be installed (the daemon closed it): RecvNotice returns an error
// naming the full table with the notice's fields, peer.Connect fails with
// it for its answer and keeps a grant's in Pending, marked lost, and a
// Connect once the guest has room is answered (the daemon freed the
// connection whose end was closed). RecvNotice returned such a notice as
// if it had no handle, and Connect filed its own answer as pending and
// waited for ever (until HangGuard here).
func TestAGuestWithAFullHandleTableIsToldWhatItLost(t *testing.T) {
	s := newSupervisor(t)
	s.SetPeerServer(&echoPeers{served: make(chan *Guest, 2)})
	m, err := s.Compile(context.Background(), "goanswers", abitest.Go(t, "daemon/testdata/guests/goanswers"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Release)
	stdin, next := io.Pipe()
	defer next.Close()
	out := &output{wrote: make(chan struct{}, 1)}
	g, err := s.Launch(context.Background(), LaunchSpec{Module: m, Args: []string{"fulltable"}, MaxFDs: 32, SupervisorChannel: true, Stdin: stdin, Stdout: out, Stderr: out})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Kill("test over"); <-g.Done() })
	obj := s.k.Mint(&caps.Holder{ID: "test"}, caps.NewByteObject(), caps.RightsByteObjectBase, 0, "obj", "test")
	defer s.k.Close(obj)
	var sent []*caps.Cap
	for _, step := range []struct{ await, name string }{{"full\n", "lost-grant"}, {"read\n", "lost-again"}} {
		awaitLineOrExit(t, g, out, step.await)
		c, err := g.SendCap(context.Background(), obj, step.name)
		if err != nil {
			t.Fatal(err)
		}
		sent = append(sent, c)
		if _, err := io.WriteString(next, "go\n"); err != nil {
			t.Fatal(err)
		}
	}
	st := waitExit(t, g, HangGuard)
	if st.Code != 0 || len(lines(out)) != 6 {
		t.Fatalf("exit %+v, output:\n%s", st, out.String())
	}
	lost := "could not take: its handle table is full"
	if !strings.Contains(lines(out)[1], "[lost: rpc rpc, cap true, handle lost true]") || !strings.Contains(lines(out)[4], "[lost: delegate lost-again, cap true, handle lost true]") {
		t.Errorf("the errors do not hold the notices whose handles were lost:\n%s", out.String())
	}
	want := []string{
		"full",
		"connect: peer: sandboxd: the rpc notice",
		"pending delegate lost-grant: fd false, handle lost true",
		"read",
		fmt.Sprintf("notice delegate lost-again %s: fd false, error sandboxd: the delegate notice", sent[1].ID()),
		"connect again: <nil>",
	}
	got := lines(out)
	for i, w := range want {
		if !strings.HasPrefix(got[i], w) || (i == 1 || i == 4) && !strings.Contains(got[i], lost) {
			t.Errorf("line %d: %q; want it to begin %q (and, for an error, say %q)", i+1, got[i], w, lost)
		}
	}
	for _, c := range sent {
		if !c.Info().Closed {
			t.Errorf("capability %s, whose handle the guest could not take, is still open", c.ID())
		}
	}
}

// lines splits a guest's output into its lines.
func lines(out *output) []string {
	return strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
}
