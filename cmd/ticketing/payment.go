package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/schollz/progressbar/v3"

	"github.com/ticketing/ticketing/cmd/ticketing/cli"
	"github.com/ticketing/ticketing/internal/devpki"
	"github.com/ticketing/ticketing/internal/supervisor"
	"github.com/ticketing/ticketing/services/payment/process"
	"github.com/ticketing/ticketing/services/payment/vault"
)

// runPayment is `ticketing payment`: the payment service as its own
// process, the PCI boundary. It connects to the core as a NATS client
// (the saga calls it there; its events go to EVENTS), keeps its vault
// and ledger in PostgreSQL (--pg-url) or in the core's JetStream, serves
// the card page, tokenization and the gateway's webhooks on --http, and
// talks to the gateway at --gateway-url.
//
// `ticketing payment rewrap` re-wraps the vault's data keys under the
// keyring's active key-encryption key (after adding a new one), with a
// progress bar, and lists which keys are still referenced: a key no
// longer referenced may leave the keyring.
func runPayment(ctx context.Context, args []string) error {
	if len(args) > 0 && args[0] == "rewrap" {
		return runRewrap(ctx, args[1:])
	}
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

// runRewrap is `ticketing payment rewrap`.
func runRewrap(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("payment rewrap", flag.ContinueOnError)
	var cfg process.Config
	sec := cli.AddSecurityFlags(fs, devpki.Core, "core", "data/secrets", false)
	conn := cli.AddCoreConnFlags(fs, sec)
	addPaymentFlags(fs, &cfg)
	after := fs.String("after", "", "resume after this data key id (the cursor a stopped run printed)")
	lf := cli.AddLogFlags(fs, "text")
	if err := cli.Parse(fs, args); err != nil {
		return err
	}
	log, err := lf.Logger()
	if err != nil {
		return err
	}
	if _, err := sec.Load(log, ""); err != nil {
		return err
	}
	sup, err := supervisor.New(supervisor.Config{Log: log})
	if err != nil {
		return err
	}
	defer func() { _ = sup.Shutdown() }()
	nc, err := conn.Connect("payment-rewrap")
	if err != nil {
		return fmt.Errorf("core connection: %w", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	v, err := process.OpenVault(ctx, cfg, js, sup, log)
	if err != nil {
		return err
	}
	bar := progressbar.NewOptions(-1, progressbar.OptionSetDescription("re-wrapping data keys"),
		progressbar.OptionSetWriter(os.Stderr), progressbar.OptionShowCount(), progressbar.OptionClearOnFinish(),
		progressbar.OptionThrottle(100*time.Millisecond))
	p, err := v.Rewrap(ctx, vault.RewrapOptions{After: *after, Progress: func(p vault.RewrapProgress) { _ = bar.Set(p.Scanned) }})
	_ = bar.Finish()
	fmt.Printf("data keys: %d looked at, %d re-wrapped, %d already under the active key, %d failed\n", p.Scanned, p.Rewrapped, p.Current, p.Failed)
	if err != nil {
		return fmt.Errorf("%w (resume with --after %q)", err, p.Cursor)
	}
	uses, err := v.KEKs(ctx)
	if err != nil {
		return err
	}
	for _, u := range uses {
		state := "may be dropped from the keyring"
		switch {
		case !u.InKeyring:
			state = "MISSING from the keyring: its data keys do not open"
		case u.Referenced():
			state = "must stay"
		}
		fmt.Printf("key %s: wraps %d data keys, active %v, fingerprint %v: %s\n", u.ID, u.DEKs, u.Active, u.Fingerprint, state)
	}
	return nil
}
