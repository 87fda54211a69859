package main

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ticketing/ticketing/cmd/ticketing/cli"
	"github.com/ticketing/ticketing/core"
	"github.com/ticketing/ticketing/edge"
	"github.com/ticketing/ticketing/internal/dirlock"
	"github.com/ticketing/ticketing/internal/supervisor"
	"github.com/ticketing/ticketing/leafnodes"
	"github.com/ticketing/ticketing/services/catalog"
	"github.com/ticketing/ticketing/services/payment/process"
	"github.com/ticketing/ticketing/services/payment/psp"
)

// runDev runs everything in one process on embedded defaults, with the
// demo data: a core node, the Kafka side (an embedded broker, the mirror,
// the consumers) and an edge, under one supervisor, secured with
// development secrets it makes in its data directory on first start.
func runDev(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("dev", flag.ContinueOnError)
	cfg := core.Config{}
	var ecfg edge.Config
	def := ecfg
	def.Defaults()
	data := fs.String("data", "data/dev", "data directory; a second start with the same directory keeps everything")
	fs.StringVar(&ecfg.HTTPAddr, "http", def.HTTPAddr, "edge HTTP API address")
	fs.StringVar(&cfg.Node.ClientAddr, "nats", "127.0.0.1:4222", "core NATS client address (nats micro ls, …); - for none")
	fs.StringVar(&cfg.Node.LeafAddr, "leaf", "127.0.0.1:7422", "core leaf-node address the edge dials")
	fs.StringVar(&ecfg.Leaf.ClientAddr, "edge-nats", "-", "edge leaf server client address; - for none")
	token := fs.String("admin-token", "", "admin token (default: generated once and kept in the data directory)")
	demo := fs.Bool("demo", true, "load the demo venues and events")
	kafkaPort := fs.Int("kafka-port", 9092, "port of the embedded Kafka-protocol broker on 127.0.0.1 (0: any free port)")
	onSaleIn := fs.Duration("onsale-in", 2*time.Minute, "on a fresh data directory, open the demo events with a waiting room this long after the start (0: keep the demo's time)")
	addQueueFlags(fs, &cfg)
	addIdentityFlags(fs, &cfg)
	payment := addCheckoutFlags(fs, &cfg)
	pspAddr := fs.String("psp", "127.0.0.1:12111", "address of the payment gateway simulator run in the process (when no --gateway-url is given)")
	lf := cli.AddLogFlags(fs, "text")
	gf := cli.AddGCFlags(fs)
	sf := cli.AddSupervisorFlags(fs)
	secf := cli.AddDevSecurityFlags(fs)
	if err := cli.Parse(fs, args); err != nil {
		return err
	}
	log, err := lf.Logger()
	if err != nil {
		return err
	}
	if err := gf.Apply(log); err != nil {
		return err
	}
	// Before anything writes there: a second dev on the same directory
	// stops here.
	lock, err := dirlock.Acquire(*data)
	if err != nil {
		return err
	}
	defer lock.Release()
	if cfg.AdminToken, err = adminToken(*token, *data); err != nil {
		return err
	}
	coreSec, edgeSec, err := secf.Resolve(log, *data, cli.DevHosts(ecfg.HTTPAddr, cfg.Node.ClientAddr, cfg.Node.LeafAddr))
	if err != nil {
		return err
	}
	sup, err := sf.Supervisor(log)
	if err != nil {
		return err
	}
	reg := cli.NewRegistry()
	cfg.Node.Name, cfg.Node.DataDir = "core-1", filepath.Join(*data, "core")
	if cfg.Identity.Auth.BaseURL == "" {
		scheme := "https://"
		if edgeSec.SecureEdge(ecfg).HTTPTLS.IsZero() {
			scheme = "http://"
		}
		// localhost, not 127.0.0.1: passkeys need a domain.
		cfg.Identity.Auth.BaseURL = scheme + strings.Replace(ecfg.HTTPAddr, "127.0.0.1:", "localhost:", 1)
	}
	if cfg.Identity.SMTP.Addr == "" {
		cfg.Identity.MailDir = filepath.Join(*data, "mail")
		ecfg.DevMailDir = cfg.Identity.MailDir
	}
	cfg.Node = coreSec.SecureNode(cfg.Node)
	payment.cfg.TLS = edgeSec.SecureEdge(ecfg).HTTPTLS
	if err := devPayment(sup, &cfg, payment.cfg, *pspAddr, *data, log); err != nil {
		return errors.Join(err, sup.Shutdown())
	}
	ecfg.API.PublicURL = cfg.Identity.Auth.BaseURL
	ecfg.API.PaymentURL = payment.cfg.PublicURL()
	c, err := startCore(ctx, cfg, sup, *demo, *onSaleIn, log, reg)
	if err != nil {
		return errors.Join(err, sup.Shutdown())
	}
	bi, err := startDevBI(ctx, sup, c, *data, *kafkaPort, log, reg)
	if err != nil {
		return errors.Join(err, sup.Shutdown())
	}
	// The edge starts last, so that its HTTP listener stops first.
	ecfg.Leaf = leafnodes.EdgeConfig{Name: "edge-1", ClientAddr: ecfg.Leaf.ClientAddr, Hubs: []string{c.Node.LeafURL()},
		Compression: edgeSec.LoopbackLeafCompression()}
	ecfg.API.AdminToken = cfg.AdminToken
	if err := loadChannels("", &ecfg); err != nil {
		return errors.Join(err, sup.Shutdown())
	}
	ecfg.Queue.JournalDir = filepath.Join(*data, "edge-queue")
	e, err := edge.Start(ctx, edgeSec.SecureEdge(ecfg), sup, log, reg)
	if err != nil {
		return errors.Join(err, sup.Shutdown())
	}
	fmt.Printf("\nticketing dev is running\n  API:          %s/v1/events\n  OpenAPI:      %s/v1/openapi.json\n%s  reports:      %s/v1/reports/events/<id> (an admin account)\n%s  metrics:      %s/metrics\n  data:         %s\n  admin token:  %s (bootstrap: sets accounts' roles)\n%s  NATS:         %s (user core)\n  Kafka:        %s (embedded)\n  exports:      %s\nPress Ctrl-C to stop.\n\n",
		e.URL(), e.URL(), waitingRooms(e), e.URL(), demoAccountsBanner(*demo), e.URL(), *data, cfg.AdminToken, coreSec.CABanner(e.URL()), c.Node.ClientURL(), strings.Join(bi.Brokers(), ","), filepath.Join(*data, "exports"))
	return sup.Wait(ctx)
}

