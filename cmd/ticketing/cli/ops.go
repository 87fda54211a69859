package cli

import (
	"context"
	"crypto/tls"
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

// SupervisorFlags are the flags every supervised process has.
type SupervisorFlags struct{ shutdownTimeout *time.Duration }

func AddSupervisorFlags(fs *flag.FlagSet) SupervisorFlags {
	return SupervisorFlags{shutdownTimeout: fs.Duration("shutdown-timeout", supervisor.DefaultShutdownTimeout,
		"how long the ordered shutdown may take (after a signal or a component's failure); past it the process exits non-zero")}
}

// Supervisor makes the process's supervisor.
func (f SupervisorFlags) Supervisor(log *slog.Logger) (*supervisor.Supervisor, error) {
	return supervisor.New(supervisor.Config{ShutdownTimeout: *f.shutdownTimeout, Log: log})
}

// ServeOps serves /metrics, /healthz and /readyz (sup's report) on addr
// for processes without a public API, as sup's component "ops"; over HTTPS
// with tlsConf when it is not nil.
func ServeOps(sup *supervisor.Supervisor, addr string, tlsConf *tls.Config, reg *prometheus.Registry) (net.Addr, error) {
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
	if tlsConf != nil {
		ln = tls.NewListener(ln, tlsConf)
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
