package daemon

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/sandboxd/sandboxd/abi"
	"github.com/sandboxd/sandboxd/abi/abitest"
	"github.com/sandboxd/sandboxd/audit"
	"github.com/sandboxd/sandboxd/caps"
)

// benchSupervisor is a supervisor recording into an audit log in a
// temporary directory, or into none.
func benchSupervisor(b *testing.B, audited bool) *Supervisor {
	b.Helper()
	var l *audit.Log
	if audited {
		var err error
		if l, err = audit.Open(filepath.Join(b.TempDir(), "audit.jsonl"), audit.Options{}); err != nil {
			b.Fatal(err)
		}
	}
	s, err := New(context.Background(), Options{Audit: l})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		_ = s.Close(context.Background())
		if l != nil {
			_ = l.Close()
		}
	})
	return s
}

// BenchmarkWarmLaunchAudit is BenchmarkWarmLaunchPolicy's launch of a
// guest with one grant, to its exit status, with and without the audit
// log: the difference is what the log adds to a warm launch.
func BenchmarkWarmLaunchAudit(b *testing.B) {
	dir := b.TempDir()
	for _, audited := range []bool{false, true} {
		b.Run(fmt.Sprintf("audit=%v", audited), func(b *testing.B) {
			s := benchSupervisor(b, audited)
			rel := "abi/testdata/guests/hello.wat"
			m, err := s.Compile(context.Background(), filepath.Base(rel), abitest.WAT(b, rel))
			if err != nil {
				b.Fatal(err)
			}
			spec := LaunchSpec{Principal: Principal{UID: 1000, Name: "alice"}, Module: m, Grants: []Grant{{Kind: GrantDir, Source: dir, Name: "data"}}}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				g, err := s.Launch(context.Background(), spec)
				if err != nil {
					b.Fatal(err)
				}
				if st := g.Wait(); st.Code != 7 {
					b.Fatalf("status %+v", st)
				}
			}
		})
	}
}

// revokeFixture is 100 running guests and a granted directory.
type revokeFixture struct {
	s      *Supervisor
	guests []*Guest
	root   *caps.Cap
	dir    string
	// filePerCap opens a host file for each file capability.
	filePerCap bool
}

func newRevokeFixture(b *testing.B, audited, filePerCap bool) *revokeFixture {
	f := &revokeFixture{s: benchSupervisor(b, audited), dir: b.TempDir(), filePerCap: filePerCap}
	m := compileTB(b, f.s, guests+"sleep_poll.wat")
	for i := 0; i < 100; i++ {
		g, err := f.s.Launch(context.Background(), LaunchSpec{Module: m})
		if err != nil {
			b.Fatal(err)
		}
		f.guests = append(f.guests, g)
		b.Cleanup(func() { g.Kill("bench over"); <-g.Done() })
	}
	if err := os.WriteFile(filepath.Join(f.dir, "f"), nil, 0o600); err != nil {
		b.Fatal(err)
	}
	var err error
	f.root, err = f.s.Mint(ClientHolder("bench", Principal{}), Principal{}, Grant{Kind: GrantDir, Source: f.dir, Name: "d"}, "bench")
	if err != nil {
		b.Fatal(err)
	}
	return f
}

func compileTB(b *testing.B, s *Supervisor, rel string) *abi.Module {
	b.Helper()
	m, err := s.Compile(context.Background(), filepath.Base(rel), abitest.WAT(b, rel))
	if err != nil {
		b.Fatal(err)
	}
	return m
}

// tree derives 10,000 capabilities from the root: the top, held by the
// first guest, a copy delegated to each other guest, and 99 capabilities
// on files beneath the directory in each guest: 99 host files opened, or
// one opened and 98 copies of it (filePerCap false). It returns the top and
// one of the files. The guests' derivations run concurrently, as the
// guests' own would, so that their records share fsyncs.
func (f *revokeFixture) tree(b *testing.B) (top, file *caps.Cap) {
	k := f.s.Kernel()
	base, inh := f.root.Rights()
	top, err := k.Derive(f.root, caps.Derivation{Holder: f.guests[0].holder, Edge: caps.EdgeDelegate, Name: "d", Base: base, Inheriting: inh})
	if err != nil {
		b.Fatal(err)
	}
	files := make([]*caps.Cap, len(f.guests))
	errs := make(chan error, len(f.guests))
	for i, g := range f.guests {
		go func() {
			d := top
			var err error
			if i > 0 {
				d, err = k.Derive(top, caps.Derivation{Holder: g.holder, Edge: caps.EdgeDelegate, Name: "d", Base: base, Inheriting: inh})
			}
			var h *os.File
			for j := 0; j < 99 && err == nil; j++ {
				if j > 0 && !f.filePerCap {
					// A copy of the guest's one open file (fd_dup).
					_, err = k.Derive(files[i], caps.Derivation{Holder: g.holder, Edge: caps.EdgeDup, Name: "f", Base: caps.RightFDRead})
					continue
				}
				if h, err = os.Open(filepath.Join(f.dir, "f")); err == nil {
					files[i], err = k.Derive(d, caps.Derivation{Holder: g.holder, Edge: caps.EdgeOpen, Name: "f", Base: caps.RightFDRead, Resource: caps.NewFile(h, "f")})
				}
			}
			errs <- err
		}()
	}
	for range f.guests {
		if err := <-errs; err != nil {
			b.Fatal(err)
		}
	}
	return top, files[len(files)-1]
}

// BenchmarkRevokeSubtree10000Over100Guests revokes, through the
// supervisor, a subtree of 10,000 capabilities held by 100 running
// guests, with 100 or 9,900 host files open beneath them, with and
// without the audit log: the time includes closing the files and, with
// the log, writing and fsyncing the revocation's record (its receipt
// lists all 10,000). After each revocation no use of a revoked
// capability succeeds.
func BenchmarkRevokeSubtree10000Over100Guests(b *testing.B) {
	for _, files := range []int{100, 9900} {
		for _, audited := range []bool{false, true} {
			b.Run(fmt.Sprintf("hostfiles=%d/audit=%v", files, audited), func(b *testing.B) {
				benchRevoke(b, newRevokeFixture(b, audited, files == 9900))
			})
		}
	}
}

func benchRevoke(b *testing.B, f *revokeFixture) {
	k := f.s.Kernel()
	for b.Loop() {
		b.StopTimer()
		top, file := f.tree(b)
		f.drain(b)
		runtime.GC() // charge the setup's garbage to the setup
		b.StartTimer()
		r, err := f.s.Revoke(top.ID(), "bench")
		b.StopTimer()
		if err != nil || len(r.Revoked) != 10000 || len(r.Holders) != 100 {
			b.Fatalf("receipt of %d capabilities, %d holders: %v", len(r.Revoked), len(r.Holders), err)
		}
		if err := file.Acquire(caps.RightFDRead, 0); err == nil {
			b.Fatal("a revoked capability was acquired after Revoke returned")
		}
		for _, id := range r.Revoked {
			if c, ok := k.Lookup(id); ok {
				k.Close(c)
			}
		}
		b.StartTimer()
	}
}

// drain waits until every record appended so far is on disk, so that a
// measured operation does not pay for the setup's.
func (f *revokeFixture) drain(b *testing.B) {
	if f.s.audit == nil {
		return
	}
	seq, _ := f.s.audit.Head()
	if err := f.s.audit.Wait(seq); err != nil {
		b.Fatal(err)
	}
}
