package abi

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"slices"
	"testing"

	"github.com/sandboxd/sandboxd/caps"
	"golang.org/x/sys/unix"
)

// A differential test of granted host sockets: the same sequence of
// operations runs on a connected stream granted to a guest, through the
// calls a guest makes (native sock_send, sock_recv, sock_shutdown, fd_read,
// poll; WASI's sock_send, sock_recv, poll_oneoff), and on a plain Linux
// socket of the same kind (TCP over loopback, or a unix stream) through
// golang.org/x/sys/unix, and every result must agree: errno, bytes, every
// buffer whole, and readiness. The peer of each is a plain descriptor the
// test drives the same way on both sides (sends, reads, shutdowns, closes
// and resets). The guest's handle and the Linux socket are non-blocking;
// waiting is the subject of tests of its own.

// Kinds of sockDiffOp.
const (
	sdSend = iota
	sdRecv
	sdRead
	sdShutdown
	sdPoll
	sdPeerSend
	sdPeerDrain
	sdPeerShutdown
	sdPeerClose
	sdPeerReset
	sdFill
	sdWrite
	sdKinds
)

// sockDiffOp is one operation, on the guest's end or on its peer.
type sockDiffOp struct {
	kind  int
	size  int    // send, peer send: bytes sent
	bufs  []int  // recv, read: the sizes of the buffers
	flags uint16 // recv: ri_flags (PEEK, WAITALL); shutdown: how
	wasi  bool   // send, recv, poll: through WASI preview1's call
}

func (op sockDiffOp) String() string {
	names := [...]string{"send", "recv", "read", "shutdown", "poll", "peer-send", "peer-drain", "peer-shutdown", "peer-close", "peer-reset", "fill", "write"}
	return fmt.Sprintf("%s(size %d, bufs %v, flags %#x, wasi %v)", names[op.kind], op.size, op.bufs, op.flags, op.wasi)
}

// sockDiffResult is what one operation did, in terms both sides share.
type sockDiffResult struct {
	errno    caps.Errno
	n        int
	bufs     string
	readable bool // poll
	writable bool
	rhup     bool // HANGUP on the fd_read event
	whup     bool // HANGUP on the fd_write event
}

// sockDiffConn is a connected pair of descriptors of one kind: own, the
// end under test, and peer.
func sockDiffConn(t testing.TB, network string) (own, peer int) {
	t.Helper()
	if network == "unix" {
		fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
		if err != nil {
			t.Fatal(err)
		}
		return fds[0], fds[1]
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	a, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	own, peer = dupConnFD(t, c), dupConnFD(t, a)
	c.Close()
	a.Close()
	return own, peer
}

// dupConnFD returns a non-blocking duplicate of c's descriptor.
func dupConnFD(t testing.TB, c net.Conn) int {
	f, err := c.(interface{ File() (*os.File, error) }).File()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fd, err := unix.FcntlInt(f.Fd(), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		t.Fatal(err)
	}
	return fd
}

// peerDo runs a peer operation on the descriptor peer, the same on both
// sides. It returns -1 as the descriptor once the peer is closed.
func peerDo(t testing.TB, peer int, op sockDiffOp, data []byte) (sockDiffResult, int) {
	switch op.kind {
	case sdPeerSend:
		n, err := unix.SendmsgN(peer, data, nil, nil, unix.MSG_NOSIGNAL|unix.MSG_DONTWAIT)
		return sockDiffResult{errno: caps.ErrnoOf(err), n: n}, peer
	case sdPeerDrain:
		buf := make([]byte, 64<<10)
		for {
			n, err := unix.Read(peer, buf)
			if n <= 0 || err != nil {
				// How much is not compared: the two sockets' buffers
				// need not be the same size.
				return sockDiffResult{errno: caps.ErrnoOf(err)}, peer
			}
		}
	case sdPeerShutdown:
		return sockDiffResult{errno: caps.ErrnoOf(unix.Shutdown(peer, int(op.flags)-1))}, peer
	case sdPeerReset:
		// A TCP socket closed with a linger of 0 resets the connection;
		// a unix socket ignores the option.
		_ = unix.SetsockoptLinger(peer, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0})
	}
	return sockDiffResult{errno: caps.ErrnoOf(unix.Close(peer))}, -1
}

