package payment

import (
	"context"
	"time"
)

// Gateway is a card payment gateway (a PSP) as the payment service uses
// it: one payment intent per order, created under an idempotency key, so
// that a retried create finds the same intent. Implementations speak to
// the gateway over the network (services/payment/gateway speaks the
// Stripe-like API of the simulator, `ticketing psp`). Every method is safe
// for concurrent use; a cancelled context abandons the call, whose effect
// at the gateway is then unknown (retry with the same idempotency key).
//
// Errors carry kinds (internal/errs): a declined card is not an error but
// an intent whose LastError says why; errs.Unavailable is a gateway that
// did not answer or answered 5xx (the outcome is unknown: retry with the
// same key, or read the intent); errs.Invalid a request the gateway
// refused; errs.NotFound an unknown intent.
type Gateway interface {
	CreateIntent(ctx context.Context, r IntentRequest) (Intent, error)
	// ConfirmIntent authorizes (and, with automatic capture, captures)
	// the intent with a card.
	ConfirmIntent(ctx context.Context, id string, r ConfirmRequest) (Intent, error)
	CaptureIntent(ctx context.Context, id, idempotencyKey string) (Intent, error)
	// CancelIntent voids an intent that has not succeeded.
	CancelIntent(ctx context.Context, id, idempotencyKey string) (Intent, error)
	GetIntent(ctx context.Context, id string) (Intent, error)
	Refund(ctx context.Context, r RefundRequest) (Refund, error)
	// VerifyWebhook checks a webhook's signature header against its body
	// (and its timestamp against the tolerance) and decodes it.
	VerifyWebhook(body []byte, signature string, now time.Time) (WebhookEvent, error)
}

// ReasonIntentUnexpectedState refines errs.Invalid from the gateway: the
// intent's status does not allow the operation (a confirm of an intent
// that succeeded or was canceled).
const ReasonIntentUnexpectedState = "payment_intent_unexpected_state"

// IntentStatus is a payment intent's status, as the gateway names it.
type IntentStatus string

// The statuses of a payment intent.
const (
	RequiresPaymentMethod IntentStatus = "requires_payment_method"
	RequiresConfirmation  IntentStatus = "requires_confirmation"
	RequiresAction        IntentStatus = "requires_action"
	Processing            IntentStatus = "processing"
	RequiresCapture       IntentStatus = "requires_capture"
	Succeeded             IntentStatus = "succeeded"
	Canceled              IntentStatus = "canceled"
)

// IntentRequest creates a payment intent. Amount is in minor units.
type IntentRequest struct {
	Amount         int64
	Currency       string // ISO 4217, any case
	OrderID        string // metadata[order_id]
	CaptureManual  bool   // capture_method=manual; default automatic
	IdempotencyKey string
}

// Card is what the gateway needs of a card. It exists only inside the
// payment service (opened from the vault for one confirm).
type Card struct {
	Number            string
	ExpMonth, ExpYear int
	CVC               string
}

// ConfirmRequest confirms an intent with a card; ReturnURL is where the
// buyer's browser comes back to after a 3-D Secure challenge.
type ConfirmRequest struct {
	Card           Card
	ReturnURL      string
	IdempotencyKey string
}

// Intent is a payment intent as the gateway reports it.
type Intent struct {
	ID             string       `json:"id"`
	Status         IntentStatus `json:"status"`
	Amount         int64        `json:"amount"`
	AmountReceived int64        `json:"amount_received"` // captured
	AmountRefunded int64        `json:"amount_refunded"`
	Currency       string       `json:"currency"`
	CaptureManual  bool         `json:"capture_manual,omitempty"`
	OrderID        string       `json:"order_id,omitempty"`
	// RedirectURL is the 3-D Secure challenge while Status is
	// RequiresAction.
	RedirectURL string `json:"redirect_url,omitempty"`
	// LastError is why the last confirm failed (the intent is back to
	// RequiresPaymentMethod).
	LastError *Decline  `json:"last_error,omitempty"`
	ChargeID  string    `json:"charge_id,omitempty"`
	Created   time.Time `json:"created"`
}

// Decline says why a card was refused.
type Decline struct {
	Code        string `json:"code"`                   // card_declined, expired_card, processing_error, …
	DeclineCode string `json:"decline_code,omitempty"` // insufficient_funds, generic_decline, …
	Message     string `json:"message"`
}

// RefundRequest refunds all (Amount 0) or part of an intent's capture.
type RefundRequest struct {
	IntentID       string
	Amount         int64
	IdempotencyKey string
}

// Refund is a refund as the gateway reports it.
type Refund struct {
	ID       string `json:"id"`
	IntentID string `json:"intent_id"`
	Amount   int64  `json:"amount"`
	Currency string `json:"currency"`
	Status   string `json:"status"` // succeeded, pending, failed
}

// WebhookEvent is a verified webhook: its id (the gateway's event id, the
// key of its idempotent handling), type, and the object it carries.
type WebhookEvent struct {
	ID      string
	Type    string // payment_intent.succeeded, charge.refunded, …
	Created time.Time
	Intent  *Intent // for payment_intent.* events
	Refund  *Refund // for charge.refunded: the refund
}
