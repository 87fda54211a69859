package queue

import (
	"bytes"
	"crypto/sha1" //nolint:gosec // RFC 6455 fixes SHA-1 for Sec-WebSocket-Accept; it is not used for security
	"encoding/base64"
	"encoding/binary"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/services/queue"
)

// The WebSocket protocol (RFC 6455), the server's part and no more: the
// opening handshake, unfragmented text frames out, and control frames in
// both directions. Client data frames are read and ignored (the protocol
// is server push); they are bounded by maxClientPayload.

const wsGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// Opcodes.
const (
	opContinuation = 0x0
	opText         = 0x1
	opBinary       = 0x2
	opClose        = 0x8
	opPing         = 0x9
	opPong         = 0xA
)

// Close codes.
const (
	CloseNormal        = 1000
	CloseGoingAway     = 1001
	CloseProtocolError = 1002
	CloseTooBig        = 1009
)

// maxClientPayload bounds a client frame's payload. Clients have nothing to
// say but pings, pongs and close; a larger frame closes the connection.
const maxClientPayload = 1024

// Handshake checks a WebSocket opening handshake and returns the
// Sec-WebSocket-Accept value. When the Origin header is present, its host
// must be the request's Host unless allowOrigin says otherwise (a page on
// another site must not open the waiting room with the user's cookie).
// Errors: errs.Invalid (HTTP 400) for a malformed handshake; errs.Forbidden
// for a foreign origin. A request without an Upgrade header is the
// caller's 426.
func Handshake(h *fasthttp.RequestHeader, allowOrigin func(origin string) bool) (string, error) {
	const op = "queue.handshake"
	if !h.IsGet() {
		return "", errs.E(op, errs.Invalid, "a WebSocket handshake is a GET request")
	}
	if !headerHasToken(h.Peek(fasthttp.HeaderConnection), "upgrade") || !headerHasToken(h.Peek(fasthttp.HeaderUpgrade), "websocket") {
		return "", errs.E(op, errs.Invalid, `a WebSocket handshake needs "Connection: Upgrade" and "Upgrade: websocket"`)
	}
	if string(h.Peek("Sec-WebSocket-Version")) != "13" {
		return "", errs.E(op, errs.Invalid, "Sec-WebSocket-Version must be 13").WithReason("websocket_version")
	}
	key := h.Peek("Sec-WebSocket-Key")
	var raw [18]byte // DecodedLen(24)
	if len(key) != 24 {
		return "", errs.E(op, errs.Invalid, "Sec-WebSocket-Key must be 16 bytes in base64")
	}
	if n, err := base64.StdEncoding.Decode(raw[:], key); err != nil || n != 16 {
		return "", errs.E(op, errs.Invalid, "Sec-WebSocket-Key must be 16 bytes in base64")
	}
	if o := h.Peek("Origin"); len(o) > 0 {
		ok := false
		if allowOrigin != nil {
			ok = allowOrigin(string(o))
		} else if u, err := url.Parse(string(o)); err == nil {
			ok = u.Host != "" && u.Host == string(h.Host())
		}
		if !ok {
			return "", errs.E(op, errs.Forbidden, "the Origin of this WebSocket request is not this site").WithReason("origin")
		}
	}
	return acceptKey(key), nil
}

func acceptKey(key []byte) string {
	s := sha1.New() //nolint:gosec // see import
	s.Write(key)
	s.Write([]byte(wsGUID))
	return base64.StdEncoding.EncodeToString(s.Sum(nil))
}

// headerHasToken reports whether a comma-separated header value lists tok
// (ASCII case-insensitive).
func headerHasToken(v []byte, tok string) bool {
	for len(v) > 0 {
		var part []byte
		if i := bytes.IndexByte(v, ','); i >= 0 {
			part, v = v[:i], v[i+1:]
		} else {
			part, v = v, nil
		}
		if bytes.EqualFold(bytes.TrimSpace(part), []byte(tok)) {
			return true
		}
	}
	return false
}

