// Package gateway is the payment service's client of a Stripe-like
// payment gateway: it implements payment.Gateway over the API the
// simulator (services/payment/psp, `ticketing psp`) serves, with
// form-encoded requests and JSON answers.
//
// What holds:
//
//   - Every POST carries the caller's idempotency key (required), so a
//     call retried after an Unavailable error is answered as the first
//     was: the gateway stores its first answer. (A stored 5xx is
//     answered again too: after one, read the intent.)
//   - A declined card is not an error: ConfirmIntent returns the intent,
//     back in requires_payment_method, with LastError saying why.
//   - Errors carry kinds (internal/errs), mapped in one place (errorFor):
//     Unavailable for no answer, a timeout or a 5xx (the outcome is
//     unknown); Invalid for a refused request, with the gateway's code as
//     the reason (payment_intent_unexpected_state, amount_too_large,
//     charge_already_refunded, …); Mismatch and InFlight for the
//     idempotency errors; NotFound; Unauthorized for a wrong key;
//     TooMany for 429.
//   - Card numbers go in request bodies only: no error, log line or
//     answer of this package contains one.
//   - One tuned http.Transport keeps connections to the gateway alive
//     (MaxIdleConnsPerHost), for thousands of calls a second.
//   - VerifyWebhook checks Stripe-Signature in constant time against the
//     webhook secret, takes any of several v1 signatures (a secret being
//     rotated), and refuses a timestamp more than WebhookTolerance from
//     now.
package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/services/payment"
)

// Client is a payment.Gateway over HTTP. Safe for concurrent use.
type Client struct {
	cfg  Config
	http *http.Client
}

var _ payment.Gateway = (*Client)(nil)

