package microerr_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/internal/eventually"
	"github.com/ticketing/ticketing/internal/microerr"
	"github.com/ticketing/ticketing/internal/natsembed"
)

func connect(t *testing.T) *nats.Conn {
	t.Helper()
	s, err := natsembed.Start(&server.Options{Host: "127.0.0.1", Port: -1}, slog.New(slog.NewTextHandler(io.Discard, nil)), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Shutdown)
	nc, err := nats.Connect(s.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

type echo struct {
	Wait bool `json:"wait"`
}

// gauge counts the requests in a handler, and the most there were at once.
type gauge struct{ now, most atomic.Int64 }

func (g *gauge) enter() {
	n := g.now.Add(1)
	for m := g.most.Load(); n > m && !g.most.CompareAndSwap(m, n); m = g.most.Load() {
	}
}

// serve adds an endpoint "slow" whose requests with wait set block until
// they receive from release (or it is closed), served with handler wrap.
func serve(t *testing.T, nc *nats.Conn, release chan struct{}, inFlight *gauge, wrap func(micro.HandlerFunc) micro.HandlerFunc) {
	t.Helper()
	svc, err := micro.AddService(nc, micro.Config{Name: "slow", Version: "1.0.0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svc.Stop() })
	h := microerr.Handler("slow.echo", 1024, 10*time.Second, func(ctx context.Context, r echo) (any, error) {
		inFlight.enter()
		defer inFlight.now.Add(-1)
		if r.Wait {
			select {
			case <-release:
			case <-ctx.Done():
				return nil, errs.E("slow.echo", errs.Unavailable, "released too late")
			}
		}
		return r, nil
	})
	if err := svc.AddEndpoint("echo", wrap(h), micro.WithEndpointSubject("slow.echo")); err != nil {
		t.Fatal(err)
	}
}

func call(nc *nats.Conn, wait bool, timeout time.Duration) error {
	var out echo
	return microerr.Call(context.Background(), nc, timeout, "slow", "slow.echo", "slow.echo", echo{Wait: wait}, &out)
}

// A request that waits does not hold up the requests behind it.
func TestConcurrentServesPastASlowRequest(t *testing.T) {
	nc := connect(t)
	release := make(chan struct{})
	var inFlight gauge
	serve(t, nc, release, &inFlight, func(h micro.HandlerFunc) micro.HandlerFunc { return microerr.Concurrent(nc, h, 4) })
	slow := make(chan error, 1)
	go func() { slow <- call(nc, true, 10*time.Second) }()
	eventually.True(t, 5*time.Second, "the slow request in its handler", func() bool { return inFlight.now.Load() == 1 })
	if err := call(nc, false, 2*time.Second); err != nil {
		t.Fatalf("a quick request behind a slow one: %v", err)
	}
	close(release)
	if err := <-slow; err != nil {
		t.Fatal(err)
	}
}

// Without Concurrent, the endpoint is served one request at a time: the
// case Concurrent is for.
func TestHandlerAloneServesOneAtATime(t *testing.T) {
	nc := connect(t)
	release := make(chan struct{})
	var inFlight gauge
	serve(t, nc, release, &inFlight, func(h micro.HandlerFunc) micro.HandlerFunc { return h })
	slow := make(chan error, 1)
	go func() { slow <- call(nc, true, 10*time.Second) }()
	eventually.True(t, 5*time.Second, "the slow request in its handler", func() bool { return inFlight.now.Load() == 1 })
	if err := call(nc, false, 300*time.Millisecond); !errs.Is(errs.Unavailable, err) {
		t.Fatalf("a request behind a slow one answered: %v", err)
	}
	close(release)
	if err := <-slow; err != nil {
		t.Fatal(err)
	}
}

// At most inFlight requests run at once; the others wait their turn and
// are answered.
func TestConcurrentBoundsRequestsInFlight(t *testing.T) {
	const requests, bound = 8, 3
	nc := connect(t)
	release := make(chan struct{})
	var inFlight gauge
	serve(t, nc, release, &inFlight, func(h micro.HandlerFunc) micro.HandlerFunc { return microerr.Concurrent(nc, h, bound) })
	done := make(chan error, requests)
	for range requests {
		go func() { done <- call(nc, true, 10*time.Second) }()
	}
	// Released one at a time, each once the bound is full again (or all
	// that are left run).
	for i := range requests {
		want := int64(min(bound, requests-i))
		eventually.True(t, 5*time.Second, fmt.Sprintf("%d requests in flight", want), func() bool { return inFlight.now.Load() == want })
		release <- struct{}{}
	}
	for range requests {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if m := inFlight.most.Load(); m != bound {
		t.Fatalf("%d requests were in flight at once, want %d", m, bound)
	}
}

// A request served by Concurrent answers errors as any other: their kind
// and reason come back to the caller.
func TestConcurrentAnswersErrors(t *testing.T) {
	nc := connect(t)
	var inFlight gauge
	serve(t, nc, nil, &inFlight, func(h micro.HandlerFunc) micro.HandlerFunc { return microerr.Concurrent(nc, h, 0) })
	var out echo
	err := microerr.Call(context.Background(), nc, 2*time.Second, "slow", "slow.echo", "slow.echo", map[string]any{"unknown": 1}, &out)
	if !errs.Is(errs.Invalid, err) {
		t.Fatalf("a malformed request: %v", err)
	}
	if err := call(nc, false, 2*time.Second); err != nil {
		t.Fatal(err)
	}
}
