package gateway

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Config configures a Client. BaseURL and SecretKey are required;
// WebhookSecret is required to verify webhooks.
type Config struct {
	// BaseURL is the gateway's API root, e.g. http://127.0.0.1:12111 (the
	// simulator) — the paths /v1/… are appended.
	BaseURL string
	// SecretKey is sent as "Authorization: Bearer <key>".
	SecretKey string
	// WebhookSecret is the endpoint's signing secret (whsec_…).
	WebhookSecret string
	// Timeout bounds one call, connection included, when the context
	// has no earlier deadline. Default 15s.
	Timeout time.Duration
	// WebhookTolerance is how far a webhook's signed timestamp may be
	// from now. Default 300s (Stripe's).
	WebhookTolerance time.Duration
	// MaxIdleConnsPerHost is how many kept-alive connections to the
	// gateway the client keeps. Default 256: a payment service doing
	// thousands of calls a second opens no connection per call.
	MaxIdleConnsPerHost int
	// Transport, when set, replaces the tuned transport New makes.
	Transport http.RoundTripper
}

// The defaults.
const (
	DefaultTimeout             = 15 * time.Second
	DefaultWebhookTolerance    = 300 * time.Second
	DefaultMaxIdleConnsPerHost = 256
)

// Defaults fills zero fields.
func (c *Config) Defaults() {
	c.BaseURL = strings.TrimRight(c.BaseURL, "/")
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.WebhookTolerance == 0 {
		c.WebhookTolerance = DefaultWebhookTolerance
	}
	if c.MaxIdleConnsPerHost == 0 {
		c.MaxIdleConnsPerHost = DefaultMaxIdleConnsPerHost
	}
}

// Validate checks a config after Defaults.
func (c *Config) Validate() error {
	var problems []error
	if u, err := url.Parse(c.BaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		problems = append(problems, fmt.Errorf("base URL %q: want http(s)://host[:port]", c.BaseURL))
	}
	if c.SecretKey == "" {
		problems = append(problems, errors.New("the secret key is required"))
	}
	if c.Timeout < 0 || c.WebhookTolerance < 0 || c.MaxIdleConnsPerHost < 0 {
		problems = append(problems, errors.New("timeout, webhook tolerance and idle connections must not be negative"))
	}
	if err := errors.Join(problems...); err != nil {
		return fmt.Errorf("gateway config: %w", err)
	}
	return nil
}