// New makes a client.
func New(cfg Config) (*Client, error) {
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	rt := cfg.Transport
	if rt == nil {
		rt = NewTransport(cfg.MaxIdleConnsPerHost)
	}
	return &Client{cfg: cfg, http: &http.Client{Transport: rt,
		// The gateway answers; it does not redirect the API.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}, nil
}

// NewTransport is the transport New makes: keep-alives, idle connections
// enough for the load, bounded dials and handshakes.
func NewTransport(maxIdlePerHost int) *http.Transport {
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          4 * maxIdlePerHost,
		MaxIdleConnsPerHost:   maxIdlePerHost,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   5 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
}

// Close closes the idle connections.
func (c *Client) Close() { c.http.CloseIdleConnections() }

// CreateIntent creates an intent (not confirmed).
func (c *Client) CreateIntent(ctx context.Context, r payment.IntentRequest) (payment.Intent, error) {
	const op = "gateway.create_intent"
	if r.Amount <= 0 || len(r.Currency) != 3 {
		return payment.Intent{}, errs.E(op, errs.Invalid, "an intent needs a positive amount and a three-letter currency").WithReason("parameter_invalid")
	}
	f := url.Values{}
	f.Set("amount", strconv.FormatInt(r.Amount, 10))
	f.Set("currency", strings.ToLower(r.Currency))
	f.Set("capture_method", "automatic")
	if r.CaptureManual {
		f.Set("capture_method", "manual")
	}
	if r.OrderID != "" {
		f.Set("metadata[order_id]", r.OrderID)
	}
	return c.intent(ctx, op, "/v1/payment_intents", f, r.IdempotencyKey)
}

// ConfirmIntent confirms an intent with a card. A declined card returns
// the intent (RequiresPaymentMethod, LastError set) and no error; a card
// that needs 3-D Secure returns it in RequiresAction with RedirectURL.
func (c *Client) ConfirmIntent(ctx context.Context, id string, r payment.ConfirmRequest) (payment.Intent, error) {
	const op = "gateway.confirm_intent"
	f := url.Values{}
	f.Set("payment_method_data[type]", "card")
	f.Set("payment_method_data[card][number]", r.Card.Number)
	f.Set("payment_method_data[card][exp_month]", strconv.Itoa(r.Card.ExpMonth))
	f.Set("payment_method_data[card][exp_year]", strconv.Itoa(r.Card.ExpYear))
	f.Set("payment_method_data[card][cvc]", r.Card.CVC)
	if r.ReturnURL != "" {
		f.Set("return_url", r.ReturnURL)
	}
	return c.intent(ctx, op, "/v1/payment_intents/"+url.PathEscape(id)+"/confirm", f, r.IdempotencyKey)
}

// CaptureIntent captures all an intent authorized (manual capture).
func (c *Client) CaptureIntent(ctx context.Context, id, idempotencyKey string) (payment.Intent, error) {
	return c.intent(ctx, "gateway.capture_intent", "/v1/payment_intents/"+url.PathEscape(id)+"/capture", url.Values{}, idempotencyKey)
}

// CancelIntent voids an intent that has not succeeded.
func (c *Client) CancelIntent(ctx context.Context, id, idempotencyKey string) (payment.Intent, error) {
	return c.intent(ctx, "gateway.cancel_intent", "/v1/payment_intents/"+url.PathEscape(id)+"/cancel", url.Values{}, idempotencyKey)
}

// GetIntent reads an intent.
func (c *Client) GetIntent(ctx context.Context, id string) (payment.Intent, error) {
	const op = "gateway.get_intent"
	body, err := c.do(ctx, op, http.MethodGet, "/v1/payment_intents/"+url.PathEscape(id), nil, "")
	if err != nil {
		return payment.Intent{}, err
	}
	return decodeIntent(op, body)
}

// Refund refunds all (Amount 0) or part of what an intent captured.
func (c *Client) Refund(ctx context.Context, r payment.RefundRequest) (payment.Refund, error) {
	const op = "gateway.refund"
	if r.Amount < 0 {
		return payment.Refund{}, errs.E(op, errs.Invalid, "a refund's amount is not negative").WithReason("parameter_invalid")
	}
	f := url.Values{}
	f.Set("payment_intent", r.IntentID)
	if r.Amount > 0 {
		f.Set("amount", strconv.FormatInt(r.Amount, 10))
	}
	body, err := c.do(ctx, op, http.MethodPost, "/v1/refunds", f, r.IdempotencyKey)
	if err != nil {
		return payment.Refund{}, err
	}
	var w wireRefund
	if err := json.Unmarshal(body, &w); err != nil || w.ID == "" {
		return payment.Refund{}, errs.E(op, errs.Unavailable, "the gateway's answer is not a refund", err)
	}
	return w.refund(), nil
}

// intent POSTs form to path and reads the intent it answers, including
// the one a card error (402) carries.
func (c *Client) intent(ctx context.Context, op, path string, f url.Values, key string) (payment.Intent, error) {
	body, err := c.do(ctx, op, http.MethodPost, path, f, key)
	var d *declined
	switch {
	case err == nil:
		return decodeIntent(op, body)
	case errors.As(err, &d):
		return d.intent.intent(), nil
	}
	return payment.Intent{}, err
}

func decodeIntent(op string, body []byte) (payment.Intent, error) {
	var w wireIntent
	if err := json.Unmarshal(body, &w); err != nil || w.ID == "" {
		return payment.Intent{}, errs.E(op, errs.Unavailable, "the gateway's answer is not a payment intent", err)
	}
	return w.intent(), nil
}

// maxAnswer bounds an answer's body.
const maxAnswer = 1 << 20

// do makes one call and returns a 2xx answer's body, or the error the
// answer maps to (errorFor).
func (c *Client) do(ctx context.Context, op, method, path string, f url.Values, key string) ([]byte, error) {
	if method == http.MethodPost && key == "" {
		return nil, errs.E(op, errs.Invalid, "every POST to the gateway needs an idempotency key").WithReason("idempotency_key_required")
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	var rd io.Reader
	if f != nil {
		rd = strings.NewReader(f.Encode())
	}
	req, err := http.NewRequestWithContext(ctx, method, c.cfg.BaseURL+path, rd)
	if err != nil {
		return nil, errs.E(op, errs.Invalid, "bad request", err)
	}
	req.Header.Set("Authorization", "Bearer "+c.cfg.SecretKey)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "ticketing-payment/1")
	if f != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if key != "" {
		// net/http also takes this header as leave to retry the request
		// on a kept-alive connection the server had closed.
		req.Header.Set("Idempotency-Key", key)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, errs.E(op, errs.Unavailable, "the gateway did not answer", scrub(err))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return nil, errs.E(op, errs.Unavailable, "the gateway's answer was cut short", scrub(err))
	}
	if resp.StatusCode/100 == 2 {
		return body, nil
	}
	return nil, errorFor(op, resp.StatusCode, body)
}

// scrub keeps the cause of a transport error without its URL's query
// (there is none in the API, but nothing of a request's parameters may
// reach an error).
func scrub(err error) error {
	if ue, ok := err.(*url.Error); ok {
		return &url.Error{Op: ue.Op, URL: strings.SplitN(ue.URL, "?", 2)[0], Err: ue.Err}
	}
	return err
}

// declined is the error of a 402 card error that carries its intent.
type declined struct {
	intent wireIntent
	err    error
}

func (d *declined) Error() string { return d.err.Error() }
func (d *declined) Unwrap() error { return d.err }

// errorFor maps an answer that is not 2xx to an error: the one place
// where statuses and the gateway's error types become kinds.
func errorFor(op string, status int, body []byte) error {
	var eb struct {
		Error struct {
			Type          string      `json:"type"`
			Code          string      `json:"code"`
			DeclineCode   string      `json:"decline_code"`
			Message       string      `json:"message"`
			PaymentIntent *wireIntent `json:"payment_intent"`
		} `json:"error"`
	}
	_ = json.Unmarshal(body, &eb)
	e := eb.Error
	msg := e.Message
	if msg == "" {
		msg = "the gateway answered " + strconv.Itoa(status)
	}
	reason := e.Code
	var kind errs.Kind
	switch {
	case status == http.StatusPaymentRequired && e.PaymentIntent != nil && e.PaymentIntent.ID != "":
		return &declined{intent: *e.PaymentIntent, err: errs.E(op, errs.Invalid, msg).WithReason(e.Code)}
	case status >= 500:
		kind = errs.Unavailable
	case e.Type == "idempotency_error" && status == http.StatusConflict:
		kind = errs.InFlight
	case e.Type == "idempotency_error":
		kind = errs.Mismatch
	case status == http.StatusUnauthorized:
		kind = errs.Unauthorized
	case status == http.StatusForbidden:
		kind = errs.Forbidden
	case status == http.StatusNotFound:
		kind = errs.NotFound
	case status == http.StatusTooManyRequests:
		kind = errs.TooMany
	case status == http.StatusConflict:
		kind = errs.Conflict
	default:
		kind = errs.Invalid
	}
	if reason == "" {
		reason = e.Type
	}
	return errs.E(op, kind, msg).WithReason(reason)
}

// wireIntent is a payment intent as the gateway answers it.
type wireIntent struct {
	ID               string            `json:"id"`
	Amount           int64             `json:"amount"`
	AmountReceived   int64             `json:"amount_received"`
	AmountRefunded   int64             `json:"amount_refunded"`
	Currency         string            `json:"currency"`
	Status           string            `json:"status"`
	CaptureMethod    string            `json:"capture_method"`
	Metadata         map[string]string `json:"metadata"`
	LastPaymentError *struct {
		Code        string `json:"code"`
		DeclineCode string `json:"decline_code"`
		Message     string `json:"message"`
	} `json:"last_payment_error"`
	NextAction *struct {
		Type          string `json:"type"`
		RedirectToURL *struct {
			URL string `json:"url"`
		} `json:"redirect_to_url"`
	} `json:"next_action"`
	LatestCharge string `json:"latest_charge"`
	Created      int64  `json:"created"`
}

func (w *wireIntent) intent() payment.Intent {
	in := payment.Intent{ID: w.ID, Status: payment.IntentStatus(w.Status), Amount: w.Amount, AmountReceived: w.AmountReceived,
		AmountRefunded: w.AmountRefunded, Currency: w.Currency, CaptureManual: w.CaptureMethod == "manual",
		OrderID: w.Metadata["order_id"], ChargeID: w.LatestCharge, Created: time.Unix(w.Created, 0).UTC()}
	if e := w.LastPaymentError; e != nil {
		in.LastError = &payment.Decline{Code: e.Code, DeclineCode: e.DeclineCode, Message: e.Message}
	}
	if a := w.NextAction; a != nil && a.Type == "redirect_to_url" && a.RedirectToURL != nil {
		in.RedirectURL = a.RedirectToURL.URL
	}
	return in
}

// wireRefund is a refund as the gateway answers it.
type wireRefund struct {
	ID            string `json:"id"`
	Amount        int64  `json:"amount"`
	Currency      string `json:"currency"`
	PaymentIntent string `json:"payment_intent"`
	Status        string `json:"status"`
}

func (w *wireRefund) refund() payment.Refund {
	return payment.Refund{ID: w.ID, IntentID: w.PaymentIntent, Amount: w.Amount, Currency: w.Currency, Status: w.Status}
}
