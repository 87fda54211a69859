package edge

import (
	"context"
	"net"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"

	"github.com/ticketing/ticketing/internal/supervisor"
)

// firstRequestGrace is how long, once the shutdown began, a connection may
// still take to send the rest of a request it is reading.
const firstRequestGrace = time.Second

// httpComponent serves app on ln as the supervisor's component "http".
// Its stop lets in-flight requests finish and accepts nothing new.
//
// fasthttp counts a connection as active from its accept until it has
// answered a first request: a client that opened a connection and never
// used it (Go's http.Transport dials ahead under concurrency and parks the
// spare connection) would hold the shutdown until the server's read
// timeout (30 s), past the process's deadline. So the stop also gives
// every connection that is reading a request a read deadline a second
// away; one in a handler is not reading and is unaffected, and a hijacked
// one (a waiting-room socket) belongs to the waiting rooms, which close it
// after the listener.
func httpComponent(app *fiber.App, ln net.Listener) supervisor.Component {
	var mu sync.Mutex
	conns := map[net.Conn]struct{}{}
	srv := app.Server()
	srv.ConnState = func(c net.Conn, s fasthttp.ConnState) {
		mu.Lock()
		defer mu.Unlock()
		switch s {
		case fasthttp.StateNew:
			conns[c] = struct{}{}
		case fasthttp.StateHijacked, fasthttp.StateClosed:
			delete(conns, c)
		}
	}
	return supervisor.Component{
		Name: "http",
		Run:  func(context.Context) error { return app.Listener(ln) },
		Stop: func(ctx context.Context) error {
			done := make(chan error, 1)
			go func() { done <- app.ShutdownWithContext(ctx) }()
			// The listener is closed at the start of the shutdown; the
			// reads still going on are those of requests under way, or of
			// connections that never sent one.
			deadline := time.Now().Add(firstRequestGrace)
			mu.Lock()
			for c := range conns {
				_ = c.SetReadDeadline(deadline)
			}
			mu.Unlock()
			return <-done
		},
	}
}
