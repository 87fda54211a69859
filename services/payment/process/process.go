// Package process wires the payment service's parts into a running
// service: the vault and the ledger (JetStream key-value buckets, or
// PostgreSQL in production), the gateway client, the NATS micro service
// the saga calls, its events, and the HTTP server of the card page,
// tokenization and webhooks. `ticketing payment` runs it as its own
// process (the PCI boundary); `ticketing dev` runs it inside the one
// process, on its own port (its own origin).
package process

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/internal/postgres"
	"github.com/ticketing/ticketing/internal/supervisor"
	"github.com/ticketing/ticketing/internal/tlsconf"
	"github.com/ticketing/ticketing/services/payment"
	"github.com/ticketing/ticketing/services/payment/gateway"
	"github.com/ticketing/ticketing/services/payment/natsapi"
	"github.com/ticketing/ticketing/services/payment/natsevents"
	paymentkv "github.com/ticketing/ticketing/services/payment/natskv"
	paymentpg "github.com/ticketing/ticketing/services/payment/postgres"
	"github.com/ticketing/ticketing/services/payment/vault"
	vaultkv "github.com/ticketing/ticketing/services/payment/vault/natskv"
	vaultpg "github.com/ticketing/ticketing/services/payment/vault/postgres"
	"github.com/ticketing/ticketing/services/payment/web"
)

// Config configures the payment service.
type Config struct {
	// Node names this process in logs and event sources.
	Node string
	// HTTPAddr is where the card page, tokenization and webhooks listen.
	// Default 127.0.0.1:8081.
	HTTPAddr string
	// Origins are the checkout pages' origins that may frame the card
	// page. Required.
	Origins []string
	// Gateway is the payment gateway (the simulator, `ticketing psp`, in
	// development).
	Gateway gateway.Config
	// PostgresURL, when set, keeps the vault and the ledger in
	// PostgreSQL; empty: JetStream key-value buckets.
	PostgresURL string
	// KeyringFile holds the vault's key-encryption keys
	// (vault.ParseKeyring's form). Empty: KeyringEnv, else, in
	// development only (GenerateKeyring), a keyring made once in DataDir.
	KeyringFile string
	// KeyringEnv names an environment variable holding the keyring.
	// Default TICKETING_PAYMENT_KEYRING.
	KeyringEnv string
	// GenerateKeyring lets the service make and keep its own keyring in
	// DataDir when none is given (ticketing dev).
	GenerateKeyring bool
	DataDir         string
	// Replicas of the buckets. Default 1.
	Replicas int
	// Timeout bounds a request's work. Default 30s.
	Timeout time.Duration
	// TLS, when set, serves the HTTP side over HTTPS with this
	// certificate (a browser-facing server: no client certificates).
	TLS tlsconf.Files
}

// Defaults fills zero fields.
func (c *Config) Defaults() {
	if c.HTTPAddr == "" {
		c.HTTPAddr = "127.0.0.1:8081"
	}
	if c.KeyringEnv == "" {
		c.KeyringEnv = "TICKETING_PAYMENT_KEYRING"
	}
	if c.Replicas == 0 {
		c.Replicas = 1
	}
	if c.Timeout == 0 {
		c.Timeout = 30 * time.Second
	}
	c.Gateway.Defaults()
}

// Validate checks the config after Defaults.
func (c *Config) Validate() error {
	const op = "payment.config"
	if len(c.Origins) == 0 {
		return errs.E(op, errs.Invalid, "the payment service needs the checkout origins (--checkout-origin)")
	}
	if c.GenerateKeyring && c.DataDir == "" {
		return errs.E(op, errs.Invalid, "a generated keyring is kept in the data directory: set it")
	}
	return c.Gateway.Validate()
}

// PublicURL is the HTTP side's base URL as browsers reach it on this
// machine: https with a certificate, localhost for 127.0.0.1.
func (c Config) PublicURL() string {
	c.Defaults()
	scheme := "http://"
	if !c.TLS.IsZero() {
		scheme = "https://"
	}
	return scheme + strings.Replace(c.HTTPAddr, "127.0.0.1:", "localhost:", 1)
}

// Payment is a running payment service.
type Payment struct {
	Service *payment.Service
	Vault   *vault.Vault
	Ledger  payment.Ledger
	// URL is the HTTP server's base URL (http://host:port).
	URL string
}

