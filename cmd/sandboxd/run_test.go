package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/abi"
	"github.com/sandboxd/sandboxd/abi/abitest"
	"github.com/sandboxd/sandboxd/abi/argdata"
)

const guests = "daemon/testdata/guests/"

func TestRunHelloExampleReadsItsGrantAndIsDeniedTheRest(t *testing.T) {
	t.Parallel()
	hello := guest(t, "examples/hello/hello.c")
	r := sandboxd(t, "", "run", "--grant", "dir:"+abitest.Path("examples/hello/data")+"=data:ro", hello)
	if r.code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	for _, want := range []string{
		"read data/greeting.txt: Hello from a file the guest was granted, read-only.\n",
		"open data/../../../etc/passwd: denied (ENOTCAPABLE",
		"open /etc/passwd: denied (ENOTCAPABLE",
		"create data/note.txt: denied (ENOTCAPABLE",
		"write to fd 9: denied (EBADF",
		"every ungranted access was refused\n",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, r.stdout)
		}
	}
	if r.stderr != "" {
		t.Errorf("stderr = %q", r.stderr)
	}
	if _, err := os.Stat(abitest.Path("examples/hello/data/note.txt")); err == nil {
		t.Error("the guest created data/note.txt in its read-only grant")
	}
}

func TestRunHelloExampleWithoutItsGrantExitsWithItsOwnCode(t *testing.T) {
	t.Parallel()
	r := sandboxd(t, "", "run", guest(t, "examples/hello/hello.c"))
	if r.code != 2 || !strings.Contains(r.stdout, `no handle named "data"`) {
		t.Errorf("exit %d, stdout %q, want the guest's exit 2 and its message", r.code, r.stdout)
	}
}

func TestRunPassesStdoutAndExitCodeThrough(t *testing.T) {
	t.Parallel()
	r := sandboxd(t, "", "run", guest(t, "abi/testdata/guests/hello.wat"))
	if r.code != 7 || r.stdout != "hello\n" || r.stderr != "" {
		t.Errorf("exit %d, stdout %q, stderr %q; want 7, \"hello\\n\", nothing", r.code, r.stdout, r.stderr)
	}
}

func TestRunPassesStdinThrough(t *testing.T) {
	t.Parallel()
	in := strings.Repeat("some input\n", 2000)
	r := sandboxd(t, in, "run", guest(t, guests+"cat.wat"))
	if r.code != 0 || r.stdout != in || r.stderr != "done\n" {
		t.Errorf("exit %d, %d bytes out of %d, stderr %q", r.code, len(r.stdout), len(in), r.stderr)
	}
}

func TestRunGivesArgsEnvAndNamedHandles(t *testing.T) {
	t.Parallel()
	dump := guest(t, guests+"argdata_dump.wat")
	dir := t.TempDir()
	cases := []struct {
		args     []string
		wantArgs []string
	}{
		{[]string{"run", "--env", "A=1", "--env", "B=x=y", "--grant", "dir:" + dir + "=work:ro", dump, "one", "--two"}, []string{"argdata_dump.wasm", "one", "--two"}},
		{[]string{"run", "--arg", "one", "--arg", "two words", "--env", "A=1", "--env", "B=x=y", "--grant", "dir:" + dir + "=work:ro", dump}, []string{"argdata_dump.wasm", "one", "two words"}},
	}
	for _, c := range cases {
		r := sandboxd(t, "", c.args...)
		if r.code != 0 {
			t.Fatalf("%v: exit %d, stderr %q", c.args, r.code, r.stderr)
		}
		ad, err := argdata.Decode([]byte(r.stdout))
		if err != nil {
			t.Fatalf("decoding the guest's argdata: %v", err)
		}
		argv, _ := ad.Get("args")
		var got []string
		for _, a := range argv.Items() {
			s, _ := a.Str()
			got = append(got, s)
		}
		if strings.Join(got, "|") != strings.Join(c.wantArgs, "|") {
			t.Errorf("%v: args %q, want %q", c.args, got, c.wantArgs)
		}
		env, _ := ad.Get("env")
		envs := map[string]string{}
		env.Pairs(func(k, v argdata.Value) bool {
			ks, _ := k.Str()
			vs, _ := v.Str()
			envs[ks] = vs
			return true
		})
		if len(envs) != 2 || envs["A"] != "1" || envs["B"] != "x=y" {
			t.Errorf("env %v, want exactly A=1 B=x=y (nothing from the host)", envs)
		}
		hs, _ := ad.Get("handles")
		fds := map[string]uint32{}
		hs.Pairs(func(k, v argdata.Value) bool {
			ks, _ := k.Str()
			fd, _ := v.Fd()
			fds[ks] = fd
			return true
		})
		if len(fds) != 4 || fds["stdin"] != 0 || fds["stdout"] != 1 || fds["stderr"] != 2 || fds["work"] != 3 {
			t.Errorf("handles %v, want stdin 0, stdout 1, stderr 2, work 3", fds)
		}
	}
}

