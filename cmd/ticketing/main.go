// Command ticketing is the one binary of the ticketing platform:
//
//	ticketing dev      everything in one process on embedded defaults, with demo data
//	ticketing core     a core node (embedded nats-server, JetStream, partition owners)
//	ticketing edge     an edge (HTTP API, leaf node to the core)
//	ticketing payment  the payment service: card vault, ledger, gateway calls
//	ticketing bridge   the Kafka bridge (JetStream EVENTS → Kafka)
//	ticketing consume  the Kafka consumers (reporting, analytics, audit)
//	ticketing audit    audit verify: check the hash-chained audit log
//	ticketing config   get and set dynamic settings and feature flags
//	ticketing certs    the development secrets: CA, certificates, nkeys, JetStream key
//	ticketing probe    GET a URL over HTTPS with a given CA (health checks)
//	ticketing psp      the payment gateway simulator (Stripe-like, with faults)
//	ticketing bench    benchmarks of the hot paths
//	ticketing version  the version
//
// Every flag can also be set by an environment variable: --admin-token is
// TICKETING_ADMIN_TOKEN; a flag given on the command line wins.
//
// Each command's file wires its process: dev.go, core.go, edge.go,
// kafkaside.go (bridge, consume, audit), config.go, certs.go (certs,
// probe), psp.go. What they share on the command line and in their set-up is
// package cli; the benchmarks are package bench.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/ticketing/ticketing/cmd/ticketing/bench"
	"github.com/ticketing/ticketing/cmd/ticketing/cli"
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
	{"payment", "run the payment service (the PCI boundary)", runPayment},
	{"bridge", "mirror the domain events into Kafka", runBridge},
	{"consume", "run the Kafka consumers: reporting, analytics, audit", runConsume},
	{"audit", "verify the audit log (audit verify)", runAudit},
	{"config", "get and set dynamic settings and feature flags (config get|set|unset|flags)", runConfig},
	{"certs", "make the development secrets: CA, certificates, nkeys, JetStream key", runCerts},
	{"probe", "GET a URL over HTTPS trusting a CA (health checks)", runProbe},
	{"psp", "run the payment gateway simulator", runPSP},
	{"bench", "run a benchmark (holds, bridge, queue)", bench.Run},
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
			stopTracing, err := cli.StartTracing(ctx, c.name)
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
