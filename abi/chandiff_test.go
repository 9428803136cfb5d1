package abi

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"testing"
	"unsafe"

	"github.com/sandboxd/sandboxd/caps"
	"github.com/tetratelabs/wazero/api"
	"golang.org/x/sys/unix"
)

// A differential test of the channels fd_create2 makes: the same sequence
// of operations runs against a channel pair, through the native calls a
// guest makes (sock_send, sock_recv, fd_read, sock_shutdown, fd_close,
// poll's readiness), and against a Linux AF_UNIX socketpair with
// SCM_RIGHTS, and every result must agree: errno, bytes and the whole of
// every buffer (so a read that writes past what it reports shows), the
// number of handles received and the truncation flags. A stream channel
// is compared with SOCK_STREAM; a datagram channel, which keeps message
// boundaries and has a connection (end of stream, EPIPE), with
// SOCK_SEQPACKET. Every operation is non-blocking. Where docs/ABI.md says
// a channel differs from Linux on purpose, chanDiffExpected says how, and
// the comparison allows for it.

// Kinds of chanDiffOp.
const (
	diffSend = iota
	diffRecv
	diffRead
	diffShutdown
	diffClose
	diffPoll
	diffKinds
)

// chanDiffOp is one operation on one end (side 0 or 1) of a pair.
type chanDiffOp struct {
	kind  int
	side  int
	size  int    // send: bytes sent
	split bool   // send: in two iovecs (two buffers) rather than one
	self  bool   // send: the handles attached are the sending end's own
	nfds  int    // send: handles attached; recv: room in ri_fds
	bufs  []int  // recv, read: the sizes of the buffers
	flags uint16 // recv: ri_flags (PEEK, WAITALL); shutdown: how
	wasi  bool   // recv: through WASI's sock_recv, which takes no handles
}

func (op chanDiffOp) String() string {
	names := [...]string{"send", "recv", "read", "shutdown", "close", "poll"}
	return fmt.Sprintf("%s(side %d, size %d, split %v, self %v, fds %d, bufs %v, flags %#x, wasi %v)", names[op.kind], op.side, op.size, op.split, op.self, op.nfds, op.bufs, op.flags, op.wasi)
}

// chanDiffResult is what one operation did, in terms both sides share.
type chanDiffResult struct {
	errno     caps.Errno
	n         int
	bufs      string // every buffer of a receive, whole, one after the other
	nfds      int
	dataTrunc bool
	fdsTrunc  bool
	readable  bool // poll
	writable  bool
	hangup    bool
}

// chanDiffFill is what every receive buffer holds before the receive.
const chanDiffFill = 0xee

// chanDiffMaxBuf bounds one buffer of the generated operations.
const chanDiffMaxBuf = 24

// decodeChanDiffOps turns fuzz input into a sequence of operations, seven
// bytes each. At most 8 sends go each way, so that no queue is ever full on
// either side (Linux bounds its queues differently). A stream send with
// handles carries at least one byte: Linux drops the handles of an empty
// stream send, a channel sends them (docs/ABI.md).
func decodeChanDiffOps(in []byte, dgram bool) []chanDiffOp {
	var ops []chanDiffOp
	var sends [2]int
	for len(in) >= 7 && len(ops) < 64 {
		b := in[:7]
		in = in[7:]
		op := chanDiffOp{kind: int(b[0]>>1) % diffKinds, side: int(b[0] & 1)}
		switch op.kind {
		case diffSend:
			if sends[op.side] >= 8 {
				continue
			}
			sends[op.side]++
			op.size, op.nfds, op.split, op.self = int(b[1])%40, int(b[2])%4, b[3]&1 != 0, b[3]&2 != 0
			if !dgram && op.nfds > 0 && op.size == 0 {
				op.size = 1
			}
		case diffRecv, diffRead:
			for i := range int(b[1]) % 4 {
				op.bufs = append(op.bufs, int(b[2+i])%chanDiffMaxBuf)
			}
			if op.kind == diffRecv {
				op.nfds = int(b[5]) % 4
				op.flags = uint16(b[6]) & (sockRecvPeek | sockRecvWaitall)
				if op.wasi = b[6]&0x80 != 0; op.wasi {
					op.nfds = 0
				}
			}
		case diffShutdown:
			op.flags = uint16(b[1])%3 + 1
		}
		ops = append(ops, op)
	}
	return ops
}

