package queue

import (
	"testing"
	"time"

	"github.com/ticketing/ticketing/internal/eventually"
)

// A client that sends a record a byte at a time holds a TLS reader for
// tlsRecordWait each time: after tlsMaxStalls such turns in a row its
// socket is closed (1002).
func TestTLSStalledSocketIsClosed(t *testing.T) {
	f := newFixture(t, time.Minute, nil)
	srvConf, cliConf := testTLS(t)
	addr := serveTLS(t, f.m, srvConf)
	p := wssDial(t, addr, session(1), cliConf)
	open := f.m.Sockets()
	rec := p.record(t, maskedFrame(opPing, []byte("one byte at a time")))
	for i := range tlsMaxStalls {
		before := counterValue(f.m.metrics.tlsPartial)
		p.send(t, rec[i:i+1])
		eventually.True(t, 0, "the byte read without a whole record", func() bool {
			return counterValue(f.m.metrics.tlsPartial) > before
		})
	}
	if op, b := readServerFrame(t, p.br); op != 0x80|opClose || len(b) != 2 || int(b[0])<<8|int(b[1]) != CloseProtocolError {
		t.Fatalf("got opcode %x %v, want a close %d", op, b, CloseProtocolError)
	}
	eventually.True(t, 0, "the socket closed", func() bool { return f.m.Sockets() == open-1 })
}
