package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ticketing/ticketing/internal/supervisor"
)

// supervisorFlags are the flags every supervised process has.
type supervisorFlags struct{ shutdownTimeout *time.Duration }

func addSupervisorFlags(fs *flag.FlagSet) supervisorFlags {
	return supervisorFlags{shutdownTimeout: fs.Duration("shutdown-timeout", supervisor.DefaultShutdownTimeout,
		"how long the ordered shutdown may take (after a signal or a component's failure); past it the process exits non-zero")}
}

// supervisor makes the process's supervisor.
func (f supervisorFlags) supervisor(log *slog.Logger) (*supervisor.Supervisor, error) {
	return supervisor.New(supervisor.Config{ShutdownTimeout: *f.shutdownTimeout, Log: log})
}

// serveOps serves /metrics, /healthz and /readyz (sup's report) on addr
// for processes without a public API, as sup's component "ops".
func serveOps(sup *supervisor.Supervisor, addr string, reg *prometheus.Registry) (net.Addr, error) {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintln(w, `{"status":"ok"}`)
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		r := sup.Report()
		w.Header().Set("Content-Type", "application/json")
		if !r.Ready() {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		_ = json.NewEncoder(w).Encode(r)
	})
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	_, err = sup.Start(supervisor.Component{
		Name: "ops",
		Run: func(context.Context) error {
			if err := srv.Serve(ln); err != http.ErrServerClosed {
				return err
			}
			return nil
		},
		Stop: srv.Shutdown,
	})
	return ln.Addr(), err
}
