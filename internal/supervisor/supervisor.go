// Package supervisor runs the components of one process and stops them in
// order. Every process of the platform (dev, core, edge, bridge, consume)
// wires its components under one Supervisor:
//
//   - Components are added in start order: the NATS server before the
//     connections to it, the connections before the services on them, the
//     HTTP listener last. Shutdown stops them in the reverse order, all
//     within one deadline (Config.ShutdownTimeout).
//   - The first component that fails after its start (its run returns, or
//     it reports Fail: a listener closed, a connection closed for good, a
//     server stopped on its own) starts that ordered shutdown; Wait then
//     returns an error naming the component, and the process exits
//     non-zero instead of living on half-working.
//   - A shutdown that does not finish cleanly (the deadline passes, a stop
//     returns an error) is an error too.
//   - Report says, component by component, whether the process is ready;
//     /readyz serves it.
package supervisor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// Config configures a supervisor.
type Config struct {
	// ShutdownTimeout bounds the whole ordered shutdown. Default 20s.
	ShutdownTimeout time.Duration
	// Log receives the lifecycle: failures, each stop, the outcome.
	// Default slog.Default().
	Log *slog.Logger
}

// DefaultShutdownTimeout is ShutdownTimeout's default.
const DefaultShutdownTimeout = 20 * time.Second

// Defaults fills zero fields.
func (c *Config) Defaults() {
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = DefaultShutdownTimeout
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
}

// Validate checks the config.
func (c *Config) Validate() error {
	if c.ShutdownTimeout < 0 {
		return errors.New("supervisor: the shutdown timeout must not be negative")
	}
	return nil
}

// State is where a component is in its life.
type State string

const (
	Running  State = "running"
	Stopping State = "stopping"
	Stopped  State = "stopped"
	Failed   State = "failed"
)

// Component is how the process wires one part.
type Component struct {
	// Name says what it is in logs and in /readyz ("nats-server",
	// "http", "bridge"); unique within the process.
	Name string
	// Run, when set, runs in a goroutine of its own until its context ends,
	// which happens at the component's turn in the shutdown. A return
	// before that, with an error or without, is the component's failure;
	// an error other than the context's after it makes the shutdown
	// unclean.
	Run func(ctx context.Context) error
	// Stop, when set, stops the component at its turn, just after Run's
	// context ended; ctx carries the shutdown's deadline. An error makes the
	// shutdown unclean. The shutdown then waits for Run to return.
	Stop func(ctx context.Context) error
	// Ready, when set, says whether the component can do its work now
	// (nil) or why not; a component without it is ready while it runs.
	Ready func() error
}

// Handle is a started component, through which it reports its failure.
type Handle struct {
	s      *Supervisor
	c      Component
	state  State
	err    error
	cancel context.CancelFunc
	done   chan struct{} // closed when Run returned; nil without Run
}

// Supervisor runs a process's components.
type Supervisor struct {
	cfg Config
	log *slog.Logger

	mu      sync.Mutex
	comps   []*Handle
	failure error // the first failure
	failed  chan struct{}
	down    bool // the shutdown has begun
	result  chan struct{}
	err     error // the shutdown's outcome, once result is closed
}

// New makes a supervisor.
func New(cfg Config) (*Supervisor, error) {
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Supervisor{cfg: cfg, log: cfg.Log.With("component", "supervisor"), failed: make(chan struct{}), result: make(chan struct{})}, nil
}

// Start adds a started component (c.Run, when set, starts now). Once the
// shutdown has begun it is stopped at once and Start returns an error.
func (s *Supervisor) Start(c Component) (*Handle, error) {
	h := &Handle{s: s, c: c, state: Running}
	s.mu.Lock()
	if s.down {
		s.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
		defer cancel()
		if c.Stop != nil {
			_ = c.Stop(ctx)
		}
		return nil, fmt.Errorf("supervisor: %s: the process is shutting down", c.Name)
	}
	s.comps = append(s.comps, h)
	s.mu.Unlock()
	if c.Run != nil {
		ctx, cancel := context.WithCancel(context.Background())
		h.cancel, h.done = cancel, make(chan struct{})
		go func() {
			defer close(h.done)
			err := c.Run(ctx)
			if ctx.Err() == nil {
				if err == nil {
					err = errors.New("stopped on its own")
				}
				h.Fail(err)
			} else if err != nil && !errors.Is(err, context.Canceled) {
				h.setErr(err)
			}
		}()
	}
	return h, nil
}

// Add is Start for a component with only a stop: the common case of a
// part that runs on goroutines of its own and reports failures with Fail.
func (s *Supervisor) Add(name string, stop func(ctx context.Context) error) (*Handle, error) {
	return s.Start(Component{Name: name, Stop: stop})
}

// Fail reports that the component failed after its start: the process
// shuts down. A failure once the shutdown has begun is only logged (a
// connection closes because the server it uses stopped first, …).
func (h *Handle) Fail(err error) {
	if err == nil {
		err = errors.New("failed")
	}
	s := h.s
	s.mu.Lock()
	if s.down || h.state != Running {
		s.mu.Unlock()
		s.log.Debug("component ended during shutdown", "name", h.c.Name, "err", err)
		return
	}
	h.state, h.err = Failed, err
	first := s.failure == nil
	if first {
		s.failure = fmt.Errorf("%s failed: %w", h.c.Name, err)
		close(s.failed)
	}
	s.mu.Unlock()
	s.log.Error("component failed", "name", h.c.Name, "err", err, "shutdown", first)
}

