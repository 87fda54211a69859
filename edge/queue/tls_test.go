package queue

import (
	"bufio"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/ticketing/ticketing/internal/eventually"
)

// splitConn is a client's TCP connection whose writes can be held back:
// while held, what crypto/tls writes (whole records) is kept for the test
// to send in parts of its choosing.
type splitConn struct {
	net.Conn
	mu   sync.Mutex
	hold bool
	held []byte
}

func (s *splitConn) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.hold {
		s.held = append(s.held, p...)
		return len(p), nil
	}
	return s.Conn.Write(p)
}

// tlsPeer is a TLS client whose records the test can split.
type tlsPeer struct {
	raw   net.Conn
	split *splitConn
	tc    *tls.Conn
	br    *bufio.Reader
}

func newTLSPeer(t *testing.T, raw net.Conn, conf *tls.Config) *tlsPeer {
	t.Helper()
	t.Cleanup(func() { _ = raw.Close() })
	_ = raw.SetDeadline(time.Now().Add(30 * time.Second)) // no test hangs
	conf = conf.Clone()
	conf.ServerName = "127.0.0.1"
	p := &tlsPeer{raw: raw, split: &splitConn{Conn: raw}}
	p.tc = tls.Client(p.split, conf)
	p.br = bufio.NewReader(p.tc)
	return p
}

// record is what the client's TLS connection writes for b (one record,
// or more above 16 KiB), not sent.
func (p *tlsPeer) record(t *testing.T, b []byte) []byte {
	t.Helper()
	p.split.mu.Lock()
	p.split.hold = true
	p.split.mu.Unlock()
	_, err := p.tc.Write(b)
	p.split.mu.Lock()
	rec := p.split.held
	p.split.held, p.split.hold = nil, false
	p.split.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

// send writes raw bytes (records or parts of them) to the socket.
func (p *tlsPeer) send(t *testing.T, b []byte) {
	t.Helper()
	if _, err := p.raw.Write(b); err != nil {
		t.Fatal(err)
	}
}

// crypto/tls keeps a record that came in part across a read deadline, so
// that the edge's TLS readers can give up waiting for its rest and read
// on when it comes (tlsread_linux.go); with a deadline in the past it
// returns what it holds whole without reading the socket.
func TestCryptoTLSKeepsPartialRecordAcrossTimeout(t *testing.T) {
	srvConf, cliConf := testTLS(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- c
	}()
	raw, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	cli := newTLSPeer(t, raw, cliConf)
	sraw, ok := <-accepted
	if !ok {
		t.Fatal("accept failed")
	}
	srv := tls.Server(sraw, srvConf)
	defer srv.Close()
	hs := make(chan error, 1)
	go func() { hs <- cli.tc.Handshake() }()
	if err := srv.Handshake(); err != nil {
		t.Fatal(err)
	}
	if err := <-hs; err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	read := func(deadline time.Time) (string, error) {
		_ = srv.SetReadDeadline(deadline)
		n, err := srv.Read(buf)
		return string(buf[:n]), err
	}
	timedOut := func(what string, got string, err error) {
		t.Helper()
		if got != "" || !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("%s: read %q, %v; want a timeout", what, got, err)
		}
	}

	for _, cut := range []int{3, -4} { // in the header, in the body
		rec := cli.record(t, []byte("split record"))
		if cut < 0 {
			cut += len(rec)
		}
		cli.send(t, rec[:cut])
		got, err := read(time.Now().Add(20 * time.Millisecond))
		timedOut("part of a record", got, err)
		got, err = read(pastDeadline)
		timedOut("again, deadline past", got, err)
		cli.send(t, rec[cut:])
		if got, err := read(time.Now().Add(10 * time.Second)); got != "split record" || err != nil {
			t.Fatalf("cut at %d: after the rest, read %q, %v", cut, got, err)
		}
	}

	// Two records in one write: one Read returns the first, and with a
	// deadline in the past the second, which crypto/tls read along.
	two := append(cli.record(t, []byte("first")), cli.record(t, []byte("second"))...)
	cli.send(t, two)
	if got, err := read(time.Now().Add(10 * time.Second)); got != "first" || err != nil {
		t.Fatalf("read %q, %v; want first", got, err)
	}
	if got, err := read(pastDeadline); got != "second" || err != nil {
		t.Fatalf("deadline past: read %q, %v; want second", got, err)
	}
	got, err := read(pastDeadline)
	timedOut("nothing left", got, err)
	// The connection still works both ways.
	if _, err := srv.Write([]byte("still")); err != nil {
		t.Fatal(err)
	}
	if b, err := io.ReadAll(io.LimitReader(cli.br, 5)); string(b) != "still" || err != nil {
		t.Fatalf("client read %q, %v", b, err)
	}
}

