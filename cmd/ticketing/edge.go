package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"

	"github.com/ticketing/ticketing/cmd/ticketing/cli"
	"github.com/ticketing/ticketing/conf"
	"github.com/ticketing/ticketing/edge"
	"github.com/ticketing/ticketing/edge/httpapi"
	"github.com/ticketing/ticketing/edge/ratelimit"
	"github.com/ticketing/ticketing/internal/devpki"
)

// runEdge runs an edge: its leaf server joined to the core, the HTTP API
// and the waiting rooms, under one supervisor.
func runEdge(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("edge", flag.ContinueOnError)
	var cfg edge.Config
	def := cfg
	def.Defaults()
	fs.StringVar(&cfg.Leaf.Name, "name", def.Leaf.Name, "edge name, unique among edges")
	fs.StringVar(&cfg.Leaf.ConfigFile, "conf", "", "NATS conf file of the leaf server (default: the embedded conf/nats/edge.conf)")
	fs.StringVar(&cfg.HTTPAddr, "http", def.HTTPAddr, "HTTP API address")
	var hubs cli.List
	fs.Var(&hubs, "hubs", "comma-separated leaf-node URLs of the core (nats-leaf://host:7422); default: the conf file's")
	fs.StringVar(&cfg.Leaf.ClientAddr, "nats", "-", "leaf server client address; - for none")
	fs.StringVar(&cfg.Leaf.Password, "nats-edge-password", "", "password of NATS user edge, with --insecure (default: the conf file's)")
	fs.StringVar(&cfg.Leaf.Compression, "leaf-compression", "", "compression of the leaf-node link to the core: off, s2_auto, s2_fast, … (default: the conf file's, nats-server's s2_auto)")
	fs.StringVar(&cfg.RateLimit.RedisAddr, "redis-addr", "", "Redis for rate limits shared by a region's edges (host:port); empty: in-process limits")
	fs.StringVar(&cfg.RateLimit.RedisPassword, "redis-password", "", "Redis password")
	holdRate := fs.Int("hold-rate", def.API.HoldLimit.Rate, "hold requests a second per client address (at start; ticketing config set edge.holds.rate changes it live)")
	holdBurst := fs.Int("hold-burst", def.API.HoldLimit.Burst, "hold requests in a burst per client address (edge.holds.burst live)")
	fs.StringVar(&cfg.API.AdminToken, "admin-token", "", "bootstrap admin token: it may only set an account's roles (PUT /v1/admin/accounts/{id}/roles); the admin routes need an account with the admin role (empty: only such an account may set roles)")
	fs.StringVar(&cfg.API.PublicURL, "public-url", "", "the site's public base URL (scheme://host[:port]), where a 3-D Secure challenge returns the buyer (default: each request's own origin)")
	fs.StringVar(&cfg.API.PaymentURL, "payment-url", "", "the payment service's public base URL, whose card page the checkout page frames (ticketing payment's --payment-http as browsers reach it); empty: the checkout takes no card")
	channels := fs.String("channels", "", "JSON file of the channels: app clients, per-channel rate and allowed routes (default: the embedded conf/app/channels.json)")
	fs.BoolVar(&cfg.RateLimit.Disabled, "no-limits", false, "no per-client limits on holds and joins (benchmarks)")
	fs.StringVar(&cfg.Queue.Reader, "queue-reader", def.Queue.Reader, "how waiting-room sockets are read: epoll (no goroutine per socket; plaintext sockets only) or goroutine")
	fs.DurationVar(&cfg.Queue.UpdateEvery, "queue-update-every", def.Queue.UpdateEvery, "longest time between two status pushes to a waiting-room socket")
	fs.StringVar(&cfg.Queue.JournalDir, "queue-journal", "", "directory of the waiting rooms' journals, so a restarted edge keeps every place in line (empty: lines are in memory only)")
	lf := cli.AddLogFlags(fs, "json")
	gf := cli.AddGCFlags(fs)
	sf := cli.AddSupervisorFlags(fs)
	secf := cli.AddSecurityFlags(fs, devpki.Edge, "edge", "data/secrets", false)
	if err := cli.Parse(fs, args); err != nil {
		return err
	}
	cfg.Leaf.Hubs = hubs
	if err := loadChannels(*channels, &cfg); err != nil {
		return err
	}
	cfg.API.HoldLimit = ratelimit.PerSecond(*holdRate, *holdBurst)
	log, err := lf.Logger()
	if err != nil {
		return err
	}
	if err := gf.Apply(log); err != nil {
		return err
	}
	sec, err := secf.Load(log, "")
	if err != nil {
		return err
	}
	sup, err := sf.Supervisor(log)
	if err != nil {
		return err
	}
	e, err := edge.Start(ctx, sec.SecureEdge(cfg), sup, log, cli.NewRegistry())
	if err != nil {
		return errors.Join(err, sup.Shutdown())
	}
	log.Info("edge ready", "http", e.URL())
	return sup.Wait(ctx)
}

// loadChannels reads the channels' configuration from path, or the
// embedded conf/app/channels.json when path is empty.
func loadChannels(path string, cfg *edge.Config) error {
	var b []byte
	var err error
	if path == "" {
		b, err = conf.Files.ReadFile("app/channels.json")
	} else {
		b, err = os.ReadFile(path)
	}
	if err != nil {
		return err
	}
	if err := httpapi.ParseChannels(b, &cfg.API.Gateway); err != nil {
		return fmt.Errorf("edge: channels %s: %w", path, err)
	}
	return nil
}