func (h *Handle) setErr(err error) {
	h.s.mu.Lock()
	if h.err == nil {
		h.err = err
	}
	h.s.mu.Unlock()
}

// Failed is closed at the first failure.
func (s *Supervisor) Failed() <-chan struct{} { return s.failed }

// Wait blocks until ctx ends (a signal) or a component fails, then shuts
// the process down. It returns nil only for a clean shutdown asked for by
// ctx; otherwise an error naming the failure or what did not stop cleanly.
func (s *Supervisor) Wait(ctx context.Context) error {
	select {
	case <-ctx.Done():
	case <-s.failed:
	}
	return s.Shutdown()
}

// Shutdown stops every component in the reverse order of their start,
// within one ShutdownTimeout, and returns what Wait returns. Concurrent and
// later calls wait for the first one and return the same.
func (s *Supervisor) Shutdown() error {
	s.mu.Lock()
	if s.down {
		s.mu.Unlock()
		<-s.result
		return s.err
	}
	s.down = true
	comps := append([]*Handle(nil), s.comps...)
	failure := s.failure
	s.mu.Unlock()

	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	start := time.Now()
	if failure != nil {
		s.log.Error("shutting down after a failure", "err", failure, "deadline", s.cfg.ShutdownTimeout)
	} else {
		s.log.Info("shutting down", "deadline", s.cfg.ShutdownTimeout)
	}
	var unclean []error
	for i := len(comps) - 1; i >= 0; i-- {
		if err := comps[i].stop(ctx); err != nil {
			unclean = append(unclean, err)
		}
	}
	err := failure
	if len(unclean) > 0 {
		err = errors.Join(failure, fmt.Errorf("unclean shutdown: %w", errors.Join(unclean...)))
	}
	if err != nil {
		s.log.Error("stopped", "took", time.Since(start).Round(time.Millisecond), "err", err)
	} else {
		s.log.Info("stopped cleanly", "took", time.Since(start).Round(time.Millisecond))
	}
	s.mu.Lock()
	s.err = err
	s.mu.Unlock()
	close(s.result)
	return err
}

// stop stops one component within ctx: the end of Run's context, Stop,
// then the wait for Run to return.
func (h *Handle) stop(ctx context.Context) error {
	s := h.s
	s.mu.Lock()
	if h.state == Running {
		h.state = Stopping
	}
	s.mu.Unlock()
	began := time.Now()
	if h.cancel != nil {
		h.cancel()
	}
	var err error
	if h.c.Stop != nil {
		err = h.c.Stop(ctx)
	}
	if h.cancel != nil {
		select {
		case <-h.done:
		case <-ctx.Done():
		}
	}
	if err == nil && ctx.Err() != nil {
		err = fmt.Errorf("deadline passed: %w", ctx.Err())
	}
	s.mu.Lock()
	if err == nil && h.err != nil && h.state != Failed {
		err = h.err
	}
	if h.state != Failed {
		h.state = Stopped
	}
	s.mu.Unlock()
	took := time.Since(began).Round(time.Microsecond)
	if err != nil {
		s.log.Warn(MsgStopped, "name", h.c.Name, "took", took, "err", err)
		return fmt.Errorf("%s: %w", h.c.Name, err)
	}
	s.log.Info(MsgStopped, "name", h.c.Name, "took", took)
	return nil
}

// MsgStopped is the message of the log record of each component's stop
// (attribute "name"; "err" when it did not stop cleanly), in the order of
// the shutdown.
const MsgStopped = "component stopped"

// ComponentReport is one component's line in a Report.
type ComponentReport struct {
	Name  string `json:"name"`
	State State  `json:"state"`
	Ready bool   `json:"ready"`
	// Reason says why a component is not ready or what it failed with.
	Reason string `json:"reason,omitempty"`
}

// Report is the state of every component, in start order. Served as JSON
// at /readyz (200 when ready, else 503); when not ready, Error carries the
// platform's error shape naming the components that are not.
type Report struct {
	Status     string            `json:"status"` // "ready" or "unavailable"
	Components []ComponentReport `json:"components"`
	Error      *ReportError      `json:"error,omitempty"`
}

// ReportError is the {"code","message"} error of an unready report.
type ReportError struct {
	Code    string `json:"code"` // "unavailable"
	Message string `json:"message"`
}

// Ready reports whether every component runs and is ready.
func (r Report) Ready() bool { return r.Status == "ready" }

// Report says how every component is doing.
func (s *Supervisor) Report() Report {
	s.mu.Lock()
	comps := append([]*Handle(nil), s.comps...)
	states := make([]State, len(comps))
	errs := make([]error, len(comps))
	for i, h := range comps {
		states[i], errs[i] = h.state, h.err
	}
	s.mu.Unlock()
	r := Report{Status: "ready", Components: make([]ComponentReport, len(comps))}
	for i, h := range comps {
		cr := ComponentReport{Name: h.c.Name, State: states[i], Ready: states[i] == Running}
		switch {
		case errs[i] != nil:
			cr.Reason = errs[i].Error()
		case cr.Ready && h.c.Ready != nil:
			if err := h.c.Ready(); err != nil {
				cr.Ready, cr.Reason = false, err.Error()
			}
		}
		if !cr.Ready {
			r.Status = "unavailable"
			why := cr.Name + " " + string(cr.State)
			if cr.Reason != "" {
				why = cr.Name + ": " + cr.Reason
			}
			if r.Error == nil {
				r.Error = &ReportError{Code: "unavailable", Message: why}
			} else {
				r.Error.Message += "; " + why
			}
		}
		r.Components[i] = cr
	}
	return r
}