// runChanDiff runs ops against a channel pair and a socketpair and fails
// at the first result on which they differ.
func runChanDiff(t testing.TB, env *fuzzEnv, dgram bool, ops []chanDiffOp) {
	sbx := newSbxPair(t, env, dgram)
	defer sbx.close()
	lin := newLinuxPair(t, dgram)
	defer lin.close()
	var closed [2]bool
	var seq byte
	var model chanDiffModel
	for i, op := range ops {
		if closed[op.side] {
			continue
		}
		data := make([]byte, op.size)
		for j := range data {
			seq++
			data[j] = seq
		}
		got := sbx.do(t, op, data)
		lin.limit = -1
		if !dgram && (op.kind == diffRecv || op.kind == diffRead) {
			lin.limit = model.limit(op.side)
		}
		want := lin.do(t, op, data)
		if op.kind == diffRecv && op.flags&sockRecvPeek != 0 {
			// A peek returns no handles (docs/ABI.md); Linux's
			// returns copies of them.
			want.nfds, want.fdsTrunc = 0, false
		}
		if got != want {
			t.Fatalf("op %d %v (dgram %v):\n channel    %+v\n socketpair %+v\nops: %v", i, op, dgram, got, want, ops[:i+1])
		}
		if op.kind == diffClose {
			closed[op.side] = true
		}
		model.after(op, got)
	}
}

// chanDiffModel follows what waits in each direction of a stream pair, as
// segments: the bytes of one send, and whether handles came with them and
// are not taken yet. Linux's read goes on from bytes into a message with
// descriptors, and returns them with the bytes before; a channel's stops
// before it (docs/ABI.md, Receiving handles), so that handles come with
// the first byte of a read. The model gives the socketpair's receive no
// room past that point (limit), and the two then agree.
type chanDiffModel struct {
	q [2][]chanDiffSeg // q[i]: what end i has to read
}

type chanDiffSeg struct {
	n   int
	fds bool
}

// limit is how many bytes a read at end side may take before a message
// with handles, or -1 for no limit.
func (m *chanDiffModel) limit(side int) int {
	q := m.q[side]
	if len(q) == 0 || q[0].fds {
		return -1
	}
	n := 0
	for _, seg := range q {
		if seg.fds {
			return n
		}
		n += seg.n
	}
	return -1
}

// after updates the model with what op did (res, the channel's result).
func (m *chanDiffModel) after(op chanDiffOp, res chanDiffResult) {
	if res.errno != 0 {
		return
	}
	switch op.kind {
	case diffSend:
		if res.n > 0 || op.nfds > 0 {
			m.q[1-op.side] = append(m.q[1-op.side], chanDiffSeg{n: res.n, fds: op.nfds > 0})
		}
	case diffRecv, diffRead:
		if op.kind == diffRecv && op.flags&sockRecvPeek != 0 {
			return
		}
		m.consume(op.side, res.n)
	case diffClose:
		m.q[op.side] = nil
	}
}

// consume takes n bytes from the head of end side's queue: the handles
// of the first message read go with them.
func (m *chanDiffModel) consume(side, n int) {
	q := m.q[side]
	if len(q) > 0 {
		q[0].fds = false
	}
	for len(q) > 0 && n >= q[0].n {
		n -= q[0].n
		q = q[1:]
	}
	if len(q) > 0 {
		q[0].n -= n
	}
	m.q[side] = q
}

// sbxPair is a channel pair in a guest's table, driven through the
// native calls. Guest memory: send_in/recv_in at 0, recv_out and the
// count results at 512, the iovec array at 64, the fd array at 256, the
// data to send at 4096, and receive buffer i at 8192+256i.
type sbxPair struct {
	g   *Guest
	m   api.Memory
	end [2]uint32
	obj uint32 // the handle sends attach
}

const (
	sbxIn    = 0
	sbxIOV   = 64
	sbxFDs   = 256
	sbxOut   = 512
	sbxData  = 4096
	sbxBufs  = 8192
	sbxBufSz = 256
)

func newSbxPair(t testing.TB, env *fuzzEnv, dgram bool) *sbxPair {
	k := caps.NewKernel(nil)
	h := &caps.Holder{ID: "chandiff"}
	tbl := caps.NewTable(k, h, 64)
	a, b := caps.NewChannelPair(dgram, "chandiff")
	p := &sbxPair{m: env.mod.Memory()}
	for i, ch := range []*caps.Channel{a, b} {
		c := k.Mint(h, ch, caps.RightsSocketBase, caps.RightsSocketInheriting, "end", "chandiff")
		c.SetFlags(caps.FlagNonblock)
		fd, err := tbl.Insert(c)
		if err != nil {
			t.Fatal(err)
		}
		p.end[i] = fd
	}
	fd, err := tbl.Insert(k.Mint(h, caps.NewByteObject(), caps.RightsByteObjectBase, 0, "bytes", "chandiff"))
	if err != nil {
		t.Fatal(err)
	}
	p.obj = fd
	p.g = env.rt.NewGuest(&Module{compiledModule: &compiledModule{}}, GuestConfig{ID: "chandiff", Table: tbl, Args: []string{"chandiff"}})
	p.g.ctx, p.g.cancel = context.WithCancelCause(context.Background())
	return p
}