// sbxSock is a granted socket in a guest's table (fd own) and its peer.
type sbxSock struct {
	sbxPair
	own  uint32
	peer int
}

func newSbxSock(t testing.TB, env *fuzzEnv, network string) *sbxSock {
	t.Helper()
	ownFD, peer := sockDiffConn(t, network)
	f := os.NewFile(uintptr(ownFD), "own")
	conn, err := net.FileConn(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	s, err := caps.NewSocket(conn, "sockdiff")
	if err != nil {
		t.Fatal(err)
	}
	k := caps.NewKernel(nil)
	h := &caps.Holder{ID: "sockdiff"}
	tbl := caps.NewTable(k, h, 64)
	b, inh := caps.GrantRights(caps.KindSocket, false)
	c := k.Mint(h, s, b, inh, "s", "sockdiff")
	c.SetFlags(caps.FlagNonblock)
	fd, err := tbl.Insert(c)
	if err != nil {
		t.Fatal(err)
	}
	p := &sbxSock{own: fd, peer: peer}
	p.m = env.mod.Memory()
	p.g = env.rt.NewGuest(&Module{compiledModule: &compiledModule{}}, GuestConfig{ID: "sockdiff", Table: tbl, Args: []string{"sockdiff"}})
	p.g.ctx, p.g.cancel = context.WithCancelCause(context.Background())
	return p
}

func (p *sbxSock) close() {
	if c, err := p.g.table.Get(p.own); err == nil {
		if s, ok := c.Resource().(*caps.Socket); ok {
			if fd, ok := s.PollFD(); ok {
				abortOnClose(fd)
			}
		}
	}
	p.g.table.CloseAll()
	p.g.cancel(nil)
	if p.peer >= 0 {
		abortOnClose(p.peer)
		unix.Close(p.peer)
	}
}

// abortOnClose has the TCP connection on fd reset when it is closed, so
// that it leaves no TIME_WAIT behind: a fuzzer's hundreds of thousands of
// connections would otherwise take every local port.
func abortOnClose(fd int) {
	_ = unix.SetsockoptLinger(fd, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0})
}

func (p *sbxSock) do(t testing.TB, op sockDiffOp, data []byte) sockDiffResult {
	var r sockDiffResult
	switch op.kind {
	case sdSend:
		if op.wasi {
			return p.wasiSend(t, data)
		}
		c := p.sbxPair.send(t, p.own, chanDiffOp{kind: diffSend, size: len(data)}, data)
		return sockDiffResult{errno: c.errno, n: c.n}
	case sdRecv, sdRead:
		kind := diffRecv
		if op.kind == sdRead {
			kind = diffRead
		}
		c := p.sbxPair.recv(t, p.own, chanDiffOp{kind: kind, bufs: op.bufs, flags: op.flags, wasi: op.wasi})
		return sockDiffResult{errno: c.errno, n: c.n, bufs: c.bufs}
	case sdShutdown:
		return sockDiffResult{errno: p.call(t, sockShutdown, uint64(p.own), uint64(op.flags))}
	case sdPoll:
		return p.pollBoth(t, op.wasi)
	case sdFill:
		return fill(func() sockDiffResult { return p.do(t, sockDiffOp{kind: sdSend, size: len(data), wasi: op.wasi}, data) })
	case sdWrite:
		return p.fdWrite(t, data)
	}
	r, p.peer = peerDo(t, p.peer, op, data)
	return r
}

// wasiSend is WASI's sock_send of data in one buffer.
func (p *sbxSock) wasiSend(t testing.TB, data []byte) sockDiffResult {
	p.m.Write(sbxData, data)
	p.put32(sbxIOV, sbxData)
	p.put32(sbxIOV+4, uint32(len(data)))
	e := p.call(t, wasiSockSend, uint64(p.own), sbxIOV, 1, 0, sbxOut)
	if e != 0 {
		return sockDiffResult{errno: e}
	}
	return sockDiffResult{n: p.get32(sbxOut)}
}

