package abi_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/sandboxd/sandboxd/abi"
	"github.com/sandboxd/sandboxd/abi/abitest"
	"github.com/sandboxd/sandboxd/caps"
)

// harness runs one guest with stdio captured and returns its status.
type harness struct {
	rt     *abi.Runtime
	k      *caps.Kernel
	stdout bytes.Buffer
	stderr bytes.Buffer
	// inflight and logger, when not nil, are the GuestConfig.InFlight
	// and Logger of the guests startMode starts.
	inflight *caps.InFlightLimit
	logger   hclog.Logger
}

// harnessCache is the compilation cache every harness's runtime shares,
// so that a Go guest (seconds to compile under -race) is compiled once
// per test binary rather than once per test.
var harnessCache string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "sandboxd-abi-test-cache")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	harnessCache = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func newHarness(t testing.TB) *harness {
	t.Helper()
	rt, err := abi.NewRuntime(context.Background(), abi.Config{CacheDir: harnessCache})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close(context.Background()) })
	return &harness{rt: rt, k: caps.NewKernel(nil)}
}

// table returns a table with stdin (empty), stdout and stderr at 0–2.
func (h *harness) table(id string) *caps.Table {
	holder := &caps.Holder{ID: id}
	t := caps.NewTable(h.k, holder, 0)
	for _, s := range []*caps.Stdio{caps.NewStdin(bytes.NewReader(nil)), caps.NewStdout("stdout", &h.stdout), caps.NewStdout("stderr", &h.stderr)} {
		c := h.k.Mint(holder, s, caps.RightsTTYBase, 0, s.Describe(), "test")
		if _, err := t.Insert(c); err != nil {
			panic(err)
		}
	}
	return t
}

func (h *harness) run(t testing.TB, wasm []byte, tbl *caps.Table, args ...string) abi.ExitStatus {
	t.Helper()
	m, err := h.rt.Compile(context.Background(), "guest", wasm)
	if err != nil {
		t.Fatal(err)
	}
	g := h.rt.NewGuest(m, abi.GuestConfig{ID: tbl.Holder().ID, Table: tbl, Args: append([]string{"guest"}, args...)})
	return g.Run(context.Background())
}

func TestHelloWritesStdoutAndExits(t *testing.T) {
	h := newHarness(t)
	st := h.run(t, abitest.WAT(t, "abi/testdata/guests/hello.wat"), h.table("g1"))
	if st.Err() != nil || st.Code != 7 {
		t.Fatalf("status = %+v, want exit 7", st)
	}
	if got := h.stdout.String(); got != "hello\n" {
		t.Fatalf("stdout = %q", got)
	}
}

func TestCallTableHasExactly49Calls(t *testing.T) {
	cs := abi.Calls()
	if len(cs) != 49 {
		t.Fatalf("%d calls", len(cs))
	}
	seen := map[string]bool{}
	for i, c := range cs {
		if c.Slot != i {
			t.Errorf("%s: slot %d at index %d", c.Name, c.Slot, i)
		}
		if seen[c.Name] {
			t.Errorf("duplicate call %s", c.Name)
		}
		seen[c.Name] = true
	}
}