func TestRunMissingModuleExits4(t *testing.T) {
	t.Parallel()
	missing := filepath.Join(t.TempDir(), "nope.wasm")
	r := sandboxd(t, "", "run", missing)
	if r.code != exitModule {
		t.Errorf("exit %d, want %d", r.code, exitModule)
	}
	oneLine(t, r.stderr, "cannot read module "+missing+": no such file or directory: check the path")
}

func TestRunInvalidModulesExit4(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cases := []struct {
		name string
		wasm []byte
		says string
	}{
		{"garbage.wasm", []byte("this is not wasm\n"), "is not a valid WebAssembly module"},
		{"truncated.wasm", []byte("\x00asm\x01\x00\x00\x00\x01\x05"), "is not a valid WebAssembly module"},
		{"reactor.wasm", []byte("\x00asm\x01\x00\x00\x00"), "has no _start function"},
		// A component (version 0x0d, layer 1), as Rust's wasm32-wasip2
		// builds: the error says so, and which target to build for.
		{"component.wasm", []byte("\x00asm\x0d\x00\x01\x00"), "is a WebAssembly component (the component model, WASI 0.2), and sandboxd runs core modules of WASI preview1: build it as a WebAssembly command module for wasm32-wasip1"},
		// 13 bytes declaring 268 million exports: wazero's decoder alone
		// takes over a minute and gigabytes to refuse them.
		{"bomb.wasm", []byte("\x00asm\x01\x00\x00\x00\x07\x05\xff\xff\xff\x7f\x00"), "section 7 declares 268435455 entries in 1 bytes"},
		{"locals.wasm", []byte("\x00asm\x01\x00\x00\x00\x0a\x09\x01\x07\x01\xff\xff\xff\xff\x0f\x7f"), "locals, more than"},
		// A table of 100 million entries: 800 MB of the host's memory,
		// outside --mem.
		{"tables.wasm", []byte("\x00asm\x01\x00\x00\x00\x04\x07\x01\x70\x00\x80\xc2\xd7\x2f"), "tables declare 100000000 entries, more than the 4194304"},
		// 100 functions of 50,000 locals each: 5 million in all, 40 MB
		// for the decoder from 800 bytes.
		{"alllocals.wasm", abitest.Functions(100, "\x01\xd0\x86\x03\x7f\x0b"), "more than the 4194304 locals in all"},
		// A million and one functions.
		{"functions.wasm", abitest.Functions(1000001, "\x00\x0b"), "defines 1000001 functions, more than the 1000000"},
		{"envimport.wasm", abitest.WATText(t, `(module (import "env" "foo" (func)) (memory (export "memory") 1) (func (export "_start")))`), `imports env.foo: sandboxd provides only the "sandboxd" and "wasi_snapshot_preview1" modules`},
		{"unknowncall.wasm", abitest.WATText(t, `(module (import "wasi_snapshot_preview1" "sock_open" (func (param i32) (result i32))) (memory (export "memory") 1) (func (export "_start")))`), "imports wasi_snapshot_preview1.sock_open, which sandboxd does not provide"},
	}
	for _, c := range cases {
		p := filepath.Join(dir, c.name)
		if err := os.WriteFile(p, c.wasm, 0o644); err != nil {
			t.Fatal(err)
		}
		r := sandboxd(t, "", "run", p)
		if r.code != exitModule {
			t.Errorf("%s: exit %d, want %d", c.name, r.code, exitModule)
		}
		oneLine(t, r.stderr, c.says)
		// Rebuilding is the advice for a module that is not what sandboxd
		// runs, not for one over a limit or importing what sandboxd does
		// not provide, which their messages name.
		limit := c.name == "locals.wasm" || c.name == "tables.wasm" || c.name == "alllocals.wasm" || c.name == "functions.wasm" ||
			strings.Contains(c.name, "import") || strings.Contains(c.name, "call")
		if advised := strings.Contains(r.stderr, "build it as a WebAssembly command module"); advised == limit {
			t.Errorf("%s: advice to rebuild is %v, want %v: %q", c.name, advised, !limit, r.stderr)
		}
	}
}

