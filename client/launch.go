package client

import (
	"context"
	"fmt"
	"io"
	"math"
	"time"

	capnp "capnproto.org/go/capnp/v3"
	"github.com/sandboxd/sandboxd/schemas"
)

// LaunchRequest describes a guest to launch.
type LaunchRequest struct {
	// Name is the module's display name (usually its file name).
	Name string
	// Wasm is the module. The daemon compiles each distinct module once
	// (by SHA-256) and reuses the compiled code for later launches.
	Wasm []byte
	// Args follow the program name; Env holds KEY=VALUE strings.
	Args []string
	Env  []string
	// Grants are resources to pre-open, in the --grant grammar
	// (dir:HOST[=GUEST][:ro], file:HOST[=GUEST][:ro], …).
	Grants []string
	// Deny is what the guest, and every guest it spawns, may never be
	// given, whatever the daemon's policy allows: selectors in the
	// grammar of a policy's deny rules (KIND:NAME, KIND:GLOB,
	// dir|file:/ABSOLUTE/PATH; docs/GRANTS.md, --deny).
	Deny []string
	// Caps are capabilities this client holds, each passed to the guest
	// as a derived copy under a name.
	Caps []Delegation
	// Limits; zero means the daemon's default.
	MemoryLimit uint64
	Timeout     time.Duration
	MaxFDs      int
	MaxStack    uint64 // bytes of call stack, as the daemon counts it
	// Stdin is what the guest reads from standard input, then end of file.
	Stdin []byte
	// Stdout and Stderr receive the guest's output as it is written.
	// While the client does not keep up, the guest waits. Either may be
	// nil; the daemon also keeps recent output for Guest.Logs.
	Stdout, Stderr io.Writer
	// Detach keeps the guest running when its Guest is released or this
	// connection closes. Without it the daemon kills the guest then.
	Detach bool
	// Labels are KEY=VALUE strings describing the module, which policy
	// rules match and ps shows.
	Labels []string
	// GuestName names the guest, unique among the daemon's listed guests;
	// it works wherever the guest's id does. "" for none.
	GuestName string
	// StdinStream, when not nil, is read and streamed to the guest's stdin
	// as the guest reads it, until it ends (then the guest reads end of
	// file): interactive guests and unbounded input. Stdin must then be
	// empty.
	StdinStream io.Reader
}

// Delegation passes a held capability to a guest at launch.
type Delegation struct {
	Cap  *Cap
	Name string
}

// afterLaunchGivenUp is called by Launch once it has given up waiting
// for the daemon, before it gives up the exit status it asked for; tests
// hold it there.
var afterLaunchGivenUp = func() {}

// Launch starts a guest and returns a handle on it once it is running.
//
// Unless req.Detach is set, Launch also asks for the guest's exit status
// in the same round trip (pipelined on the launch), so that Wait costs no
// further round trip: launch to exit status is one exchange with the
// daemon.
func (c *Client) Launch(ctx context.Context, req LaunchRequest) (*Guest, error) {
	if msg := req.invalid(); msg != "" {
		return nil, &Error{Op: "launch " + req.Name, Kind: KindRequest, Msg: msg}
	}
	g := &Guest{c: c}
	if req.Stdout != nil || req.Stderr != nil {
		// The Guest holds the sink (and the goroutine serving it) until
		// Release; the request gets a reference of its own, made only if
		// the request is built (a closed connection sends none).
		g.out = newOutputServer(req.Stdout, req.Stderr)
		g.sink = g.out.client()
	}
	f, rel := c.sup.Launch(ctx, func(p schemas.Supervisor_launch_Params) error {
		r, err := p.NewRequest()
		if err != nil {
			return err
		}
		return fillLaunch(r, req, g.sink)
	})
	if !req.Detach {
		// Not bound to ctx: it lives as long as the Guest (Release ends it).
		ectx, cancel := context.WithCancel(context.Background())
		ef, erel := f.Guest().Wait(ectx, nil)
		g.exit, g.exitRel, g.exitCancel = &ef, erel, cancel
		g.exitGone = make(chan struct{})
	}
	if err := c.await(ctx, "launch "+req.Name, answer, f.Future, rel); err != nil {
		afterLaunchGivenUp()
		g.Release()
		return nil, err
	}
	defer rel()
	r, err := f.Struct()
	if err == nil {
		var info schemas.GuestInfo
		if info, err = r.Info(); err == nil {
			g.id = guestInfoFrom(info).ID
			g.g = r.Guest().AddRef()
			if g.out != nil {
				c.keepOutput(g)
			}
			if req.StdinStream != nil && r.HasStdin() {
				g.stdin = newStdinLimiter()
				go pumpStdin(req.StdinStream, r.Stdin().AddRef(), g.stdin)
			}
			return g, nil
		}
	}
	g.Release()
	return nil, callError("launch "+req.Name, err)
}

