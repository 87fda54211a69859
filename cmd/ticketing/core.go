package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ticketing/ticketing/cmd/ticketing/cli"
	"github.com/ticketing/ticketing/conf"
	"github.com/ticketing/ticketing/core"
	"github.com/ticketing/ticketing/internal/cql"
	"github.com/ticketing/ticketing/internal/devpki"
	"github.com/ticketing/ticketing/internal/dirlock"
	"github.com/ticketing/ticketing/internal/supervisor"
	"github.com/ticketing/ticketing/services/catalog"
	"github.com/ticketing/ticketing/services/identity/auth"
	"github.com/ticketing/ticketing/services/inventory"
	"github.com/ticketing/ticketing/services/payment/process"
)

// runCore runs a core node: its server, the partition owners it wins, the
// catalog and waiting-room services, under one supervisor with the ops
// listener last.
func runCore(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("core", flag.ContinueOnError)
	var cfg core.Config
	def := cfg
	def.Defaults()
	fs.StringVar(&cfg.Node.Name, "name", def.Node.Name, "server name, unique in the cluster")
	fs.StringVar(&cfg.Node.ConfigFile, "conf", "", "NATS conf file (default: the embedded conf/nats/core.conf)")
	fs.StringVar(&cfg.Node.DataDir, "data", "data/core-1", "data directory")
	fs.StringVar(&cfg.Node.ClientAddr, "nats", "", "NATS client address; - for none (default: the conf file's, 127.0.0.1:4222)")
	fs.StringVar(&cfg.Node.LeafAddr, "leaf", "", "leaf-node address edges dial (default: the conf file's, 127.0.0.1:7422)")
	fs.StringVar(&cfg.Node.ClusterAddr, "cluster", "", "cluster address (with --routes)")
	var routes cli.List
	fs.Var(&routes, "routes", "comma-separated cluster routes of every core node (nats-route://host:port); empty: a single node")
	opsAddr := fs.String("ops", "127.0.0.1:9090", "address of /metrics, /healthz and /readyz")
	fs.StringVar(&cfg.AdminToken, "admin-token", "", "admin token (required)")
	demo := fs.Bool("demo", false, "load the demo venues and events, and create the demo accounts")
	demoAccts := fs.Bool("demo-accounts", false, "create the demo accounts without the demo catalog: buyer@demo.ticketing.dev (password demo-buyer-pass) and admin@demo.ticketing.dev (demo-admin-pass, role admin); their passwords are public: never on a system others can reach")
	fs.StringVar(&cfg.Node.Credentials.Core, "nats-core-password", "", "password of NATS user core, with --insecure (default: the conf file's)")
	fs.StringVar(&cfg.Node.Credentials.Edge, "nats-edge-password", "", "password of NATS user edge, with --insecure (default: the conf file's)")
	cfg.Owner.Limits = inventory.DefaultLimits()
	lim := &cfg.Owner.Limits
	fs.DurationVar(&lim.DefaultTTL, "hold-ttl", lim.DefaultTTL, "hold time-to-live when a request names none")
	fs.DurationVar(&lim.MinTTL, "hold-min-ttl", lim.MinTTL, "shortest hold time-to-live a request may ask for")
	fs.DurationVar(&lim.MaxTTL, "hold-max-ttl", lim.MaxTTL, "longest hold time-to-live a request may ask for")
	fs.DurationVar(&cfg.Streams.LeaseTTL, "lease-ttl", def.Streams.LeaseTTL, "partition ownership lease; another node takes over about this long after an owner dies")
	addQueueFlags(fs, &cfg)
	addIdentityFlags(fs, &cfg)
	payment := addCheckoutFlags(fs, &cfg)
	lf := cli.AddLogFlags(fs, "json")
	gf := cli.AddGCFlags(fs)
	sf := cli.AddSupervisorFlags(fs)
	secf := cli.AddSecurityFlags(fs, devpki.Core, "core", "data/secrets", true)
	if err := cli.Parse(fs, args); err != nil {
		return err
	}
	if *payment.inProcess {
		cfg.Checkout.Payment = payment.cfg
		payment.cfg.DataDir, payment.cfg.GenerateKeyring = cfg.Node.DataDir, true
	}
	cfg.Node.Routes = routes
	log, err := lf.Logger()
	if err != nil {
		return err
	}
	if err := gf.Apply(log); err != nil {
		return err
	}
	lock, err := dirlock.Acquire(cfg.Node.DataDir)
	if err != nil {
		return err
	}
	defer lock.Release()
	sec, err := secf.Load(log, cfg.Node.DataDir)
	if err != nil {
		return err
	}
	cfg.Node = sec.SecureNode(cfg.Node)
	sup, err := sf.Supervisor(log)
	if err != nil {
		return err
	}
	reg := cli.NewRegistry()
	if *demoAccts {
		cfg.DemoAccounts = demoAccounts
	}
	c, err := startCore(ctx, cfg, sup, *demo, 0, log, reg)
	if err != nil {
		return errors.Join(err, sup.Shutdown())
	}
	ops, err := cli.ServeOps(sup, *opsAddr, sec.OpsTLS(), reg)
	if err != nil {
		return errors.Join(err, sup.Shutdown())
	}
	log.Info("core ready", "ops", ops, "client", c.Node.ClientURL())
	return sup.Wait(ctx)
}

