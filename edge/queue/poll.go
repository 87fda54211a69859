package queue

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
	readLoop(r.m, c)
	return nil
}

// readLoop reads c in a goroutine of its own until the client is done or
// the connection fails. The goroutine reader uses it for every socket, and
// the epoll reader for connections without a socket it can watch (neither
// a socket nor TLS over one).
func readLoop(m *Manager, c *conn) {
	go func() {
		var buf [256]byte
		for {
			n, err := c.nc.Read(buf[:])
			if err != nil || !c.handle(buf[:n]) {
				m.closeConn(c, 0)
				return
			}
		}
	}()
}

func (r *goroutineReader) remove(*conn) {}
func (r *goroutineReader) close()       {}
