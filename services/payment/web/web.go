// Package web is the payment service's HTTP side, the only place a card
// number enters the platform: the card-entry page that the checkout page
// embeds in a frame (GET /card), the tokenization endpoint it posts the
// card to (POST /v1/cards: the card is sealed in the vault and the answer
// is its token with the brand, last four digits and expiry), and the
// gateway's webhooks (POST /v1/webhooks/gateway).
//
// The page is served with a Content-Security-Policy whose frame-ancestors
// are the checkout origins (Config.Origins), and it hands the token to
// its parent with postMessage to that origin only. Request bodies are
// never logged; errors name the field, never its value.
package web

import (
	"context"
	_ "embed"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/services/payment"
	"github.com/ticketing/ticketing/services/payment/vault"
)

//go:embed card.html
var cardPage []byte

//go:embed card.js
var cardScript []byte

// Config configures the handler.
type Config struct {
	// Origins are the checkout pages' origins (scheme://host[:port]) that
	// may frame the card page and receive its tokens. Required.
	Origins []string
	// MaxBody bounds a request body. Default 16 KiB (webhooks carry an
	// intent).
	MaxBody int64
	// Timeout bounds a request's work. Default 30s.
	Timeout time.Duration
}

// Defaults fills zero fields.
func (c *Config) Defaults() {
	if c.MaxBody == 0 {
		c.MaxBody = 16 << 10
	}
	if c.Timeout == 0 {
		c.Timeout = 30 * time.Second
	}
}

// Validate checks the config after Defaults.
func (c *Config) Validate() error {
	if len(c.Origins) == 0 {
		return errs.E("payment.web", errs.Invalid, "the card page needs the checkout origins that may frame it")
	}
	for _, o := range c.Origins {
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Path != "" {
			return errs.Errorf("payment.web", errs.Invalid, "origin %q is not scheme://host[:port]", o)
		}
	}
	return nil
}

// Sealer seals a card in the vault.
type Sealer interface {
	Seal(ctx context.Context, c payment.Card) (vault.Token, error)
}

// Webhooks handles a gateway's webhook.
type Webhooks interface {
	Webhook(ctx context.Context, body []byte, signature string) error
}

// New returns the payment service's HTTP handler.
func New(cfg Config, cards Sealer, hooks Webhooks, log *slog.Logger) (http.Handler, error) {
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	h := &handler{cfg: cfg, cards: cards, hooks: hooks, log: log}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /card", h.page)
	mux.HandleFunc("GET /card.js", h.script)
	mux.HandleFunc("POST /v1/cards", h.tokenize)
	mux.HandleFunc("POST /v1/webhooks/gateway", h.webhook)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, `{"status":"ok"}`) })
	return mux, nil
}

type handler struct {
	cfg   Config
	cards Sealer
	hooks Webhooks
	log   *slog.Logger
}

func (h *handler) security(w http.ResponseWriter) {
	w.Header().Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'unsafe-inline'; form-action 'none'; base-uri 'none'; frame-ancestors "+strings.Join(h.cfg.Origins, " "))
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Referrer-Policy", "no-referrer")
	w.Header().Set("Cache-Control", "no-store")
}

// page serves the card form. Its parent's origin comes as ?origin=, and
// must be one of the configured ones: the page posts tokens to it only.
func (h *handler) page(w http.ResponseWriter, r *http.Request) {
	h.security(w)
	if o := r.URL.Query().Get("origin"); !slices.Contains(h.cfg.Origins, o) {
		writeError(w, errs.E("payment.card_page", errs.Forbidden, "this page may only be embedded by the checkout"))
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write(cardPage)
}

func (h *handler) script(w http.ResponseWriter, _ *http.Request) {
	h.security(w)
	w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
	_, _ = w.Write(cardScript)
}

// TokenView is the answer of POST /v1/cards.
type TokenView struct {
	ID          string `json:"id"`
	Brand       string `json:"brand"`
	Last4       string `json:"last4"`
	ExpMonth    int    `json:"exp_month"`
	ExpYear     int    `json:"exp_year"`
	Fingerprint string `json:"fingerprint"`
}

func (h *handler) tokenize(w http.ResponseWriter, r *http.Request) {
	h.security(w)
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.cfg.MaxBody))
	if err != nil {
		writeError(w, errs.E("payment.tokenize", errs.TooLarge, "the request is too large"))
		return
	}
	card, err := vault.ParseCardRequest(r.Header.Get("Content-Type"), body)
	if err != nil {
		writeError(w, err)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), h.cfg.Timeout)
	defer cancel()
	t, err := h.cards.Seal(ctx, card)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, TokenView{ID: t.ID, Brand: string(t.Brand), Last4: t.Last4, ExpMonth: t.ExpMonth, ExpYear: t.ExpYear, Fingerprint: t.Fingerprint})
}

// webhook answers 2xx once the event is recorded, 400 for a signature
// that does not verify, 5xx otherwise (the gateway retries).
func (h *handler) webhook(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.cfg.MaxBody))
	if err != nil {
		writeError(w, errs.E("payment.webhook", errs.TooLarge, "the request is too large"))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), h.cfg.Timeout)
	defer cancel()
	if err := h.hooks.Webhook(ctx, body, r.Header.Get("Stripe-Signature")); err != nil {
		if !errs.Is(errs.Invalid, err) && !errs.Is(errs.Unauthorized, err) {
			h.log.Warn("webhook not handled; the gateway will retry", "err", err)
		}
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]bool{"received": true})
}

func writeError(w http.ResponseWriter, err error) {
	type body struct {
		Code    string `json:"code"`
		Reason  string `json:"reason,omitempty"`
		Message string `json:"message"`
	}
	msg := errs.Message(err)
	if errs.KindOf(err) == errs.Other {
		msg = "internal error"
	}
	writeJSON(w, errs.KindOf(err).HTTPStatus(), map[string]body{"error": {Code: errs.KindOf(err).Code(), Reason: errs.ReasonOf(err), Message: msg}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