// adminToken returns the configured admin token or, when none is, the one
// kept in dir (made on first use), so a dev system keeps its token.
func adminToken(configured, dir string) (string, error) {
	return keptSecret(configured, dir, "admin-token", "")
}

// keptSecret returns configured or, when it is empty, the secret kept in
// dir/file (prefix and 32 hex digits, made on first use).
func keptSecret(configured, dir, file, prefix string) (string, error) {
	if configured != "" {
		return configured, nil
	}
	path := filepath.Join(dir, file)
	if b, err := os.ReadFile(path); err == nil {
		return strings.TrimSpace(string(b)), nil
	}
	var b [16]byte
	_, _ = rand.Read(b[:])
	tok := prefix + hex.EncodeToString(b[:])
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	return tok, os.WriteFile(path, []byte(tok+"\n"), 0o600)
}

// devPayment runs the payment service inside the dev process, and, unless
// --gateway-url names a gateway, the gateway simulator too, on pspAddr,
// with secrets made once in the data directory.
func devPayment(sup *supervisor.Supervisor, cfg *core.Config, p *process.Config, pspAddr, data string, log *slog.Logger) error {
	p.DataDir, p.GenerateKeyring = filepath.Join(data, "payment"), true
	if len(p.Origins) == 0 {
		p.Origins = []string{cfg.Identity.Auth.BaseURL}
	}
	cfg.Checkout.Payment = p
	if p.Gateway.BaseURL != "" {
		return nil
	}
	var err error
	if p.Gateway.SecretKey, err = keptSecret("", data, "psp-secret-key", "sk_test_"); err != nil {
		return err
	}
	if p.Gateway.WebhookSecret, err = keptSecret("", data, "psp-webhook-secret", "whsec_"); err != nil {
		return err
	}
	sim := psp.Config{DataDir: filepath.Join(data, "psp"), SecretKey: p.Gateway.SecretKey,
		WebhookURLs:    []string{p.PublicURL() + "/v1/webhooks/gateway"},
		WebhookSecrets: []string{p.Gateway.WebhookSecret},
		PublicURL:      "http://" + strings.Replace(pspAddr, "127.0.0.1:", "localhost:", 1),
		Log:            log.With("component", "psp")}
	sim.Defaults()
	if p.TLS.CA != "" {
		// The payment service's certificate is the development CA's.
		pem, err := os.ReadFile(p.TLS.CA)
		if err != nil {
			return err
		}
		sim.Webhook.RootCAs = x509.NewCertPool()
		sim.Webhook.RootCAs.AppendCertsFromPEM(pem)
	}
	url, err := startPSP(sup, sim, pspAddr)
	if err != nil {
		return fmt.Errorf("payment gateway simulator: %w", err)
	}
	p.Gateway.BaseURL = url
	return nil
}

// openDemoSale moves the on-sale time of the demo events with a waiting
// room to now+in (when in > 0), so that a fresh dev system shows the
// pre-queue, the draw and the opening. Demo data is loaded only into an
// empty catalog, so a restarted system keeps the time it first had.
func openDemoSale(d *catalog.Dataset, in time.Duration, now time.Time) {
	if in <= 0 {
		return
	}
	for i := range d.Events {
		if d.Events[i].Queue {
			d.Events[i].OnSaleAt = now.Add(in).Truncate(time.Second)
		}
	}
}

// demoAccountsBanner lists the demo accounts and their passwords, for the
// dev banner, when they were seeded.
func demoAccountsBanner(demo bool) string {
	if !demo {
		return ""
	}
	var b strings.Builder
	for _, a := range demoAccounts {
		role := ""
		if len(a.Roles) > 0 {
			role = " (" + strings.Join(a.Roles, ", ") + ")"
		}
		fmt.Fprintf(&b, "  account:      %s / %s%s\n", a.Email, a.Password, role)
	}
	return b.String()
}

// waitingRooms lists the waiting-room pages of e's events with a queue, one
// line each, for the dev banner.
func waitingRooms(e *edge.Edge) string {
	var b strings.Builder
	for _, ev := range e.Catalog.Events() {
		if ev.Queue {
			fmt.Fprintf(&b, "  waiting room: %s/queue/%s (on sale %s)\n", e.URL(), ev.ID, ev.OnSaleAt.Local().Format(time.TimeOnly))
		}
	}
	return b.String()
}