// launch and compile read the module as run does: a component is named
// as one before anything is sent to the daemon.
func TestLaunchAndCompileOfAComponentSayWhatToBuild(t *testing.T) {
	t.Parallel()
	d := serveDaemon(t, bin, "")
	p := filepath.Join(t.TempDir(), "component.wasm")
	if err := os.WriteFile(p, []byte("\x00asm\x0d\x00\x01\x00"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, verb := range []string{"launch", "compile"} {
		r := d.cli(t, verb, p)
		if r.code != exitModule {
			t.Errorf("%s: exit %d, want %d", verb, r.code, exitModule)
		}
		oneLine(t, r.stderr, "component.wasm is a WebAssembly component")
	}
}

func TestRunUsageErrorsExit2WithOneLine(t *testing.T) {
	t.Parallel()
	hello := guest(t, "abi/testdata/guests/hello.wat")
	dir := t.TempDir()
	cases := []struct {
		args []string
		says string
	}{
		{[]string{"run"}, "no module"},
		{[]string{"run", "--bogus", hello}, "flag provided but not defined: -bogus"},
		{[]string{"run", "--grant", "disk:/tmp", hello}, `unknown kind "disk"`},
		{[]string{"run", "--grant", "dir:" + dir + "=a/../b", hello}, `path element ".."`},
		{[]string{"run", "--grant", "dir", hello}, "no kind"},
		{[]string{"run", "--arg", "x", hello, "y"}, "both with --arg and after"},
		{[]string{"run", "--mem", "64MB", hello}, "not a size"},
		{[]string{"run", "--mem", "5GiB", hello}, "above the wasm32 maximum"},
		// hello.wat's memory starts at one page: wazero would panic
		// allocating it under a smaller limit.
		{[]string{"run", "--mem", "1KiB", hello}, "needs 65536 bytes of memory to start, more than the memory limit of 1024: raise the limit (--mem)"},
		{[]string{"run", "--timeout", "-1s", hello}, "negative"},
		{[]string{"run", "--max-procs", "0", hello}, "--max-procs 0: from 1 to 1024"},
		{[]string{"run", "--max-procs", "2147483646", hello}, "--max-procs 2147483646: from 1 to 1024"},
		{[]string{"run", "--timeout", "soon", hello}, "invalid value"},
		{[]string{"run", "--log-level", "loud", hello}, "not one of trace"},
		{[]string{"run", "--env", "NOVALUE", hello}, "not KEY=VALUE"},
		{[]string{"run", "--max-fds", "3", "--grant", "dir:" + dir, hello}, "allow at least 4"},
		{[]string{"run", "--grant", "dir:" + dir + "=d", "--grant", "dir:" + dir + "=d", hello}, `name "d" is already taken`},
	}
	for _, c := range cases {
		r := sandboxd(t, "", c.args...)
		if r.code != exitUsage {
			t.Errorf("%v: exit %d, want %d (stderr %q)", c.args, r.code, exitUsage, r.stderr)
		}
		oneLine(t, r.stderr, c.says)
		if r.stdout != "" {
			t.Errorf("%v: the guest ran: stdout %q", c.args, r.stdout)
		}
	}
}

func TestRunGrantSetupFailuresExit3AndRunNothing(t *testing.T) {
	t.Parallel()
	hello := guest(t, "abi/testdata/guests/hello.wat")
	dir := t.TempDir()
	file := filepath.Join(dir, "f.txt")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing")
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := closed.Addr().String()
	closed.Close()
	cases := []struct {
		grant, says string
	}{
		{"dir:" + missing + "=data", missing + " does not exist: create it or correct the path"},
		{"file:" + missing, missing + " does not exist"},
		{"dir:" + file, "is not a directory: grant it with file:"},
		{"file:" + dir + "=d", "is a directory: grant it with dir:"},
		{"sock:db", `"db" is not a declared socket resource: declare it as a sock resource of a loaded policy`},
		{"listen:web", `"web" is not a declared socket resource`},
		{"sock:tcp:" + refused + "=db", "cannot connect to tcp " + refused + ": connection refused: start the server or correct the address"},
		{"sock:unix:" + missing + "=db", "cannot connect to unix " + missing + ": no such file or directory"},
		{"listen:" + busy.Addr().String() + "=web", "cannot listen on tcp " + busy.Addr().String() + ": the address is already in use"},
		{"chan:pipe", "chan: grants join guests launched by one daemon"},
		{"cap:c0123456789abcdef", "not supported yet"},
	}
	for _, c := range cases {
		r := sandboxd(t, "", "run", "--grant", "dir:"+dir+"=ok", "--grant", c.grant, hello)
		if r.code != exitGrant {
			t.Errorf("%s: exit %d, want %d", c.grant, r.code, exitGrant)
		}
		oneLine(t, r.stderr, c.says)
		if r.stdout != "" {
			t.Errorf("%s: the guest ran: stdout %q", c.grant, r.stdout)
		}
	}
}

// The guest never exits: exit 124 and the message are the timeout's, and
// sandboxd's hang guard fails the test if the timeout never ends it.
func TestRunTimeoutEndsSpinningGuest(t *testing.T) {
	t.Parallel()
	r := sandboxd(t, "", "run", "--timeout", "300ms", guest(t, guests+"spin.wat"))
	if r.code != exitTimeout {
		t.Errorf("exit %d, want %d", r.code, exitTimeout)
	}
	oneLine(t, r.stderr, "guest killed: it ran longer than --timeout 300ms")
}

// A guest spinning without host calls cannot be paused by Go; a garbage
// collection in progress when it started spinning used to wait for it
// forever, and with it the --timeout timer. With GOGC=1, run's start-up
// (reading and compiling the module) collects almost without pause until
// the guest starts; grow_spin.wat then grows its memory by 192 MiB, past
// what run lets the Go runtime's memory grow before it collects, and
// spins: guest memory must not count. Each run must end at its timeout.
func TestRunTimeoutEndsSpinningGuestWhateverTheCollectorDoes(t *testing.T) {
	t.Parallel()
	spin := guest(t, "cmd/sandboxd/testdata/grow_spin.wat")
	for i := 0; i < 5; i++ {
		// A race-enabled binary collecting at GOGC=1 on a loaded machine
		// starts slowly; hangGuard is far beyond that. A hang never ends.
		ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
		cmd := exec.CommandContext(ctx, bin, "run", "--cache-dir", "", "--timeout", "100ms", spin)
		cmd.Env = append(os.Environ(), "GOGC=1")
		err := cmd.Run()
		timedOut := ctx.Err() != nil
		cancel()
		if timedOut {
			t.Fatalf("run %d: still running %v after its start, with a 100ms timeout", i, hangGuard)
		}
		if code := cmd.ProcessState.ExitCode(); code != exitTimeout {
			t.Fatalf("run %d: exit %d (%v), want %d", i, code, err, exitTimeout)
		}
	}
}

func TestRunTimeoutEndsGuestBlockedInPoll(t *testing.T) {
	t.Parallel()
	r := sandboxd(t, "", "run", "--timeout", "300ms", guest(t, guests+"sleep_poll.wat"))
	if r.code != exitTimeout {
		t.Errorf("exit %d (the guest exits with poll's errno if poll fails), want %d; stderr %q", r.code, exitTimeout, r.stderr)
	}
}

func TestRunTrapExits134WithTheTrapOnOneLine(t *testing.T) {
	t.Parallel()
	r := sandboxd(t, "", "run", guest(t, guests+"trap.wat"))
	if r.code != exitTrap {
		t.Errorf("exit %d, want %d", r.code, exitTrap)
	}
	if r.stderr != "sandboxd: guest trapped: wasm error: unreachable\n" {
		t.Errorf("stderr = %q", r.stderr)
	}
}

func TestRunExitCodeAbove255IsReportedAs255(t *testing.T) {
	t.Parallel()
	r := sandboxd(t, "", "run", guest(t, guests+"exit300.wat"))
	if r.code != 255 {
		t.Errorf("exit %d, want 255", r.code)
	}
	oneLine(t, r.stderr, "guest exited with 300")
}

func TestRunMemLimitsGuestMemory(t *testing.T) {
	t.Parallel()
	grow := guest(t, guests+"grow.wat") // exits 1 when growing to 16 MiB is refused
	for _, c := range []struct {
		mem  string
		code int
	}{{"1MiB", 1}, {"1048576", 1}, {"17MiB", 0}, {"0", 0}} {
		if r := sandboxd(t, "", "run", "--mem", c.mem, grow); r.code != c.code {
			t.Errorf("--mem %s: exit %d, want %d (stderr %q)", c.mem, r.code, c.code, r.stderr)
		}
	}
}

// startGuest runs sandboxd with args in the background and returns once
// the guest has started (its start is logged at info level). wait returns
// the exit code once the process has ended and its stderr is drained.
func startGuest(t *testing.T, args ...string) (cmd *exec.Cmd, wait func() int) {
	t.Helper()
	cmd = exec.Command(bin, append([]string{"run", "--log-level", "info"}, args...)...)
	cmd.Env = append(os.Environ(), "XDG_CACHE_HOME="+cacheHome)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	started, drained := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(drained)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "guest started") {
				close(started)
				break
			}
		}
		_, _ = io.Copy(io.Discard, stderr)
	}()
	select {
	case <-started:
	case <-drained:
		t.Fatal("sandboxd exited before the guest started")
	case <-time.After(hangGuard):
		t.Fatalf("guest did not start within %v", hangGuard)
	}
	return cmd, func() int {
		select {
		case <-drained:
		case <-time.After(hangGuard):
			t.Fatalf("sandboxd still running %v after the signal", hangGuard)
		}
		_ = cmd.Wait()
		return cmd.ProcessState.ExitCode()
	}
}

