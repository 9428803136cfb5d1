package caps

import (
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// tcpPair returns a Socket over the server side of a loopback TCP
// connection, and the client side as a plain net.Conn.
func tcpPair(t *testing.T) (*Socket, net.Conn) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	client, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewSocket(server, "test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(); client.Close() })
	return s, client
}

func waitWake(t *testing.T, w *Waiter, what string) {
	t.Helper()
	select {
	case <-w.C():
	case <-time.After(hangGuard):
		t.Fatalf("not woken: %s", what)
	}
}

func TestSocketReadIsNonBlockingAndPollWakesOnData(t *testing.T) {
	s, client := tcpPair(t)
	buf := make([]byte, 16)
	if _, err := s.Read(buf); !errors.Is(err, EAGAIN) {
		t.Fatalf("read with nothing waiting: err = %v, want EAGAIN", err)
	}
	w := NewWaiter()
	ready, cancel := s.Poll(EventRead, w)
	defer cancel()
	if ready&EventRead != 0 {
		t.Fatal("readable before anything was sent")
	}
	client.Write([]byte("hello"))
	waitWake(t, w, "data arrived")
	if ready, _ := s.Poll(EventRead, nil); ready&EventRead == 0 {
		t.Fatal("not readable after the wake-up")
	}
	// PEEK leaves the bytes in place.
	n, _, _, err := s.Recv([][]byte{buf[:2]}, 0, true)
	if err != nil || string(buf[:n]) != "he" {
		t.Fatalf("peek: %q, %v", buf[:n], err)
	}
	n, _, _, err = s.Recv([][]byte{buf[:3], buf[3:]}, 0, false)
	if err != nil || string(buf[:n]) != "hello" {
		t.Fatalf("read: %q, %v", buf[:n], err)
	}
}

func TestSocketWriteReachesPeer(t *testing.T) {
	s, client := tcpPair(t)
	if ready, _ := s.Poll(EventWrite, nil); ready&EventWrite == 0 {
		t.Fatal("fresh connection not writable")
	}
	n, err := s.Send(iov("ab", "cd"), nil)
	if err != nil || n != 4 {
		t.Fatalf("send: %d, %v", n, err)
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(client, buf); err != nil || string(buf) != "abcd" {
		t.Fatalf("peer read %q, %v", buf, err)
	}
}

func TestSocketCannotCarryCapabilities(t *testing.T) {
	s, _ := tcpPair(t)
	k := NewKernel(nil)
	dir, _ := mintDir(t, k)
	if _, err := s.Send(iov("x"), []*Cap{dir}); !errors.Is(err, ENOTSUP) {
		t.Fatalf("send with capabilities: err = %v, want ENOTSUP", err)
	}
}

func TestSocketPeerCloseIsEndOfStreamAndHangup(t *testing.T) {
	s, client := tcpPair(t)
	w := NewWaiter()
	_, cancel := s.Poll(EventRead, w)
	defer cancel()
	client.Close()
	waitWake(t, w, "peer closed")
	ready, _ := s.Poll(EventRead, nil)
	if ready&EventRead == 0 || ready&EventHangup == 0 {
		t.Fatalf("after peer close: %v", ready)
	}
	if n, err := s.Read(make([]byte, 4)); n != 0 || err != nil {
		t.Fatalf("read after peer close: %d, %v, want end of stream", n, err)
	}
}

func TestSocketShutdownWriteSendsEndOfStream(t *testing.T) {
	s, client := tcpPair(t)
	if err := s.Shutdown(false, true); err != nil {
		t.Fatal(err)
	}
	client.SetReadDeadline(time.Now().Add(hangGuard))
	if n, err := client.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Fatalf("peer read after SHUT_WR: %d, %v", n, err)
	}
	if _, err := s.Write([]byte("x")); !errors.Is(err, EPIPE) {
		t.Fatalf("write after SHUT_WR: %v, want EPIPE", err)
	}
}

// watchers counts goroutines parked by watchHost.
func watchers() int { return goroutinesIn("caps.watchHost.func") }

// goroutinesIn counts the goroutines whose stack has fn in it.
func goroutinesIn(fn string) int {
	buf := make([]byte, 1<<20)
	n := runtime.Stack(buf, true)
	count := 0
	for _, g := range strings.Split(string(buf[:n]), "\n\n") {
		if strings.Contains(g, fn) {
			count++
		}
	}
	return count
}

// A poll that ends must not leave a goroutine parked in the netpoller.
func TestSocketPollWatcherEndsWhenCancelled(t *testing.T) {
	s, _ := tcpPair(t)
	var cancels []func()
	for range 20 {
		_, cancel := s.Poll(EventRead, NewWaiter())
		cancels = append(cancels, cancel)
	}
	deadline := time.Now().Add(hangGuard)
	for watchers() < 20 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if n := watchers(); n != 20 {
		t.Fatalf("%d watcher goroutines for 20 waiting polls", n)
	}
	for _, c := range cancels {
		c()
	}
	for watchers() > 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if n := watchers(); n != 0 {
		t.Fatalf("%d watcher goroutines left after cancelling every poll", n)
	}
}

func TestListenerAcceptsWithoutBlocking(t *testing.T) {
	for _, network := range []string{"tcp", "unix"} {
		t.Run(network, func(t *testing.T) {
			addr := "127.0.0.1:0"
			if network == "unix" {
				addr = filepath.Join(t.TempDir(), "l.sock")
			}
			nl, err := net.Listen(network, addr)
			if err != nil {
				t.Fatal(err)
			}
			l, err := NewListener(nl, "test")
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			if _, err := l.Accept(); !errors.Is(err, EAGAIN) {
				t.Fatalf("accept with nobody connecting: err = %v, want EAGAIN", err)
			}
			w := NewWaiter()
			_, cancel := l.Poll(EventRead, w)
			defer cancel()
			client, err := net.Dial(network, l.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer client.Close()
			waitWake(t, w, "connection arrived")
			res, err := l.Accept()
			if err != nil {
				t.Fatal(err)
			}
			s := res.(*Socket)
			defer s.Close()
			client.Write([]byte("hi"))
			buf := make([]byte, 2)
			deadline := time.Now().Add(hangGuard)
			for {
				n, err := s.Read(buf)
				if err == nil && n == 2 {
					break
				}
				if !errors.Is(err, EAGAIN) || time.Now().After(deadline) {
					t.Fatalf("read on accepted socket: %d, %v", n, err)
				}
				time.Sleep(time.Millisecond)
			}
			if string(buf) != "hi" {
				t.Fatalf("read %q", buf)
			}
		})
	}
}

func TestNewSocketRefusesConnectionWithoutDescriptor(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if _, err := NewSocket(a, "pipe"); err == nil {
		t.Fatal("NewSocket accepted an in-memory pipe")
	}
}

// A unix listener removes its own socket file when it closes, and nothing
// else: not a file a symbolic link put in the place of a directory of its
// path leads to (a guest with a dir grant of a directory on the path can
// make one, with any target, so that the daemon would unlink a file of
// the socket's name anywhere it may write), nor a socket another server
// bound at the path since.
func TestUnixListenerRemovesOnlyItsOwnSocketFile(t *testing.T) {
	dir := t.TempDir()
	for _, d := range []string{"run", "victim"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	victim := filepath.Join(dir, "victim", "app.sock")
	if err := os.WriteFile(victim, []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	listen := func() *Listener {
		t.Helper()
		nl, err := net.Listen("unix", filepath.Join(dir, "run", "app.sock"))
		if err != nil {
			t.Fatal(err)
		}
		l, err := NewListener(nl, "test")
		if err != nil {
			t.Fatal(err)
		}
		return l
	}

	l := listen()
	if err := os.Rename(filepath.Join(dir, "run"), filepath.Join(dir, "old")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(dir, "victim"), filepath.Join(dir, "run")); err != nil {
		t.Fatal(err)
	}
	l.Close()
	if _, err := os.Stat(victim); err != nil {
		t.Fatalf("closing the listener removed the file a link on its path led to: %v", err)
	}
	if _, err := os.Lstat(filepath.Join(dir, "old", "app.sock")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the listener's own socket file is left after it closed: %v", err)
	}

	// Its socket file replaced by another server's.
	if err := os.Remove(filepath.Join(dir, "run")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "run"), 0o755); err != nil {
		t.Fatal(err)
	}
	l = listen()
	if err := os.Remove(filepath.Join(dir, "run", "app.sock")); err != nil {
		t.Fatal(err)
	}
	other, err := net.Listen("unix", filepath.Join(dir, "run", "app.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	l.Close()
	if _, err := os.Lstat(filepath.Join(dir, "run", "app.sock")); err != nil {
		t.Fatalf("closing the listener removed another server's socket file: %v", err)
	}
}