// appendFrame appends an unmasked, final server frame.
func appendFrame(b []byte, op byte, payload []byte) []byte {
	b = append(b, 0x80|op)
	switch n := len(payload); {
	case n < 126:
		b = append(b, byte(n))
	case n <= 0xffff:
		b = append(b, 126, byte(n>>8), byte(n))
	default:
		b = append(b, 127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	return append(b, payload...)
}

// closePayload is a close frame's body: the code and no reason.
func closePayload(code int) []byte { return []byte{byte(code >> 8), byte(code)} }

// frame is a parsed client frame.
type frame struct {
	fin     bool
	op      byte
	payload []byte // unmasked in place
}

// parseFrame parses one client frame at the start of p. It returns the
// bytes consumed, or 0 when p holds only part of a frame. Client frames
// must be masked (RFC 6455 5.1) and, here, small.
func parseFrame(p []byte) (f frame, n int, err error) {
	const op = "queue.frame"
	if len(p) < 2 {
		return f, 0, nil
	}
	if p[0]&0x70 != 0 {
		return f, 0, errs.E(op, errs.Invalid, "reserved bits set").WithReason("protocol")
	}
	f.fin = p[0]&0x80 != 0
	f.op = p[0] & 0x0f
	if p[1]&0x80 == 0 {
		return f, 0, errs.E(op, errs.Invalid, "client frames must be masked").WithReason("protocol")
	}
	size := uint64(p[1] & 0x7f)
	i := 2
	switch size {
	case 126:
		if len(p) < 4 {
			return f, 0, nil
		}
		size = uint64(binary.BigEndian.Uint16(p[2:]))
		i = 4
	case 127:
		if len(p) < 10 {
			return f, 0, nil
		}
		size = binary.BigEndian.Uint64(p[2:])
		i = 10
	}
	switch {
	case f.op >= opClose && (size > 125 || !f.fin):
		return f, 0, errs.E(op, errs.Invalid, "control frames are final and at most 125 bytes").WithReason("protocol")
	case f.op > opBinary && f.op < opClose, f.op > opPong:
		return f, 0, errs.E(op, errs.Invalid, "unknown opcode").WithReason("protocol")
	case size > maxClientPayload:
		return f, 0, errs.E(op, errs.TooLarge, "client frame too large").WithReason("too_big")
	}
	if len(p) < i+4+int(size) {
		return f, 0, nil
	}
	mask := p[i : i+4]
	i += 4
	f.payload = p[i : i+int(size)]
	for j := range f.payload {
		f.payload[j] ^= mask[j&3]
	}
	return f, i + int(size), nil
}

// conn is one waiting user's WebSocket. It has no goroutine and no buffer
// of its own while idle: a reader (epoll on Linux) calls readable when the
// client sent something (or, over TLS, readTLS from a pool of readers),
// and the room's broadcaster writes pushes from a shared buffer. See the
// package doc for its memory budget.
type conn struct {
	nc     net.Conn
	rc     syscall.RawConn
	room   *Room
	ticket queue.TicketID
	fd     int32
	// shard and slot are the conn's place in the room's connection set
	// (guarded by the shard's lock).
	shard uint16
	slot  int32

	wmu    sync.Mutex // one writer at a time
	closed atomic.Bool
	// stalls counts a TLS socket's readable turns in a row without a
	// whole record (tlsread.go); owned by the reader, as partial is.
	stalls  uint8
	partial []byte // an incomplete client frame; owned by the reader
}

var framePool = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// write sends one frame with a deadline. It reports false when the
// connection is (now) closed.
func (c *conn) write(op byte, payload []byte, timeout time.Duration) error {
	bp := framePool.Get().(*[]byte)
	b := appendFrame((*bp)[:0], op, payload)
	c.wmu.Lock()
	var err error
	if c.closed.Load() {
		err = net.ErrClosed
	} else {
		if err = c.nc.SetWriteDeadline(time.Now().Add(timeout)); err == nil {
			_, err = c.nc.Write(b)
		}
	}
	c.wmu.Unlock()
	if cap(b) <= 64<<10 {
		*bp = b[:0]
		framePool.Put(bp)
	}
	return err
}

// readable reads what the client sent (without blocking) and handles its
// frames; buf is the reader's scratch space. It reports false when the
// connection is done (closed by the client, a protocol error, EOF).
func (c *conn) readable(buf []byte) bool {
	var n int
	var rerr error
	err := c.rc.Read(func(fd uintptr) bool {
		n, rerr = syscall.Read(int(fd), buf)
		return true // never park: the reader only calls when there is data
	})
	if err != nil {
		return false
	}
	if rerr == syscall.EAGAIN || rerr == syscall.EINTR {
		return true
	}
	if rerr != nil || n <= 0 {
		return false
	}
	return c.handle(buf[:n])
}

// handle parses the client's bytes p, after any incomplete frame kept
// from the last read.
func (c *conn) handle(p []byte) bool {
	if len(c.partial) > 0 {
		c.partial = append(c.partial, p...)
		p = c.partial
	}
	for len(p) > 0 {
		f, n, err := parseFrame(p)
		if err != nil {
			code := CloseProtocolError
			if errs.KindOf(err) == errs.TooLarge {
				code = CloseTooBig
			}
			c.room.m.closeConn(c, code)
			return false
		}
		if n == 0 {
			break
		}
		p = p[n:]
		switch f.op {
		case opClose:
			code := CloseNormal
			if len(f.payload) >= 2 {
				code = int(binary.BigEndian.Uint16(f.payload))
			}
			c.room.m.closeConn(c, code)
			return false
		case opPing:
			if c.write(opPong, f.payload, c.room.m.cfg.WriteTimeout) != nil {
				c.room.m.closeConn(c, 0)
				return false
			}
		}
		// pongs and data frames: nothing to do
	}
	if len(p) == 0 {
		c.partial = nil
	} else {
		// A frame split across reads (rare: client frames are tiny).
		c.partial = append([]byte(nil), p...)
	}
	return true
}
