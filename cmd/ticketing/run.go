package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/ticketing/ticketing/conf"
	"github.com/ticketing/ticketing/core"
	"github.com/ticketing/ticketing/core/node"
	"github.com/ticketing/ticketing/core/owner"
	"github.com/ticketing/ticketing/core/streams"
	"github.com/ticketing/ticketing/edge"
	"github.com/ticketing/ticketing/edge/httpapi"
	"github.com/ticketing/ticketing/edge/ratelimit"
	"github.com/ticketing/ticketing/edge/waitroom"
	"github.com/ticketing/ticketing/internal/devpki"
	"github.com/ticketing/ticketing/internal/supervisor"
	"github.com/ticketing/ticketing/leafnodes"
	"github.com/ticketing/ticketing/services/catalog"
	"github.com/ticketing/ticketing/services/inventory"
)

func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// startCore starts a core process, with the demo data when demo is set;
// onSaleIn > 0 opens the demo's waiting-room events that long after now.
func startCore(ctx context.Context, cfg core.Config, sup *supervisor.Supervisor, demo bool, onSaleIn time.Duration, log *slog.Logger, reg prometheus.Registerer) (*core.Core, error) {
	if demo {
		b, err := conf.Files.ReadFile("demo/demo.json")
		if err != nil {
			return nil, err
		}
		d, err := catalog.ParseDataset(b)
		if err != nil {
			return nil, err
		}
		openDemoSale(&d, onSaleIn, time.Now())
		cfg.Demo = &d
	}
	return core.Start(ctx, cfg, sup, log, reg)
}

// adminToken returns the configured admin token or, when none is, the one
// kept in dir (made on first use), so a dev system keeps its token.
func adminToken(configured, dir string) (string, error) {
	if configured != "" {
		return configured, nil
	}
	path := filepath.Join(dir, "admin-token")
	if b, err := os.ReadFile(path); err == nil {
		return strings.TrimSpace(string(b)), nil
	}
	var b [16]byte
	_, _ = rand.Read(b[:])
	tok := hex.EncodeToString(b[:])
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	return tok, os.WriteFile(path, []byte(tok+"\n"), 0o600)
}

type logFlags struct{ format, level *string }

func addLogFlags(fs *flag.FlagSet, format string) logFlags {
	return logFlags{
		format: fs.String("log-format", format, "log format: text or json"),
		level:  fs.String("log-level", "info", "log level: debug, info, warn, error"),
	}
}

func (l logFlags) logger() (*slog.Logger, error) { return newLogger(*l.format, *l.level) }

