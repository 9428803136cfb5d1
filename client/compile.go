package client

import (
	"context"
	"time"

	"github.com/sandboxd/sandboxd/schemas"
)

// Compile has the daemon compile wasm into its cache, so that a later
// Launch of the same bytes starts without compiling. It returns the
// module's SHA-256 and how long the daemon took. A module the daemon
// cannot run is an *Error of KindModule.
func (c *Client) Compile(ctx context.Context, name string, wasm []byte) (sha256 string, took time.Duration, err error) {
	f, rel := c.sup.Compile(ctx, func(p schemas.Supervisor_compile_Params) error {
		if err := p.SetName(name); err != nil {
			return err
		}
		return p.SetWasm(wasm)
	})
	if err := c.await(ctx, "compile "+name, answer, f.Future, rel); err != nil {
		return "", 0, err
	}
	defer rel()
	r, err := f.Struct()
	if err != nil {
		return "", 0, callError("compile "+name, err)
	}
	sha256, err = r.Sha256()
	if err != nil {
		return "", 0, callError("compile "+name, err)
	}
	return sha256, time.Duration(r.Took()), nil
}

// Forget has the daemon stop listing a guest that has ended: List no
// longer returns it, and its id and name are free. A running guest is
// refused.
func (c *Client) Forget(ctx context.Context, id string) error {
	f, rel := c.sup.Forget(ctx, func(p schemas.Supervisor_forget_Params) error { return p.SetId(id) })
	if err := c.await(ctx, "forget "+id, answer, f.Future, rel); err != nil {
		return err
	}
	defer rel()
	if _, err := f.Struct(); err != nil {
		return callError("forget "+id, err)
	}
	return nil
}
