package policies

import (
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"
)

// bigPolicy writes a policy of n rules over n/2 socket resources: per
// resource an exact grant for one user and a delegate rule, plus globs
// and deny rules mixed in, so a decision has to find its rule among many
// of the same kind.
func bigPolicy(n int) string {
	var b strings.Builder
	res := n / 2
	for i := 0; i < res; i++ {
		fmt.Fprintf(&b, "resource \"sock\" \"svc-%d\" {\n  tcp = \"10.0.%d.%d:%d\"\n}\n", i, i/250, i%250, 1000+i)
	}
	rules := 0
	for i := 0; rules < n; i++ {
		switch i % 10 {
		case 0:
			fmt.Fprintf(&b, "grant \"g%d\" {\n  resources = [\"sock:svc-%d*\"]\n  subject {\n    users = [\"u%d\"]\n  }\n}\n", i, i, i)
		case 1:
			fmt.Fprintf(&b, "deny \"x%d\" {\n  resources = [\"sock:svc-%d\"]\n  subject {\n    uids = [%d]\n  }\n}\n", i, i%res, i)
		case 2, 3, 4, 5:
			fmt.Fprintf(&b, "grant \"g%d\" {\n  resources = [\"sock:svc-%d\"]\n  rights = [\"fd_read\", \"fd_write\"]\n  ttl = \"1h\"\n  subject {\n    users = [\"u%d\"]\n  }\n  module {\n    labels = { app = \"a%d\" }\n  }\n}\n", i, i%res, i, i)
		default:
			fmt.Fprintf(&b, "delegate \"d%d\" {\n  resources = [\"sock:svc-%d\"]\n  max_depth = 2\n  max_copies = 4\n  to {\n    labels = { app = \"a%d\" }\n  }\n}\n", i, i%res, i)
		}
		rules++
	}
	return b.String()
}

func TestBigPolicyLoadsAndDecides(t *testing.T) {
	p := mustParse(t, bigPolicy(1000))
	if got := len(p.Rules()); got != 1000 {
		t.Fatalf("%d rules, want 1000", got)
	}
	d := Evaluate(p, benchRequest)
	if !d.Allowed || d.Rule.Name != "g442" {
		t.Fatalf("want allowed by g442:\n%s", d.Explain())
	}
	d = Evaluate(p, deniedRequest)
	if d.Allowed || d.Rule != nil || d.Closest == nil {
		t.Fatalf("want a default deny with a closest rule:\n%s", d.Explain())
	}
}

// benchRequest is decided by an exact grant after the deny rules and
// other rules of its resource have been looked at.
var benchRequest = Request{Op: OpGrant, Kind: "sock", Name: "svc-442", Subject: Subject{UID: 442, User: "u442"}, Module: Module{Labels: map[string]string{"app": "a442"}}}

// deniedRequest comes from a user no rule names: every rule covering
// svc-442 fails, every glob of kind sock is tried, and the closest rule is
// searched for. It is the slow path.
var deniedRequest = Request{Op: OpGrant, Kind: "sock", Name: "svc-442", Subject: Subject{UID: 5, User: "nobody"}}

// BenchmarkEvaluate1000Rules is one decision against a policy of 1,000
// rules; it reports the median as p50-ns beside the mean ns/op.
func BenchmarkEvaluate1000Rules(b *testing.B) { benchEvaluate(b, benchRequest, true) }

// BenchmarkEvaluate1000RulesDenied is the same policy's default deny.
func BenchmarkEvaluate1000RulesDenied(b *testing.B) { benchEvaluate(b, deniedRequest, false) }

func benchEvaluate(b *testing.B, req Request, allowed bool) {
	p := mustParse(b, bigPolicy(1000))
	lat := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		d := Evaluate(p, req)
		lat = append(lat, time.Since(start))
		if d.Allowed != allowed {
			b.Fatal(d.Reason)
		}
	}
	b.StopTimer()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds()), "p50-ns")
}
