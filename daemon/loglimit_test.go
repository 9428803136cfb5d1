package daemon

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/abi/abitest"
)

func TestALineBucketLetsABurstThroughThenOneAPeriod(t *testing.T) {
	var b lineBucket
	now := time.Unix(1000, 0)
	for i := 0; i < logBurst; i++ {
		if ok, _ := b.take(now); !ok {
			t.Fatalf("line %d of the burst dropped", i)
		}
	}
	for i := 0; i < 7; i++ {
		if ok, _ := b.take(now); ok {
			t.Fatalf("line %d past the burst passed", i)
		}
	}
	ok, dropped := b.take(now.Add(logEvery))
	if !ok || dropped != 7 {
		t.Fatalf("a period later: ok %v, dropped %d; want a line saying 7 were dropped", ok, dropped)
	}
	if ok, _ := b.take(now.Add(logEvery)); ok {
		t.Fatal("a second line in the same period passed")
	}
	if b.dropped() != 8 {
		t.Errorf("dropped in all: %d, want 8", b.dropped())
	}
}

// A guest replacing its program in a loop made the daemon log a line per
// replacement, thousands a second; its lines are now limited, and its
// exit line says how many were dropped.
func TestAGuestExecingInALoopCannotFloodTheDaemonsLog(t *testing.T) {
	var logs abitest.Buffer
	s := newLoggingSupervisor(t, &logs)
	wasm := abitest.WAT(t, guests+"exec_loop.wat")
	file := filepath.Join(t.TempDir(), "exec_loop.wasm")
	if err := os.WriteFile(file, wasm, 0o644); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	g, err := s.Launch(context.Background(), LaunchSpec{Module: compile(t, s, guests+"exec_loop.wat"), Grants: []Grant{mustGrant(t, "file:"+file)}})
	if err != nil {
		t.Fatal(err)
	}
	// A line that passes after some were dropped says so: the guest has
	// gone past its burst, and a period has passed since.
	guard := time.After(HangGuard)
	for !strings.Contains(logs.String(), "suppressed=") {
		select {
		case <-guard:
			t.Fatalf("no line says some were suppressed after %v: %d lines of replaced programs", HangGuard, strings.Count(logs.String(), "guest replaced its program"))
		case <-g.Done():
			_, st := g.Status()
			t.Fatalf("the guest ended: %+v\n%s", st, logs.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
	g.Kill("test")
	<-g.Done()
	elapsed := time.Since(start)
	out := logs.String()
	lines := strings.Count(out, "guest replaced its program")
	if most := logBurst + int(elapsed/logEvery) + 1; lines > most {
		t.Errorf("%d lines of replaced programs in %v: more than the burst of %d and one a period (%d)", lines, elapsed, logBurst, most)
	}
	m := regexp.MustCompile(`guest exited: .*suppressed_lines=(\d+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("the exit line does not say how many lines were dropped:\n%s", out)
	}
	if n, _ := strconv.Atoi(m[1]); n == 0 {
		t.Errorf("suppressed_lines=0")
	}
	t.Logf("%d lines logged, %s dropped, in %v", lines, m[1], elapsed)
}
