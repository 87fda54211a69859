// Package cli is what the commands of the ticketing binary share on their
// command line and in their set-up: flags that TICKETING_* environment
// variables can set (Parse), the logger, the garbage collector, the
// supervisor and its shutdown deadline, the ops listener, tracing from the
// OTEL_* variables, and how a process secures its links and its store
// (SecurityFlags, DevSecurity). The production commands (package main) and
// the benchmarks (package bench) both build on it.
package cli

import (
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/ticketing/ticketing/internal/tracing"
)

// Parse parses args into fs after applying TICKETING_* environment
// variables for every flag not given on the command line (ApplyEnv).
func Parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := ApplyEnv(fs); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	return nil
}

// ApplyEnv sets every flag of the parsed fs that the command line did not
// give from its TICKETING_* environment variable, if set: --admin-token
// from TICKETING_ADMIN_TOKEN.
func ApplyEnv(fs *flag.FlagSet) error {
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if given[f.Name] || err != nil {
			return
		}
		env := "TICKETING_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v, ok := os.LookupEnv(env); ok {
			if e := fs.Set(f.Name, v); e != nil {
				err = fmt.Errorf("%s=%q: %w", env, v, e)
			}
		}
	})
	return err
}

// NewLogger makes the process logger: text for people, JSON for machines.
func NewLogger(format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("log level %q: %w", level, err)
	}
	opts := &slog.HandlerOptions{Level: lv}
	// Records logged with a sampled request's context carry its trace_id
	// and span_id.
	switch format {
	case "text":
		return slog.New(tracing.LogHandler(slog.NewTextHandler(os.Stderr, opts))), nil
	case "json":
		return slog.New(tracing.LogHandler(slog.NewJSONHandler(os.Stderr, opts))), nil
	}
	return nil, fmt.Errorf("log format %q: want text or json", format)
}

// List is a comma-separated flag value.
type List []string

func (l *List) String() string { return strings.Join(*l, ",") }
func (l *List) Set(v string) error {
	*l = nil
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*l = append(*l, s)
		}
	}
	return nil
}

func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

type LogFlags struct{ format, level *string }

func AddLogFlags(fs *flag.FlagSet, format string) LogFlags {
	return LogFlags{
		format: fs.String("log-format", format, "log format: text or json"),
		level:  fs.String("log-level", "info", "log level: debug, info, warn, error"),
	}
}

func (l LogFlags) Logger() (*slog.Logger, error) { return NewLogger(*l.format, *l.level) }