// wssDial opens a waiting-room WebSocket for session over TLS, with a
// client whose records the test can split, and reads the first push.
func wssDial(t *testing.T, addr, session string, conf *tls.Config) *tlsPeer {
	t.Helper()
	raw, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	p := newTLSPeer(t, raw, conf)
	key := make([]byte, 16)
	_, _ = rand.Read(key)
	if _, err := p.tc.Write([]byte("GET /?s=" + session + " HTTP/1.1\r\nHost: " + addr + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: " + base64.StdEncoding.EncodeToString(key) + "\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(p.br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %d", resp.StatusCode)
	}
	if op, _ := readServerFrame(t, p.br); op != 0x80|opText {
		t.Fatalf("first frame: opcode %x", op)
	}
	return p
}

func counterValue(c prometheus.Counter) float64 {
	var m dto.Metric
	_ = c.Write(&m)
	return m.GetCounter().GetValue()
}

// Over wss://, client frames whose TLS records come in parts, frames over
// several records and several records at once are all read, whichever
// reader the edge runs; so is a close, and the end of the connection.
func TestWebSocketTLSRecords(t *testing.T) {
	for _, reader := range []string{"epoll", "goroutine"} {
		t.Run(reader, func(t *testing.T) {
			f := newFixture(t, time.Minute, func(c *Config) { c.Reader = reader })
			srvConf, cliConf := testTLS(t)
			addr := serveTLS(t, f.m, srvConf)
			pong := func(t *testing.T, p *tlsPeer, want string) {
				t.Helper()
				if op, b := readServerFrame(t, p.br); op != 0x80|opPong || string(b) != want {
					t.Fatalf("got opcode %x %q, want a pong %q", op, b, want)
				}
			}
			closed := func(t *testing.T, p *tlsPeer, code int) {
				t.Helper()
				if op, b := readServerFrame(t, p.br); op != 0x80|opClose || len(b) != 2 || int(b[0])<<8|int(b[1]) != code {
					t.Fatalf("got opcode %x %v, want a close %d", op, b, code)
				}
				if _, err := p.br.ReadByte(); err == nil {
					t.Fatal("the socket is still open after the close")
				}
			}
			n := 0
			dial := func(t *testing.T) *tlsPeer {
				n++
				return wssDial(t, addr, session(n), cliConf)
			}
			for _, tc := range []struct {
				name string
				run  func(t *testing.T, p *tlsPeer)
			}{
				{"record split in its header", func(t *testing.T, p *tlsPeer) {
					rec := p.record(t, maskedFrame(opPing, []byte("header")))
					p.send(t, rec[:3])
					p.send(t, rec[3:])
					pong(t, p, "header")
				}},
				{"record split in its body", func(t *testing.T, p *tlsPeer) {
					rec := p.record(t, maskedFrame(opPing, []byte("body")))
					p.send(t, rec[:len(rec)-5])
					p.send(t, rec[len(rec)-5:])
					pong(t, p, "body")
				}},
				{"rest of a record after a turn without it", func(t *testing.T, p *tlsPeer) {
					rec := p.record(t, maskedFrame(opPing, []byte("later")))
					before := counterValue(f.m.metrics.tlsPartial)
					p.send(t, rec[:len(rec)/2])
					if reader == "epoll" {
						eventually.True(t, 0, "a TLS read ended without a whole record", func() bool {
							return counterValue(f.m.metrics.tlsPartial) > before
						})
					}
					p.send(t, rec[len(rec)/2:])
					pong(t, p, "later")
				}},
				{"frame over two records", func(t *testing.T, p *tlsPeer) {
					fr := maskedFrame(opPing, []byte("two records"))
					p.send(t, p.record(t, fr[:4]))
					p.send(t, p.record(t, fr[4:]))
					pong(t, p, "two records")
				}},
				{"records in one write", func(t *testing.T, p *tlsPeer) {
					recs := p.record(t, maskedFrame(opPing, []byte("one")))
					recs = append(recs, p.record(t, maskedFrame(opPing, []byte("two")))...)
					recs = append(recs, p.record(t, maskedFrame(opPing, []byte("three")))...)
					p.send(t, recs)
					pong(t, p, "one")
					pong(t, p, "two")
					pong(t, p, "three")
				}},
				{"ping and close in one record", func(t *testing.T, p *tlsPeer) {
					p.send(t, p.record(t, append(maskedFrame(opPing, []byte("bye")), maskedFrame(opClose, closePayload(CloseNormal))...)))
					pong(t, p, "bye")
					closed(t, p, CloseNormal)
				}},
				{"close, then the end of the connection", func(t *testing.T, p *tlsPeer) {
					p.send(t, p.record(t, maskedFrame(opClose, closePayload(CloseGoingAway))))
					if err := p.raw.(*net.TCPConn).CloseWrite(); err != nil {
						t.Fatal(err)
					}
					closed(t, p, CloseGoingAway)
				}},
				{"frame too big", func(t *testing.T, p *tlsPeer) {
					head := binary.BigEndian.AppendUint16([]byte{0x80 | opText, 0x80 | 126}, maxClientPayload+1)
					p.send(t, p.record(t, append(head, 1, 2, 3, 4)))
					closed(t, p, CloseTooBig)
				}},
			} {
				t.Run(tc.name, func(t *testing.T) { tc.run(t, dial(t)) })
			}
			// The connection ends in the middle of a record: the socket
			// is closed.
			p := dial(t)
			open := f.m.Sockets()
			rec := p.record(t, maskedFrame(opPing, []byte("cut")))
			p.send(t, rec[:len(rec)/2])
			_ = p.raw.Close()
			eventually.True(t, 0, "the socket closed", func() bool { return f.m.Sockets() == open-1 })
		})
	}
}
