package audit

import (
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
)

// A guest can make a long derivation chain (send a handle to itself and
// close the original, again: closed delegated copies stay while what
// derives from them lives, unlike dups, which the replay splices out).
// Every walk of the graph keeps its own stack:
// with the goroutine stack held to 4 MiB, a recursive walk of this chain
// would end the process.
func TestGraphWalksDoNotRecurseDownAChain(t *testing.T) {
	const depth = 100_000
	g := NewGraph()
	for i := range depth {
		n := Node{CapRecord: CapRecord{ID: "c" + strconv.Itoa(i), Kind: "dir", Resource: "dir /srv", Edge: "delegate", Holder: "g1"}, Closed: i < depth-1}
		if i > 0 {
			n.Parent = "c" + strconv.Itoa(i-1)
		} else {
			n.Edge = "grant"
		}
		g.add(n)
	}
	defer debug.SetMaxStack(debug.SetMaxStack(4 << 20))

	if n := len(g.Nodes()); n != depth {
		t.Fatalf("Nodes: %d, want %d", n, depth)
	}
	cut, err := g.WhatIf("c0")
	if err != nil || len(cut.Revoked) != depth {
		t.Fatalf("WhatIf: %d revoked, %v; want %d", len(cut.Revoked), err, depth)
	}
	if reach := g.WhoCan("/srv"); len(reach) != 1 || len(reach[0].Chain) != depth {
		t.Fatalf("WhoCan: %d reaches; want the one live capability, with its chain of %d", len(reach), depth)
	}
	var out strings.Builder
	if err := g.Render(&out, "text"); err != nil {
		t.Fatal(err)
	}
	last := out.String()[strings.LastIndexByte(strings.TrimSuffix(out.String(), "\n"), '\n')+1:]
	if !strings.Contains(last, "[depth "+strconv.Itoa(depth-1)+"] c"+strconv.Itoa(depth-1)+" ") {
		t.Fatalf("the last line does not give its depth: %q", last)
	}
}
