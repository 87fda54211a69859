package queue

import (
	"bufio"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"net"
	"net/http"
	"runtime"
	"testing"
	"time"

	"github.com/ticketing/ticketing/internal/eventually"
)

// BenchmarkSocketMemory opens and holds one waiting-room socket an
// operation, plain (ws://) or over TLS (wss://), read by either reader,
// and reports what each costs once all are held and collected: live heap,
// goroutine stacks and goroutines. Both ends are in this process, but
// the client keeps only its bare TCP connection once it read the first
// push (about 0.35 KiB of the heap figure), so the figures are the edge's
// live cost per socket plus that, without the collector's headroom
// (GOGC): `ticketing bench queue` measures the edge's resident memory.
//
//	go test -run - -bench SocketMemory -benchtime 5000x ./edge/queue/
func BenchmarkSocketMemory(b *testing.B) {
	for _, tc := range []struct {
		name, reader string
		secure       bool
	}{
		{"plain/epoll", "epoll", false},
		{"plain/goroutine", "goroutine", false},
		{"tls/epoll", "epoll", true},
		{"tls/goroutine", "goroutine", true},
	} {
		b.Run(tc.name, func(b *testing.B) {
			f := newFixture(b, time.Minute, func(c *Config) { c.Reader = tc.reader })
			var srvConf, cliConf *tls.Config
			if tc.secure {
				srvConf, cliConf = testTLS(b)
				cliConf.ServerName = "127.0.0.1"
			}
			addr := serveTLS(b, f.m, srvConf)
			raws := make([]net.Conn, 0, b.N)
			b.Cleanup(func() {
				for _, c := range raws {
					_ = c.Close()
				}
			})
			before := memNow()
			for i := range b.N {
				raws = append(raws, openHeld(b, addr, "mem-"+itoa(i), cliConf))
			}
			eventually.True(b, 0, "every socket held", func() bool { return f.m.Sockets() == b.N })
			after := memNow()
			n := float64(b.N)
			b.ReportMetric(float64(after.heap-before.heap)/n, "heap-B/socket")
			b.ReportMetric(float64(after.stack-before.stack)/n, "stack-B/socket")
			b.ReportMetric(float64(after.goroutines-before.goroutines)/n, "goroutines/socket")
		})
	}
}

type memFigures struct{ heap, stack, goroutines int64 }

// memNow is the live heap (after two collections), the goroutine stacks
// and the goroutines.
func memNow() memFigures {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return memFigures{heap: int64(m.HeapAlloc), stack: int64(m.StackInuse), goroutines: int64(runtime.NumGoroutine())}
}

// openHeld opens a waiting-room socket for session (over TLS with conf
// unless nil), reads the first push and returns the bare TCP connection,
// dropping the client's TLS state and buffers.
func openHeld(b *testing.B, addr, session string, conf *tls.Config) net.Conn {
	b.Helper()
	raw, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	c := raw
	if conf != nil {
		c = tls.Client(raw, conf)
	}
	key := make([]byte, 16)
	_, _ = rand.Read(key)
	if _, err := c.Write([]byte("GET /?s=" + session + " HTTP/1.1\r\nHost: " + addr + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: " + base64.StdEncoding.EncodeToString(key) + "\r\n\r\n")); err != nil {
		b.Fatal(err)
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		b.Fatalf("upgrade: %v %v", resp, err)
	}
	h := make([]byte, 2)
	if _, err := br.Read(h); err != nil {
		b.Fatal(err)
	}
	return raw
}
