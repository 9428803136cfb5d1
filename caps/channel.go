package caps

import (
	"sync"
	"sync/atomic"
)

// ChannelBuffer is how many bytes of unread messages one direction of a
// channel holds before writers get EAGAIN.
const ChannelBuffer = 256 << 10

// MaxCapsPerMessage bounds the handles attached to one channel message.
const MaxCapsPerMessage = 64

// ChannelMaxMessages and ChannelMaxCaps bound what one direction of a
// channel holds besides bytes: empty datagrams and capability-only
// messages cost no buffer bytes, but each costs host memory, and each
// in-flight capability is a node in the kernel's graph.
const (
	ChannelMaxMessages = 1024
	ChannelMaxCaps     = 256
)

// Channel is one end of a bidirectional in-memory channel (fd_create2, or
// a channel the supervisor shares between guests). Holding it allows
// sending bytes and capabilities to whoever holds the other end, and
// receiving theirs; nothing else. Capabilities sent over a channel travel
// as new capabilities derived from the sender's (see Kernel.Derive), so the
// receiver never gets more than the sender held and revoking the sender's
// capability revokes the receiver's copy.
type Channel struct {
	p    *chanPair
	side int
}

type chanMsg struct {
	data []byte
	off  int
	caps []*Cap
}

// pairs numbers the channels made in this process (chanPair.id, End).
var pairs atomic.Uint64

type chanPair struct {
	id     uint64 // End's pair: from 1, in the order channels are made
	mu     sync.Mutex
	dgram  bool
	q      [2][]*chanMsg // q[i]: messages waiting to be read by end i
	qbytes [2]int        // unread bytes in q[i]
	qcaps  [2]int        // undelivered capabilities in q[i]
	closed [2]bool
	rdShut [2]bool
	wrShut [2]bool
	waits  [2]waitList
	desc   string
	// arrival[i] is called after a message is queued for end i (OnArrival).
	arrival [2]func()
	// peerClosed[i] is called once end 1-i is closed (OnPeerClose).
	peerClosed [2]func(pending bool)
	// peerRecv[i] is called after end 1-i took messages (OnPeerRecv).
	peerRecv [2]func()
	// charge, when not nil, is charged the buffers of the messages
	// waiting in both directions (NewChargedChannelPair, enqueue).
	charge MemoryCharge
	// orphan[i] is set while no holder holds end i and capabilities
	// still refer to it (Kernel.orphans): a receive from it that takes
	// capabilities must tell a collection under way (recvResult.noteTaken).
	orphan [2]atomic.Bool
}

// NewChannelPair returns the two ends of a new channel. A datagram channel
// keeps message boundaries; a stream channel does not.
func NewChannelPair(dgram bool, desc string) (*Channel, *Channel) {
	return NewChargedChannelPair(dgram, desc, nil)
}

// NewChargedChannelPair is NewChannelPair with the buffers of the
// messages waiting in both directions charged to charge, whoever sends
// them, until each is read to its end or dropped (a stream message read
// in part keeps its bytes): a send the charge refuses fails with ENOBUFS. A guest's
// channels are charged to its user (abi.GuestConfig.Memory), as its byte
// objects are. nil is NewChannelPair.
func NewChargedChannelPair(dgram bool, desc string, charge MemoryCharge) (*Channel, *Channel) {
	p := &chanPair{id: pairs.Add(1), dgram: dgram, desc: desc, charge: charge}
	return &Channel{p: p, side: 0}, &Channel{p: p, side: 1}
}

// End identifies the channel c is an end of, and which end: the two ends
// of one channel have the same pair (numbered from 1 as channels are
// made in this process) and sides 0 and 1. What one end sends, the other
// receives. The audit log records it, so that a reader knows who can
// receive what is in flight.
func (c *Channel) End() (pair uint64, side int) { return c.p.id, c.side }

// buffered is the memory the buffers of ms take, as enqueue charged it.
func buffered(ms []*chanMsg) int {
	n := 0
	for _, m := range ms {
		n += cap(m.data)
	}
	return n
}

// uncharge gives back n bytes of buffer that were read or dropped. p.mu
// must not be held.
func (p *chanPair) uncharge(n int) {
	if p.charge != nil && n > 0 {
		p.charge.Give(int64(n))
	}
}