// pollBoth polls the guest's end for reading and for writing, with a
// clock that has expired, so that the call does not wait.
func (p *sbxSock) pollBoth(t testing.TB, wasi bool) sockDiffResult {
	const subs, events = 1024, 2048
	types := []byte{eventtypeFDRead, eventtypeFDWrite, eventtypeClock}
	size, evSize := uint32(subscriptionSize), uint32(eventSize)
	if wasi {
		types = []byte{wasiEventtypeFDRead, wasiEventtypeFDWrite, wasiEventtypeClock}
		size, evSize = wasiSubscriptionSize, wasiEventSize
	}
	in := make([]byte, 3*size)
	for i, typ := range types {
		sub := in[uint32(i)*size:]
		binary.LittleEndian.PutUint64(sub[0:], uint64(100+i))
		if wasi {
			sub[8] = typ
			binary.LittleEndian.PutUint32(sub[16:], p.own) // fd; clock id 0 is realtime
			if typ == wasiEventtypeClock {
				binary.LittleEndian.PutUint32(sub[16:], 1) // monotonic, timeout 0
			}
			continue
		}
		sub[10] = typ
		if typ == eventtypeClock {
			binary.LittleEndian.PutUint32(sub[24:], 1)
			continue
		}
		binary.LittleEndian.PutUint32(sub[16:], p.own)
	}
	p.m.Write(subs, in)
	fn := poll
	if wasi {
		fn = wasiPollOneoff
	}
	if e := p.call(t, fn, subs, events, 3, sbxOut); e != 0 {
		t.Fatalf("poll: errno %d", e)
	}
	var r sockDiffResult
	for i := range p.get32(sbxOut) {
		ev, _ := p.m.Read(events+uint32(i)*evSize, evSize)
		ud := binary.LittleEndian.Uint64(ev[0:])
		if e := binary.LittleEndian.Uint16(ev[8:]); e != 0 {
			t.Fatalf("poll: event %d has errno %d", ud, e)
		}
		var hup bool
		if wasi {
			hup = binary.LittleEndian.Uint16(ev[24:])&wasiEventFDReadHangup != 0
		} else {
			hup = binary.LittleEndian.Uint16(ev[28:])&eventFDReadwriteHangup != 0
		}
		switch ud {
		case 100:
			r.readable, r.rhup = true, hup
		case 101:
			r.writable, r.whup = true, hup
		}
	}
	return r
}

// fill sends until a send fails, and reports the error, not how much was
// sent: the two sockets' buffers need not be the same size.
func fill(send func() sockDiffResult) sockDiffResult {
	for {
		if r := send(); r.errno != 0 {
			return sockDiffResult{errno: r.errno}
		}
	}
}

// linSock is a plain Linux socket and its peer.
type linSock struct {
	own, peer int
}

func (p *linSock) close() {
	for _, fd := range []int{p.own, p.peer} {
		if fd >= 0 {
			abortOnClose(fd)
			unix.Close(fd)
		}
	}
}

func (p *linSock) do(t testing.TB, op sockDiffOp, data []byte) sockDiffResult {
	switch op.kind {
	case sdSend:
		n, err := unix.SendmsgN(p.own, data, nil, nil, unix.MSG_NOSIGNAL|unix.MSG_DONTWAIT)
		if err != nil {
			return sockDiffResult{errno: caps.ErrnoOf(err)}
		}
		return sockDiffResult{n: n}
	case sdRecv, sdRead:
		return p.recv(op)
	case sdShutdown:
		return sockDiffResult{errno: caps.ErrnoOf(unix.Shutdown(p.own, int(op.flags)-1))}
	case sdPoll:
		return linuxReadiness(t, p.own)
	case sdFill:
		return fill(func() sockDiffResult { return p.do(t, sockDiffOp{kind: sdSend}, data) })
	case sdWrite:
		n, err := unix.Writev(p.own, [][]byte{data[:len(data)/2], data[len(data)/2:]})
		if err != nil {
			return sockDiffResult{errno: caps.ErrnoOf(err)}
		}
		return sockDiffResult{n: n}
	}
	var r sockDiffResult
	r, p.peer = peerDo(t, p.peer, op, data)
	return r
}

