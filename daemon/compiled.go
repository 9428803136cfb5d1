package daemon

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"weak"

	"github.com/sandboxd/sandboxd/abi"
)

// compiledSeen tells a Compile that found its module compiled in memory
// from one that compiled it (or loaded it from the state directory's
// cache). abi.Runtime.Compile returns the compilation it keeps for the
// same bytes while it keeps it, and every Module it returns for one
// compilation shares it, Hash field and all; a compilation dropped as
// idle is compiled anew, into a new one. So a Compile whose Module's Hash
// is the very field the last Compile of those bytes saw compiled nothing.
//
// The fields are held weakly: a compilation the runtime has dropped and
// no guest runs is collected, and its entry pruned.
type compiledSeen struct {
	mu      sync.Mutex
	last    map[[32]byte]weak.Pointer[[32]byte] // by hash: the Hash field last seen
	pruneAt int                                 // len(last) at which to prune
}

// minPruneAt is the fewest entries compiledSeen prunes.
const minPruneAt = 64

// seen records m's compilation as the last one of its bytes, and reports
// whether it was already.
func (c *compiledSeen) seen(m *abi.Module) bool {
	w := weak.Make(&m.Hash)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.last == nil {
		c.last, c.pruneAt = make(map[[32]byte]weak.Pointer[[32]byte]), minPruneAt
	}
	prev, ok := c.last[m.Hash]
	c.last[m.Hash] = w
	if len(c.last) >= c.pruneAt {
		for h, p := range c.last {
			if p.Value() == nil {
				delete(c.last, h)
			}
		}
		c.pruneAt = max(minPruneAt, 2*len(c.last))
	}
	return ok && prev == w
}

// CompileCached is Compile, and also reports whether the module was
// already compiled in memory by an earlier Compile of this Supervisor's
// (a launch, or the control API's compile): the call then compiled
// nothing. A module the runtime had dropped as idle, and so compiled again
// or loaded from the state directory's cache, was not cached in this
// sense; nor one only a guest's proc_spawn compiled. Two calls racing on
// bytes new to the Supervisor share one compilation, and either may be
// told it was cached.
func (s *Supervisor) CompileCached(ctx context.Context, name string, wasm []byte) (m *abi.Module, cached bool, err error) {
	m, err = s.rt.Compile(ctx, name, wasm)
	if err != nil {
		if !errors.As(err, new(*abi.LimitError)) && !errors.As(err, new(*abi.ImportError)) {
			err = fmt.Errorf("%w: build it as a WebAssembly command module (wasm32, exporting _start and memory)", err)
		}
		return nil, false, err
	}
	return m, s.compiled.seen(m), nil
}
