package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/ticketing/ticketing/cmd/ticketing/cli"
	"github.com/ticketing/ticketing/internal/supervisor"
	"github.com/ticketing/ticketing/services/payment/psp"
)

// runPSP is `ticketing psp`: the payment gateway simulator (package
// services/payment/psp) on its own HTTP listener, with its journal in
// --data, its faults from the flags (and POST /_sim/faults), and the ops
// listener (/metrics, /healthz, /readyz).
func runPSP(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("psp", flag.ContinueOnError)
	var cfg psp.Config
	cfg.Defaults()
	addr := fs.String("addr", "127.0.0.1:12111", "address of the simulator's API, challenge pages and /_sim")
	fs.StringVar(&cfg.DataDir, "data", "data/psp", "directory of the simulator's journal (one process at a time)")
	fs.StringVar(&cfg.SecretKey, "secret-key", "", "the API key clients give as Authorization: Bearer <key> (sk_test_…); required")
	fs.StringVar(&cfg.PublicURL, "public-url", "", "the simulator's address as buyers' browsers reach it, the base of the 3-D Secure links (default: the confirm request's host)")
	var hooks, secrets repeatable
	fs.Var(&hooks, "webhook-url", "webhook endpoint; repeat the flag or give a comma-separated list")
	fs.Var(&secrets, "webhook-secret", "webhook signing secret (whsec_…); two while rotating: each signs (repeat or comma list)")
	fs.IntVar(&cfg.Webhook.Concurrency, "webhook-concurrency", cfg.Webhook.Concurrency, "deliveries under way at once per endpoint (1: in order, but for faults and retries)")
	fs.DurationVar(&cfg.Webhook.Timeout, "webhook-timeout", cfg.Webhook.Timeout, "bound of one delivery attempt")
	fs.DurationVar(&cfg.Webhook.RetryInitial, "webhook-retry-initial", cfg.Webhook.RetryInitial, "wait after a failed delivery; doubled after each further failure")
	fs.DurationVar(&cfg.Webhook.RetryMax, "webhook-retry-max", cfg.Webhook.RetryMax, "longest wait between two delivery attempts")
	fs.DurationVar(&cfg.Webhook.MaxAge, "webhook-max-age", cfg.Webhook.MaxAge, "age past which an undelivered event is abandoned")
	f := &cfg.Faults
	fs.Int64Var(&f.Seed, "seed", 0, "seed of the fault draws: the same seed and requests meet the same faults")
	var ops cli.List
	fs.Var(&ops, "fault-ops", "operations the request faults apply to ("+strings.Join(psp.Ops, ",")+"); empty: all")
	fs.Float64Var(&f.ErrorBefore, "fault-error-before", 0, "rate of 500s answered before doing the operation")
	fs.Float64Var(&f.ErrorAfter, "fault-error-after", 0, "rate of 500s answered after doing it (the effect happened, the answer is lost)")
	fs.Float64Var(&f.Timeout, "fault-timeout", 0, "rate of answers held until the client gives up (the effect happened)")
	timeoutHold := fs.Duration("fault-timeout-hold", time.Duration(f.TimeoutHold), "longest hold of a timeout fault")
	fs.Float64Var(&f.Slow, "fault-slow", 0, "rate of slow answers")
	slowLatency := fs.Duration("fault-slow-latency", time.Duration(f.SlowLatency), "latency a slow answer adds")
	fs.Float64Var(&f.WebhookDuplicate, "fault-webhook-duplicate", 0, "rate of events delivered twice")
	fs.Float64Var(&f.WebhookReorder, "fault-webhook-reorder", 0, "rate of events held back until the next event has gone")
	reorderWindow := fs.Duration("fault-webhook-reorder-window", time.Duration(f.WebhookReorderWindow), "longest hold of a reordered event")
	fs.Float64Var(&f.WebhookDelay, "fault-webhook-delay", 0, "rate of events whose first delivery is delayed")
	delayBy := fs.Duration("fault-webhook-delay-by", time.Duration(f.WebhookDelayBy), "delay of a delayed event")
	opsAddr := fs.String("ops", "127.0.0.1:9193", "address of /metrics, /healthz and /readyz")
	lf := cli.AddLogFlags(fs, "json")
	sf := cli.AddSupervisorFlags(fs)
	if err := cli.Parse(fs, args); err != nil {
		return err
	}
	cfg.WebhookURLs, cfg.WebhookSecrets, f.Ops = hooks, secrets, ops
	f.TimeoutHold, f.SlowLatency = psp.Duration(*timeoutHold), psp.Duration(*slowLatency)
	f.WebhookReorderWindow, f.WebhookDelayBy = psp.Duration(*reorderWindow), psp.Duration(*delayBy)
	if cfg.SecretKey == "" {
		return errors.New("--secret-key is required")
	}
	log, err := lf.Logger()
	if err != nil {
		return err
	}
	cfg.Log = log.With("component", "psp")
	reg := cli.NewRegistry()
	cfg.Registerer = reg
	sup, err := sf.Supervisor(log)
	if err != nil {
		return err
	}
	at, err := startPSP(sup, cfg, *addr)
	if err != nil {
		return errors.Join(err, sup.Shutdown())
	}
	opsAt, err := cli.ServeOps(sup, *opsAddr, nil, reg)
	if err != nil {
		return errors.Join(fmt.Errorf("ops listener: %w", err), sup.Shutdown())
	}
	log.Info("psp running", "addr", at, "data", cfg.DataDir, "webhooks", len(cfg.WebhookURLs), "ops", opsAt)
	return sup.Wait(ctx)
}

// startPSP starts the simulator and its HTTP listener on addr under sup
// and returns its base URL.
func startPSP(sup *supervisor.Supervisor, cfg psp.Config, addr string) (string, error) {
	srv, err := psp.New(cfg)
	if err != nil {
		return "", err
	}
	if _, err := sup.Start(supervisor.Component{Name: "psp", Stop: func(context.Context) error { return srv.Close() }, Ready: srv.Err}); err != nil {
		return "", err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", err
	}
	// Cancelling the requests' base context ends the answers the faults
	// hold, so that the shutdown need not wait for them.
	base, cancelBase := context.WithCancel(context.Background())
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute,
		BaseContext: func(net.Listener) context.Context { return base }}
	if _, err := sup.Start(supervisor.Component{
		Name: "psp-http",
		Run: func(context.Context) error {
			if err := hs.Serve(ln); err != http.ErrServerClosed {
				return err
			}
			return nil
		},
		Stop: func(ctx context.Context) error { cancelBase(); return hs.Shutdown(ctx) },
	}); err != nil {
		cancelBase()
		return "", err
	}
	return "http://" + ln.Addr().String(), nil
}

// repeatable is a flag that may be given several times, each time one
// value or a comma-separated list; all add up.
type repeatable []string

func (r *repeatable) String() string { return strings.Join(*r, ",") }

func (r *repeatable) Set(v string) error {
	for s := range strings.SplitSeq(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*r = append(*r, s)
		}
	}
	return nil
}
