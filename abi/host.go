package abi

import (
	"context"
	"strconv"
	"strings"

	"github.com/sandboxd/sandboxd/caps"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

type guestKey struct{}

// guestContext is the context a guest's functions run under: its guest's
// context and the guest itself, which every host call needs first. A host
// call finds it with a type assertion (guestOf), not a walk up a chain of
// context values, which showed as 5% of an fd_write.
type guestContext struct {
	context.Context
	g *Guest
}

// withGuest returns ctx carrying g for g's host calls. It must be the
// outermost context a guest's module is instantiated and called with.
func withGuest(ctx context.Context, g *Guest) context.Context {
	return &guestContext{Context: ctx, g: g}
}

func (c *guestContext) Value(key any) any {
	if key == (guestKey{}) {
		return c.g
	}
	return c.Context.Value(key)
}

// guestOf returns the guest a host call is running for. Every guest is
// started by Guest.run under withGuest, so only a module started some
// other way (which this package never does) sees nil.
func guestOf(ctx context.Context) *Guest {
	if c, ok := ctx.(*guestContext); ok {
		return c.g
	}
	g, _ := ctx.Value(guestKey{}).(*Guest)
	return g
}

// instantiateNative builds the "sandboxd" host module from the call table.
// One instance serves every guest: handlers find their guest through the
// context of the call.
func instantiateNative(ctx context.Context, r wazero.Runtime) error {
	b := r.NewHostModuleBuilder(ModuleName)
	for i := range calls {
		defineHostCall(b, &calls[i])
	}
	_, err := b.Instantiate(ctx)
	return err
}

// defineHostCall exports one Call from b. It serves both ABIs' tables.
func defineHostCall(b wazero.HostModuleBuilder, c *Call) {
	types := make([]api.ValueType, len(c.Params))
	names := make([]string, len(c.Params))
	for j, p := range c.Params {
		types[j], names[j] = p.Type, p.Name
	}
	var results []api.ValueType
	if !c.NoReturn {
		results = []api.ValueType{api.ValueTypeI32}
	}
	b.NewFunctionBuilder().
		WithGoModuleFunction(c.goFunc(), types, results).
		WithParameterNames(names...).
		WithName(c.Name).
		Export(c.Name)
}

// hostFunc is a Call as wazero calls it. wazero calls the Call method
// through api.GoModuleFunction, so implementing it on the Call itself saves
// the extra indirect call a func value would add.
type hostFunc Call

func (c *Call) goFunc() api.GoModuleFunction { return (*hostFunc)(c) }

func (h *hostFunc) Call(ctx context.Context, mod api.Module, stack []uint64) {
	g := guestOf(ctx)
	if g == nil {
		if !h.NoReturn {
			stack[0] = uint64(caps.ENOSYS)
		}
		return
	}
	if g.trace {
		g.traceCall((*Call)(h), stack)
	}
	if !h.keepsHold && g.hold.Held() {
		g.hold.Release()
	}
	e := h.fn(g, mod.Memory(), stack)
	if e == caps.ENFILE {
		g.hostOutOfFDs(h.Name)
	}
	if g.trace && e != 0 {
		g.log.Trace("errno", "call", h.Name, "errno", e.Error())
	}
	if !h.NoReturn {
		stack[0] = uint64(e)
	}
}

func (g *Guest) traceCall(c *Call, stack []uint64) {
	var b strings.Builder
	for i, p := range c.Params {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(p.Name)
		b.WriteByte('=')
		if p.Type == api.ValueTypeI32 {
			b.WriteString(strconv.FormatUint(uint64(uint32(stack[i])), 10))
		} else {
			b.WriteString(strconv.FormatUint(stack[i], 10))
		}
	}
	g.log.Trace("call", "call", c.Name, "args", b.String())
}