func (c *Channel) Kind() Kind { return KindChannel }

func (c *Channel) Describe() string {
	if c.p.desc != "" {
		return "chan " + c.p.desc
	}
	return "chan"
}

// Datagram reports whether the channel keeps message boundaries.
func (c *Channel) Datagram() bool { return c.p.dgram }

func (c *Channel) Close() error {
	p := c.p
	p.mu.Lock()
	if p.closed[c.side] {
		p.mu.Unlock()
		return nil
	}
	p.closed[c.side] = true
	f := p.peerClosed[1-c.side]
	p.mu.Unlock()
	c.dropQueue()
	if f != nil {
		peer := &Channel{p: p, side: 1 - c.side}
		f(peer.Pending() > 0)
	}
	return nil
}

// Pending is the number of messages waiting to be read at c: at an end
// whose peer has closed, what it may still read.
func (c *Channel) Pending() int {
	c.p.mu.Lock()
	defer c.p.mu.Unlock()
	return len(c.p.q[c.side])
}

// dropQueue discards what waits to be read at this end, closing the
// capabilities in flight in it. Close does this; so does the kernel for an
// end no holder can reach (Kernel.collect).
func (c *Channel) dropQueue() {
	p := c.p
	p.mu.Lock()
	dropped := p.q[c.side]
	p.q[c.side], p.qbytes[c.side], p.qcaps[c.side] = nil, 0, 0
	p.mu.Unlock()
	if p.charge != nil {
		p.uncharge(buffered(dropped))
	}
	for _, m := range dropped {
		closeCaps(m.caps)
	}
	p.waits[1-c.side].wakeAll()
	p.waits[c.side].wakeAll()
}

// Queued returns the capabilities in flight in this end's queue: sent to
// it and not received yet.
func (c *Channel) Queued() []*Cap {
	var out []*Cap
	c.eachQueued(func(x *Cap) { out = append(out, x) })
	return out
}

// eachQueued calls f, with the channel's lock held, for each capability
// in flight in this end's queue.
func (c *Channel) eachQueued(f func(*Cap)) {
	p := c.p
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, m := range p.q[c.side] {
		for _, x := range m.caps {
			f(x)
		}
	}
}

// closeCaps closes cs, and collects once if any of them called for it
// (Kernel.close).
func closeCaps(cs []*Cap) {
	var k *Kernel
	for _, x := range cs {
		if x.k.close(x) {
			k = x.k
		}
	}
	if k != nil {
		k.collect()
	}
}

// CarriesCaps reports true: a channel's messages carry capabilities.
func (c *Channel) CarriesCaps() bool { return true }

// Send queues the bytes of iov and the in-flight capabilities caps (already
// derived for delegation, with no holder) for the other end. It returns the
// number of bytes taken; a stream channel may take fewer than offered, and
// the capabilities then travel with the bytes it took. A datagram is taken
// whole or not at all. Errors: ENOBUFS when the pair's charge refuses the
// bytes (NewChargedChannelPair), EPIPE when the other end is closed or
// either direction is shut down, EAGAIN when the buffer is full, EMSGSIZE
// for a datagram larger than the buffer, E2BIG for more than
// MaxCapsPerMessage capabilities. On error nothing is queued and the caller
// still owns caps.
func (c *Channel) Send(iov [][]byte, caps []*Cap) (int, error) {
	if len(caps) > MaxCapsPerMessage {
		return 0, E2BIG
	}
	p := c.p
	dst := 1 - c.side
	total := totalLen(iov)
	p.mu.Lock()
	n, err := p.room(c.side, total, len(caps))
	if err != nil || n == 0 && len(caps) == 0 && !p.dgram {
		p.mu.Unlock()
		return 0, err // a stream has no empty messages: nothing to send
	}
	if err := p.enqueue(dst, iov, n, caps); err != nil {
		p.mu.Unlock()
		return 0, err
	}
	p.qbytes[dst] += n
	arrival := p.arrival[dst]
	p.mu.Unlock()
	p.delivered(dst, arrival)
	return n, nil
}