func (p *sbxPair) close() {
	p.g.table.CloseAll()
	p.g.cancel(nil)
}

func (p *sbxPair) put32(off, v uint32) { p.m.WriteUint32Le(off, v) }

func (p *sbxPair) get32(off uint32) int {
	v, _ := p.m.ReadUint32Le(off)
	return int(v)
}

func (p *sbxPair) do(t testing.TB, op chanDiffOp, data []byte) chanDiffResult {
	fd := p.end[op.side]
	switch op.kind {
	case diffSend:
		return p.send(t, fd, op, data)
	case diffRecv, diffRead:
		return p.recv(t, fd, op)
	case diffShutdown:
		return chanDiffResult{errno: p.call(t, sockShutdown, uint64(fd), uint64(op.flags))}
	case diffClose:
		return chanDiffResult{errno: p.call(t, fdClose, uint64(fd))}
	}
	return p.poll(t, fd)
}

func (p *sbxPair) call(t testing.TB, fn handler, params ...uint64) caps.Errno {
	e, r := callHandler(fn, p.g, p.m, params)
	if r != nil {
		t.Fatalf("call panicked: %v", r)
	}
	return e
}

func (p *sbxPair) send(t testing.TB, fd uint32, op chanDiffOp, data []byte) chanDiffResult {
	p.m.Write(sbxData, data)
	iov := [][]byte{data}
	if op.split {
		iov = [][]byte{data[:len(data)/2], data[len(data)/2:]}
	}
	at := uint32(sbxData)
	for i, b := range iov {
		p.put32(sbxIOV+8*uint32(i), at)
		p.put32(sbxIOV+8*uint32(i)+4, uint32(len(b)))
		at += uint32(len(b))
	}
	for i := range op.nfds {
		if op.self {
			p.put32(sbxFDs+4*uint32(i), fd)
		} else {
			p.put32(sbxFDs+4*uint32(i), p.obj)
		}
	}
	in := [sendInSize]byte{}
	binary.LittleEndian.PutUint32(in[0:], sbxIOV)
	binary.LittleEndian.PutUint32(in[4:], uint32(len(iov)))
	binary.LittleEndian.PutUint32(in[8:], sbxFDs)
	binary.LittleEndian.PutUint32(in[12:], uint32(op.nfds))
	p.m.Write(sbxIn, in[:])
	e := p.call(t, sockSend, uint64(fd), sbxIn, sbxOut)
	if e != 0 {
		return chanDiffResult{errno: e}
	}
	return chanDiffResult{n: p.get32(sbxOut)}
}

// recv is sock_recv (diffRecv) or fd_read (diffRead) into op.bufs.
func (p *sbxPair) recv(t testing.TB, fd uint32, op chanDiffOp) chanDiffResult {
	for i, size := range op.bufs {
		at := uint32(sbxBufs + sbxBufSz*i)
		p.m.Write(at, bytes.Repeat([]byte{chanDiffFill}, size))
		p.put32(sbxIOV+8*uint32(i), at)
		p.put32(sbxIOV+8*uint32(i)+4, uint32(size))
	}
	var r chanDiffResult
	if op.kind == diffRead {
		r.errno = p.call(t, fdRead, uint64(fd), sbxIOV, uint64(len(op.bufs)), sbxOut)
		if r.errno == 0 {
			r.n = p.get32(sbxOut)
		}
	} else if op.wasi {
		r = p.wasiRecv(t, fd, op)
	} else {
		in := [recvInSize]byte{}
		binary.LittleEndian.PutUint32(in[0:], sbxIOV)
		binary.LittleEndian.PutUint32(in[4:], uint32(len(op.bufs)))
		binary.LittleEndian.PutUint32(in[8:], sbxFDs)
		binary.LittleEndian.PutUint32(in[12:], uint32(op.nfds))
		binary.LittleEndian.PutUint16(in[16:], op.flags)
		p.m.Write(sbxIn, in[:])
		r.errno = p.call(t, sockRecv, uint64(fd), sbxIn, sbxOut)
		if r.errno == 0 {
			r.n, r.nfds = p.get32(sbxOut), p.get32(sbxOut+4)
			flags, _ := p.m.ReadUint16Le(sbxOut + 48)
			r.dataTrunc, r.fdsTrunc = flags&sockRecvDataTruncated != 0, flags&sockRecvFDsTruncated != 0
			for i := range r.nfds {
				if err := p.g.table.Remove(uint32(p.get32(sbxFDs + 4*uint32(i)))); err != nil {
					t.Fatalf("closing a received handle: %v", err)
				}
			}
		}
	}
	if r.errno == 0 {
		r.bufs = p.buffers(op.bufs)
	}
	return r
}

