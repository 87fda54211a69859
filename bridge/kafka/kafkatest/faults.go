package kafkatest

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
)

// ConnFaults is a dialer for kafka.ClientConfig.Dial that can cut a
// connection right after the broker has answered a produce request, before
// the client reads the answer. The broker has then written the batch, and the
// client, which saw only a broken connection, sends it again: exactly the
// case an idempotent producer must not turn into a duplicate.
//
// It relies on franz-go writing each request with one Write call and on the
// answer to a produce request being the next response on that connection,
// which holds when one produce request is in flight (one ProduceSync of one
// partition's records at a time).
type ConnFaults struct {
	armed atomic.Int32 // produce responses still to swallow
	cuts  atomic.Int32
}

// CutAfterNextProduce arms the fault for the next produce request.
func (f *ConnFaults) CutAfterNextProduce() { f.armed.Add(1) }

// Cuts is how many connections were cut.
func (f *ConnFaults) Cuts() int { return int(f.cuts.Load()) }

// Dial dials addr and wraps the connection.
func (f *ConnFaults) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	return &faultConn{Conn: c, f: f}, nil
}

type faultConn struct {
	net.Conn
	f *ConnFaults

	mu   sync.Mutex
	drop bool // swallow the next response, then cut
}

// errCut is what the client reads from a cut connection.
var errCut = errors.New("kafkatest: connection cut after the broker answered a produce request")

const apiKeyProduce = 0

func (c *faultConn) Write(b []byte) (int, error) {
	// A request is: int32 size, int16 api key, int16 version, …
	if len(b) >= 6 && binary.BigEndian.Uint16(b[4:6]) == apiKeyProduce {
		for {
			n := c.f.armed.Load()
			if n == 0 {
				break
			}
			if c.f.armed.CompareAndSwap(n, n-1) {
				c.mu.Lock()
				c.drop = true
				c.mu.Unlock()
				break
			}
		}
	}
	return c.Conn.Write(b)
}

func (c *faultConn) Read(b []byte) (int, error) {
	c.mu.Lock()
	drop := c.drop
	c.drop = false
	c.mu.Unlock()
	if !drop {
		return c.Conn.Read(b)
	}
	// Read the broker's whole answer, so that the batch is surely written,
	// and cut the connection without handing the answer on.
	var size [4]byte
	if _, err := io.ReadFull(c.Conn, size[:]); err == nil {
		_, _ = io.CopyN(io.Discard, c.Conn, int64(binary.BigEndian.Uint32(size[:])))
	}
	_ = c.Conn.Close()
	c.f.cuts.Add(1)
	return 0, errCut
}