// A guest's memory costs the host what the guest touched, whatever its
// limit: --mem 0 is the wasm32 maximum, as 4GiB is, and growth copies
// nothing. touch.wat grows 1 MiB at a time and touches 384 MiB; the run's
// peak resident memory (the kernel's count for the child process, so the
// measure depends on no timing) may exceed that by a fifth, for the
// runtime, the compiled code and the race detector's own memory. Memory
// that grew by copying into Go slices peaked at 18× (--mem 0) and 6.7×
// (--mem 4GiB) in this -race build, whose detector shadows the Go heap.
func TestRunPeakMemoryIsWhatTheGuestTouched(t *testing.T) {
	t.Parallel()
	const touched = 384 << 20
	touch := guest(t, "cmd/sandboxd/testdata/touch.wat")
	for _, mem := range []string{"0", "4GiB"} {
		// Generous: the run takes seconds on a loaded machine; a hang never ends.
		ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
		cmd := exec.CommandContext(ctx, bin, "run", "--cache-dir", "", "--mem", mem, touch)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		err := cmd.Run()
		cancel()
		if err != nil {
			t.Fatalf("--mem %s: %v (stderr %q)", mem, err, stderr.String())
		}
		peak := cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss << 10 // KiB on Linux
		if ratio := float64(peak) / touched; ratio > 1.2 {
			t.Errorf("--mem %s: peak resident memory %d MiB for %d MiB touched: %.2f×, want at most 1.2×", mem, peak>>20, touched>>20, ratio)
		} else {
			t.Logf("--mem %s: peak resident memory %d MiB for %d MiB touched: %.2f×", mem, peak>>20, touched>>20, ratio)
		}
	}
}

