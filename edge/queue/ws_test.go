package queue

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
	"golang.org/x/net/websocket"

	"github.com/ticketing/ticketing/internal/devpki"
	"github.com/ticketing/ticketing/internal/eventually"
	"github.com/ticketing/ticketing/internal/tlsconf"
	"github.com/ticketing/ticketing/services/queue"
)

// serve runs a fasthttp server whose every request is a waiting-room
// upgrade for the session in the query ("?s=").
func serve(t *testing.T, m *Manager) string {
	t.Helper()
	return serveTLS(t, m, nil)
}

// serveTLS is serve over TLS with conf (plain TCP when nil).
func serveTLS(t testing.TB, m *Manager, conf *tls.Config) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if conf != nil {
		ln = tls.NewListener(ln, conf)
	}
	srv := &fasthttp.Server{KeepHijackedConns: true, Handler: func(ctx *fasthttp.RequestCtx) {
		if err := m.Upgrade(ctx, testEvent, string(ctx.QueryArgs().Peek("s"))); err != nil {
			ctx.Error(err.Error(), fasthttp.StatusBadRequest)
		}
	}}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Shutdown() })
	return ln.Addr().String()
}

// dial opens a WebSocket for session, over TLS with conf (wss://; plain
// ws:// when nil).
func dial(t *testing.T, addr, session string, conf *tls.Config) *websocket.Conn {
	t.Helper()
	scheme := "ws"
	if conf != nil {
		scheme = "wss"
	}
	cfg, err := websocket.NewConfig(scheme+"://"+addr+"/?s="+session, "http://"+addr)
	if err != nil {
		t.Fatal(err)
	}
	cfg.TlsConfig = conf
	ws, err := websocket.DialConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ws.Close() })
	return ws
}

// recvUntil reads pushes until one satisfies ok (10 s at most).
func recvUntil(t *testing.T, ws *websocket.Conn, what string, ok func(Status) bool) Status {
	t.Helper()
	_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		var msg string
		if err := websocket.Message.Receive(ws, &msg); err != nil {
			t.Fatalf("waiting for %s: %v", what, err)
		}
		var s Status
		if err := json.Unmarshal([]byte(msg), &s); err != nil || s.Type != "status" {
			t.Fatalf("push %q: %v", msg, err)
		}
		if ok(s) {
			return s
		}
	}
}

func TestWebSocketRoom(t *testing.T) {
	for _, reader := range []string{"epoll", "goroutine"} {
		t.Run(reader, func(t *testing.T) { testWebSocketRoom(t, reader, false) })
	}
	// Over TLS (wss://) the epoll reader hands the sockets to goroutines.
	t.Run("epoll-tls", func(t *testing.T) { testWebSocketRoom(t, "epoll", true) })
}

