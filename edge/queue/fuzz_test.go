package queue

import (
	"bytes"
	"testing"

	"github.com/valyala/fasthttp"
)

// FuzzParseFrame: any client bytes either parse into frames that lie within
// the input, wait for more, or are refused; never a panic, never a frame
// beyond the limits. Seeds in testdata/fuzz/FuzzParseFrame.
func FuzzParseFrame(f *testing.F) {
	f.Add(maskedFrame(opPing, []byte("hi")))
	f.Add(maskedFrame(opClose, closePayload(CloseNormal)))
	f.Fuzz(func(t *testing.T, p []byte) {
		in := bytes.Clone(p)
		for len(in) > 0 {
			fr, n, err := parseFrame(in)
			if err != nil || n == 0 {
				return
			}
			if n > len(in) || len(fr.payload) > maxClientPayload {
				t.Fatalf("frame of %d bytes, payload %d, from %d bytes", n, len(fr.payload), len(in))
			}
			if fr.op >= opClose && (!fr.fin || len(fr.payload) > 125) {
				t.Fatalf("bad control frame accepted: %+v", fr)
			}
			// A prefix of a frame is never a frame.
			if _, m, err := parseFrame(bytes.Clone(in[:n-1])); err == nil && m != 0 {
				t.Fatalf("a %d-byte prefix of a %d-byte frame parsed as %d bytes", n-1, n, m)
			}
			in = in[n:]
		}
	})
}

// FuzzHandshake: any handshake header values are accepted or refused
// without a panic, and an accepted key is 16 bytes of base64.
func FuzzHandshake(f *testing.F) {
	f.Add("Upgrade", "websocket", "13", "dGhlIHNhbXBsZSBub25jZQ==", "")
	f.Add("keep-alive, Upgrade", "WebSocket", "13", "dGhlIHNhbXBsZSBub25jZQ==", "http://edge.example")
	f.Fuzz(func(t *testing.T, connection, upgrade, version, key, origin string) {
		var h fasthttp.RequestHeader
		h.SetMethod("GET")
		h.SetHost("edge.example")
		h.Set("Connection", connection)
		h.Set("Upgrade", upgrade)
		h.Set("Sec-WebSocket-Version", version)
		h.Set("Sec-WebSocket-Key", key)
		if origin != "" {
			h.Set("Origin", origin)
		}
		accept, err := Handshake(&h, nil)
		if err == nil && (len(accept) != 28 || len(h.Peek("Sec-WebSocket-Key")) != 24) {
			t.Fatalf("accepted key %q → %q", h.Peek("Sec-WebSocket-Key"), accept)
		}
	})
}