func runDev(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("dev", flag.ContinueOnError)
	data := fs.String("data", "data/dev", "data directory; a second start with the same directory keeps everything")
	httpAddr := fs.String("http", "127.0.0.1:8080", "edge HTTP API address")
	natsAddr := fs.String("nats", "127.0.0.1:4222", "core NATS client address (nats micro ls, …); - for none")
	leafAddr := fs.String("leaf", "127.0.0.1:7422", "core leaf-node address the edge dials")
	edgeNATS := fs.String("edge-nats", "-", "edge leaf server client address; - for none")
	token := fs.String("admin-token", "", "admin token (default: generated once and kept in the data directory)")
	demo := fs.Bool("demo", true, "load the demo venues and events")
	kafkaPort := fs.Int("kafka-port", 9092, "port of the embedded Kafka-protocol broker on 127.0.0.1 (0: any free port)")
	onSaleIn := fs.Duration("onsale-in", 2*time.Minute, "on a fresh data directory, open the demo events with a waiting room this long after the start (0: keep the demo's time)")
	qf := addQueueFlags(fs)
	lf := addLogFlags(fs, "text")
	gf := addGCFlags(fs)
	sf := addSupervisorFlags(fs)
	secf := addDevSecurityFlags(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	log, err := lf.logger()
	if err != nil {
		return err
	}
	if err := gf.apply(log); err != nil {
		return err
	}
	tok, err := adminToken(*token, *data)
	if err != nil {
		return err
	}
	coreSec, edgeSec, err := secf.resolve(log, *data, devHosts(*httpAddr, *natsAddr, *leafAddr))
	if err != nil {
		return err
	}
	sup, err := sf.supervisor(log)
	if err != nil {
		return err
	}
	reg := newRegistry()
	c, err := startCore(ctx, core.Config{
		Node:       coreSec.secureNode(node.Config{Name: "core-1", DataDir: filepath.Join(*data, "core"), ClientAddr: *natsAddr, LeafAddr: *leafAddr}),
		AdminToken: tok,
		Queue:      qf.config(),
	}, sup, *demo, *onSaleIn, log, reg)
	if err != nil {
		return errors.Join(err, sup.Shutdown())
	}
	bi, err := startDevBI(ctx, sup, c, *data, *kafkaPort, log, reg)
	if err != nil {
		return errors.Join(err, sup.Shutdown())
	}
	// The edge starts last, so that its HTTP listener stops first.
	e, err := edge.Start(ctx, edgeSec.secureEdge(edge.Config{
		HTTPAddr: *httpAddr,
		Leaf: leafnodes.EdgeConfig{Name: "edge-1", ClientAddr: *edgeNATS, Hubs: []string{c.Node.LeafURL()},
			Compression: edgeSec.loopbackLeafCompression()},
		API:   httpapi.Config{AdminToken: tok},
		Queue: waitroom.Config{JournalDir: filepath.Join(*data, "edge-queue")},
	}), sup, log, reg)
	if err != nil {
		return errors.Join(err, sup.Shutdown())
	}
	fmt.Printf("\nticketing dev is running\n  API:          %s/v1/events\n  OpenAPI:      %s/v1/openapi.json\n%s  reports:      %s/v1/reports/events/<id> (admin token)\n  metrics:      %s/metrics\n  data:         %s\n  admin token:  %s\n%s  NATS:         %s (user core)\n  Kafka:        %s (embedded)\n  exports:      %s\nPress Ctrl-C to stop.\n\n",
		e.URL(), e.URL(), waitingRooms(e), e.URL(), e.URL(), *data, tok, coreSec.caBanner(e.URL()), c.Node.ClientURL(), strings.Join(bi.Brokers(), ","), filepath.Join(*data, "exports"))
	return sup.Wait(ctx)
}

func runCore(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("core", flag.ContinueOnError)
	name := fs.String("name", "core-1", "server name, unique in the cluster")
	confFile := fs.String("conf", "", "NATS conf file (default: the embedded conf/nats/core.conf)")
	data := fs.String("data", "data/core-1", "data directory")
	natsAddr := fs.String("nats", "127.0.0.1:4222", "NATS client address; - for none")
	leafAddr := fs.String("leaf", "127.0.0.1:7422", "leaf-node address edges dial")
	clusterAddr := fs.String("cluster", "", "cluster address (with --routes)")
	var routes list
	fs.Var(&routes, "routes", "comma-separated cluster routes of every core node (nats-route://host:port); empty: a single node")
	opsAddr := fs.String("ops", "127.0.0.1:9090", "address of /metrics, /healthz and /readyz")
	token := fs.String("admin-token", "", "admin token (required)")
	demo := fs.Bool("demo", false, "load the demo venues and events")
	corePass := fs.String("nats-core-password", "", "password of NATS user core (default: the conf file's)")
	edgePass := fs.String("nats-edge-password", "", "password of NATS user edge (default: the conf file's)")
	lim := inventory.DefaultLimits()
	fs.DurationVar(&lim.DefaultTTL, "hold-ttl", lim.DefaultTTL, "hold time-to-live when a request names none")
	fs.DurationVar(&lim.MinTTL, "hold-min-ttl", lim.MinTTL, "shortest hold time-to-live a request may ask for")
	fs.DurationVar(&lim.MaxTTL, "hold-max-ttl", lim.MaxTTL, "longest hold time-to-live a request may ask for")
	leaseTTL := fs.Duration("lease-ttl", 3*time.Second, "partition ownership lease; another node takes over about this long after an owner dies")
	qf := addQueueFlags(fs)
	lf := addLogFlags(fs, "json")
	gf := addGCFlags(fs)
	sf := addSupervisorFlags(fs)
	secf := addSecurityFlags(fs, devpki.Core, "core", "data/secrets", true)
	if err := parse(fs, args); err != nil {
		return err
	}
	log, err := lf.logger()
	if err != nil {
		return err
	}
	if err := gf.apply(log); err != nil {
		return err
	}
	sec, err := secf.load(log, *data)
	if err != nil {
		return err
	}
	cfg := core.Config{
		Owner:   owner.Config{Limits: lim},
		Streams: streams.Config{LeaseTTL: *leaseTTL},
		Node: sec.secureNode(node.Config{Name: *name, ConfigFile: *confFile, DataDir: *data, ClientAddr: *natsAddr, LeafAddr: *leafAddr,
			ClusterAddr: *clusterAddr, Routes: routes, Credentials: leafnodes.Credentials{Core: *corePass, Edge: *edgePass}}),
		AdminToken: *token,
		Queue:      qf.config(),
	}
	sup, err := sf.supervisor(log)
	if err != nil {
		return err
	}
	reg := newRegistry()
	c, err := startCore(ctx, cfg, sup, *demo, 0, log, reg)
	if err != nil {
		return errors.Join(err, sup.Shutdown())
	}
	ops, err := serveOps(sup, *opsAddr, sec.opsTLS(), reg)
	if err != nil {
		return errors.Join(err, sup.Shutdown())
	}
	log.Info("core ready", "ops", ops, "client", c.Node.ClientURL())
	return sup.Wait(ctx)
}

func runEdge(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("edge", flag.ContinueOnError)
	name := fs.String("name", "edge-1", "edge name, unique among edges")
	confFile := fs.String("conf", "", "NATS conf file of the leaf server (default: the embedded conf/nats/edge.conf)")
	httpAddr := fs.String("http", "127.0.0.1:8080", "HTTP API address")
	var hubs list
	fs.Var(&hubs, "hubs", "comma-separated leaf-node URLs of the core (nats-leaf://host:7422); default: the conf file's")
	leafClient := fs.String("nats", "-", "leaf server client address; - for none")
	edgePass := fs.String("nats-edge-password", "", "password of NATS user edge (default: the conf file's)")
	leafCompression := fs.String("leaf-compression", "", "compression of the leaf-node link to the core: off, s2_auto, s2_fast, … (default: the conf file's, nats-server's s2_auto)")
	redisAddr := fs.String("redis-addr", "", "Redis for rate limits shared by a region's edges (host:port); empty: in-process limits")
	redisPass := fs.String("redis-password", "", "Redis password")
	holdRate := fs.Int("hold-rate", 10, "hold requests a second per client address")
	holdBurst := fs.Int("hold-burst", 20, "hold requests in a burst per client address")
	token := fs.String("admin-token", "", "admin token for /v1/reports/… (empty: they answer 401)")
	noLimits := fs.Bool("no-limits", false, "no per-client limits on holds and joins (benchmarks)")
	queueReader := fs.String("queue-reader", "epoll", "how waiting-room sockets are read: epoll (no goroutine per socket) or goroutine")
	queueEvery := fs.Duration("queue-update-every", 5*time.Second, "longest time between two status pushes to a waiting-room socket")
	queueJournal := fs.String("queue-journal", "", "directory of the waiting rooms' journals, so a restarted edge keeps every place in line (empty: lines are in memory only)")
	lf := addLogFlags(fs, "json")
	gf := addGCFlags(fs)
	sf := addSupervisorFlags(fs)
	secf := addSecurityFlags(fs, devpki.Edge, "edge", "data/secrets", false)
	if err := parse(fs, args); err != nil {
		return err
	}
	log, err := lf.logger()
	if err != nil {
		return err
	}
	if err := gf.apply(log); err != nil {
		return err
	}
	sec, err := secf.load(log, "")
	if err != nil {
		return err
	}
	sup, err := sf.supervisor(log)
	if err != nil {
		return err
	}
	e, err := edge.Start(ctx, sec.secureEdge(edge.Config{
		HTTPAddr: *httpAddr,
		Leaf: leafnodes.EdgeConfig{Name: *name, ConfigFile: *confFile, ClientAddr: *leafClient, Hubs: hubs, Password: *edgePass,
			Compression: *leafCompression},
		API:       httpapi.Config{HoldLimit: ratelimit.PerSecond(*holdRate, *holdBurst), AdminToken: *token},
		RateLimit: edge.RateLimitConfig{RedisAddr: *redisAddr, RedisPassword: *redisPass, Disabled: *noLimits},
		Queue:     waitroom.Config{Reader: *queueReader, UpdateEvery: *queueEvery, JournalDir: *queueJournal},
	}), sup, log, newRegistry())
	if err != nil {
		return errors.Join(err, sup.Shutdown())
	}
	log.Info("edge ready", "http", e.URL())
	return sup.Wait(ctx)
}
