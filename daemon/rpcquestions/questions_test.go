package rpcquestions

import "testing"

// A question is kept from its call until both its Return and its Finish
// have come, in either order, and counts as in progress until its Return.
func TestAQuestionIsKeptUntilReturnedAndFinished(t *testing.T) {
	q := New()
	q.Open(1)
	q.Open(2)
	if !q.IsOpen(1) || q.Len() != 2 || q.InProgress() != 2 {
		t.Fatalf("after two calls: open %v, len %d, in progress %d", q.IsOpen(1), q.Len(), q.InProgress())
	}
	if !q.CanPipelineOn(1, 3) || q.CanPipelineOn(1, 1) || q.CanPipelineOn(9, 3) {
		t.Fatal("pipelining: want it on an open question only, never on the call itself")
	}

	// Returned, then finished.
	q.Returned(1)
	if !q.IsOpen(1) || q.InProgress() != 1 || !q.CanPipelineOn(1, 3) {
		t.Fatalf("returned, not finished: open %v, in progress %d", q.IsOpen(1), q.InProgress())
	}
	q.Returned(1) // a second Return changes nothing
	if q.InProgress() != 1 {
		t.Fatalf("a repeated Return counted again: in progress %d", q.InProgress())
	}
	q.Finished(1)
	if q.IsOpen(1) || q.Len() != 1 {
		t.Fatalf("returned and finished: open %v, len %d; want it forgotten", q.IsOpen(1), q.Len())
	}

}

// A question its peer finishes before the daemon returns it (cancelled)
// stays in progress until the Return, and nothing may be pipelined on it.
func TestACancelledQuestionIsKeptUntilReturned(t *testing.T) {
	q := New()
	q.Open(2)
	q.Finished(2)
	if !q.IsOpen(2) || q.InProgress() != 1 || q.CanPipelineOn(2, 3) {
		t.Fatalf("cancelled: open %v, in progress %d, pipelinable %v; want kept in progress, not pipelinable", q.IsOpen(2), q.InProgress(), q.CanPipelineOn(2, 3))
	}
	q.Returned(2)
	if q.IsOpen(2) || q.Len() != 0 || q.InProgress() != 0 {
		t.Fatalf("cancelled and returned: open %v, len %d, in progress %d; want nothing kept", q.IsOpen(2), q.Len(), q.InProgress())
	}

	// A Finish or Return of a question never opened changes nothing.
	q.Finished(7)
	q.Returned(8)
	if q.Len() != 0 || q.InProgress() != 0 {
		t.Fatalf("unknown ids: len %d, in progress %d", q.Len(), q.InProgress())
	}
}
