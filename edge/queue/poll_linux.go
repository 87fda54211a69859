//go:build linux

package queue

import (
	"crypto/tls"
	"sync"
	"syscall"
)

// epollReader watches every connection's socket with epoll, so an idle
// connection costs no goroutine and no buffer: a few goroutines wait in
// epoll_wait for all of them and read into one scratch buffer each. A TLS
// connection's socket is watched the same way, but what it carries are
// records to decrypt: when it is readable, the epoll goroutine hands the
// connection to the TLS readers (tlsread.go) and does not watch it again
// (EPOLLONESHOT) until they are done with it.
type epollReader struct {
	m     *Manager
	polls []*epoller
	tls   *tlsReaders
}

type epoller struct {
	efd   int
	wake  [2]int // a pipe in the epoll set: writing to it ends the loop
	mu    sync.RWMutex
	conns []*conn // by fd
	done  chan struct{}
}

func newReader(m *Manager, n int) (reader, error) {
	if m.cfg.Reader == "goroutine" {
		return newGoroutineReader(m), nil
	}
	r := &epollReader{m: m}
	for range n {
		efd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
		if err != nil {
			r.close()
			return nil, err
		}
		p := &epoller{efd: efd, done: make(chan struct{})}
		if err := syscall.Pipe2(p.wake[:], syscall.O_CLOEXEC|syscall.O_NONBLOCK); err != nil {
			_ = syscall.Close(efd)
			r.close()
			return nil, err
		}
		ev := syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: int32(p.wake[0])}
		if err := syscall.EpollCtl(efd, syscall.EPOLL_CTL_ADD, p.wake[0], &ev); err != nil {
			_ = syscall.Close(efd)
			r.close()
			return nil, err
		}
		r.polls = append(r.polls, p)
		go p.loop(r)
	}
	r.tls = newTLSReaders(m, tlsReadersPer*n, r.rearm)
	return r, nil
}

func (r *epollReader) add(c *conn) error {
	nc := c.nc
	tc, secure := nc.(*tls.Conn)
	if secure {
		nc = tc.NetConn() // its socket: readable when a record (or part of one) came
	}
	sc, ok := nc.(syscall.Conn)
	if !ok {
		// No socket to watch: read by a goroutine of its own.
		readLoop(r.m, c)
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return err
	}
	c.rc = rc
	var fd int
	if err := rc.Control(func(f uintptr) { fd = int(f) }); err != nil {
		return err
	}
	c.fd = int32(fd)
	p := r.polls[fd%len(r.polls)]
	p.mu.Lock()
	if fd >= len(p.conns) {
		grown := make([]*conn, max(fd+1, 2*len(p.conns)))
		copy(grown, p.conns)
		p.conns = grown
	}
	p.conns[fd] = c
	p.mu.Unlock()
	ev := syscall.EpollEvent{Events: connEvents(secure), Fd: int32(fd)}
	if err := syscall.EpollCtl(p.efd, syscall.EPOLL_CTL_ADD, fd, &ev); err != nil {
		p.mu.Lock()
		p.conns[fd] = nil
		p.mu.Unlock()
		return err
	}
	return nil
}

// connEvents are the events a connection's socket is watched for: a TLS
// connection's once per arming (rearm arms it again).
func connEvents(secure bool) uint32 {
	if secure {
		return syscall.EPOLLIN | syscall.EPOLLRDHUP | syscall.EPOLLONESHOT
	}
	return syscall.EPOLLIN | syscall.EPOLLRDHUP
}

// rearm watches a TLS connection's socket again once the TLS readers are
// done with it, unless it was removed meanwhile (its descriptor may then
// be another connection's already). It holds the epoller's write lock, so
// that what the TLS reader did to c happens before the next event's
// handling, which looks c up under the read lock.
func (r *epollReader) rearm(c *conn) {
	fd := int(c.fd)
	p := r.polls[fd%len(r.polls)]
	p.mu.Lock()
	if fd < len(p.conns) && p.conns[fd] == c {
		ev := syscall.EpollEvent{Events: connEvents(true), Fd: int32(fd)}
		if err := syscall.EpollCtl(p.efd, syscall.EPOLL_CTL_MOD, fd, &ev); err != nil {
			p.mu.Unlock()
			r.m.closeConn(c, 0)
			return
		}
	}
	p.mu.Unlock()
}

// remove stops watching c; it must be called before c's socket is closed,
// so that its descriptor cannot be reused under the table.
func (r *epollReader) remove(c *conn) {
	fd := int(c.fd)
	p := r.polls[fd%len(r.polls)]
	p.mu.Lock()
	if fd < len(p.conns) && p.conns[fd] == c {
		p.conns[fd] = nil
		_ = syscall.EpollCtl(p.efd, syscall.EPOLL_CTL_DEL, fd, nil)
	}
	p.mu.Unlock()
}

func (r *epollReader) close() {
	for _, p := range r.polls {
		_, _ = syscall.Write(p.wake[1], []byte{1})
		<-p.done
		_ = syscall.Close(p.efd)
		_ = syscall.Close(p.wake[0])
		_ = syscall.Close(p.wake[1])
	}
	if r.tls != nil {
		r.tls.close()
	}
}

func (p *epoller) loop(r *epollReader) {
	defer close(p.done)
	events := make([]syscall.EpollEvent, 256)
	buf := make([]byte, 4096)
	for {
		n, err := syscall.EpollWait(p.efd, events, -1)
		if err != nil {
			if err == syscall.EINTR {
				continue
			}
			return
		}
		for _, ev := range events[:n] {
			fd := int(ev.Fd)
			if fd == p.wake[0] {
				return
			}
			p.mu.RLock()
			var c *conn
			if fd < len(p.conns) {
				c = p.conns[fd]
			}
			p.mu.RUnlock()
			if c == nil {
				continue
			}
			if c.isTLS() {
				// Data, the peer's end or an error: the TLS readers
				// read what there is and find out.
				r.tls.ready(c)
				continue
			}
			if ev.Events&syscall.EPOLLIN != 0 && !c.readable(buf) {
				c.room.m.closeConn(c, 0)
				continue
			}
			if ev.Events&(syscall.EPOLLRDHUP|syscall.EPOLLHUP|syscall.EPOLLERR) != 0 {
				c.room.m.closeConn(c, 0)
			}
		}
	}
}
