package natsapi

import (
	"context"
	"encoding/json"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/internal/keyring"
	"github.com/ticketing/ticketing/internal/microerr"
	"github.com/ticketing/ticketing/services/admission"
)

// Server is what the admission service needs.
type Server struct {
	Signer *admission.Signer
	Keys   *keyring.KeyRing
	// Allow checks that subject may be admitted to eventID: it returns an
	// errs error (NotFound for an unknown or queue-off event, Invalid for
	// a bad subject, Conflict with ReasonNotOnSale or ReasonSoldOut for an
	// event not on sale) or nil.
	Allow func(ctx context.Context, eventID, subject string) error
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Serve registers the "admission" micro service on nc (queue group
// "admission": every core node signs with the shared keys). Signer, Keys
// and Allow are required.
func Serve(nc *nats.Conn, srv Server) (micro.Service, error) {
	if srv.Signer == nil || srv.Keys == nil || srv.Allow == nil {
		return nil, errs.E("admission.serve", errs.Invalid, "the admission service needs a signer, keys and an Allow check")
	}
	now := srv.Now
	if now == nil {
		now = time.Now
	}
	s, err := micro.AddService(nc, micro.Config{
		Name: ServiceName, Version: "1.0.0", Description: "admission tokens: issue, public keys", QueueGroup: ServiceName,
	})
	if err != nil {
		return nil, err
	}
	err = s.AddEndpoint("issue", micro.HandlerFunc(func(req micro.Request) {
		const op = "admission.issue"
		var r IssueRequest
		if len(req.Data()) > 4096 {
			_ = microerr.Respond(req, errs.E(op, errs.TooLarge, "request too large"))
			return
		}
		if err := json.Unmarshal(req.Data(), &r); err != nil {
			_ = microerr.Respond(req, errs.E(op, errs.Invalid, "malformed request: "+err.Error()))
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := srv.Allow(ctx, r.EventID, r.Subject)
		cancel()
		if err != nil {
			_ = microerr.Respond(req, err)
			return
		}
		tok, claims, err := srv.Signer.Issue(r.EventID, r.Subject, now())
		if err != nil {
			_ = microerr.Respond(req, err)
			return
		}
		_ = req.RespondJSON(Issued{Token: tok, JTI: claims.ID, ExpiresAt: claims.Expiry})
	}), micro.WithEndpointSubject(SubjIssue))
	if err == nil {
		err = s.AddEndpoint("keys", micro.HandlerFunc(func(req micro.Request) {
			_ = req.RespondJSON(srv.Keys.PublicJWKS())
		}), micro.WithEndpointSubject(SubjKeys))
	}
	if err != nil {
		_ = s.Stop()
		return nil, err
	}
	return s, nil
}