// wasiRecv is WASI's sock_recv into the buffers recv set up, with op's
// CloudABI flags in WASI's numbering.
func (p *sbxPair) wasiRecv(t testing.TB, fd uint32, op chanDiffOp) chanDiffResult {
	var flags uint64
	if op.flags&sockRecvPeek != 0 {
		flags |= wasiRecvPeek
	}
	if op.flags&sockRecvWaitall != 0 {
		flags |= wasiRecvWaitall
	}
	var r chanDiffResult
	r.errno = p.call(t, wasiSockRecv, uint64(fd), sbxIOV, uint64(len(op.bufs)), flags, sbxOut, sbxOut+4)
	if r.errno == 0 {
		r.n = p.get32(sbxOut)
		ro, _ := p.m.ReadUint16Le(sbxOut + 4)
		r.dataTrunc = ro&wasiRecvDataTruncated != 0
	}
	return r
}

func (p *sbxPair) buffers(sizes []int) string {
	var all []byte
	for i, size := range sizes {
		b, _ := p.m.Read(uint32(sbxBufs+sbxBufSz*i), uint32(size))
		all = append(all, b...)
		all = append(all, '|')
	}
	return fmt.Sprintf("%x", all)
}

// poll calls poll with an fd_read and an fd_write subscription on fd and
// a clock that expires at once, so that it does not wait, and reports
// which of the two were ready and whether either saw HANGUP.
func (p *sbxPair) poll(t testing.TB, fd uint32) chanDiffResult {
	const subs, events = 1024, 2048
	var in [3 * subscriptionSize]byte
	for i, typ := range []byte{eventtypeFDRead, eventtypeFDWrite, eventtypeClock} {
		sub := in[i*subscriptionSize:]
		sub[10] = typ
		if typ == eventtypeClock {
			binary.LittleEndian.PutUint32(sub[24:], 1) // monotonic, timeout 0
			continue
		}
		binary.LittleEndian.PutUint32(sub[16:], fd)
	}
	p.m.Write(subs, in[:])
	if e := p.call(t, poll, subs, events, 3, sbxOut); e != 0 {
		t.Fatalf("poll: errno %d", e)
	}
	var r chanDiffResult
	for i := range p.get32(sbxOut) {
		ev, _ := p.m.Read(events+uint32(i*eventSize), eventSize)
		if e := binary.LittleEndian.Uint16(ev[8:]); e != 0 {
			t.Fatalf("poll: event of type %d has errno %d", ev[10], e)
		}
		switch ev[10] {
		case eventtypeFDRead:
			r.readable = true
		case eventtypeFDWrite:
			r.writable = true
		default:
			continue
		}
		r.hangup = r.hangup || binary.LittleEndian.Uint16(ev[28:])&eventFDReadwriteHangup != 0
	}
	return r
}

// linuxPair is a non-blocking AF_UNIX socketpair, and a descriptor that
// sends attach.
type linuxPair struct {
	fd   [2]int
	null int
	// limit, when not -1, is the room a receive is given, whatever its
	// buffers: the rest of them is left as it was (chanDiffModel).
	limit int
}