// addQueueFlags binds the core's waiting-room settings to cfg.Queue; their
// defaults are the config's own.
func addQueueFlags(fs *flag.FlagSet, cfg *core.Config) {
	def := *cfg
	def.Defaults()
	q, d := &cfg.Queue, &def.Queue
	fs.DurationVar(&q.Controller.Tick, "queue-tick", d.Controller.Tick, "how often the core decides admissions for each event with a waiting room")
	fs.DurationVar(&q.Controller.ShopperWindow, "queue-shopper-window", d.Controller.ShopperWindow, "admissions within this window count as active shoppers")
	fs.IntVar(&q.Controller.TargetShoppers, "queue-target-shoppers", d.Controller.TargetShoppers, "active shoppers allowed at once per event (at start; ticketing config set queue.target_shoppers changes it live)")
	fs.DurationVar(&q.Tokens.TTL, "admission-ttl", d.Tokens.TTL, "lifetime of an admission token")
}

// addIdentityFlags binds the identity service's stores and mail to
// cfg.Identity.
func addIdentityFlags(fs *flag.FlagSet, cfg *core.Config) {
	id := &cfg.Identity
	fs.StringVar(&id.Auth.BaseURL, "public-url", "", "public URL of the edges: where mailed links point, the access tokens' issuer, the passkeys' domain (default http://localhost:8080)")
	fs.StringVar(&id.PostgresURL, "accounts-postgres", "", "PostgreSQL URL of the account store (default: the core's JetStream)")
	fs.StringVar(&id.RedisAddr, "sessions-redis", "", "Redis host:port of the session store (default: the core's JetStream)")
	fs.StringVar(&id.SMTP.Addr, "smtp", "", "SMTP server host:port that sends mail (default: files in <data>/mail)")
	fs.StringVar((*string)(&id.SMTP.TLS), "smtp-tls", "", "SMTP STARTTLS policy: mandatory (default), opportunistic or none")
	fs.StringVar(&id.Auth.From, "mail-from", "", "sender of the mails (default Ticketing <no-reply@ticketing.localhost>)")
}

// paymentFlags are the payment service's flags of a core that may run it.
type paymentFlags struct {
	inProcess *bool
	cfg       *process.Config
}

// addCheckoutFlags binds the checkout's stores and limits, and the
// payment service's flags for --payment-in-process.
func addCheckoutFlags(fs *flag.FlagSet, cfg *core.Config) paymentFlags {
	co := &cfg.Checkout
	fs.StringVar(&co.PostgresURL, "orders-pg-url", "", "PostgreSQL of orders (the system of record, with their outbox) and prices (default: the core's JetStream)")
	fs.IntVar(&co.DefaultLimit, "purchase-limit", 8, "tickets one account may buy of an event that sets no limit of its own")
	// ticketsCQL sets a field of the tickets' CQL store, which any of
	// its flags turns on (Validate then asks for its contact points).
	ticketsCQL := func(set func(*cql.Config, string) error) func(string) error {
		return func(v string) error {
			if co.Tickets == nil {
				co.Tickets = &cql.Config{Keyspace: "ticketing_tickets"}
			}
			return set(co.Tickets, v)
		}
	}
	fs.Func("tickets-cql", "ScyllaDB contact points of the tickets' store, host:port,… (default: the core's JetStream)", ticketsCQL(func(c *cql.Config, v string) error {
		c.Hosts = strings.Split(v, ",")
		return nil
	}))
	fs.Func("tickets-cql-keyspace", "keyspace of the tickets' store (default ticketing_tickets)", ticketsCQL(func(c *cql.Config, v string) error {
		c.Keyspace = v
		return nil
	}))
	fs.Func("tickets-cql-replicas", "replicas of the tickets' keyspace in the local data center, when it is created (default 3)", ticketsCQL(func(c *cql.Config, v string) error {
		n, err := strconv.Atoi(v)
		c.Replication = map[string]int{cmp.Or(c.LocalDC, "datacenter1"): n}
		return err
	}))
	fs.Func("tickets-cql-consistency", "consistency of the tickets' reads and writes (default LOCAL_QUORUM; ONE for a single node)", ticketsCQL(func(c *cql.Config, v string) error {
		c.Consistency = v
		return nil
	}))
	fs.Func("tickets-cql-no-host-lookup", "use the contact points only (a single node on a port of its own): true or false", ticketsCQL(func(c *cql.Config, v string) error {
		b, err := strconv.ParseBool(v)
		c.DisableHostLookup = b
		return err
	}))
	p := paymentFlags{
		inProcess: fs.Bool("payment-in-process", false, "run the payment service inside this process (development and tests: in production it is ticketing payment, the PCI boundary)"),
		cfg:       &process.Config{},
	}
	addPaymentFlags(fs, p.cfg)
	return p
}

// demoAccounts are the accounts of the demo data: a buyer and an admin.
var demoAccounts = []auth.SeedAccount{
	{Email: "buyer@demo.ticketing.dev", Password: "demo-buyer-pass", DisplayName: "Demo Buyer"},
	{Email: "admin@demo.ticketing.dev", Password: "demo-admin-pass", DisplayName: "Demo Admin", Roles: []string{"admin"}},
}

// startCore starts a core process, with the demo data (the catalog and
// the accounts) when demo is set; onSaleIn > 0 opens the demo's
// waiting-room events that long after now.
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
		b, err = conf.Files.ReadFile("demo/pricing.json")
		if err != nil {
			return nil, err
		}
		var prices core.DemoPrices
		if err := json.Unmarshal(b, &prices); err != nil {
			return nil, fmt.Errorf("demo prices: %w", err)
		}
		cfg.DemoPrices = &prices
		cfg.DemoAccounts = demoAccounts
	}
	return core.Start(ctx, cfg, sup, log, reg)
}
