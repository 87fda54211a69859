package psp

import (
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Config configures a simulator. Zero fields take the defaults Defaults
// documents; DataDir and SecretKey are required.
type Config struct {
	// DataDir holds the journal (and the LOCK that keeps the directory to
	// one process). Created when missing. Required.
	DataDir string
	// SecretKey is the API key clients present as "Authorization: Bearer
	// <key>" on /v1 and /_sim. Required.
	SecretKey string
	// PublicURL is the simulator's address as buyers' browsers reach it
	// (scheme://host[:port]), the base of the 3-D Secure challenge links.
	// Default: the scheme and Host of the confirm request.
	PublicURL string
	// WebhookURLs are the endpoints every event is delivered to.
	WebhookURLs []string
	// WebhookSecrets sign the deliveries: each one adds a v1 signature to
	// Stripe-Signature (two while a secret is rotated). Required when
	// WebhookURLs are given.
	WebhookSecrets []string
	// Webhook tunes delivery.
	Webhook WebhookConfig
	// IdempotencyTTL is how long an idempotency key's answer is kept.
	// Default 24h.
	IdempotencyTTL time.Duration
	// MaxBody bounds a request body. Default 64 KiB.
	MaxBody int64
	// Faults are the faults in force at start; SetFaults and POST
	// /_sim/faults change them.
	Faults Faults
	// Log receives the server's log; it never sees a card number, only
	// last four digits. Default slog.Default().
	Log *slog.Logger
	// Registerer, when set, registers the server's metrics.
	Registerer prometheus.Registerer
	// Clock is the time of created stamps, signatures and key expiry.
	// Default time.Now.
	Clock func() time.Time
}

// WebhookConfig tunes webhook delivery.
type WebhookConfig struct {
	// Concurrency is how many deliveries to one endpoint may be under
	// way at once. Default 4; 1 delivers in order (but for faults and
	// retries).
	Concurrency int
	// Timeout bounds one delivery attempt. Default 10s.
	Timeout time.Duration
	// RetryInitial is the wait after the first failed attempt; each
	// further failure doubles it, up to RetryMax. Defaults 1s and 1h.
	RetryInitial, RetryMax time.Duration
	// MaxAge is how long an event is retried before it is abandoned.
	// Default 72h (Stripe's three days).
	MaxAge time.Duration
	// RootCAs, when set, are the only certificate authorities trusted
	// for HTTPS endpoints (a development CA); nil: the system's.
	RootCAs *x509.CertPool
}

// The defaults.
const (
	DefaultIdempotencyTTL      = 24 * time.Hour
	DefaultMaxBody             = 64 << 10
	DefaultWebhookConcurrency  = 4
	DefaultWebhookTimeout      = 10 * time.Second
	DefaultWebhookRetryInitial = time.Second
	DefaultWebhookRetryMax     = time.Hour
	DefaultWebhookMaxAge       = 72 * time.Hour
)

// Defaults fills zero fields with their defaults.
func (c *Config) Defaults() {
	if c.IdempotencyTTL == 0 {
		c.IdempotencyTTL = DefaultIdempotencyTTL
	}
	if c.MaxBody == 0 {
		c.MaxBody = DefaultMaxBody
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
	if c.Clock == nil {
		c.Clock = time.Now
	}
	c.PublicURL = strings.TrimRight(c.PublicURL, "/")
	w := &c.Webhook
	if w.Concurrency == 0 {
		w.Concurrency = DefaultWebhookConcurrency
	}
	if w.Timeout == 0 {
		w.Timeout = DefaultWebhookTimeout
	}
	if w.RetryInitial == 0 {
		w.RetryInitial = DefaultWebhookRetryInitial
	}
	if w.RetryMax == 0 {
		w.RetryMax = DefaultWebhookRetryMax
	}
	if w.MaxAge == 0 {
		w.MaxAge = DefaultWebhookMaxAge
	}
	c.Faults.defaults()
}

// Validate checks a config after Defaults.
func (c *Config) Validate() error {
	var problems []error
	if c.DataDir == "" {
		problems = append(problems, errors.New("the data directory is required"))
	}
	if c.SecretKey == "" {
		problems = append(problems, errors.New("the secret key is required"))
	}
	if c.PublicURL != "" {
		if err := checkURL(c.PublicURL); err != nil {
			problems = append(problems, fmt.Errorf("public URL: %w", err))
		}
	}
	seen := map[string]bool{}
	for _, u := range c.WebhookURLs {
		if err := checkURL(u); err != nil {
			problems = append(problems, fmt.Errorf("webhook URL %q: %w", u, err))
		}
		if seen[u] {
			problems = append(problems, fmt.Errorf("webhook URL %q given twice", u))
		}
		seen[u] = true
	}
	if len(c.WebhookURLs) > 0 && len(c.WebhookSecrets) == 0 {
		problems = append(problems, errors.New("webhook URLs need a webhook secret"))
	}
	for _, s := range c.WebhookSecrets {
		if s == "" {
			problems = append(problems, errors.New("a webhook secret is empty"))
		}
	}
	w := c.Webhook
	if w.Concurrency < 1 || w.Timeout <= 0 || w.RetryInitial <= 0 || w.RetryMax < w.RetryInitial || w.MaxAge <= 0 {
		problems = append(problems, fmt.Errorf("webhook: concurrency %d, timeout %v, retry %v..%v, max age %v: want concurrency ≥ 1, positive durations, initial ≤ max",
			w.Concurrency, w.Timeout, w.RetryInitial, w.RetryMax, w.MaxAge))
	}
	if c.IdempotencyTTL <= 0 {
		problems = append(problems, errors.New("the idempotency TTL must be positive"))
	}
	if c.MaxBody < 1024 {
		problems = append(problems, errors.New("the body limit must be at least 1 KiB"))
	}
	if err := c.Faults.Validate(); err != nil {
		problems = append(problems, err)
	}
	if err := errors.Join(problems...); err != nil {
		return fmt.Errorf("psp config: %w", err)
	}
	return nil
}

func checkURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return err
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return errors.New("want http(s)://host[:port][/path]")
	}
	return nil
}
