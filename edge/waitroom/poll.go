package waitroom

import (
	"errors"
	"syscall"
)

// reader calls conn.readable when a client sent something. Implementations:
// epoll (Linux, the default: no goroutine per connection) and one blocked
// goroutine per connection (elsewhere, or Config.Reader "goroutine").
type reader interface {
	add(c *conn) error
	remove(c *conn)
	close()
}

// goroutineReader gives every connection a goroutine blocked in Read: a
// portable fallback that costs a goroutine stack (2-8 KiB) per connection.
type goroutineReader struct{ m *Manager }

func newGoroutineReader(m *Manager) *goroutineReader { return &goroutineReader{m: m} }

func (r *goroutineReader) add(c *conn) error {
	sc, ok := c.nc.(syscall.Conn)
	if !ok {
		return errors.New("waitroom: connection has no file descriptor")
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return err
	}
	c.rc = rc
	go func() {
		var buf [256]byte
		for {
			n, err := c.nc.Read(buf[:])
			if err != nil || !c.handle(buf[:n]) {
				r.m.closeConn(c, 0)
				return
			}
		}
	}()
	return nil
}

func (r *goroutineReader) remove(*conn) {}
func (r *goroutineReader) close()       {}