// enqueue queues n bytes of iov, and caps, for end dst, and charges the
// memory they take: the capacity of the messages' buffers, which a
// message keeps, read bytes included, until it is read to its end or
// dropped. p.mu must be held.
func (p *chanPair) enqueue(dst int, iov [][]byte, n int, caps []*Cap) error {
	if q := p.q[dst]; !p.dgram && len(caps) == 0 && len(q) > 0 && q[len(q)-1].off == 0 && len(q[len(q)-1].caps) == 0 {
		// Bytes without capabilities extend the last unread message:
		// a stream has no boundaries to keep, and many small writes
		// must not use up ChannelMaxMessages. Not one that carries
		// capabilities: the read that takes them returns its bytes
		// and no others (recvStream). Not one partly read,
		// whose read bytes it keeps: extending it over and over while
		// reading all but its last byte would grow it without bound.
		// Its buffer doubles, as append's would, up to ChannelBuffer,
		// which its bytes, all unread, cannot pass; so a direction holds
		// at most 2 × ChannelBuffer, with a message read in part.
		last := q[len(q)-1]
		if len(last.data)+n > cap(last.data) {
			grown := max(len(last.data)+n, min(2*cap(last.data), ChannelBuffer))
			if !p.take(grown - cap(last.data)) {
				return ENOBUFS
			}
			last.data = append(make([]byte, 0, grown), last.data...)
		}
		last.data = gather(last.data, iov, n)
		return nil
	}
	if !p.take(n) {
		return ENOBUFS
	}
	p.q[dst] = append(p.q[dst], &chanMsg{data: gather(nil, iov, n), caps: caps})
	p.qcaps[dst] += len(caps)
	return nil
}

// take charges n bytes of buffer, or reports that the charge refuses
// them. p.mu must be held.
func (p *chanPair) take(n int) bool {
	return p.charge == nil || n == 0 || p.charge.Take(int64(n))
}

// room decides how many of total bytes, sent with ncaps capabilities from
// end side, the other end's queue takes now (see Send for the errors). A
// stream takes what fits; a datagram fits whole or not at all. p.mu must
// be held.
func (p *chanPair) room(side, total, ncaps int) (int, error) {
	dst := 1 - side
	if p.closed[dst] || p.rdShut[dst] || p.wrShut[side] || p.closed[side] {
		return 0, EPIPE
	}
	if !p.dgram && total == 0 && ncaps == 0 {
		return 0, nil
	}
	space := ChannelBuffer - p.qbytes[dst]
	switch {
	case p.dgram && total > ChannelBuffer:
		return 0, EMSGSIZE
	case p.dgram && !p.fits(dst, 1, total, ncaps), !p.dgram && (space <= 0 || !p.fits(dst, 1, 0, ncaps)):
		return 0, EAGAIN
	case !p.dgram:
		return min(total, space), nil
	}
	return total, nil
}

// delivered tells end dst that a message was queued for it: its waiters,
// and its OnArrival function if it has one. p.mu must not be held.
func (p *chanPair) delivered(dst int, arrival func()) {
	p.waits[dst].wakeAll()
	if arrival != nil {
		arrival()
	}
}

// OnArrival makes f run each time a message is queued for this end, on
// the sender's goroutine, after Send has queued it and released the
// channel's lock: f may Recv from this end, but must not block. It lets
// the daemon answer what a guest sends on its supervisor channel without
// a goroutine waiting on every guest's channel. nil removes f.
func (c *Channel) OnArrival(f func()) {
	c.p.mu.Lock()
	c.p.arrival[c.side] = f
	c.p.mu.Unlock()
}

// OnPeerRecv makes f run each time the other end takes messages from its
// queue (a receive that is not a peek), on the receiver's goroutine,
// after the receive has released the channel's lock: room was made for
// what this end sends. f may Send on this end and Recv from it, but must
// not block. It lets the daemon send what waited for room on a guest's
// supervisor channel as soon as the guest reads, without a goroutine
// waiting on every guest's channel. nil removes f.
func (c *Channel) OnPeerRecv(f func()) {
	c.p.mu.Lock()
	c.p.peerRecv[c.side] = f
	c.p.mu.Unlock()
}

// CanSend returns the error a Send from this end of iov and ncaps
// capabilities would fail with now (EPIPE, EAGAIN, EMSGSIZE,
// E2BIG), or nil: a sender of capabilities asks before it makes the
// copies it sends, so that a send that cannot go makes none. It does not
// see the charge a Send may be refused (ENOBUFS).
func (c *Channel) CanSend(iov [][]byte, ncaps int) error {
	if ncaps > MaxCapsPerMessage {
		return E2BIG
	}
	total := totalLen(iov)
	c.p.mu.Lock()
	defer c.p.mu.Unlock()
	_, err := c.p.room(c.side, total, ncaps)
	return err
}