func TestRunSignalsKillTheGuest(t *testing.T) {
	t.Parallel()
	spin := guest(t, guests+"spin.wat")
	for _, c := range []struct {
		sig  syscall.Signal
		code int
	}{{syscall.SIGINT, exitInterrupt}, {syscall.SIGTERM, exitTerminated}} {
		cmd, wait := startGuest(t, spin)
		if err := cmd.Process.Signal(c.sig); err != nil {
			t.Fatal(err)
		}
		if got := wait(); got != c.code {
			t.Errorf("%v: exit %d, want %d", c.sig, got, c.code)
		}
	}
}

// A signal while run or an attached launch is still setting up (reading
// the module, compiling it: seconds for a large one) ends the command as
// one during the guest's run does, with its status and one sandboxd:
// line, and nothing runs. The module is a FIFO here, so that the command
// is known to be reading it when the signal is sent: opening the FIFO's
// other end returns once it has opened it.
func TestASignalDuringSetupEndsRunAndLaunchWithOneLine(t *testing.T) {
	t.Parallel()
	d := serveDaemon(t, bin, "")
	for _, c := range []struct {
		verb string
		sig  syscall.Signal
		code int
		args []string
	}{
		{"run", syscall.SIGINT, exitInterrupt, nil},
		{"run", syscall.SIGTERM, exitTerminated, nil},
		{"launch", syscall.SIGINT, exitInterrupt, []string{"--socket", d.socket}},
	} {
		fifo := filepath.Join(t.TempDir(), "prog.wasm")
		if err := syscall.Mkfifo(fifo, 0o600); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(bin, append(append([]string{c.verb}, c.args...), fifo)...)
		cmd.Env = append(os.Environ(), "XDG_CACHE_HOME="+cacheHome)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill() })
		// Returns once sandboxd has opened the module; held open, so that
		// its read waits for more.
		w, err := os.OpenFile(fifo, os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Process.Signal(c.sig); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		select {
		case <-exited:
		case <-time.After(hangGuard):
			t.Fatalf("%s %v: still running %v after the signal", c.verb, c.sig, hangGuard)
		}
		w.Close()
		if got := cmd.ProcessState.ExitCode(); got != c.code {
			t.Errorf("%s %v while reading its module: exit %d (%v), want %d", c.verb, c.sig, got, cmd.ProcessState, c.code)
		}
		reason, _ := signalExit(c.sig)
		oneLine(t, stderr.String(), reason+" before the guest started: nothing ran")
	}
	if r := d.cli(t, "ps", "-a", "-q"); r.stdout != "" {
		t.Errorf("the daemon lists guests: %q", r.stdout)
	}
}

