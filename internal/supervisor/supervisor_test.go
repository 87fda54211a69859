package supervisor

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// order records the stops, in the order they happen.
type order struct {
	mu    sync.Mutex
	names []string
}

func (o *order) stop(name string) func(context.Context) error {
	return func(context.Context) error {
		o.mu.Lock()
		o.names = append(o.names, name)
		o.mu.Unlock()
		return nil
	}
}

func (o *order) got() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.names)
}

func newSupervisor(t *testing.T, timeout time.Duration) *Supervisor {
	t.Helper()
	s, err := New(Config{ShutdownTimeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func start(t *testing.T, s *Supervisor, c Component) *Handle {
	t.Helper()
	h, err := s.Start(c)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// untilDone is a Run that lasts until its context ends.
func untilDone(ctx context.Context) error {
	<-ctx.Done()
	return nil
}

func TestSignalStopsInReverseOrderAndIsClean(t *testing.T) {
	s := newSupervisor(t, time.Second)
	var o order
	for _, n := range []string{"nats-server", "nats-conn", "owners", "http"} {
		start(t, s, Component{Name: n, Stop: o.stop(n), Run: untilDone})
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Wait(ctx); err != nil {
		t.Fatalf("clean shutdown returned %v", err)
	}
	if got, want := o.got(), []string{"http", "owners", "nats-conn", "nats-server"}; !slices.Equal(got, want) {
		t.Fatalf("stopped %v, want %v", got, want)
	}
	for _, c := range s.Report().Components {
		if c.State != Stopped {
			t.Errorf("%s is %s after the shutdown, want stopped", c.Name, c.State)
		}
	}
}

func TestARunThatReturnsShutsTheProcessDown(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"with an error", errors.New("listener closed"), "listener closed"},
		{"without one", nil, "stopped on its own"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSupervisor(t, time.Second)
			var o order
			start(t, s, Component{Name: "nats-server", Stop: o.stop("nats-server")})
			quit := make(chan struct{})
			start(t, s, Component{Name: "http", Stop: o.stop("http"), Run: func(context.Context) error { <-quit; return tc.err }})
			start(t, s, Component{Name: "bridge", Stop: o.stop("bridge"), Run: untilDone})
			close(quit)
			err := s.Wait(context.Background())
			if err == nil || !strings.Contains(err.Error(), "http failed") || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Wait returned %v, want the http component's failure (%s)", err, tc.want)
			}
			if got, want := o.got(), []string{"bridge", "http", "nats-server"}; !slices.Equal(got, want) {
				t.Fatalf("stopped %v, want every component in reverse order %v", got, want)
			}
			if st := stateOf(s, "http"); st != Failed {
				t.Fatalf("http is %s, want failed", st)
			}
		})
	}
}

func TestFailShutsTheProcessDownOnce(t *testing.T) {
	s := newSupervisor(t, time.Second)
	var o order
	conn := start(t, s, Component{Name: "nats-conn", Stop: o.stop("nats-conn")})
	other := start(t, s, Component{Name: "consumers", Stop: o.stop("consumers")})
	conn.Fail(errors.New("connection closed"))
	other.Fail(errors.New("later"))
	select {
	case <-s.Failed():
	default:
		t.Fatal("Failed not closed after Fail")
	}
	if r := s.Report(); r.Ready() {
		t.Fatalf("report says ready with a failed component: %+v", r)
	}
	err := s.Wait(context.Background())
	if err == nil || !strings.Contains(err.Error(), "nats-conn failed: connection closed") || strings.Contains(err.Error(), "later") {
		t.Fatalf("Wait returned %v, want the first failure only", err)
	}
	if got := o.got(); len(got) != 2 {
		t.Fatalf("stopped %v, want both components stopped", got)
	}
}

func TestAFailureDuringTheShutdownIsNotOne(t *testing.T) {
	s := newSupervisor(t, time.Second)
	var conn *Handle
	start(t, s, Component{Name: "nats-server", Stop: func(context.Context) error {
		conn.Fail(errors.New("connection closed: server stopped"))
		return nil
	}})
	conn = start(t, s, Component{Name: "nats-conn"})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Wait(ctx); err != nil {
		t.Fatalf("Wait returned %v for a clean shutdown", err)
	}
}

func TestUncleanShutdownIsAnError(t *testing.T) {
	t.Run("deadline passes", func(t *testing.T) {
		s := newSupervisor(t, 50*time.Millisecond)
		var o order
		start(t, s, Component{Name: "pool", Stop: o.stop("pool")})
		start(t, s, Component{Name: "owners", Run: func(ctx context.Context) error {
			<-ctx.Done()
			select {} // never returns
		}})
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		err := s.Wait(ctx)
		if err == nil || !strings.Contains(err.Error(), "unclean shutdown") || !strings.Contains(err.Error(), "owners") {
			t.Fatalf("Wait returned %v, want an unclean shutdown naming owners", err)
		}
		if got := o.got(); !slices.Equal(got, []string{"pool"}) {
			t.Fatalf("stopped %v: the components after the late one must still be stopped", got)
		}
	})
	t.Run("a stop fails", func(t *testing.T) {
		s := newSupervisor(t, time.Second)
		start(t, s, Component{Name: "kafka", Stop: func(context.Context) error { return errors.New("transaction not settled") }})
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := s.Wait(ctx); err == nil || !strings.Contains(err.Error(), "transaction not settled") {
			t.Fatalf("Wait returned %v, want the failed stop", err)
		}
	})
	t.Run("a run ends with an error", func(t *testing.T) {
		s := newSupervisor(t, time.Second)
		start(t, s, Component{Name: "bridge", Run: func(ctx context.Context) error {
			<-ctx.Done()
			return errors.New("abort failed")
		}})
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := s.Wait(ctx); err == nil || !strings.Contains(err.Error(), "abort failed") {
			t.Fatalf("Wait returned %v, want the run's error", err)
		}
	})
}

func TestShutdownOnceForEveryCaller(t *testing.T) {
	s := newSupervisor(t, time.Second)
	var o order
	start(t, s, Component{Name: "http", Stop: o.stop("http")})
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() { _ = s.Shutdown() })
	}
	wg.Wait()
	if got := o.got(); len(got) != 1 {
		t.Fatalf("stopped %v, want one stop", got)
	}
	var stopped bool
	if _, err := s.Start(Component{Name: "late", Stop: func(context.Context) error { stopped = true; return nil }}); err == nil || !stopped {
		t.Fatalf("a component started after the shutdown: err %v, stopped %v; want an error and the component stopped", err, stopped)
	}
}

func TestReportNamesEachComponent(t *testing.T) {
	s := newSupervisor(t, time.Second)
	start(t, s, Component{Name: "nats-server"})
	connected := errors.New("no connection to the core")
	start(t, s, Component{Name: "leaf", Ready: func() error { return connected }})
	r := s.Report()
	if r.Ready() || len(r.Components) != 2 {
		t.Fatalf("report %+v, want two components and not ready", r)
	}
	if c := r.Components[1]; c.Name != "leaf" || c.Ready || c.Reason != connected.Error() || c.State != Running {
		t.Fatalf("leaf reported as %+v", c)
	}
	connected = nil
	if r := s.Report(); !r.Ready() || r.Status != "ready" {
		t.Fatalf("report %+v, want ready", r)
	}
}

func stateOf(s *Supervisor, name string) State {
	for _, c := range s.Report().Components {
		if c.Name == name {
			return c.State
		}
	}
	return ""
}