func newLinuxPair(t testing.TB, dgram bool) *linuxPair {
	typ := unix.SOCK_STREAM
	if dgram {
		typ = unix.SOCK_SEQPACKET
	}
	fds, err := unix.Socketpair(unix.AF_UNIX, typ|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	null, err := unix.Open("/dev/null", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	return &linuxPair{fd: fds, null: null}
}

func (p *linuxPair) close() {
	for _, fd := range p.fd {
		unix.Close(fd)
	}
	unix.Close(p.null)
}

// do runs op. Linux reports ECONNRESET, once, to an end whose peer
// closed with bytes it had not read, on the next send or receive that
// looks; a channel end has no such pending error (docs/ABI.md): do takes
// the error and runs op again.
func (p *linuxPair) do(t testing.TB, op chanDiffOp, data []byte) chanDiffResult {
	r := p.do1(t, op, data)
	if r.errno == caps.ECONNRESET {
		r = p.do1(t, op, data)
	}
	return r
}

func (p *linuxPair) do1(t testing.TB, op chanDiffOp, data []byte) chanDiffResult {
	fd := p.fd[op.side]
	switch op.kind {
	case diffSend:
		var oob []byte
		if op.nfds > 0 {
			fds := make([]int, op.nfds)
			for i := range fds {
				fds[i] = p.null
				if op.self {
					fds[i] = fd
				}
			}
			oob = unix.UnixRights(fds...)
		}
		iov := [][]byte{data}
		if op.split {
			iov = [][]byte{data[:len(data)/2], data[len(data)/2:]}
		}
		n, err := msgCall(unix.SYS_SENDMSG, fd, iov, oob, unix.MSG_NOSIGNAL)
		return chanDiffResult{errno: caps.ErrnoOf(err), n: n.n}
	case diffRecv, diffRead:
		return p.recv(t, fd, op)
	case diffShutdown:
		return chanDiffResult{errno: caps.ErrnoOf(unix.Shutdown(fd, int(op.flags)-1))}
	case diffClose:
		err := unix.Close(fd)
		p.fd[op.side] = -1
		return chanDiffResult{errno: caps.ErrnoOf(err)}
	}
	pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN | unix.POLLOUT}}
	if _, err := unix.Poll(pfd, 0); err != nil {
		t.Fatal(err)
	}
	ev := pfd[0].Revents
	return chanDiffResult{readable: ev&unix.POLLIN != 0, writable: ev&unix.POLLOUT != 0, hangup: ev&unix.POLLHUP != 0}
}

func (p *linuxPair) recv(t testing.TB, fd int, op chanDiffOp) chanDiffResult {
	bufs := make([][]byte, len(op.bufs))
	for i, size := range op.bufs {
		bufs[i] = bytes.Repeat([]byte{chanDiffFill}, size)
	}
	room := clipIOV(bufs, p.limit)
	var r chanDiffResult
	var res msgResult
	var err error
	if op.kind == diffRead {
		res.n, err = unix.Readv(fd, room)
	} else {
		var oob []byte
		if op.nfds > 0 {
			oob = make([]byte, unix.CmsgLen(4*op.nfds))
		}
		flags := 0
		if op.flags&sockRecvPeek != 0 {
			flags |= unix.MSG_PEEK
		}
		if op.flags&sockRecvWaitall != 0 {
			flags |= unix.MSG_WAITALL
		}
		res, err = msgCall(unix.SYS_RECVMSG, fd, room, oob, flags|unix.MSG_DONTWAIT)
		if err == nil {
			r.nfds = closeRights(t, oob[:res.oobn])
			r.dataTrunc, r.fdsTrunc = res.flags&unix.MSG_TRUNC != 0, res.flags&unix.MSG_CTRUNC != 0 && !op.wasi
		}
	}
	if err != nil {
		return chanDiffResult{errno: caps.ErrnoOf(err)}
	}
	r.n = res.n
	var all []byte
	for _, b := range bufs {
		all = append(all, b...)
		all = append(all, '|')
	}
	r.bufs = fmt.Sprintf("%x", all)
	return r
}

// clipIOV returns views of bufs with room for limit bytes in all, or bufs
// when limit is -1.
func clipIOV(bufs [][]byte, limit int) [][]byte {
	if limit < 0 {
		return bufs
	}
	out := make([][]byte, len(bufs))
	for i, b := range bufs {
		out[i] = b[:min(len(b), limit)]
		limit -= len(out[i])
	}
	return out
}

// closeRights closes the descriptors an SCM_RIGHTS message brought and
// returns how many there were.
func closeRights(t testing.TB, oob []byte) int {
	if len(oob) == 0 {
		return 0
	}
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, m := range msgs {
		fds, err := unix.ParseUnixRights(&m)
		if err != nil {
			t.Fatal(err)
		}
		for _, fd := range fds {
			unix.Close(fd)
		}
		n += len(fds)
	}
	return n
}

// msgResult is what sendmsg or recvmsg returned.
type msgResult struct {
	n, oobn, flags int
}