// run and launch report a guest that a signal ended as a shell reports a
// process the same signal ended, with the reason ps shows.
func TestSignalExitIsTheShellStatusOfTheSignal(t *testing.T) {
	for _, c := range []struct {
		sig    syscall.Signal
		reason string
	}{{syscall.SIGINT, "interrupted"}, {syscall.SIGTERM, "terminated"}} {
		reason, code := signalExit(c.sig)
		if reason != c.reason || code != 128+int(c.sig) {
			t.Errorf("signalExit(%v) = %q, %d; want %q, %d", c.sig, reason, code, c.reason, 128+int(c.sig))
		}
	}
}

// The command line from the project's own example, on an unmodified WASI
// program: a read-only /data and a writable /out, named as the guest sees
// them, and nothing else.
func TestRunGrantsDirsAtTheGuestPathsTheyAreNamed(t *testing.T) {
	t.Parallel()
	ucase := filepath.Join(t.TempDir(), "ucase.wasm")
	if err := os.WriteFile(ucase, abitest.WASIC(t, "examples/ucase/ucase.c"), 0o644); err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	data, out := filepath.Join(work, "data"), filepath.Join(work, "out")
	for _, d := range []string{data, out} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(data, "in.txt"), []byte("capabilities, not paths\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := sandboxd(t, "", "run", "--grant", "dir:"+data+"=/data:ro", "--grant", "dir:"+out+"=/out",
		ucase, "/data/in.txt", "/out/OUT.txt")
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	got, err := os.ReadFile(filepath.Join(out, "OUT.txt"))
	if err != nil || string(got) != "CAPABILITIES, NOT PATHS\n" {
		t.Fatalf("output %q, %v", got, err)
	}
	// The read-only grant stays read-only, whatever path names it.
	r = sandboxd(t, "", "run", "--grant", "dir:"+data+"=/data:ro", ucase, "/data/in.txt", "/data/OUT.txt")
	if r.code == 0 || !strings.Contains(r.stderr, "output denied") {
		t.Fatalf("write into /data: exit %d, stderr %q", r.code, r.stderr)
	}
	if _, err := os.Stat(filepath.Join(data, "OUT.txt")); err == nil {
		t.Fatal("a file was created in the read-only grant")
	}
}

// run ignores DWARF unless --debug-info is given: the trap's stack trace
// (logged at debug level) then names source lines.
func TestRunDebugInfoPutsSourceLinesInTrapTraces(t *testing.T) {
	t.Parallel()
	wasm := filepath.Join(t.TempDir(), "trap_lines.wasm")
	src := abitest.Path("cmd/sandboxd/testdata/trap_lines.c")
	if b, err := exec.Command("clang", "--target=wasm32-wasi", "--sysroot=/usr", "-O1", "-g", "-o", wasm, src).CombinedOutput(); err != nil {
		t.Fatalf("clang: %v\n%s", err, b)
	}
	cache := t.TempDir()
	for _, tc := range []struct {
		flags []string
		lines bool
	}{
		{nil, false},
		{[]string{"--debug-info"}, true},
		{nil, false}, // the cache keeps the two kinds of compiled code apart
		{[]string{"--debug-info"}, true},
	} {
		args := append([]string{"run", "--log-level", "debug", "--cache-dir", cache}, tc.flags...)
		r := sandboxd(t, "", append(args, wasm)...)
		if r.code != exitTrap {
			t.Fatalf("%v: exit %d, want %d; stderr %s", tc.flags, r.code, exitTrap, r.stderr)
		}
		if !strings.Contains(r.stderr, "crash_here") {
			t.Errorf("%v: the trace does not name the function:\n%s", tc.flags, r.stderr)
		}
		if got := strings.Contains(r.stderr, "trap_lines.c:"); got != tc.lines {
			t.Errorf("%v: source lines in the trace: %v, want %v:\n%s", tc.flags, got, tc.lines, r.stderr)
		}
	}
}

// A guest that spawns itself from its own module file without end gets
// --max-procs running descendants, then EAGAIN; --timeout ends the tree.
// All of them spin without loop checks, each keeping a scheduler P, and
// GOMAXPROCS=1 leaves none to spare unless run adds its own: --timeout
// and SIGTERM must still end the process.
func TestRunMaxProcsBoundsAGuestThatSpawnsItselfAndTimeoutEndsTheTree(t *testing.T) {
	t.Parallel()
	self := guest(t, "cmd/sandboxd/testdata/spawn_self.wat")
	spin := guest(t, "daemon/testdata/guests/spin.wat")
	for _, c := range []struct {
		args []string
		out  string
	}{
		{[]string{"run", "--max-procs", "2", "--timeout", "2s", "--grant", "file:" + self, self}, "full\n"},
		{[]string{"run", "--timeout", "300ms", spin}, ""},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
		cmd := exec.CommandContext(ctx, bin, c.args...)
		cmd.Env = append(os.Environ(), "GOMAXPROCS=1", "XDG_CACHE_HOME="+cacheHome)
		var stdout bytes.Buffer
		cmd.Stdout = &stdout
		err := cmd.Run()
		timedOut := ctx.Err() != nil
		cancel()
		if timedOut {
			t.Fatalf("%v: still running %v later", c.args, hangGuard)
		}
		if code := cmd.ProcessState.ExitCode(); code != exitTimeout || stdout.String() != c.out {
			t.Fatalf("%v: exit %d (%v), stdout %q; want %d, %q", c.args, code, err, stdout.String(), exitTimeout, c.out)
		}
	}
}

