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
	"sync"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/abi/abitest"
)

// plain is sandboxd built without the race detector, for the tests that
// run large Go guests: wazero's compiler, race-instrumented, takes over a
// minute for the 13 MB Redis guest, and the host code these tests cross
// is race-checked by the daemon, abi and caps tests with smaller guests.
var plain struct {
	once sync.Once
	path string
	err  error
}

func plainSandboxd(t *testing.T) string {
	t.Helper()
	plain.once.Do(func() {
		plain.path = filepath.Join(filepath.Dir(bin), "sandboxd-plain")
		out, err := exec.Command("go", "build", "-o", plain.path, ".").CombinedOutput()
		if err != nil {
			plain.err = fmt.Errorf("building sandboxd without -race: %v\n%s", err, out)
		}
	})
	if plain.err != nil {
		t.Fatal(plain.err)
	}
	return plain.path
}

// redisServer is Debian's redis-server on a free loopback port with a
// temporary directory and no persistence, stopped when the test ends.
type redisServer struct {
	port string
	dir  string
	cmd  *exec.Cmd
	done chan struct{}
}

func startRedis(t *testing.T) *redisServer {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatalf("redis-server is not installed: apt-get install -y redis-server (the Redis tests need it: %v)", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(l.Addr().String())
	l.Close()
	r := &redisServer{port: port, dir: t.TempDir()}
	r.start(t)
	t.Cleanup(func() { r.stop(t) })
	return r
}

// start runs the server and waits until it says it accepts connections.
func (r *redisServer) start(t *testing.T) {
	t.Helper()
	r.cmd = exec.Command("redis-server", "--port", r.port, "--bind", "127.0.0.1", "--dir", r.dir,
		"--save", "", "--appendonly", "no", "--daemonize", "no")
	out, err := r.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := r.cmd.Start(); err != nil {
		t.Fatalf("starting redis-server: %v", err)
	}
	r.done = make(chan struct{})
	ready := make(chan struct{})
	var log bytes.Buffer
	go func() {
		defer close(r.done)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			log.WriteString(sc.Text() + "\n")
			if strings.Contains(sc.Text(), "Ready to accept connections") {
				close(ready)
				_, _ = io.Copy(io.Discard, out)
				break
			}
		}
		_ = r.cmd.Wait()
	}()
	select {
	case <-ready:
	case <-r.done:
		t.Fatalf("redis-server exited before it was ready:\n%s", log.String())
	case <-time.After(hangGuard):
		t.Fatalf("redis-server not ready after %v", hangGuard)
	}
}

func (r *redisServer) stop(t *testing.T) {
	t.Helper()
	if r.cmd == nil {
		return
	}
	_ = r.cmd.Process.Signal(os.Interrupt)
	select {
	case <-r.done:
	case <-time.After(hangGuard):
		_ = r.cmd.Process.Kill()
		t.Errorf("redis-server did not stop within %v", hangGuard)
	}
	r.cmd = nil
}

