package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ticketing/ticketing/internal/supervisor"
)

// supervised runs a process's components under one supervisor until ctx
// ends (a signal) or one of them fails. start registers them with sup in
// start order; the ops listener on opsAddr (serveOps) comes last, so it is
// the first to stop. It returns what sup.Wait returns: nil after a clean
// shutdown asked for by ctx, else an error naming the failed component or
// what did not stop in time.
func supervised(ctx context.Context, log *slog.Logger, msg string, shutdownTimeout time.Duration, opsAddr string, reg *prometheus.Registry, start func(sup *supervisor.Supervisor) error) error {
	sup, err := supervisor.New(supervisor.Config{ShutdownTimeout: shutdownTimeout, Log: log})
	if err != nil {
		return err
	}
	if err := start(sup); err != nil {
		return errors.Join(err, sup.Shutdown())
	}
	addr, err := serveOps(sup, opsAddr, reg)
	if err != nil {
		return errors.Join(err, sup.Shutdown())
	}
	log.Info(msg, "ops", addr)
	return sup.Wait(ctx)
}

// serveOps serves /metrics (reg), /healthz and /readyz on addr, for
// processes without a public API, as the component "ops" of sup. /readyz
// answers sup's Report as JSON: 200 when every component is ready, 503
// naming what is not. It returns the address it listens on; an address
// that cannot be served is an error at once.
func serveOps(sup *supervisor.Supervisor, addr string, reg *prometheus.Registry) (string, error) {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintln(w, `{"status":"ok"}`)
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) { serveReport(w, sup.Report()) })
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("ops listener: %w", err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	_, err = sup.Start(supervisor.Component{
		Name: "ops",
		Run: func(context.Context) error {
			if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		},
		Stop: srv.Shutdown,
	})
	if err != nil {
		ln.Close()
		return "", err
	}
	return ln.Addr().String(), nil
}

// serveReport writes a supervisor's report as /readyz answers it.
func serveReport(w http.ResponseWriter, r supervisor.Report) {
	w.Header().Set("Content-Type", "application/json")
	if !r.Ready() {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	_ = json.NewEncoder(w).Encode(r)
}