// run ends with the guest it was asked to run: a guest that exits while
// the children it spawned spin (compiled without loop checks, they never
// stop on their own) makes run exit with its code, and its children end
// with the process. The guest exits only once both children have started;
// with stdin at its end they spin at once. run used to spin on forever;
// now it takes well under a second (sandboxd's hangGuard bounds a hang).
func TestRunEndsWithItsGuestWhenItsChildrenSpin(t *testing.T) {
	t.Parallel()
	g := guest(t, guests+"spawn_spin_exit.wat")
	r := sandboxd(t, "", "run", "--grant", "file:"+g, g)
	if r.code != 7 || r.stdout != "children spinning\n" || r.stderr != "" {
		t.Fatalf("exit %d, stdout %q, stderr %q; want 7, \"children spinning\\n\", nothing", r.code, r.stdout, r.stderr)
	}
}

// openManyData returns a directory holding the file openmany.c opens.
func openManyData(t *testing.T) string {
	t.Helper()
	data := t.TempDir()
	if err := os.WriteFile(filepath.Join(data, "f"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	return data
}

// ranOutOfHostFDs reports whether openmany exited 0 having opened some
// files, then failed with ENFILE, and opened one again after a close.
func ranOutOfHostFDs(r result) bool {
	opened, rest, _ := strings.Cut(r.stdout, ", then ")
	return r.code == 0 && strings.HasPrefix(opened, "opened ") && opened != "opened 0" && rest == "ENFILE\nafter a close: ok\n"
}

// Ordinary programs hold more than a few dozen files at once (a Go program
// closes some only when its collector runs), and Linux gives a process
// 1024 descriptors: run's default table has room for as many. Past the
// table's size open fails with EMFILE, the guest's own limit.
func TestRunDefaultMaxFDsHoldsWhatLinuxAllowsAProcess(t *testing.T) {
	t.Parallel()
	openmany := wasiGuest(t, "cmd/sandboxd/testdata/openmany.c")
	grant := "dir:" + openManyData(t) + "=/data"
	// 3 stdio handles and the grant leave 1020 of the default 1024.
	r := sandboxd(t, "", "run", "--grant", grant, openmany, "/data/f")
	if r.code != 0 || r.stdout != "opened 1020, then EMFILE\nafter a close: ok\n" || r.stderr != "" {
		t.Errorf("default --max-fds: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	r = sandboxd(t, "", "run", "--max-fds", "10", "--grant", grant, openmany, "/data/f")
	if r.code != 0 || r.stdout != "opened 6, then EMFILE\nafter a close: ok\n" || r.stderr != "" {
		t.Errorf("--max-fds 10: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
}

// When sandboxd's process runs out of host descriptors before the guest's
// table is full, the guest's open fails with ENFILE (the system's limit,
// not its own), sandboxd warns once naming the limit, and the guest goes
// on: once it closes a handle it can open again.
func TestRunOutOfHostDescriptorsGivesTheGuestENFILE(t *testing.T) {
	t.Parallel()
	openmany := wasiGuest(t, "cmd/sandboxd/testdata/openmany.c")
	r := runBinary(t, withFDLimit(t, 64), "", "run", "--grant", "dir:"+openManyData(t)+"=/data", openmany, "/data/f")
	if !ranOutOfHostFDs(r) {
		t.Errorf("under ulimit -n 64: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	if strings.Count(r.stderr, "\n") != 1 || !strings.Contains(r.stderr, "sandboxd is out of file descriptors") || !strings.Contains(r.stderr, "limit=64") {
		t.Errorf("stderr %q, want one warning naming the limit of 64", r.stderr)
	}
}

// At --log-level debug the guest's exit line says how many handles it
// held then and at most, against its --max-fds: what an operator needs to
// choose --max-fds.
func TestRunLogsTheGuestsHandleCountsAtDebug(t *testing.T) {
	t.Parallel()
	openmany := wasiGuest(t, "cmd/sandboxd/testdata/openmany.c")
	// 3 stdio handles, the grant and 12 files; one file closed and opened
	// again leaves 16, all it held at once.
	r := sandboxd(t, "", "run", "--log-level", "debug", "--max-fds", "20", "--grant", "dir:"+openManyData(t)+"=/data", openmany, "/data/f", "12")
	if r.code != 0 || r.stdout != "opened 12\nafter a close: ok\n" {
		t.Fatalf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stderr, "guest exited") || !strings.Contains(r.stderr, "handles_at_exit=16 handles_peak=16 max_fds=20") {
		t.Errorf("stderr lacks the handle counts:\n%s", r.stderr)
	}
}

// A recursing guest traps at --max-stack (8MiB unless given), with the
// bound in its one line of stderr; a bound out of range is a usage error.
func TestRunMaxStackTrapsARecursingGuest(t *testing.T) {
	t.Parallel()
	wasm := guest(t, guests+"recurse.wat")
	for _, c := range []struct{ flags []string }{{nil}, {[]string{"--max-stack", "256KiB"}}} {
		r := sandboxd(t, "", append(append([]string{"run"}, c.flags...), wasm)...)
		want := "guest trapped: call stack exceeded --max-stack 8MiB"
		if c.flags != nil {
			want = "guest trapped: call stack exceeded --max-stack 256KiB"
		}
		if r.code != exitTrap {
			t.Errorf("%v: exit %d, want %d", c.flags, r.code, exitTrap)
		}
		oneLine(t, r.stderr, want)
	}
	for _, bad := range []string{"1GiB", "1KiB", "lots"} {
		r := sandboxd(t, "", "run", "--max-stack", bad, wasm)
		if r.code != exitUsage || !strings.Contains(r.stderr, "--max-stack") {
			t.Errorf("--max-stack %s: exit %d, stderr %q; want a usage error", bad, r.code, r.stderr)
		}
	}
}

// A module file larger than the most sandboxd compiles is refused before
// it is read, by each verb that reads one; a device that never ends is
// read no further than that.
func TestAModuleTooLargeIsRefusedUnread(t *testing.T) {
	t.Parallel()
	big := filepath.Join(t.TempDir(), "big.wasm")
	f, err := os.Create(big)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(abi.MaxModuleBytes + 1); err != nil { // sparse: nothing written
		t.Fatal(err)
	}
	f.Close()
	want := "cannot read module " + big + ": it is larger than 128.0 MiB, the most sandboxd compiles: give a WebAssembly module"
	for _, args := range [][]string{
		{"run", big},
		{"launch", "--socket", filepath.Join(t.TempDir(), "none.sock"), big},
		{"policy", "explain", "--policy", "../../policies/examples/pipeline.hcl", "--grant", "chan:x", big},
	} {
		r := sandboxd(t, "", args...)
		if r.code != exitModule {
			t.Errorf("%v: exit %d, want %d; stderr: %s", args, r.code, exitModule, r.stderr)
		}
		oneLine(t, r.stderr, want)
	}
	if _, err := readModuleAtMost("/dev/zero", 1<<20); err == nil || !strings.Contains(err.Error(), "larger than 1.0 MiB") {
		t.Errorf("reading /dev/zero with a limit of 1 MiB: %v; want it refused as larger", err)
	}
}

// A signal its parent ignored (a shell's background job ignores SIGINT)
// stays ignored by run, during setup and after, as a program that catches
// signals only where it was not told to ignore them does: catching it
// turned it back on. Read from /proc once run has opened its module, by
// which time it catches what it catches.
func TestRunLeavesASignalItsParentIgnoredIgnored(t *testing.T) {
	t.Parallel()
	fifo := filepath.Join(t.TempDir(), "prog.wasm")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("sh", "-c", `trap "" INT; exec "$0" run "$1"`, bin, fifo)
	cmd.Env = append(os.Environ(), "XDG_CACHE_HOME="+cacheHome)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	w, err := os.OpenFile(fifo, os.O_WRONLY, 0) // returns once run has opened it
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	var ignored, caught uint64
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "SigIgn:\t"); ok {
			ignored, _ = strconv.ParseUint(v, 16, 64)
		}
		if v, ok := strings.CutPrefix(line, "SigCgt:\t"); ok {
			caught, _ = strconv.ParseUint(v, 16, 64)
		}
	}
	sigint := uint64(1) << (syscall.SIGINT - 1)
	sigterm := uint64(1) << (syscall.SIGTERM - 1)
	if ignored&sigint == 0 || caught&sigint != 0 {
		t.Errorf("run catches SIGINT, which its parent ignored (SigIgn %x, SigCgt %x)", ignored, caught)
	}
	if caught&sigterm == 0 {
		t.Errorf("run does not catch SIGTERM, which its parent did not ignore (SigCgt %x)", caught)
	}
}
