// Package natsapi is the NATS protocol of admission tokens between edges
// and the core: the core's micro service ("admission": admission.issue signs
// a token for an admitted ticket, admission.keys serves the public keys as
// an RFC 8037 JWKS) and the Client edges use. Errors travel as NATS micro
// service error headers carrying errs kinds (internal/microerr).
package natsapi

import (
	"context"
	"encoding/json"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/ticketing/ticketing/internal/keyring"
	"github.com/ticketing/ticketing/internal/microerr"
)

// Subjects and the service name.
const (
	ServiceName = "admission"
	SubjIssue   = "admission.issue"
	SubjKeys    = "admission.keys"
)

// Reasons refining the errs.Conflict refusals of admission.issue.
const (
	// ReasonNotOnSale: the event's sale has not started (before on_sale_at).
	ReasonNotOnSale = "not_on_sale"
	// ReasonSoldOut: the waiting room says the event is sold out.
	ReasonSoldOut = "sold_out"
)

// IssueRequest asks for a token admitting Subject (the user's queue ticket
// id in hex, never the raw session) to an event.
type IssueRequest struct {
	EventID string `json:"event_id"`
	Subject string `json:"subject"`
}

// Issued is a signed token.
type Issued struct {
	Token     string    `json:"token"`
	JTI       string    `json:"jti"`
	ExpiresAt time.Time `json:"expires_at"`
}

// Client is the edge's side. Safe for concurrent use.
type Client struct {
	NC *nats.Conn
	// Timeout bounds one request when the context has no earlier deadline.
	// Default 5s.
	Timeout time.Duration
}

// Issue asks the core to sign a token for subject at eventID. An unknown
// event or one whose queue is off is errs.NotFound; a bad subject
// errs.Invalid; a core that does not answer errs.Unavailable.
func (c *Client) Issue(ctx context.Context, eventID, subject string) (token, jti string, expires time.Time, err error) {
	var out Issued
	if err := c.call(ctx, "admission.issue", SubjIssue, IssueRequest{EventID: eventID, Subject: subject}, &out); err != nil {
		return "", "", time.Time{}, err
	}
	return out.Token, out.JTI, out.ExpiresAt, nil
}

// Keys fetches the public verification keys.
func (c *Client) Keys(ctx context.Context) (*keyring.PublicKeys, error) {
	_, keys, err := c.JWKS(ctx)
	return keys, err
}

// JWKS fetches the public verification keys and returns them both as
// served (for the well-known endpoint) and parsed.
func (c *Client) JWKS(ctx context.Context) ([]byte, *keyring.PublicKeys, error) {
	var raw json.RawMessage
	if err := c.call(ctx, "admission.keys", SubjKeys, struct{}{}, &raw); err != nil {
		return nil, nil, err
	}
	keys, err := keyring.ParseJWKS(raw)
	if err != nil {
		return nil, nil, err
	}
	return raw, keys, nil
}

func (c *Client) call(ctx context.Context, op, subj string, req, resp any) error {
	return microerr.Call(ctx, c.NC, c.Timeout, "admission", op, subj, req, resp)
}
