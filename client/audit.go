package client

import (
	"context"
	"time"

	"github.com/sandboxd/sandboxd/schemas"
)

// Audit asks the daemon a question about its delegation graph: kind is
// "graph", "who-can" (arg a resource), "trace" or "what-if" (arg a
// capability id); a zero at asks the live graph, another the graph
// rebuilt from the audit log as of then. The answer is the JSON document
// of package audit's Graph.Answer. Only root and the daemon's user may
// ask.
func (c *Client) Audit(ctx context.Context, kind, arg string, at time.Time) ([]byte, error) {
	f, rel := c.sup.Audit(ctx, func(p schemas.Supervisor_audit_Params) error {
		q, err := p.NewQuery()
		if err != nil {
			return err
		}
		if err := q.SetKind(kind); err != nil {
			return err
		}
		if err := q.SetArg(arg); err != nil {
			return err
		}
		if !at.IsZero() {
			q.SetAt(at.UnixNano())
		}
		return nil
	})
	if err := c.await(ctx, "audit", answer, f.Future, rel); err != nil {
		return nil, err
	}
	defer rel()
	r, err := f.Struct()
	if err != nil {
		return nil, callError("audit", err)
	}
	data, err := r.Json()
	if err != nil {
		return nil, callError("audit", err)
	}
	return append([]byte(nil), data...), nil
}