// testTLS is an edge's server TLS config and a client's trusting it,
// from development secrets of the test's own.
func testTLS(t testing.TB) (srv, cli *tls.Config) {
	t.Helper()
	res, err := devpki.Ensure(devpki.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if srv, err = tlsconf.Server(res.Layout.TLS(devpki.Edge), false); err != nil {
		t.Fatal(err)
	}
	if cli, err = tlsconf.Client(tlsconf.Files{CA: res.Layout.CA()}); err != nil {
		t.Fatal(err)
	}
	return srv, cli
}

func testWebSocketRoom(t *testing.T, reader string, secure bool) {
	f := newFixture(t, time.Minute, func(c *Config) { c.Reader = reader })
	var srvTLS, cliTLS *tls.Config
	if secure {
		srvTLS, cliTLS = testTLS(t)
	}
	addr := serveTLS(t, f.m, srvTLS)
	const n = 6
	ws := make([]*websocket.Conn, n)
	for i := range n {
		ws[i] = dial(t, addr, session(i), cliTLS)
		recvUntil(t, ws[i], "the first push", func(s Status) bool { return s.State == "pre_queue" && s.EventID == testEvent })
	}
	if got := f.m.Sockets(); got != n {
		t.Fatalf("%d sockets open, want %d", got, n)
	}
	// The sale starts: the draw is pushed at once.
	f.clk.add(time.Minute)
	f.core.decide(t, Decision{Seed: f.core.seed, Edges: []queue.EdgeAdmit{{Edge: "edge-t", Reachable: n}}})
	pos := make([]int, n)
	for i := range n {
		pos[i] = recvUntil(t, ws[i], "the draw", func(s Status) bool { return s.State == "queued" }).Position
	}
	// Reconnecting with the same session keeps the place.
	_ = ws[2].Close()
	ws[2] = dial(t, addr, session(2), cliTLS)
	if s := recvUntil(t, ws[2], "the push after reconnecting", func(Status) bool { return true }); s.Position != pos[2] {
		t.Fatalf("reconnected at position %d, was %d", s.Position, pos[2])
	}
	// The first in line is admitted and pushed a token that verifies.
	first := 0
	for i := range n {
		if pos[i] == 1 {
			first = i
		}
	}
	f.core.decide(t, Decision{Edges: []queue.EdgeAdmit{{Edge: "edge-t", Admit: 1, Reachable: n}}})
	s := recvUntil(t, ws[first], "admission", func(s Status) bool { return s.State == "admitted" })
	r, _ := f.m.Room(context.Background(), testEvent)
	if _, err := f.adm.verifier(t).Verify(s.Token, testEvent, r.q.TicketFor(session(first)).String(), f.clk.now()); err != nil {
		t.Fatalf("the pushed token does not verify: %v", err)
	}
	// Sold out reaches everyone waiting at once.
	f.core.decide(t, Decision{SoldOut: true})
	for i := range n {
		if i != first {
			recvUntil(t, ws[i], "sold out", func(s Status) bool { return s.State == "sold_out" })
		}
	}
	// The server closes every socket on shutdown with 1001.
	if err := f.m.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := f.m.Sockets(); got != 0 {
		t.Fatalf("%d sockets open after shutdown", got)
	}
}

// The protocol on the wire: the 101 answer, a ping answered by a pong, a
// close answered by a close and the socket closed.
func TestWebSocketFraming(t *testing.T) {
	f := newFixture(t, time.Minute, nil)
	addr := serve(t, f.m)
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
	key := make([]byte, 16)
	_, _ = rand.Read(key)
	k := base64.StdEncoding.EncodeToString(key)
	_, _ = nc.Write([]byte("GET /?s=raw HTTP/1.1\r\nHost: " + addr + "\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n" +
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: " + k + "\r\n\r\n"))
	br := bufio.NewReader(nc)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 101 || resp.Header.Get("Sec-WebSocket-Accept") != acceptKey([]byte(k)) ||
		!strings.EqualFold(resp.Header.Get("Upgrade"), "websocket") {
		t.Fatalf("handshake answer: %d %v", resp.StatusCode, resp.Header)
	}
	readFrame := func() (byte, []byte) { return readServerFrame(t, br) }
	if op, p := readFrame(); op != 0x81 || !strings.Contains(string(p), `"state":"pre_queue"`) {
		t.Fatalf("first frame %x %s", op, p)
	}
	// A ping split over two writes: the server keeps the partial frame.
	ping := maskedFrame(opPing, []byte("hello"))
	_, _ = nc.Write(ping[:3])
	_, _ = nc.Write(ping[3:])
	if op, p := readFrame(); op != 0x80|opPong || string(p) != "hello" {
		t.Fatalf("pong %x %q", op, p)
	}
	_, _ = nc.Write(maskedFrame(opClose, closePayload(CloseNormal)))
	if op, p := readFrame(); op != 0x80|opClose || len(p) != 2 || int(p[0])<<8|int(p[1]) != CloseNormal {
		t.Fatalf("close answer %x %v", op, p)
	}
	if _, err := br.ReadByte(); err == nil {
		t.Fatal("the socket is still open after the close handshake")
	}
	eventually.True(t, 0, "every socket closed", func() bool { return f.m.Sockets() == 0 })
}

// readServerFrame reads one frame of the server: its first byte (FIN and
// opcode) and its payload.
func readServerFrame(t *testing.T, br *bufio.Reader) (byte, []byte) {
	t.Helper()
	h := make([]byte, 2)
	if _, err := io.ReadFull(br, h); err != nil {
		t.Fatal(err)
	}
	n := int(h[1] & 0x7f)
	if n == 126 {
		ext := make([]byte, 2)
		_, _ = io.ReadFull(br, ext)
		n = int(ext[0])<<8 | int(ext[1])
	}
	p := make([]byte, n)
	if _, err := io.ReadFull(br, p); err != nil {
		t.Fatal(err)
	}
	if h[1]&0x80 != 0 {
		t.Fatal("server frames must not be masked")
	}
	return h[0], p
}

func maskedFrame(op byte, payload []byte) []byte {
	b := []byte{0x80 | op, 0x80 | byte(len(payload)), 1, 2, 3, 4}
	for i, c := range payload {
		b = append(b, c^b[2+i%4])
	}
	return b
}

func TestHandshakeRefusals(t *testing.T) {
	good := func() *fasthttp.RequestHeader {
		var h fasthttp.RequestHeader
		h.SetMethod("GET")
		h.SetHost("edge.example")
		h.Set("Connection", "Upgrade")
		h.Set("Upgrade", "websocket")
		h.Set("Sec-WebSocket-Version", "13")
		h.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
		return &h
	}
	if acc, err := Handshake(good(), nil); err != nil || acc != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" {
		t.Fatalf("RFC 6455's example: %q %v", acc, err)
	}
	for name, change := range map[string]func(*fasthttp.RequestHeader){
		"post":           func(h *fasthttp.RequestHeader) { h.SetMethod("POST") },
		"no upgrade":     func(h *fasthttp.RequestHeader) { h.Del("Upgrade") },
		"no connection":  func(h *fasthttp.RequestHeader) { h.Set("Connection", "keep-alive") },
		"version 8":      func(h *fasthttp.RequestHeader) { h.Set("Sec-WebSocket-Version", "8") },
		"short key":      func(h *fasthttp.RequestHeader) { h.Set("Sec-WebSocket-Key", "dGhl") },
		"bad key":        func(h *fasthttp.RequestHeader) { h.Set("Sec-WebSocket-Key", "!!!!!!!!!!!!!!!!!!!!!!!!") },
		"foreign origin": func(h *fasthttp.RequestHeader) { h.Set("Origin", "https://evil.example") },
	} {
		h := good()
		change(h)
		if _, err := Handshake(h, nil); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	h := good()
	h.Set("Origin", "https://edge.example")
	if _, err := Handshake(h, nil); err != nil {
		t.Errorf("same origin: %v", err)
	}
}

func TestParseFrame(t *testing.T) {
	for name, tc := range map[string]struct {
		in      []byte
		n       int
		wantErr bool
	}{
		"ping":          {maskedFrame(opPing, []byte("x")), 7, false},
		"partial":       {maskedFrame(opPing, []byte("xyz"))[:5], 0, false},
		"one byte":      {[]byte{0x89}, 0, false},
		"unmasked":      {[]byte{0x89, 0x00}, 0, true},
		"rsv":           {[]byte{0xc9, 0x80, 0, 0, 0, 0}, 0, true},
		"opcode 3":      {[]byte{0x83, 0x80, 0, 0, 0, 0}, 0, true},
		"long control":  {[]byte{0x89, 0xfe, 0, 126}, 0, true},
		"fragmented":    {[]byte{0x09, 0x80, 0, 0, 0, 0}, 0, true},
		"too big":       {[]byte{0x81, 0xff, 0, 0, 0, 0, 0, 1, 0, 0}, 0, true},
		"126 length":    {append([]byte{0x81, 0xfe, 0, 200, 1, 1, 1, 1}, make([]byte, 200)...), 208, false},
		"126 truncated": {[]byte{0x81, 0xfe, 0}, 0, false},
	} {
		_, n, err := parseFrame(tc.in)
		if (err != nil) != tc.wantErr || n != tc.n {
			t.Errorf("%s: n=%d err=%v", name, n, err)
		}
	}
}