// HasRoom reports whether the other end's queue has room now for msgs
// more datagrams of bytes bytes and ncaps capabilities in all: whether
// sending them from this end would not fail with EAGAIN. Room only grows
// until something is sent, so the answer holds for a sender that sends
// all that this end sends.
func (c *Channel) HasRoom(msgs, bytes, ncaps int) bool {
	c.p.mu.Lock()
	defer c.p.mu.Unlock()
	return c.p.fits(1-c.side, msgs, bytes, ncaps)
}

// fits reports whether end dst's queue takes msgs more messages of bytes
// bytes and ncaps capabilities in all, whole. p.mu must be held.
func (p *chanPair) fits(dst, msgs, bytes, ncaps int) bool {
	return len(p.q[dst])+msgs <= ChannelMaxMessages && p.qbytes[dst]+bytes <= ChannelBuffer && p.qcaps[dst]+ncaps <= ChannelMaxCaps
}

// OnPeerClose makes f run once the other end is closed, on the goroutine
// that closes it and without the channel's lock held; pending says
// whether messages it sent still wait to be read at c. If the other end
// is already closed, f runs now. It lets the daemon forget an end that
// waits for a peer that will send nothing more.
func (c *Channel) OnPeerClose(f func(pending bool)) {
	p := c.p
	p.mu.Lock()
	closed := p.closed[1-c.side]
	if !closed {
		p.peerClosed[c.side] = f
	}
	p.mu.Unlock()
	if closed {
		f(c.Pending() > 0)
	}
}

// gather appends the first n bytes of iov to dst.
func gather(dst []byte, iov [][]byte, n int) []byte {
	if dst == nil {
		dst = make([]byte, 0, n)
	}
	for _, b := range iov {
		if n <= 0 {
			break
		}
		if len(b) > n {
			b = b[:n]
		}
		dst = append(dst, b...)
		n -= len(b)
	}
	return dst
}

// RecvFlags report what a receive could not deliver whole.
type RecvFlags uint8

const (
	RecvCapsTruncated RecvFlags = 1 << iota // more capabilities came than there was room for; the rest were closed
	RecvDataTruncated                       // a datagram was longer than the buffers; the rest was dropped
)

// Recv copies waiting bytes into iov and returns the capabilities that
// arrived with them (at most maxCaps; the caller adopts them). It returns
// EAGAIN when nothing is waiting and (0, nil) at end of stream. On a stream
// channel a Recv that takes a message's capabilities returns the bytes of
// that message and no others: it never crosses into such a message after
// it has read bytes, and stops at its end, as Linux stops a read at a
// message that carried SCM_RIGHTS. So capabilities arrive with the first
// byte of the message they were sent with, and the receiver knows which
// bytes came with them. With peek nothing is consumed and no capabilities
// are returned; it stops where a Recv would, and with maxCaps 0 on a
// stream it looks past the messages of capabilities alone at the head, as
// abi's receive with no room for them reads on past them.
func (c *Channel) Recv(iov [][]byte, maxCaps int, peek bool) (int, []*Cap, RecvFlags, error) {
	return c.recv(iov, maxCaps, peek, false)
}

// RecvMore continues a stream read that has returned bytes already
// (sock_recv with WAITALL): it reads as Recv does, but takes no
// capabilities and stops before a message that carries some, which the
// next read takes with its first byte. With such a message at the head it
// returns (0, nil), as at the end of the stream: either way the read ends.
// (On a datagram channel, where no read goes on, it is a Recv that leaves
// a datagram with capabilities queued.)
func (c *Channel) RecvMore(iov [][]byte) (int, error) {
	n, _, _, err := c.recv(iov, 0, false, true)
	return n, err
}

