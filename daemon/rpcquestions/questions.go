// Package rpcquestions keeps where each Cap'n Proto question a peer has
// opened on a connection the daemon serves stands: asked, returned by the
// daemon, finished by the peer. The transports of the control API
// (daemon/server) and of guests (daemon/guestrpc) read it to refuse, before
// go-capnp sees them, a question id reused while it is open and a call
// pipelined on a question that is not open, and to count the questions a
// peer may have open at once.
package rpcquestions

// state is where one question stands.
type state uint8

const (
	running  state = iota // neither returned nor finished
	answered              // returned; the peer has not sent Finish
	// cancelled: the peer sent Finish before the daemon returned it. The
	// daemon still carries the call out, or keeps it queued, until it
	// returns it, so it counts as in progress until then.
	cancelled
)

// Table is a connection's open questions. It is not safe for concurrent
// use: its transport locks it.
type Table struct {
	m          map[uint32]state
	inProgress int // questions not returned
}

// New returns an empty table.
func New() *Table { return &Table{m: make(map[uint32]state)} }

// IsOpen reports whether question id is kept: not returned, or not
// finished, or both. A new question may not reuse its id.
func (t *Table) IsOpen(id uint32) bool {
	_, ok := t.m[id]
	return ok
}

// CanPipelineOn reports whether call id may be pipelined on question q:
// q is open and its peer has not finished it, and it is not the call
// itself.
func (t *Table) CanPipelineOn(q, id uint32) bool {
	st, ok := t.m[q]
	return ok && st != cancelled && q != id
}

// Open records question id, which must not be open (IsOpen).
func (t *Table) Open(id uint32) {
	t.m[id] = running
	t.inProgress++
}

// Finished records the peer's Finish of question id: it is forgotten if
// the daemon has returned it, and otherwise kept in progress until it
// does.
func (t *Table) Finished(id uint32) {
	switch st, ok := t.m[id]; {
	case ok && st == answered:
		delete(t.m, id)
	case ok:
		t.m[id] = cancelled
	}
}

// Returned records the daemon's Return of question id: it is forgotten if
// the peer has finished it, and otherwise kept until it does.
func (t *Table) Returned(id uint32) {
	switch st, ok := t.m[id]; {
	case !ok || st == answered:
		return
	case st == cancelled:
		delete(t.m, id)
	default:
		t.m[id] = answered
	}
	t.inProgress--
}

// Len is the number of questions kept: not returned, or not finished.
func (t *Table) Len() int { return len(t.m) }

// InProgress is the number of questions the daemon has not returned,
// finished by the peer or not.
func (t *Table) InProgress() int { return t.inProgress }