// Start starts the payment service on nc (a connection to the core) and
// adds its parts to sup in start order: its database pool, the NATS
// service, the HTTP server.
func Start(ctx context.Context, cfg Config, nc *nats.Conn, js jetstream.JetStream, sup *supervisor.Supervisor, log *slog.Logger) (*Payment, error) {
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log = log.With("component", "payment")
	v, ledger, err := open(ctx, cfg, js, sup, log)
	if err != nil {
		return nil, err
	}
	gw, err := gateway.New(cfg.Gateway)
	if err != nil {
		return nil, err
	}
	svc := &payment.Service{Ledger: ledger, Vault: v, Gateway: gw, Log: log,
		Events: &natsevents.Publisher{JS: js, Source: "/payment/" + cfg.Node}}
	micro, err := natsapi.Serve(nc, svc, cfg.Timeout)
	if err != nil {
		return nil, err
	}
	if _, err := sup.Add("payment-service", func(context.Context) error { return micro.Stop() }); err != nil {
		return nil, err
	}
	h, err := web.New(web.Config{Origins: cfg.Origins, Timeout: cfg.Timeout}, v, svc, log)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return nil, fmt.Errorf("payment: listen %s: %w", cfg.HTTPAddr, err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second, WriteTimeout: 60 * time.Second}
	scheme := "http://"
	if !cfg.TLS.IsZero() {
		if srv.TLSConfig, err = tlsconf.Server(cfg.TLS, false); err != nil {
			_ = ln.Close()
			return nil, err
		}
		ln = tls.NewListener(ln, srv.TLSConfig)
		scheme = "https://"
	}
	if _, err := sup.Start(supervisor.Component{Name: "payment-http", Run: func(ctx context.Context) error {
		errc := make(chan error, 1)
		go func() { errc <- srv.Serve(ln) }()
		select {
		case err := <-errc:
			return err
		case <-ctx.Done():
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			return srv.Shutdown(sctx)
		}
	}}); err != nil {
		_ = ln.Close()
		return nil, err
	}
	url := scheme + ln.Addr().String()
	log.Info("payment service started", "http", url, "gateway", cfg.Gateway.BaseURL, "postgres", cfg.PostgresURL != "")
	return &Payment{Service: svc, Vault: v, Ledger: ledger, URL: url}, nil
}

// OpenVault opens the vault of cfg's store and keyring (with its
// database pool under sup), for the operator's tools (ticketing payment
// rewrap).
func OpenVault(ctx context.Context, cfg Config, js jetstream.JetStream, sup *supervisor.Supervisor, log *slog.Logger) (*vault.Vault, error) {
	cfg.Defaults()
	v, _, err := open(ctx, cfg, js, sup, log)
	return v, err
}

// open opens the vault and the ledger: in PostgreSQL (migrated) or in
// JetStream key-value buckets.
func open(ctx context.Context, cfg Config, js jetstream.JetStream, sup *supervisor.Supervisor, log *slog.Logger) (*vault.Vault, payment.Ledger, error) {
	keys, err := keyring(cfg, log)
	if err != nil {
		return nil, nil, err
	}
	var (
		vstore vault.Store
		ledger payment.Ledger
	)
	if cfg.PostgresURL != "" {
		pool, err := postgres.Open(ctx, postgres.Config{URL: cfg.PostgresURL, ApplicationName: "ticketing-payment"})
		if err != nil {
			return nil, nil, err
		}
		if _, err := sup.Add("payment-postgres", func(context.Context) error { pool.Close(); return nil }); err != nil {
			return nil, nil, err
		}
		if _, err := vaultpg.Migrate(ctx, pool, log); err != nil {
			return nil, nil, err
		}
		if _, err := paymentpg.Migrate(ctx, pool, log); err != nil {
			return nil, nil, err
		}
		vstore = vaultpg.New(pool)
		if ledger, err = paymentpg.New(pool, paymentpg.Config{}); err != nil {
			return nil, nil, err
		}
	} else {
		if vstore, err = vaultkv.Open(ctx, js, vaultkv.Config{Replicas: cfg.Replicas}); err != nil {
			return nil, nil, err
		}
		if ledger, err = paymentkv.Open(ctx, js, paymentkv.Config{Replicas: cfg.Replicas}); err != nil {
			return nil, nil, err
		}
	}
	v, err := vault.New(ctx, vstore, vault.Config{Keyring: keys})
	if err != nil {
		return nil, nil, err
	}
	return v, ledger, nil
}

// keyring loads the vault's key-encryption keys: from the file, else the
// environment, else (development) the keyring kept in the data directory,
// made on the first start.
func keyring(cfg Config, log *slog.Logger) (vault.Keyring, error) {
	if cfg.KeyringFile != "" {
		return vault.ReadKeyring(cfg.KeyringFile)
	}
	if _, ok := os.LookupEnv(cfg.KeyringEnv); ok {
		return vault.KeyringFromEnv(cfg.KeyringEnv)
	}
	if !cfg.GenerateKeyring {
		return vault.Keyring{}, errs.Errorf("payment.keyring", errs.Invalid, "no vault keyring: give --keyring-file or %s", cfg.KeyringEnv)
	}
	path := filepath.Join(cfg.DataDir, "payment-keyring.json")
	if k, err := vault.ReadKeyring(path); err == nil {
		return k, nil
	} else if _, serr := os.Stat(path); !errors.Is(serr, os.ErrNotExist) {
		return vault.Keyring{}, err
	}
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	b, _ := json.Marshal(map[string]any{"active": "dev1", "keys": map[string]string{"dev1": hex.EncodeToString(key)}})
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return vault.Keyring{}, err
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return vault.Keyring{}, err
	}
	log.Warn("made a development vault keyring; give a real one in production", "file", path)
	return vault.ReadKeyring(path)
}