// msgCall is sendmsg or recvmsg as the system call is, without the byte
// that x/sys/unix's wrappers add to an empty message with control data on
// a socket that is not a datagram one.
func msgCall(trap uintptr, fd int, bufs [][]byte, oob []byte, flags int) (msgResult, error) {
	var zero byte
	iov := make([]unix.Iovec, len(bufs))
	for i, b := range bufs {
		iov[i].Base = &zero
		if len(b) > 0 {
			iov[i].Base = &b[0]
		}
		iov[i].SetLen(len(b))
	}
	var msg unix.Msghdr
	if len(iov) > 0 {
		msg.Iov = &iov[0]
		msg.SetIovlen(len(iov))
	}
	if len(oob) > 0 {
		msg.Control = &oob[0]
		msg.SetControllen(len(oob))
	}
	n, _, e := unix.Syscall(trap, uintptr(fd), uintptr(unsafe.Pointer(&msg)), uintptr(flags))
	if e != 0 {
		return msgResult{}, e
	}
	return msgResult{n: int(n), oobn: int(msg.Controllen), flags: int(msg.Flags)}, nil
}

// chanDiffCases are sequences a reader can follow, each in both types;
// FuzzChannelDiff starts from them.
var chanDiffCases = map[string][]chanDiffOp{
	"readv stops at the end of a message with handles": {
		{kind: diffSend, side: 0, size: 3, nfds: 1},
		{kind: diffSend, side: 0, size: 5},
		{kind: diffRead, side: 1, bufs: []int{3, 10}},
		{kind: diffRead, side: 1, bufs: []int{3, 10}},
	},
	"readv takes one datagram": {
		{kind: diffSend, side: 0, size: 3},
		{kind: diffSend, side: 0, size: 5},
		{kind: diffRead, side: 1, bufs: []int{2, 10}},
		{kind: diffRead, side: 1, bufs: []int{5, 1}},
	},
	"recv with several buffers stops at the end of a message with handles": {
		{kind: diffSend, side: 0, size: 3, nfds: 2},
		{kind: diffSend, side: 0, size: 5},
		{kind: diffRecv, side: 1, bufs: []int{3, 10}, nfds: 2},
		{kind: diffRecv, side: 1, bufs: []int{1, 1, 10}, nfds: 2},
	},
	"WASI's sock_recv with several buffers stops at the end of a message with handles": {
		{kind: diffSend, side: 1, size: 4, nfds: 1},
		{kind: diffSend, side: 1, size: 4, split: true},
		{kind: diffRecv, side: 0, bufs: []int{4, 4}, flags: sockRecvWaitall, wasi: true},
		{kind: diffRecv, side: 0, bufs: []int{2, 1, 3}, wasi: true},
		{kind: diffPoll, side: 0},
	},
	"handles sent alone do not end a read that cannot take them": {
		{kind: diffSend, side: 0, nfds: 1},
		{kind: diffSend, side: 0, size: 3},
		{kind: diffRead, side: 1, bufs: []int{8}},
		{kind: diffSend, side: 0, nfds: 2},
		{kind: diffSend, side: 0, nfds: 1},
		{kind: diffSend, side: 0, size: 2},
		{kind: diffRecv, side: 1, bufs: []int{1, 8}, wasi: true},
		{kind: diffSend, side: 0, nfds: 1},
		{kind: diffRead, side: 1, bufs: []int{8}},
		{kind: diffShutdown, side: 0, flags: shutWR},
		{kind: diffSend, side: 1, nfds: 1},
		{kind: diffRecv, side: 0, bufs: []int{8}, wasi: true},
		{kind: diffRead, side: 1, bufs: []int{8}},
	},
	"a peek with no room for handles looks past handles sent alone": {
		{kind: diffSend, side: 0, nfds: 1},
		{kind: diffRecv, side: 1, bufs: []int{8}, flags: sockRecvPeek, wasi: true},
		{kind: diffRecv, side: 1, bufs: []int{8}, flags: sockRecvPeek},
		{kind: diffSend, side: 0, nfds: 1},
		{kind: diffSend, side: 0, size: 3},
		{kind: diffRecv, side: 1, bufs: []int{8}, flags: sockRecvPeek, wasi: true},
		{kind: diffRecv, side: 1, bufs: []int{1, 8}, flags: sockRecvPeek},
		{kind: diffRecv, side: 1, bufs: []int{8}, wasi: true},
		{kind: diffSend, side: 0, nfds: 1},
		{kind: diffShutdown, side: 0, flags: shutWR},
		{kind: diffRecv, side: 1, bufs: []int{8}, flags: sockRecvPeek, wasi: true},
		{kind: diffRead, side: 1, bufs: []int{8}},
	},
	"an end in flight stays open when its sender closes it": {
		{kind: diffSend, side: 0, size: 1, nfds: 1, self: true},
		{kind: diffClose, side: 0},
		{kind: diffPoll, side: 1},
		{kind: diffSend, side: 1, size: 2},
		{kind: diffRecv, side: 1, bufs: []int{4}, nfds: 1},
		{kind: diffPoll, side: 1},
		{kind: diffRecv, side: 1, bufs: []int{4}},
	},
	"poll reports hangup once neither way is left": {
		{kind: diffShutdown, side: 1, flags: shutRD | shutWR},
		{kind: diffPoll, side: 0},
		{kind: diffPoll, side: 1},
	},
	"poll after shutdowns one way each": {
		{kind: diffShutdown, side: 0, flags: shutRD},
		{kind: diffPoll, side: 0},
		{kind: diffPoll, side: 1},
		{kind: diffShutdown, side: 1, flags: shutRD},
		{kind: diffPoll, side: 0},
		{kind: diffPoll, side: 1},
		{kind: diffSend, side: 0, size: 2},
		{kind: diffRecv, side: 1, bufs: []int{4}},
	},
}