// cli runs redis-cli against the server and returns its output, trimmed.
func (r *redisServer) cli(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	out, err := exec.CommandContext(ctx, "redis-cli", append([]string{"-p", r.port}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("redis-cli %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

// connections returns how many connections the server has accepted,
// counting the one redis-cli makes to ask.
func (r *redisServer) connections(t *testing.T) int {
	t.Helper()
	for _, line := range strings.Split(r.cli(t, "INFO", "stats"), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "total_connections_received:"); ok {
			n, err := strconv.Atoi(v)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatal("INFO stats has no total_connections_received")
	return 0
}

// lines reads r line by line onto a channel, closed at the end.
func lines(r io.Reader) <-chan string {
	ch := make(chan string, 64)
	go func() {
		defer close(ch)
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			ch <- sc.Text()
		}
	}()
	return ch
}

// nextLine returns the next line from ch, failing if there is none
// within hangGuard.
func nextLine(t *testing.T, ch <-chan string, stderr *abitest.Buffer) string {
	t.Helper()
	select {
	case l, ok := <-ch:
		if !ok {
			t.Fatalf("output ended early; stderr: %s", stderr.String())
		}
		return l
	case <-time.After(hangGuard):
		t.Fatalf("no output within %v; stderr: %s", hangGuard, stderr.String())
	}
	return ""
}

// The Go guest's go-redis client takes every connection of its pool from
// its dialer: SET, GET, INCR from 16 goroutines, a pipeline and a pub/sub
// round trip work, the server sees what it did, and after the server
// restarts the client reconnects through the dialer.
func TestRedisGuestPoolsConnectionsFromItsDialerAndReconnects(t *testing.T) {
	t.Parallel()
	r := startRedis(t)
	wasm := writeGuest(t, "redis.wasm", abitest.Go(t, "examples/redis"))
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	// go-redis's own timeouts (3 s to read) are a bound a busy machine
	// can reach: the guest is given ones only the hang guard's could.
	cmd := exec.CommandContext(ctx, plainSandboxd(t), "run", "--env", "REDIS_TIMEOUT=5m", "--grant", "sock:tcp:127.0.0.1:"+r.port+"=db:dial", wasm)
	cmd.Env = append(os.Environ(), "XDG_CACHE_HOME="+cacheHome)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr abitest.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	out := lines(stdout)
	for _, want := range []string{
		"GET sandboxd:key = hello from wasm",
		"INCR sandboxd:hits x400 = 400, pool connections: ",
		"pipeline: 3 commands, GET sandboxd:piped = 42",
		"pubsub: hello subscribers on sandboxd:news",
		"waiting",
	} {
		got := nextLine(t, out, &stderr)
		if !strings.HasPrefix(got, want) {
			t.Fatalf("guest printed %q, want %q; stderr: %s", got, want, stderr.String())
		}
		if n, ok := strings.CutPrefix(got, "INCR sandboxd:hits x400 = 400, pool connections: "); ok {
			if conns, _ := strconv.Atoi(n); conns < 2 {
				t.Errorf("the pool held %s connections, want several", n)
			}
		}
	}
	for key, want := range map[string]string{"sandboxd:key": "hello from wasm", "sandboxd:hits": "400", "sandboxd:piped": "42"} {
		if got := r.cli(t, "GET", key); got != want {
			t.Errorf("redis-cli GET %s = %q, want %q", key, got, want)
		}
	}
	if n := r.connections(t); n < 3 {
		t.Errorf("the server accepted %d connections, want the pool's several, pub/sub's and redis-cli's", n)
	}

	r.stop(t) // every pooled connection ends under the client
	r.start(t)
	if _, err := io.WriteString(stdin, "go\n"); err != nil {
		t.Fatal(err)
	}
	if got, want := nextLine(t, out, &stderr), "after restart: GET sandboxd:after = reconnected, INCR sandboxd:hits = 1"; got != want {
		t.Fatalf("guest printed %q, want %q; stderr: %s", got, want, stderr.String())
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("sandboxd run: %v; stderr: %s", err, stderr.String())
	}
	if got := r.cli(t, "GET", "sandboxd:after"); got != "reconnected" {
		t.Errorf("redis-cli GET sandboxd:after = %q after the restart", got)
	}
}

// Without the grant the same guest has no way to the network: it says
// what it lacks and the server sees no connection from it.
func TestRedisGuestWithoutItsGrantSaysSoAndConnectsNowhere(t *testing.T) {
	t.Parallel()
	r := startRedis(t)
	wasm := writeGuest(t, "redis.wasm", abitest.Go(t, "examples/redis"))
	before := r.connections(t)
	res := runBinary(t, plainSandboxd(t), "", "run", wasm)
	if res.code != 2 || !strings.Contains(res.stderr, `no handle named "db": the guest was not granted it`) {
		t.Fatalf("exit %d, stderr %q; want 2 and the missing grant named", res.code, res.stderr)
	}
	if after := r.connections(t); after != before+1 { // +1: this redis-cli
		t.Errorf("the server accepted %d connections while the guest ran without a grant", after-before-1)
	}
}

// A plain C program speaks RESP over exactly one granted connection.
func TestRESPFromCOverOneSockGrant(t *testing.T) {
	t.Parallel()
	r := startRedis(t)
	wasm := wasiGuest(t, "examples/resp/resp.c")
	before := r.connections(t)
	res := sandboxd(t, "", "run", "--grant", "sock:tcp:127.0.0.1:"+r.port+"=db", wasm, "sandboxd:c", "from C")
	if res.code != 0 || res.stdout != "SET sandboxd:c: OK\nGET sandboxd:c: from C\n" {
		t.Fatalf("exit %d, stdout %q, stderr %q", res.code, res.stdout, res.stderr)
	}
	if after := r.connections(t); after != before+2 { // the guest's one, and this redis-cli's
		t.Errorf("the server accepted %d connections from the guest, want exactly 1", after-before-1)
	}
	if got := r.cli(t, "GET", "sandboxd:c"); got != "from C" {
		t.Errorf("redis-cli GET sandboxd:c = %q", got)
	}
}

// TestLaunchGrantSockDBThroughThePolicy is the headline command, exactly:
// `sandboxd launch --grant sock:db prog.wasm`, where db is a sock
// resource of the daemon's policy, which a non-root user may be granted
// and which nothing else in the policy lets the guest reach.
func TestLaunchGrantSockDBThroughThePolicy(t *testing.T) {
	t.Parallel()
	r := startRedis(t)
	pdir := filepath.Join(privateDir(t), "policy")
	writePolicy(t, pdir, "db.hcl", `
resource "sock" "db" {
  tcp = "127.0.0.1:`+r.port+`"
}
resource "sock" "other" {
  tcp = "127.0.0.1:1"
}
grant "db-clients" {
  resources = ["sock:db"]
  subject {
    uids = [`+strconv.Itoa(worker)+`]
  }
}
`)
	d := serveDaemon(t, bin, "", "--policy", pdir)
	shared := d.shareWithOthers(t)
	prog := filepath.Join(shared, "prog.wasm")
	copyFile(t, wasiGuest(t, "examples/resp/resp.c"), prog, 0o644)

	res := d.cliAs(t, shared, worker, "launch", "--grant", "sock:db", prog, "sandboxd:policy", "via the daemon")
	if res.code != 0 || res.stdout != "SET sandboxd:policy: OK\nGET sandboxd:policy: via the daemon\n" {
		t.Fatalf("launch --grant sock:db: exit %d, stdout %q, stderr %q", res.code, res.stdout, res.stderr)
	}
	if got := r.cli(t, "GET", "sandboxd:policy"); got != "via the daemon" {
		t.Errorf("redis-cli GET sandboxd:policy = %q", got)
	}
	res = d.cliAs(t, shared, worker, "launch", "--grant", "sock:other", prog, "k", "v")
	if res.code != exitGrant || !strings.Contains(res.stderr, "no grant rule allows sock:other (default deny)") {
		t.Fatalf("launch --grant sock:other: exit %d, stderr %q; want %d, default deny", res.code, res.stderr, exitGrant)
	}
	res = d.cliAs(t, shared, worker, "launch", "--grant", "sock:tcp:127.0.0.1:"+r.port+"=db", prog, "k", "v")
	if res.code != exitGrant || !strings.Contains(res.stderr, "declare it as a sock resource and grant it by name") {
		t.Fatalf("launch with an inline address under a policy: exit %d, stderr %q", res.code, res.stderr)
	}
}

// A connected socket passes on over a channel like any other handle.
func TestSockGrantPassesOnOverAChannel(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	r := sandboxd(t, "", "run", "--grant", "sock:tcp:"+l.Addr().String()+"=db", guest(t, "cmd/sandboxd/testdata/relay.c"))
	if r.code != 0 || r.stdout != "hop1 00 hop2 00\n" {
		t.Fatalf("relay of a socket: code %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
}
