package audit

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkAppendConcurrent appends capability records from many
// goroutines at once, each Append returning once its record is fsynced:
// group commit shares one fsync among the records that arrive while the
// previous batch is written. It reports records per second.
func BenchmarkAppendConcurrent(b *testing.B) {
	for _, par := range []int{1, 16, 256} {
		b.Run(fmt.Sprintf("appenders=%d", par*2), func(b *testing.B) {
			l, err := Open(filepath.Join(b.TempDir(), "audit.jsonl"), Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer l.Close()
			rec := Record{Type: TypeDelegate, Cap: &CapRecord{
				ID: "c0123456789abcdef", Kind: "dir", Name: "data", Holder: "g-0123456789ab",
				Base: "file_open|file_readdir", Inheriting: "fd_read", Parent: "cfedcba9876543210",
				Edge: "delegate", Resource: "dir /srv/data", Created: time.Now(),
			}}
			b.SetParallelism(par) // par × GOMAXPROCS goroutines
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := l.Append(rec); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "records/s")
		})
	}
}

// wideGraph is a graph of n capabilities: 100 grants of distinct
// directories, each passed on to 10 holders, each of which passes its
// copy on to 10 more, and so on: trees of depth 3 or 4 across 1,000
// holders.
func wideGraph(n int) *Graph {
	g := NewGraph()
	for i := 0; i < n; i++ {
		c := CapRecord{
			ID: fmt.Sprintf("c%d", i), Kind: "dir", Holder: fmt.Sprintf("g-%d", i%1000),
			Base: "file_open", Inheriting: "fd_read", Edge: "delegate",
		}
		root := i
		for root >= 100 {
			root = (root - 100) / 10
		}
		c.Resource = fmt.Sprintf("dir /srv/d%d", root)
		if i < 100 {
			c.Edge, c.Origin = "grant", fmt.Sprintf("dir:/srv/d%d=d", root)
		} else {
			c.Parent = fmt.Sprintf("c%d", (i-100)/10)
		}
		g.Apply(Record{Type: c.Edge, Cap: &c})
	}
	return g
}

// BenchmarkWhoCan100000Edges asks who can reach one directory in a graph
// of 100,000 capabilities (an edge from each to its parent, but for the
// 100 roots): 1,000 of them reach it, each answer with its chain back to
// the grant.
func BenchmarkWhoCan100000Edges(b *testing.B) {
	g := wideGraph(100100)
	want := len(g.WhatIfMust(b, "c7"))
	b.ResetTimer()
	for b.Loop() {
		if r := g.WhoCan("dir:/srv/d7"); len(r) != want {
			b.Fatalf("%d holders, want %d", len(r), want)
		}
	}
}

// WhatIfMust is WhatIf's list of capabilities, or the benchmark fails.
func (g *Graph) WhatIfMust(b *testing.B, id string) []string {
	cut, err := g.WhatIf(id)
	if err != nil {
		b.Fatal(err)
	}
	return cut.Revoked
}

func TestWideGraphWhoCanAnswersEveryHolder(t *testing.T) {
	g := wideGraph(10000)
	r := g.WhoCan("/srv/d7/file")
	cut, _ := g.WhatIf("c7")
	if len(r) != len(cut.Revoked) || len(r) < 100 {
		t.Fatalf("%d reach, want the %d capabilities of c7's tree", len(r), len(cut.Revoked))
	}
	last := r[len(r)-1]
	if len(last.Chain) < 3 || last.Chain[0].Cap != "c7" || last.Chain[0].Origin != "dir:/srv/d7=d" || last.Chain[len(last.Chain)-1].Cap != last.Cap {
		t.Fatalf("chain %+v", last.Chain)
	}
}