// recv is Recv, and with more RecvMore.
func (c *Channel) recv(iov [][]byte, maxCaps int, peek, more bool) (int, []*Cap, RecvFlags, error) {
	p := c.p
	me := c.side
	p.mu.Lock()
	start := 0 // the first message the receive looks at
	if peek && !p.dgram && maxCaps == 0 {
		start = p.handlesAlone(me)
	}
	if len(p.q[me]) == start {
		eof := p.closed[1-me] || p.wrShut[1-me] || p.rdShut[me]
		p.mu.Unlock()
		if eof {
			return 0, nil, 0, nil
		}
		return 0, nil, 0, EAGAIN
	}
	w := &iovWriter{iov: iov}
	var r recvResult
	if p.dgram {
		if more && len(p.q[me][0].caps) > 0 {
			p.mu.Unlock()
			return 0, nil, 0, nil // the next read takes them
		}
		r = p.recvDatagram(me, w, maxCaps, peek)
	} else {
		r = p.recvStream(me, start, w, maxCaps, peek, more)
	}
	freed := 0
	if !peek {
		if p.charge != nil {
			freed = buffered(p.q[me][:r.taken])
		}
		clear(p.q[me][:r.taken]) // let consumed messages be collected
		p.q[me] = p.q[me][r.taken:]
	}
	if p.orphan[me].Load() {
		r.noteTaken() // before the lock goes
	}
	var roomMade func()
	if !peek && (r.taken > 0 || r.n > 0) {
		roomMade = p.peerRecv[1-me]
	}
	p.mu.Unlock()
	p.uncharge(freed)
	closeCaps(r.dropped)
	if !peek {
		p.waits[1-me].wakeAll()
	}
	if roomMade != nil {
		roomMade()
	}
	return r.n, r.got, r.flags, nil
}

// recvResult is what one receive took from the head of a queue.
type recvResult struct {
	n       int       // bytes copied out
	got     []*Cap    // capabilities for the caller
	dropped []*Cap    // capabilities beyond maxCaps, to close once the lock is released
	flags   RecvFlags // what could not be delivered whole
	taken   int       // messages at the head of the queue done with, for Recv to remove unless peeking
}

// noteTaken tells the kernel that capabilities left the queue of an end
// no holder holds, if any did: a collection that looked at the queue
// meanwhile must work again (Kernel.collectOnce). Only an operation that
// began before its end's last holder let go of it can receive from such
// an end. The queue's lock must be held.
func (r *recvResult) noteTaken() {
	switch {
	case len(r.got) > 0:
		r.got[0].k.gcMoves.Add(1)
	case len(r.dropped) > 0:
		r.dropped[0].k.gcMoves.Add(1)
	}
}

// iovWriter fills a list of buffers in order, as readv does.
type iovWriter struct {
	iov    [][]byte
	vi, vo int // the buffer being filled, and the offset in it
}

// write copies as much of src as fits in the buffers not yet filled and
// returns how many bytes it copied.
func (w *iovWriter) write(src []byte) int {
	k := 0
	for k < len(src) && w.vi < len(w.iov) {
		m := copy(w.iov[w.vi][w.vo:], src[k:])
		k += m
		w.vo += m
		if w.vo == len(w.iov[w.vi]) {
			w.vi, w.vo = w.vi+1, 0
		}
	}
	return k
}

// full reports whether every buffer has been filled.
func (w *iovWriter) full() bool { return w.vi >= len(w.iov) }

// takeCaps moves the capabilities m carries out of end me's queue into r:
// at most maxCaps into r.got, the rest into r.dropped with
// RecvCapsTruncated set. It takes nothing once m has been partly read, so
// capabilities go only with a message's first byte. p.mu must be held.
func (p *chanPair) takeCaps(me int, m *chanMsg, maxCaps int, r *recvResult) {
	if m.off != 0 || len(m.caps) == 0 {
		return
	}
	p.qcaps[me] -= len(m.caps)
	if len(m.caps) > maxCaps {
		r.got = append(r.got, m.caps[:maxCaps]...)
		r.dropped = append(r.dropped, m.caps[maxCaps:]...)
		r.flags |= RecvCapsTruncated
	} else {
		r.got = append(r.got, m.caps...)
	}
	m.caps = nil
}

