package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ticketing/ticketing/cmd/ticketing/cli"
	"github.com/ticketing/ticketing/internal/devpki"
	"github.com/ticketing/ticketing/services/payment/process"
)

// runPayment is `ticketing payment`: the payment service as its own
// process, the PCI boundary. It connects to the core as a NATS client
// (the saga calls it there; its events go to EVENTS), keeps its vault
// and ledger in PostgreSQL (--pg-url) or in the core's JetStream, serves
// the card page, tokenization and the gateway's webhooks on --http, and
// talks to the gateway at --gateway-url.
func runPayment(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("payment", flag.ContinueOnError)
	var cfg process.Config
	sec := cli.AddSecurityFlags(fs, devpki.Core, "core", "data/secrets", false)
	conn := cli.AddCoreConnFlags(fs, sec)
	addPaymentFlags(fs, &cfg)
	fs.StringVar(&cfg.Node, "name", "", "instance name in logs and event sources (default: host name and pid)")
	ops := fs.String("ops", "127.0.0.1:9194", "address of /metrics, /healthz and /readyz")
	lf := cli.AddLogFlags(fs, "json")
	sf := cli.AddSupervisorFlags(fs)
	if err := cli.Parse(fs, args); err != nil {
		return err
	}
	if cfg.Node == "" {
		host, _ := os.Hostname()
		cfg.Node = fmt.Sprintf("%s-%d", host, os.Getpid())
	}
	log, err := lf.Logger()
	if err != nil {
		return err
	}
	if _, err := sec.Load(log, ""); err != nil {
		return err
	}
	sup, err := sf.Supervisor(log)
	if err != nil {
		return err
	}
	nc, err := conn.Connect("payment-" + cfg.Node)
	if err != nil {
		return errors.Join(fmt.Errorf("core connection: %w", err), sup.Shutdown())
	}
	if _, err := sup.Add("nats-conn", func(context.Context) error { return nc.Drain() }); err != nil {
		return errors.Join(err, sup.Shutdown())
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return errors.Join(err, sup.Shutdown())
	}
	p, err := process.Start(ctx, cfg, nc, js, sup, log)
	if err != nil {
		return errors.Join(err, sup.Shutdown())
	}
	opsAt, err := cli.ServeOps(sup, *ops, sec.Loaded().OpsTLS(), cli.NewRegistry())
	if err != nil {
		return errors.Join(fmt.Errorf("ops listener: %w", err), sup.Shutdown())
	}
	log.Info("payment service running", "http", p.URL, "ops", opsAt)
	return sup.Wait(ctx)
}

// addPaymentFlags adds the payment service's flags (ticketing payment,
// and ticketing core --payment-in-process).
func addPaymentFlags(fs *flag.FlagSet, cfg *process.Config) {
	var def process.Config
	def.Defaults()
	fs.StringVar(&cfg.HTTPAddr, "payment-http", def.HTTPAddr, "address of the card page, tokenization and the gateway's webhooks")
	fs.Var((*cli.List)(&cfg.Origins), "checkout-origin", "origins of the checkout pages that may frame the card page (scheme://host[:port], comma-separated)")
	fs.StringVar(&cfg.Gateway.BaseURL, "gateway-url", "", "the payment gateway's API (the simulator, ticketing psp, in development)")
	fs.StringVar(&cfg.Gateway.SecretKey, "gateway-secret-key", "", "the gateway's API key (TICKETING_GATEWAY_SECRET_KEY)")
	fs.StringVar(&cfg.Gateway.WebhookSecret, "gateway-webhook-secret", "", "the gateway's webhook signing secret (TICKETING_GATEWAY_WEBHOOK_SECRET)")
	fs.StringVar(&cfg.PostgresURL, "payment-pg-url", "", "PostgreSQL of the vault and the ledger; empty: the core's JetStream")
	fs.StringVar(&cfg.KeyringFile, "keyring-file", "", "the vault's key-encryption keyring (JSON); empty: TICKETING_PAYMENT_KEYRING")
}