func TestChannelDiff(t *testing.T) {
	env := newFuzzEnv(t)
	for name, ops := range chanDiffCases {
		for _, dgram := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/dgram=%v", name, dgram), func(t *testing.T) {
				runChanDiff(t, env, dgram, ops)
			})
		}
	}
}

// encodeChanDiffOps is the input decodeChanDiffOps turns into ops.
func encodeChanDiffOps(ops []chanDiffOp) []byte {
	var out []byte
	for _, op := range ops {
		b := make([]byte, 7)
		b[0] = byte(op.kind<<1 | op.side)
		switch op.kind {
		case diffSend:
			b[1], b[2] = byte(op.size), byte(op.nfds)
			if op.split {
				b[3] |= 1
			}
			if op.self {
				b[3] |= 2
			}
		case diffRecv, diffRead:
			b[1] = byte(len(op.bufs))
			for i, size := range op.bufs {
				b[2+i] = byte(size)
			}
			b[5], b[6] = byte(op.nfds), byte(op.flags)
			if op.wasi {
				b[6] |= 0x80
			}
		case diffShutdown:
			b[1] = byte(op.flags - 1)
		}
		out = append(out, b...)
	}
	return out
}

// FuzzChannelDiff runs arbitrary sequences of operations against a
// channel pair and a socketpair (runChanDiff), of either type.
func FuzzChannelDiff(f *testing.F) {
	for _, ops := range chanDiffCases {
		f.Add(false, encodeChanDiffOps(ops))
		f.Add(true, encodeChanDiffOps(ops))
	}
	env := newFuzzEnv(f)
	f.Fuzz(func(t *testing.T, dgram bool, in []byte) {
		runChanDiff(t, env, dgram, decodeChanDiffOps(in, dgram))
	})
}

// TestChannelEmptyStreamSendWithHandles shows a difference docs/ABI.md
// keeps on purpose: on a stream, handles sent with no bytes arrive, as a
// message of handles alone that reads as 0 bytes with them, where Linux
// sends nothing and drops the descriptors.
func TestChannelEmptyStreamSendWithHandles(t *testing.T) {
	env := newFuzzEnv(t)
	sbx := newSbxPair(t, env, false)
	defer sbx.close()
	send := chanDiffOp{kind: diffSend, side: 0, nfds: 1}
	recv := chanDiffOp{kind: diffRecv, side: 1, bufs: []int{4}, nfds: 1}
	if r := sbx.do(t, send, nil); r.errno != 0 || r.n != 0 {
		t.Fatalf("channel: sending no bytes with a handle: %+v, want 0 bytes sent", r)
	}
	if r := sbx.do(t, recv, nil); r.errno != 0 || r.n != 0 || r.nfds != 1 {
		t.Fatalf("channel: receiving a message of a handle alone: %+v, want 0 bytes and 1 handle", r)
	}

	lin := newLinuxPair(t, false)
	defer lin.close()
	lin.limit = -1
	if r := lin.do(t, send, nil); r.errno != 0 || r.n != 0 {
		t.Fatalf("socketpair: sending no bytes with a descriptor: %+v, want 0 bytes sent", r)
	}
	if r := lin.do(t, recv, nil); r.errno != caps.EAGAIN {
		t.Fatalf("socketpair: receiving after an empty send with a descriptor: %+v, want EAGAIN (nothing sent)", r)
	}
}