func (p *linSock) recv(op sockDiffOp) sockDiffResult {
	bufs := make([][]byte, len(op.bufs))
	for i, size := range op.bufs {
		bufs[i] = bytes.Repeat([]byte{chanDiffFill}, size)
	}
	var n int
	var err error
	if op.kind == sdRead {
		n, err = unix.Readv(p.own, bufs)
	} else {
		flags := unix.MSG_DONTWAIT
		if op.flags&sockRecvPeek != 0 {
			flags |= unix.MSG_PEEK
		}
		if op.flags&sockRecvWaitall != 0 {
			flags |= unix.MSG_WAITALL
		}
		n, _, _, _, err = unix.RecvmsgBuffers(p.own, bufs, nil, flags)
	}
	if err != nil {
		return sockDiffResult{errno: caps.ErrnoOf(err)}
	}
	var all []byte
	for _, b := range bufs {
		all = append(all, b...)
		all = append(all, '|')
	}
	return sockDiffResult{n: n, bufs: fmt.Sprintf("%x", all)}
}

// linuxReadiness is what poll(2) says of fd, as the events a guest's poll
// would report: readable on data, end of stream or an error; writable on
// room or an error; HANGUP when the peer has gone (POLLHUP) or, for
// reading, shut down writing (POLLRDHUP).
func linuxReadiness(t testing.TB, fd int) sockDiffResult {
	pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN | unix.POLLOUT | unix.POLLRDHUP}}
	for {
		_, err := unix.Poll(pfd, 0)
		if err == nil {
			break
		}
		if err != unix.EINTR {
			t.Fatal(err)
		}
	}
	ev := pfd[0].Revents
	errs := ev&(unix.POLLHUP|unix.POLLERR) != 0
	return sockDiffResult{
		readable: ev&(unix.POLLIN|unix.POLLRDHUP) != 0 || errs,
		writable: ev&unix.POLLOUT != 0 || errs,
		rhup:     ev&(unix.POLLHUP|unix.POLLRDHUP) != 0,
		whup:     ev&unix.POLLHUP != 0,
	}
}

// runSockDiff runs ops on a granted socket and a Linux socket of network's
// kind and fails at the first result on which they differ.
func runSockDiff(t testing.TB, env *fuzzEnv, network string, ops []sockDiffOp) {
	sbx := newSbxSock(t, env, network)
	defer sbx.close()
	own, peer := sockDiffConn(t, network)
	lin := &linSock{own: own, peer: peer}
	defer lin.close()
	var seq byte
	filled := false
	for i, op := range ops {
		if op.kind >= sdPeerSend && sbx.peer < 0 {
			continue
		}
		data := make([]byte, op.size)
		for j := range data {
			seq++
			data[j] = seq
		}
		got := sbx.do(t, op, data)
		want := lin.do(t, op, data)
		filled = filled || op.kind == sdFill && network == "tcp"
		if filled {
			got, want = roomUnknown(op, got), roomUnknown(op, want)
		}
		if got != want {
			t.Fatalf("%s op %d %v:\n granted %+v\n linux   %+v\nops: %v", network, i, op, got, want, ops[:i+1])
		}
	}
}

