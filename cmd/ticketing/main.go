// Command ticketing is the one binary of the ticketing platform:
//
//	ticketing dev      everything in one process on embedded defaults, with demo data
//	ticketing core     a core node (embedded nats-server, JetStream, partition owners)
//	ticketing edge     an edge (HTTP API, leaf node to the core)
//	ticketing bridge   the Kafka bridge (JetStream EVENTS → Kafka)
//	ticketing consume  the Kafka consumers (reporting, analytics, audit)
//	ticketing audit    audit verify: check the hash-chained audit log
//	ticketing config   get and set dynamic settings and feature flags
//	ticketing certs    the development secrets: CA, certificates, nkeys, JetStream key
//	ticketing probe    GET a URL over HTTPS with a given CA (health checks)
//	ticketing bench    benchmarks of the hot paths
//	ticketing version  the version
//
// Every flag can also be set by an environment variable: --admin-token is
// TICKETING_ADMIN_TOKEN; a flag given on the command line wins.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/ticketing/ticketing/internal/tracing"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

type command struct {
	name, summary string
	run           func(ctx context.Context, args []string) error
}

var commands = []command{
	{"dev", "run core, edge and demo data in one process", runDev},
	{"core", "run a core node", runCore},
	{"edge", "run an edge", runEdge},
	{"bridge", "mirror the domain events into Kafka", runBridge},
	{"consume", "run the Kafka consumers: reporting, analytics, audit", runConsume},
	{"audit", "verify the audit log (audit verify)", runAudit},
	{"config", "get and set dynamic settings and feature flags (config get|set|unset|flags)", runConfig},
	{"certs", "make the development secrets: CA, certificates, nkeys, JetStream key", runCerts},
	{"probe", "GET a URL over HTTPS trusting a CA (health checks)", runProbe},
	{"bench", "run a benchmark (holds, bridge, queue)", runBench},
	{"version", "print the version", func(context.Context, []string) error { fmt.Println("ticketing", version); return nil }},
}

func main() {
	if len(os.Args) < 2 || os.Args[1] == "-h" || os.Args[1] == "--help" || os.Args[1] == "help" {
		usage()
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	for _, c := range commands {
		if c.name == os.Args[1] {
			stopTracing, err := startTracing(ctx, c.name)
			if err == nil {
				err = c.run(ctx, os.Args[2:])
				stopTracing()
			}
			if errors.Is(err, flag.ErrHelp) {
				os.Exit(2)
			}
			if err != nil {
				fmt.Fprintf(os.Stderr, "ticketing %s: %v\n", c.name, err)
				os.Exit(1)
			}
			return
		}
	}
	usage()
	os.Exit(2)
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: ticketing <command> [flags]\n\ncommands:")
	for _, c := range commands {
		fmt.Fprintf(os.Stderr, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(os.Stderr, "\nRun 'ticketing <command> -h' for its flags. Flags may be set as TICKETING_<FLAG> environment variables.")
}

// parse parses args into fs after applying TICKETING_* environment
// variables for every flag not given on the command line.
func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
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
	if err == nil && fs.NArg() > 0 {
		err = fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	return err
}

// newLogger makes the process logger: text for people, JSON for machines.
func newLogger(format, level string) (*slog.Logger, error) {
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

// list is a comma-separated flag value.
type list []string

func (l *list) String() string { return strings.Join(*l, ",") }
func (l *list) Set(v string) error {
	*l = nil
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*l = append(*l, s)
		}
	}
	return nil
}
