package server

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/sandboxd/sandboxd/schemas"
)

// errAuditNotAllowed refuses the audit graph to other principals: it
// shows every principal's guests and capabilities. It says what the
// principal may do instead.
var errAuditNotAllowed = errors.New("audit: only root and the daemon's own user may read the delegation graph: it shows every user's guests and capabilities; " +
	"your own guests' capabilities, and where each came from (EDGE, PARENT, ORIGIN, BY), are in `sandboxd caps GUEST`, or ask the daemon's operator")

// Audit answers a question about the delegation graph with its JSON
// document (see audit.Graph.Answer).
func (s *supervisorServer) Audit(ctx context.Context, call schemas.Supervisor_audit) error {
	call.Go()
	q, err := call.Args().Query()
	if err != nil {
		return err
	}
	kind, err := q.Kind()
	if err != nil {
		return err
	}
	arg, err := q.Arg()
	if err != nil {
		return err
	}
	if !s.c.auth.MayAudit() {
		return errAuditNotAllowed
	}
	var at time.Time
	if ns := q.At(); ns != 0 {
		at = time.Unix(0, ns)
	}
	g, err := s.c.s.sup.AuditGraph(at)
	if err != nil {
		return err
	}
	doc, err := g.Answer(kind, arg)
	if err != nil {
		return err
	}
	data, err := json.Marshal(doc)
	if err != nil {
		return err
	}
	res, err := call.AllocResults()
	if err != nil {
		return err
	}
	return res.SetJson(data)
}