// sockDiffCases are the sequences TestSockDiff runs on both kinds.
var sockDiffCases = map[string][]sockDiffOp{
	"full-then-drained": {
		{kind: sdFill, size: 60000},
		{kind: sdPoll},
		{kind: sdPoll, wasi: true},
		{kind: sdSend, size: 1},
		{kind: sdSend, size: 0},
		{kind: sdPeerDrain},
		{kind: sdPoll},
		{kind: sdPoll, wasi: true},
		{kind: sdFill, size: 1000, wasi: true},
		{kind: sdPoll},
		{kind: sdPeerClose},
		{kind: sdPoll},
		{kind: sdSend, size: 1},
	},
	"peek-waitall": {
		{kind: sdPeerSend, size: 5},
		{kind: sdRecv, bufs: []int{3}, flags: sockRecvPeek},
		{kind: sdRecv, bufs: []int{8}, flags: sockRecvPeek | sockRecvWaitall},
		{kind: sdRecv, bufs: []int{2, 2}, flags: sockRecvWaitall},
		{kind: sdRecv, bufs: []int{8}, flags: sockRecvWaitall},
		{kind: sdRecv, bufs: []int{8}, flags: sockRecvWaitall, wasi: true},
		{kind: sdPeerSend, size: 3},
		{kind: sdRecv, bufs: []int{8}, flags: sockRecvPeek, wasi: true},
		{kind: sdRecv, bufs: []int{8}},
	},
	"zero-length": {
		{kind: sdRecv, bufs: []int{0}},
		{kind: sdRecv, bufs: nil},
		{kind: sdRead, bufs: []int{0}},
		{kind: sdSend, size: 0},
		{kind: sdSend, size: 0, wasi: true},
		{kind: sdWrite, size: 0},
		{kind: sdWrite, size: 5},
		{kind: sdPeerSend, size: 2},
		{kind: sdRecv, bufs: []int{0}},
		{kind: sdRecv, bufs: []int{0}, wasi: true},
		{kind: sdRecv, bufs: []int{4}},
	},
	"send-after-peer-close": {
		{kind: sdPoll},
		{kind: sdPeerClose},
		{kind: sdPoll},
		{kind: sdPoll, wasi: true},
		{kind: sdSend, size: 3},
		{kind: sdSend, size: 3},
		{kind: sdSend, size: 0},
		{kind: sdSend, size: 3, wasi: true},
		{kind: sdWrite, size: 3},
		{kind: sdWrite, size: 0},
		{kind: sdRecv, bufs: []int{4}},
		{kind: sdPoll},
	},
	"eof": {
		{kind: sdPeerSend, size: 3},
		{kind: sdPeerShutdown, flags: 2},
		{kind: sdPoll},
		{kind: sdPoll, wasi: true},
		{kind: sdRecv, bufs: []int{8}, flags: sockRecvWaitall},
		{kind: sdRecv, bufs: []int{8}},
		{kind: sdRead, bufs: []int{8}},
		{kind: sdRecv, bufs: []int{0}},
		{kind: sdSend, size: 4},
		{kind: sdPoll},
	},
	"reset": {
		{kind: sdSend, size: 4},
		{kind: sdPeerSend, size: 2},
		{kind: sdPeerReset},
		{kind: sdPoll},
		{kind: sdRecv, bufs: []int{8}},
		{kind: sdRecv, bufs: []int{8}},
		{kind: sdSend, size: 1},
		{kind: sdPoll},
	},
	"reset-zero-send": {
		{kind: sdSend, size: 4},
		{kind: sdPeerReset},
		{kind: sdSend, size: 0},
		{kind: sdRecv, bufs: []int{0}},
		{kind: sdRecv, bufs: []int{8}},
	},
	"readv-then-reset": {
		{kind: sdSend, size: 4},
		{kind: sdPeerSend, size: 5},
		{kind: sdPeerReset},
		{kind: sdRead, bufs: []int{5, 1}},
		{kind: sdRecv, bufs: []int{8}},
		{kind: sdRecv, bufs: []int{8}},
	},
	"waitall-then-reset": {
		{kind: sdSend, size: 4},
		{kind: sdPeerSend, size: 5},
		{kind: sdPeerReset},
		{kind: sdRecv, bufs: []int{8}, flags: sockRecvWaitall},
		{kind: sdRecv, bufs: []int{8}},
		{kind: sdRecv, bufs: []int{8}},
	},
	"waitall-then-eof": {
		{kind: sdPeerSend, size: 5},
		{kind: sdPeerShutdown, flags: 2},
		{kind: sdRecv, bufs: []int{4, 4}, flags: sockRecvWaitall, wasi: true},
		{kind: sdRecv, bufs: []int{8}},
	},
	"own-shutdown": {
		{kind: sdPeerSend, size: 3},
		{kind: sdShutdown, flags: shutRD},
		{kind: sdPoll},
		{kind: sdRecv, bufs: []int{8}},
		{kind: sdRecv, bufs: []int{8}},
		{kind: sdShutdown, flags: shutRD},
		{kind: sdShutdown, flags: shutWR},
		{kind: sdPoll},
		{kind: sdPoll, wasi: true},
		{kind: sdSend, size: 2},
		{kind: sdSend, size: 0},
		{kind: sdSend, size: 0, wasi: true},
		{kind: sdSend, size: 2, wasi: true},
		{kind: sdWrite, size: 0},
		{kind: sdWrite, size: 3},
		{kind: sdShutdown, flags: shutRD | shutWR},
		{kind: sdShutdown, flags: shutWR},
		{kind: sdPeerDrain},
		{kind: sdPoll},
	},
	"peer-shutdown-read": {
		{kind: sdPeerShutdown, flags: 1},
		{kind: sdPoll},
		{kind: sdSend, size: 5},
		{kind: sdPeerShutdown, flags: 3},
		{kind: sdPoll},
		{kind: sdSend, size: 5},
		{kind: sdRecv, bufs: []int{4}},
	},
}

