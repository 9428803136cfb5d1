package caps

import "sync"

// ChannelBuffer is how many bytes of unread messages one direction of a
// channel holds before writers get EAGAIN.
const ChannelBuffer = 256 << 10

// MaxCapsPerMessage bounds the handles attached to one channel message.
const MaxCapsPerMessage = 64

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

type chanPair struct {
	mu     sync.Mutex
	dgram  bool
	q      [2][]*chanMsg // q[i]: messages waiting to be read by end i
	qbytes [2]int
	closed [2]bool
	rdShut [2]bool
	wrShut [2]bool
	waits  [2]waitList
	desc   string
}

// NewChannelPair returns the two ends of a new channel. A datagram channel
// keeps message boundaries; a stream channel does not.
func NewChannelPair(dgram bool, desc string) (*Channel, *Channel) {
	p := &chanPair{dgram: dgram, desc: desc}
	return &Channel{p: p, side: 0}, &Channel{p: p, side: 1}
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
	dropped := p.q[c.side]
	p.q[c.side], p.qbytes[c.side] = nil, 0
	p.mu.Unlock()
	for _, m := range dropped {
		closeCaps(m.caps)
	}
	p.waits[1-c.side].wakeAll()
	p.waits[c.side].wakeAll()
	return nil
}

func closeCaps(cs []*Cap) {
	for _, x := range cs {
		x.k.Close(x)
	}
}

// Send queues the bytes of iov and the in-flight capabilities caps (already
// derived for delegation, with no holder) for the other end. It returns the
// number of bytes taken; a stream channel may take fewer than offered. On
// error nothing is queued and the caller still owns caps.
func (c *Channel) Send(iov [][]byte, caps []*Cap) (int, error) {
	if len(caps) > MaxCapsPerMessage {
		return 0, E2BIG
	}
	p := c.p
	dst := 1 - c.side
	total := 0
	for _, b := range iov {
		total += len(b)
	}
	p.mu.Lock()
	if p.closed[dst] || p.rdShut[dst] || p.wrShut[c.side] || p.closed[c.side] {
		p.mu.Unlock()
		return 0, EPIPE
	}
	space := ChannelBuffer - p.qbytes[dst]
	n := total
	if p.dgram {
		if total > ChannelBuffer {
			p.mu.Unlock()
			return 0, EMSGSIZE
		}
		if total > space {
			p.mu.Unlock()
			return 0, EAGAIN
		}
	} else {
		if space <= 0 && (total > 0 || len(caps) > 0) {
			p.mu.Unlock()
			return 0, EAGAIN
		}
		n = min(total, space)
	}
	data := make([]byte, 0, n)
	for _, b := range iov {
		if len(data)+len(b) > n {
			b = b[:n-len(data)]
		}
		data = append(data, b...)
	}
	p.q[dst] = append(p.q[dst], &chanMsg{data: data, caps: caps})
	p.qbytes[dst] += n
	p.mu.Unlock()
	p.waits[dst].wakeAll()
	return n, nil
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
// channel one Recv never crosses into a message that carries capabilities
// after it has read bytes, so capabilities arrive with the first byte of
// the message they were sent with. With peek nothing is consumed and no
// capabilities are returned.
func (c *Channel) Recv(iov [][]byte, maxCaps int, peek bool) (int, []*Cap, RecvFlags, error) {
	p := c.p
	me := c.side
	p.mu.Lock()
	if len(p.q[me]) == 0 {
		eof := p.closed[1-me] || p.wrShut[1-me] || p.rdShut[me]
		p.mu.Unlock()
		if eof {
			return 0, nil, 0, nil
		}
		return 0, nil, 0, EAGAIN
	}
	var flags RecvFlags
	var got []*Cap
	var dropped []*Cap
	n := 0
	vi, vo := 0, 0 // position in iov
	copyOut := func(src []byte) int {
		k := 0
		for k < len(src) && vi < len(iov) {
			m := copy(iov[vi][vo:], src[k:])
			k += m
			vo += m
			if vo == len(iov[vi]) {
				vi, vo = vi+1, 0
			}
		}
		return k
	}
	qi := 0
	for qi < len(p.q[me]) {
		m := p.q[me][qi]
		if qi > 0 && (p.dgram || len(m.caps) > 0) {
			break
		}
		if m.off == 0 && len(m.caps) > 0 && !peek {
			if len(m.caps) > maxCaps {
				got = append(got, m.caps[:maxCaps]...)
				dropped = append(dropped, m.caps[maxCaps:]...)
				flags |= RecvCapsTruncated
			} else {
				got = append(got, m.caps...)
			}
			m.caps = nil
		}
		k := copyOut(m.data[m.off:])
		n += k
		if p.dgram {
			if k < len(m.data) {
				flags |= RecvDataTruncated
			}
			if !peek {
				p.qbytes[me] -= len(m.data)
				qi++
			}
			break
		}
		if !peek {
			m.off += k
			p.qbytes[me] -= k
			if m.off < len(m.data) {
				break
			}
		} else if m.off+k < len(m.data) {
			break
		}
		qi++
		if vi >= len(iov) {
			break
		}
	}
	if !peek {
		p.q[me] = p.q[me][qi:]
	}
	p.mu.Unlock()
	closeCaps(dropped)
	if !peek {
		p.waits[1-me].wakeAll()
	}
	return n, got, flags, nil
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
	if want&EventWrite != 0 && (p.qbytes[1-me] < ChannelBuffer || p.closed[1-me] || p.wrShut[me]) {
		ready |= EventWrite
	}
	if p.closed[1-me] {
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