// keepOutput notes that g, just launched, holds an output sink, which
// Close releases if g's Release has not; g.Release forgets it. A launch
// that ended as Close ran releases its sink at once: the connection it
// served is gone. (A sink is noted only once its launch has been sent,
// so that Close never releases one the request is still taking a
// reference on.)
func (c *Client) keepOutput(g *Guest) {
	c.mu.Lock()
	closed := c.closed
	if !closed {
		if c.withOutput == nil {
			c.withOutput = make(map[*Guest]struct{})
		}
		c.withOutput[g] = struct{}{}
	}
	c.mu.Unlock()
	if closed {
		g.sink.Release()
	}
}

// invalid says what is wrong with a request that cannot be sent as it
// is, or returns "".
func (req *LaunchRequest) invalid() string {
	if req.MaxFDs < 0 || uint64(req.MaxFDs) > math.MaxUint32 {
		// The request carries 32 bits: a larger count would arrive as another.
		return fmt.Sprintf("max fds %d is out of range: give 0 (the daemon's default) or a count of handles", req.MaxFDs)
	}
	for i, d := range req.Caps {
		if d.Cap == nil {
			return fmt.Sprintf("Caps[%d] (named %q) has no capability: give a *Cap this client holds", i, d.Name)
		}
	}
	return ""
}

func fillLaunch(r schemas.LaunchRequest, req LaunchRequest, sink schemas.OutputSink) error {
	if err := r.SetName(req.Name); err != nil {
		return err
	}
	if err := r.SetWasm(req.Wasm); err != nil {
		return err
	}
	if err := setTexts(r.NewArgs, req.Args); err != nil {
		return err
	}
	if err := setTexts(r.NewEnv, req.Env); err != nil {
		return err
	}
	if err := setTexts(r.NewGrants, req.Grants); err != nil {
		return err
	}
	if err := setTexts(r.NewDeny, req.Deny); err != nil {
		return err
	}
	if err := setTexts(r.NewLabels, req.Labels); err != nil {
		return err
	}
	if err := r.SetGuestName(req.GuestName); err != nil {
		return err
	}
	r.SetStdinStream(req.StdinStream != nil)
	if len(req.Caps) > 0 {
		dl, err := r.NewCaps(int32(len(req.Caps)))
		if err != nil {
			return err
		}
		for i, d := range req.Caps {
			if err := dl.At(i).SetCap(d.Cap.c.AddRef()); err != nil {
				return err
			}
			if err := dl.At(i).SetName(d.Name); err != nil {
				return err
			}
		}
	}
	r.SetMemoryLimit(req.MemoryLimit)
	r.SetTimeout(int64(req.Timeout))
	r.SetMaxFds(uint32(req.MaxFDs))
	r.SetMaxStack(req.MaxStack)
	if len(req.Stdin) > 0 {
		if err := r.SetStdin(req.Stdin); err != nil {
			return err
		}
	}
	if sink.IsValid() {
		if err := r.SetOutput(sink.AddRef()); err != nil {
			return err
		}
	}
	r.SetDetach(req.Detach)
	return nil
}

func setTexts(alloc func(int32) (capnp.TextList, error), vals []string) error {
	if len(vals) == 0 {
		return nil
	}
	l, err := alloc(int32(len(vals)))
	if err != nil {
		return err
	}
	for i, v := range vals {
		if err := l.Set(i, v); err != nil {
			return err
		}
	}
	return nil
}