func TestSockDiff(t *testing.T) {
	env := newFuzzEnv(t)
	for name, ops := range sockDiffCases {
		for _, network := range []string{"tcp", "unix"} {
			t.Run(name+"/"+network, func(t *testing.T) {
				runSockDiff(t, env, network, ops)
			})
		}
	}
}

// roomUnknown is r with what depends on the room left in a TCP send
// buffer taken out: once a connection's buffers were filled, how much a
// send takes and whether the socket is writable depend on how the kernel
// laid out the bytes queued and when the peer's acknowledgements came,
// which two TCP connections need not share. A send that takes bytes
// reads as EAGAIN, and poll's writability is left out.
func roomUnknown(op sockDiffOp, r sockDiffResult) sockDiffResult {
	switch op.kind {
	case sdSend, sdWrite:
		if r.errno == 0 {
			r = sockDiffResult{errno: caps.EAGAIN}
		}
	case sdPoll:
		r.writable = r.writable && r.whup
	}
	return r
}

// decodeSockDiffOps turns fuzz input into operations, five bytes each:
// the kind, a size or a number of buffers, two buffer sizes, and the
// flags and ABI.
func decodeSockDiffOps(in []byte) []sockDiffOp {
	var ops []sockDiffOp
	for len(in) >= 5 && len(ops) < 64 {
		b := in[:5]
		in = in[5:]
		op := sockDiffOp{kind: int(b[0]) % sdKinds, wasi: b[4]&0x80 != 0}
		switch op.kind {
		case sdSend, sdPeerSend, sdWrite:
			op.size = int(b[1]) % 64
		case sdFill:
			op.size = 1000 * (1 + int(b[1])%60) // within the guest memory past sbxData
		case sdRecv, sdRead:
			for i := range int(b[1]) % 3 {
				op.bufs = append(op.bufs, int(b[2+i])%chanDiffMaxBuf)
			}
			op.flags = uint16(b[4]) & (sockRecvPeek | sockRecvWaitall)
		case sdShutdown, sdPeerShutdown:
			op.flags = uint16(b[1])%3 + 1
		}
		ops = append(ops, op)
	}
	return ops
}

// encodeSockDiffOps is the input decodeSockDiffOps turns into ops.
func encodeSockDiffOps(ops []sockDiffOp) []byte {
	var out []byte
	for _, op := range ops {
		b := []byte{byte(op.kind), 0, 0, 0, 0}
		switch op.kind {
		case sdSend, sdPeerSend, sdWrite:
			b[1] = byte(op.size)
		case sdFill:
			b[1] = byte(op.size/1000 - 1)
		case sdRecv, sdRead:
			b[1] = byte(len(op.bufs))
			for i, size := range op.bufs {
				b[2+i] = byte(size)
			}
			b[4] = byte(op.flags)
		case sdShutdown, sdPeerShutdown:
			b[1] = byte(op.flags - 1)
		}
		if op.wasi {
			b[4] |= 0x80
		}
		out = append(out, b...)
	}
	return out
}

// FuzzSockDiff runs arbitrary sequences of operations on a granted socket
// and a Linux socket, TCP or unix (runSockDiff). A TCP connection is not
// filled: what a full one does next depends on when acknowledgements
// and window updates cross the loopback (the peer's shutdown of a
// connection that still has bytes coming resets it, or not), which two
// connections need not share.
func FuzzSockDiff(f *testing.F) {
	for _, ops := range sockDiffCases {
		f.Add(false, encodeSockDiffOps(ops))
		f.Add(true, encodeSockDiffOps(ops))
	}
	env := newFuzzEnv(f)
	f.Fuzz(func(t *testing.T, tcp bool, in []byte) {
		network := "unix"
		ops := decodeSockDiffOps(in)
		if tcp {
			network = "tcp"
			ops = slices.DeleteFunc(ops, func(op sockDiffOp) bool { return op.kind == sdFill })
		}
		runSockDiff(t, env, network, ops)
	})
}

func TestSockDiffOpsRoundTrip(t *testing.T) {
	for name, ops := range sockDiffCases {
		got := decodeSockDiffOps(encodeSockDiffOps(ops))
		if fmt.Sprint(got) != fmt.Sprint(ops) {
			t.Errorf("%s: decoded %v, want %v", name, got, ops)
		}
	}
}
