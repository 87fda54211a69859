// Package natsapi serves the catalog's administrative commands as a NATS
// micro service ("catalog", subjects "catalog.admin.<op>") and calls them.
// Every command carries the caller's credential, checked by the service (an
// admin's access token, or the core's admin token), so that an edge
// forwards admin requests without holding authority of its own.
package natsapi

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/internal/microerr"
	"github.com/ticketing/ticketing/services/catalog"
)

// Subjects of the admin commands.
const (
	SubjCreateVenue = "catalog.admin.create_venue"
	SubjCreateEvent = "catalog.admin.create_event"
)

type venueRequest struct {
	Token string        `json:"token"`
	Venue catalog.Venue `json:"venue"`
}

type eventRequest struct {
	Token string        `json:"token"`
	Event catalog.Event `json:"event"`
}

// Serve registers the catalog service on nc. A command is authorized by
// adminToken (must be non-empty), or by a token that admin, when not nil,
// accepts (an admin's access token, forwarded by an edge).
func Serve(nc *nats.Conn, svc *catalog.Service, adminToken string, admin func(token string) bool) (micro.Service, error) {
	s, err := micro.AddService(nc, micro.Config{
		Name: "catalog", Version: "1.0.0", Description: "catalog administration", QueueGroup: "catalog",
	})
	if err != nil {
		return nil, err
	}
	authorized := func(token string) bool {
		if token != "" && subtle.ConstantTimeCompare([]byte(token), []byte(adminToken)) == 1 {
			return true
		}
		return token != "" && admin != nil && admin(token)
	}
	handle := func(op string, decode func([]byte) (string, func(context.Context) error, error)) micro.HandlerFunc {
		return func(req micro.Request) {
			token, run, err := decode(req.Data())
			switch {
			case err != nil:
				err = errs.E(op, errs.Invalid, "malformed request: "+err.Error())
			case !authorized(token):
				err = errs.E(op, errs.Unauthorized, "an admin's access token is required")
			default:
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				err = run(ctx)
				cancel()
			}
			if err != nil {
				_ = microerr.Respond(req, err)
				return
			}
			_ = req.Respond([]byte(`{}`))
		}
	}
	err = s.AddEndpoint("create_venue", handle("catalog.create_venue", func(b []byte) (string, func(context.Context) error, error) {
		var r venueRequest
		err := json.Unmarshal(b, &r)
		return r.Token, func(ctx context.Context) error { return svc.CreateVenue(ctx, r.Venue) }, err
	}), micro.WithEndpointSubject(SubjCreateVenue))
	if err == nil {
		err = s.AddEndpoint("create_event", handle("catalog.create_event", func(b []byte) (string, func(context.Context) error, error) {
			var r eventRequest
			err := json.Unmarshal(b, &r)
			return r.Token, func(ctx context.Context) error { return svc.CreateEvent(ctx, r.Event) }, err
		}), micro.WithEndpointSubject(SubjCreateEvent))
	}
	if err != nil {
		_ = s.Stop()
		return nil, err
	}
	return s, nil
}

// Client sends admin commands.
type Client struct {
	NC *nats.Conn
}

// CreateVenue asks the catalog service to create a venue.
func (c *Client) CreateVenue(ctx context.Context, token string, v catalog.Venue) error {
	return c.call(ctx, SubjCreateVenue, venueRequest{Token: token, Venue: v})
}

// CreateEvent asks the catalog service to create an event.
func (c *Client) CreateEvent(ctx context.Context, token string, e catalog.Event) error {
	return c.call(ctx, SubjCreateEvent, eventRequest{Token: token, Event: e})
}

func (c *Client) call(ctx context.Context, subj string, req any) error {
	b, err := json.Marshal(req)
	if err != nil {
		return errs.E("catalog.admin", errs.Invalid, err)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	m, err := c.NC.RequestWithContext(ctx, subj, b)
	if err != nil {
		return errs.E("catalog.admin", errs.Unavailable, "the catalog service is not reachable; try again", err)
	}
	return microerr.Decode("catalog.admin", m)
}
