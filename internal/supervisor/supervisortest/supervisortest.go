// Package supervisortest gives tests a supervisor that shuts its components
// down when the test ends, and a record of the order they stopped in.
package supervisortest

import (
	"context"
	"log/slog"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ticketing/ticketing/internal/supervisor"
)

// New returns a supervisor whose components are shut down in order when
// the test ends (or earlier, by the test's own Shutdown); an unclean
// shutdown then fails the test. Its log is discarded.
func New(t testing.TB) *supervisor.Supervisor {
	t.Helper()
	sup, _ := Recording(t)
	t.Cleanup(func() {
		if err := sup.Shutdown(); err != nil {
			var stacks strings.Builder
			_ = pprof.Lookup("goroutine").WriteTo(&stacks, 1)
			t.Errorf("shutdown: %v\n--- goroutines after the shutdown ---\n%s", err, stacks.String())
		}
	})
	return sup
}

// Recording returns a supervisor that records its stops, for tests of the
// shutdown itself: it is shut down (without judging how) when the test
// ends.
func Recording(t testing.TB) (*supervisor.Supervisor, *Stops) {
	t.Helper()
	stops := &Stops{}
	sup, err := supervisor.New(supervisor.Config{ShutdownTimeout: 15 * time.Second, Log: slog.New(stops)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sup.Shutdown() })
	return sup, stops
}

// Stops records the components' stops from a supervisor's log. It is a
// slog.Handler.
type Stops struct {
	mu    sync.Mutex
	names []string
}

// Names are the stopped components, in the order they stopped.
func (s *Stops) Names() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.names)
}

func (s *Stops) Enabled(context.Context, slog.Level) bool { return true }

func (s *Stops) Handle(_ context.Context, r slog.Record) error {
	if r.Message != supervisor.MsgStopped {
		return nil
	}
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "name" {
			s.mu.Lock()
			s.names = append(s.names, a.Value.String())
			s.mu.Unlock()
			return false
		}
		return true
	})
	return nil
}

func (s *Stops) WithAttrs([]slog.Attr) slog.Handler { return s }
func (s *Stops) WithGroup(string) slog.Handler      { return s }
