package abi

import (
	"bytes"
	"encoding/binary"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/sandboxd/sandboxd/caps"
	"golang.org/x/sys/unix"
)

// TestStdoutWritevOneWrite: fd_write of several iovecs to a standard
// stream that is a host pipe (the daemon's own stdout, say) is one
// writev(2), as the same call on Linux is. The pipe is in packet mode
// (O_DIRECT), where each write(2) is a packet and each read(2) takes at
// most one, so a write per iovec would show as a read of the first
// iovec's bytes alone.
func TestStdoutWritevOneWrite(t *testing.T) {
	env := newFdDiffEnv(t)
	for _, name := range []string{"fd_write", "wasi fd_write"} {
		t.Run(name, func(t *testing.T) {
			pr, pw := packetPipe(t)
			base := t.TempDir()
			if err := os.Mkdir(filepath.Join(base, "root"), 0o755); err != nil {
				t.Fatal(err)
			}
			s := newSbxFS(t, env, base)
			defer s.close()
			k := s.g.table.Kernel()
			fd, err := s.g.table.Insert(k.Mint(s.g.table.Holder(), caps.NewStdout("stdout", pw), caps.RightsTTYBase, 0, "stdout", "test"))
			if err != nil {
				t.Fatal(err)
			}
			putTwoIOVs(s)
			if e := s.call(t, name, uint64(fd), fdIOVAt, 2, fdOut); e != 0 || s.u32(fdOut) != 7 {
				t.Fatalf("%s of 3 and 4 bytes: errno %v, %d bytes", name, e, s.u32(fdOut))
			}
			buf := make([]byte, 64)
			n, err := pr.Read(buf)
			if err != nil || string(buf[:n]) != "abcefgh" {
				t.Fatalf("the pipe's first packet: %q (%v), want one of \"abcefgh\"", buf[:n], err)
			}
			// With the reader gone the write is EPIPE, as a write of one
			// buffer is.
			pr.Close()
			if e := s.call(t, name, uint64(fd), fdIOVAt, 2, fdOut); e != caps.EPIPE {
				t.Fatalf("%s to a pipe without a reader: errno %v, want EPIPE", name, e)
			}
		})
	}
}

// putTwoIOVs puts "abcdefgh" in the data area and two iovecs at fdIOVAt:
// its first 3 bytes and its last 4.
func putTwoIOVs(s *sbxFS) {
	s.mem().Write(fdDataAt, []byte("abcdefgh"))
	iov := make([]byte, 16)
	binary.LittleEndian.PutUint64(iov, uint64(fdDataAt)|3<<32)
	binary.LittleEndian.PutUint64(iov[8:], uint64(fdDataAt+4)|4<<32)
	s.mem().Write(fdIOVAt, iov)
}

// packetPipe is a pipe whose write end is in packet mode (O_DIRECT).
func packetPipe(t *testing.T) (r, w *os.File) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(); w.Close() })
	rc, err := w.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var ferr error
	err = rc.Control(func(fd uintptr) {
		fl, err := unix.FcntlInt(fd, unix.F_GETFL, 0)
		if err == nil {
			_, err = unix.FcntlInt(fd, unix.F_SETFL, fl|unix.O_DIRECT)
		}
		ferr = err
	})
	if err != nil || ferr != nil {
		t.Fatalf("O_DIRECT on a pipe: %v %v", err, ferr)
	}
	return r, w
}

// TestStdoutWritevFull: fd_write of several iovecs to a standard stream
// that is a host pipe writes every byte, in order, waiting for the reader
// as a write of one buffer does, when the pipe takes less than the whole
// at once: 4000 and 4000 bytes into a pipe of one page.
func TestStdoutWritevFull(t *testing.T) {
	env := newFdDiffEnv(t)
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	defer pw.Close()
	rc, err := pw.SyscallConn() // not Fd(), which would make it blocking
	if err != nil {
		t.Fatal(err)
	}
	var ferr error
	if err := rc.Control(func(fd uintptr) { _, ferr = unix.FcntlInt(fd, unix.F_SETPIPE_SZ, 4096) }); err != nil || ferr != nil {
		t.Fatalf("F_SETPIPE_SZ: %v %v", err, ferr)
	}
	base := t.TempDir()
	if err := os.Mkdir(filepath.Join(base, "root"), 0o755); err != nil {
		t.Fatal(err)
	}
	s := newSbxFS(t, env, base)
	defer s.close()
	fd, err := s.g.table.Insert(s.g.table.Kernel().Mint(s.g.table.Holder(), caps.NewStdout("stdout", pw), caps.RightsTTYBase, 0, "stdout", "test"))
	if err != nil {
		t.Fatal(err)
	}
	want := make([]byte, 8000)
	for i := range want {
		want[i] = byte('a' + i%26 + i/4000)
	}
	s.mem().Write(fdDataAt, want)
	iov := make([]byte, 16)
	binary.LittleEndian.PutUint64(iov, uint64(fdDataAt)|4000<<32)
	binary.LittleEndian.PutUint64(iov[8:], uint64(fdDataAt+4000)|4000<<32)
	s.mem().Write(fdIOVAt, iov)
	got := make(chan []byte, 1)
	go func() {
		b := make([]byte, len(want))
		n, _ := io.ReadFull(pr, b)
		got <- b[:n]
	}()
	if e := s.call(t, "fd_write", uint64(fd), fdIOVAt, 2, fdOut); e != 0 || s.u32(fdOut) != len(want) {
		t.Fatalf("fd_write of 4000 and 4000 bytes: errno %v, %d bytes", e, s.u32(fdOut))
	}
	if b := <-got; !bytes.Equal(b, want) {
		t.Fatalf("the pipe carried %d bytes, %q…; want %d, %q…", len(b), b[:min(len(b), 8)], len(want), want[:8])
	}
}
