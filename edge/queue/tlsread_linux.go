//go:build linux

package queue

import (
	"crypto/tls"
	"errors"
	"os"
	"sync"
	"time"
)

// Reading TLS sockets without a goroutine each.
//
// A TLS connection's socket carries records, which crypto/tls decrypts:
// the epoll goroutine cannot read it into a scratch buffer as it does a
// plaintext socket. Instead it watches the socket (the *tls.Conn's
// NetConn) once (EPOLLONESHOT) and, when bytes came, hands the connection
// to a small pool of TLS readers, which call the tls.Conn's Read with a
// read deadline and arm the socket again when done:
//
//   - the first Read has tlsRecordWait to finish: the socket has bytes, so
//     a whole record returns at once, and the rest of a record whose
//     start came is waited for that long;
//   - the next ones have a deadline in the past: crypto/tls then returns
//     the records it holds whole already (a Read returns one record's
//     data, and it may have read several) without touching the socket,
//     and a timeout as soon as it would have to read. Bytes still in the
//     socket make epoll report it again once armed.
//
// This relies on crypto/tls keeping a partial record across a timeout: in
// readRecordOrCCS, an error of readFromUntil is made sticky
// (c.in.setErrorLocked) only when it is not a temporary net.Error, and a
// deadline's *net.OpError is temporary; the bytes read so far stay in
// c.rawInput, where the next Read goes on (Go 1.26's conn.go; tested by
// TestTLSRecordSplitAcrossWrites). The same holds for the close_notify it
// looks for after a record's data.
//
// A reader waits tlsRecordWait for each partial record, so a client that
// sends records a byte at a time would hold readers: a socket readable
// tlsMaxStalls times in a row without a whole record is closed. Browsers
// send nothing but control frames, each a record of a few dozen bytes in
// one segment.
const (
	// tlsReadersPer is the number of TLS readers per epoll goroutine.
	tlsReadersPer = 16
	// tlsRecordWait bounds a TLS reader's wait for the rest of a record.
	tlsRecordWait = 50 * time.Millisecond
	// tlsMaxStalls is how many times in a row a TLS socket may be readable
	// without a whole record before it is closed.
	tlsMaxStalls = 8
	// tlsReadBuf is a TLS reader's buffer; a record's data that does not
	// fit is returned by the next Read.
	tlsReadBuf = 4096
)

// pastDeadline makes a tls.Conn's Read return only what crypto/tls holds.
var pastDeadline = time.Unix(1, 0)

// tlsReaders read the TLS connections whose socket epoll found readable,
// each connection by one reader at a time.
type tlsReaders struct {
	m     *Manager
	rearm func(*conn) // watch the socket again

	mu     sync.Mutex
	cond   sync.Cond
	queue  []*conn // each at most once: its socket is not watched meanwhile
	closed bool
	wg     sync.WaitGroup
}

func newTLSReaders(m *Manager, n int, rearm func(*conn)) *tlsReaders {
	t := &tlsReaders{m: m, rearm: rearm}
	t.cond.L = &t.mu
	for range n {
		t.wg.Add(1)
		go t.loop()
	}
	return t
}

// ready queues c, whose socket is readable (or closed by the peer). It
// never blocks, so the epoll goroutine goes on with the other sockets.
func (t *tlsReaders) ready(c *conn) {
	t.mu.Lock()
	t.queue = append(t.queue, c)
	t.mu.Unlock()
	t.cond.Signal()
}

// close stops the readers; connections still queued are left to the
// manager's shutdown, which closes every socket.
func (t *tlsReaders) close() {
	t.mu.Lock()
	t.closed = true
	t.mu.Unlock()
	t.cond.Broadcast()
	t.wg.Wait()
}

func (t *tlsReaders) loop() {
	defer t.wg.Done()
	buf := make([]byte, tlsReadBuf)
	for {
		t.mu.Lock()
		for len(t.queue) == 0 && !t.closed {
			t.cond.Wait()
		}
		if t.closed {
			t.mu.Unlock()
			return
		}
		c := t.queue[0]
		t.queue[0] = nil
		t.queue = t.queue[1:]
		t.mu.Unlock()
		if c.closed.Load() {
			continue
		}
		switch readTLS(c, buf) {
		case turnWhole:
			t.m.metrics.tlsWhole.Inc()
			c.stalls = 0
			t.rearm(c)
		case turnPartial:
			t.m.metrics.tlsPartial.Inc()
			if c.stalls++; c.stalls >= tlsMaxStalls {
				t.m.closeConn(c, CloseProtocolError)
			} else {
				t.rearm(c)
			}
		default:
			t.m.closeConn(c, 0)
		}
	}
}

// What a TLS reader's turn at a connection ended with.
type tlsTurn int

const (
	turnWhole   tlsTurn = iota // one record or more handled, the rest kept
	turnPartial                // no whole record in time; what came is kept
	turnDone                   // closed by the client or by handle, or failed
)

// readTLS reads and handles what the client of TLS connection c sent.
func readTLS(c *conn, buf []byte) tlsTurn {
	tc := c.nc.(*tls.Conn)
	deadline := time.Now().Add(tlsRecordWait)
	turn := turnPartial
	for {
		_ = tc.SetReadDeadline(deadline)
		n, err := tc.Read(buf)
		if n > 0 {
			turn = turnWhole
			if !c.handle(buf[:n]) {
				return turnDone
			}
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return turn // nothing more held whole; a partial record is kept
		}
		if err != nil {
			return turnDone
		}
		deadline = pastDeadline
	}
}

// isTLS reports whether c is served over TLS (wss://).
func (c *conn) isTLS() bool {
	_, ok := c.nc.(*tls.Conn)
	return ok
}