// TestChannelEmptyBufferPastMemory pins down a difference docs/ABI.md
// keeps on purpose: a buffer of 0 bytes that starts past the end of guest
// memory is EFAULT, as every range past it is, where Linux takes any
// address for an empty buffer; and the call then takes nothing. One that
// starts at the end of memory is a buffer like any other.
func TestChannelEmptyBufferPastMemory(t *testing.T) {
	env := newFuzzEnv(t)
	sbx := newSbxPair(t, env, false)
	defer sbx.close()
	if r := sbx.do(t, chanDiffOp{kind: diffSend, side: 0, size: 3}, []byte("abc")); r.errno != 0 || r.n != 3 {
		t.Fatalf("sending 3 bytes: %+v", r)
	}
	end := sbx.m.Size()
	for _, at := range []uint32{end + 1, end + 4096, 0xffffffff} {
		sbx.put32(sbxIOV, at)
		sbx.put32(sbxIOV+4, 0)
		if e := sbx.call(t, fdRead, uint64(sbx.end[1]), sbxIOV, 1, sbxOut); e != caps.EFAULT {
			t.Errorf("fd_read into 0 bytes at %#x: errno %d, want EFAULT", at, e)
		}
		in := [recvInSize]byte{}
		binary.LittleEndian.PutUint32(in[0:], sbxIOV)
		binary.LittleEndian.PutUint32(in[4:], 1)
		sbx.m.Write(sbxIn, in[:])
		if e := sbx.call(t, sockRecv, uint64(sbx.end[1]), sbxIn, sbxOut); e != caps.EFAULT {
			t.Errorf("sock_recv into 0 bytes at %#x: errno %d, want EFAULT", at, e)
		}
	}
	sbx.put32(sbxIOV, end)
	if e := sbx.call(t, fdRead, uint64(sbx.end[1]), sbxIOV, 1, sbxOut); e != 0 || sbx.get32(sbxOut) != 0 {
		t.Errorf("fd_read into 0 bytes at the end of memory: errno %d, %d bytes; want 0 bytes read", e, sbx.get32(sbxOut))
	}
	if r := sbx.do(t, chanDiffOp{kind: diffRead, side: 1, bufs: []int{8}}, nil); r.errno != 0 || r.n != 3 {
		t.Fatalf("reading after the refused reads: %+v, want the 3 bytes sent", r)
	}
}

// TestChannelHandlesAloneWithNoRoom: on a stream, a sock_recv with no
// room in ri_fds that meets a message of handles alone closes them and
// reads on, with FDS_TRUNCATED, rather than return 0 bytes, which reads
// as the end of the stream; with nothing after the message it is EAGAIN.
// (fd_read and WASI's sock_recv are compared with a socketpair in
// TestChannelDiff.)
func TestChannelHandlesAloneWithNoRoom(t *testing.T) {
	env := newFuzzEnv(t)
	sbx := newSbxPair(t, env, false)
	defer sbx.close()
	alone := chanDiffOp{kind: diffSend, side: 0, nfds: 2}
	recv := chanDiffOp{kind: diffRecv, side: 1, bufs: []int{8}}
	if r := sbx.do(t, alone, nil); r.errno != 0 {
		t.Fatalf("sending handles alone: %+v", r)
	}
	if r := sbx.do(t, chanDiffOp{kind: diffSend, side: 0, size: 3}, []byte("abc")); r.errno != 0 || r.n != 3 {
		t.Fatalf("sending 3 bytes: %+v", r)
	}
	if r := sbx.do(t, recv, nil); r.errno != 0 || r.n != 3 || r.nfds != 0 || !r.fdsTrunc {
		t.Fatalf("receiving with no room for handles: %+v, want the 3 bytes with FDS_TRUNCATED", r)
	}
	if r := sbx.do(t, alone, nil); r.errno != 0 {
		t.Fatalf("sending handles alone: %+v", r)
	}
	if r := sbx.do(t, recv, nil); r.errno != caps.EAGAIN {
		t.Fatalf("receiving handles alone with no room for them: %+v, want EAGAIN", r)
	}
	c, err := sbx.g.table.Get(sbx.end[1])
	if err != nil {
		t.Fatal(err)
	}
	if n := c.Resource().(*caps.Channel).Pending(); n != 0 {
		t.Fatalf("%d messages left queued, want 0: the handles were closed", n)
	}
}