// recvDatagram reads the first message of end me's non-empty queue, which
// is consumed whole unless peek is set: bytes that do not fit in w are
// dropped and reported as RecvDataTruncated. p.mu must be held.
func (p *chanPair) recvDatagram(me int, w *iovWriter, maxCaps int, peek bool) (r recvResult) {
	m := p.q[me][0]
	if !peek {
		p.takeCaps(me, m, maxCaps, &r)
	}
	r.n = w.write(m.data[m.off:])
	if r.n < len(m.data) {
		r.flags |= RecvDataTruncated
	}
	if !peek {
		p.qbytes[me] -= len(m.data)
		r.taken = 1
	}
	return r
}

// handlesAlone is how many messages of handles and no bytes head end me's
// stream queue. A receive with no room for handles closes theirs and reads
// on (abi's recvLoop, which receives again), so a peek with no room for
// them looks past them, to where that receive would read. p.mu must be
// held.
func (p *chanPair) handlesAlone(me int) int {
	n := 0
	for _, m := range p.q[me] {
		if m.off != 0 || len(m.caps) == 0 || len(m.data) > 0 {
			break
		}
		n++
	}
	return n
}

// recvStream reads bytes from end me's non-empty queue, from its message
// start on (0 but for a peek that looks past messages of handles alone:
// handlesAlone), until w is full or the queue is drained. A message that carries capabilities
// (not yet taken) is read only first, and ends the read: the read returns
// its capabilities with its bytes and no others. With more, such a message
// is not read at all. Unless peek is set, what was read is consumed: a
// message read in part keeps its unread bytes at the head of the queue.
// p.mu must be held.
func (p *chanPair) recvStream(me, start int, w *iovWriter, maxCaps int, peek, more bool) (r recvResult) {
	for r.taken = start; r.taken < len(p.q[me]); {
		m := p.q[me][r.taken]
		carries := m.off == 0 && len(m.caps) > 0
		if carries && (r.taken > start || more) {
			break
		}
		if !peek {
			p.takeCaps(me, m, maxCaps, &r)
		}
		k := w.write(m.data[m.off:])
		r.n += k
		end := m.off + k
		if !peek {
			m.off = end
			p.qbytes[me] -= k
		}
		if end < len(m.data) {
			break // w is full before the end of this message
		}
		r.taken++
		if w.full() || carries {
			break
		}
	}
	return r
}

func (c *Channel) Read(b []byte) (int, error) {
	n, cs, _, err := c.Recv([][]byte{b}, 0, false)
	closeCaps(cs)
	return n, err
}

func (c *Channel) Write(b []byte) (int, error) { return c.Send([][]byte{b}, nil) }

// Shutdown closes the read side, the write side, or both, of this end.
func (c *Channel) Shutdown(read, write bool) error {
	p := c.p
	p.mu.Lock()
	if read {
		p.rdShut[c.side] = true
	}
	if write {
		p.wrShut[c.side] = true
	}
	p.mu.Unlock()
	p.waits[0].wakeAll()
	p.waits[1].wakeAll()
	return nil
}

func (c *Channel) Poll(want Events, w *Waiter) (Events, func()) {
	p := c.p
	me := c.side
	p.mu.Lock()
	var ready Events
	peerGone := p.closed[1-me] || p.wrShut[1-me]
	if want&EventRead != 0 && (len(p.q[me]) > 0 || peerGone || p.rdShut[me]) {
		ready |= EventRead
	}
	peerRoom := p.qbytes[1-me] < ChannelBuffer && len(p.q[1-me]) < ChannelMaxMessages && p.qcaps[1-me] < ChannelMaxCaps
	// A write that would fail with EPIPE is ready too: it does not block.
	if want&EventWrite != 0 && (peerRoom || p.closed[1-me] || p.rdShut[1-me] || p.wrShut[me]) {
		ready |= EventWrite
	}
	// Hangup once this end can neither receive nor send any more, as
	// Linux reports POLLHUP on a socket shut down both ways: the peer
	// closed, or each way is shut down at either end.
	rdGone := peerGone || p.rdShut[me]
	wrGone := p.closed[1-me] || p.rdShut[1-me] || p.wrShut[me]
	if rdGone && wrGone {
		ready |= EventHangup
	}
	cancel := noop
	if ready == 0 && w != nil {
		cancel = p.waits[me].add(w)
	}
	p.mu.Unlock()
	return ready, cancel
}

func (c *Channel) Stat() (FileStat, error) {
	t := TypeSocketStream
	if c.p.dgram {
		t = TypeSocketDgram
	}
	return FileStat{Type: t}, nil
}
