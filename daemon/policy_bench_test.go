package daemon

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sandboxd/sandboxd/abi/abitest"
)

// benchPolicy is a policy of n rules of which one grants dir to alice:
// the others grant other directories to other users, with globs and deny
// rules among them, so the decision has to find its rule among many.
func benchPolicy(n int, dir string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "grant \"the-one\" {\n  resources = [\"dir:%s\"]\n  subject {\n    users = [\"alice\"]\n  }\n}\n", dir)
	for i := 1; i < n; i++ {
		switch i % 4 {
		case 0:
			fmt.Fprintf(&b, "deny \"x%d\" {\n  resources = [\"dir:/srv/d%d\"]\n}\n", i, i)
		default:
			fmt.Fprintf(&b, "grant \"g%d\" {\n  resources = [\"dir:/srv/d%d\"]\n  subject {\n    users = [\"u%d\"]\n  }\n}\n", i, i, i)
		}
	}
	return b.String()
}

// BenchmarkWarmLaunchPolicy measures a warm launch of a small guest with
// one directory grant, from Launch to its exit, without a policy and with
// a policy of 1,000 rules deciding the grant: the difference is what
// enforcement adds to a launch.
func BenchmarkWarmLaunchPolicy(b *testing.B) {
	dir := b.TempDir()
	for _, bc := range []struct {
		name  string
		rules int
	}{{"none", 0}, {"1000-rules", 1000}} {
		b.Run(bc.name, func(b *testing.B) {
			s, err := New(context.Background(), Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close(context.Background())
			if bc.rules > 0 {
				s.SetPolicy(mustPolicy(b, benchPolicy(bc.rules, dir)))
			}
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

// BenchmarkAuthorizeGrant measures what enforcement adds to each grant of
// a launch: deciding it against a policy of 1,000 rules (authorize), the
// one step a launch without a policy skips. Compare it with a warm launch
// (BenchmarkWarmLaunchPolicy/none) for the share of a launch it costs.
func BenchmarkAuthorizeGrant(b *testing.B) {
	dir := b.TempDir()
	s := &Supervisor{}
	s.SetPolicy(mustPolicy(b, benchPolicy(1000, dir)))
	who := grantee{by: Principal{UID: 1000, Name: "alice"}}
	gr := Grant{Kind: GrantDir, Source: dir, Name: "data"}
	b.ReportAllocs()
	b.ResetTimer() // the policy's parsing is not the decision
	for i := 0; i < b.N; i++ {
		if _, err := s.authorize(who, gr); err != nil {
			b.Fatal(err)
		}
	}
}
