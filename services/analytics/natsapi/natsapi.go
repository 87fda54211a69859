// Package natsapi serves analytics funnels as the NATS micro service
// "analytics" (subject "analytics.funnel", queue group "analytics") and
// calls it.
package natsapi

import (
	"context"
	"encoding/json"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/internal/microerr"
	"github.com/ticketing/ticketing/services/analytics"
)

// SubjFunnel is the subject of funnel requests.
const SubjFunnel = "analytics.funnel"

// FunnelRequest asks for one event's funnel.
type FunnelRequest struct {
	EventID string `json:"event_id"`
}

// Reader is what the service reads funnels from (an analytics.Store).
type Reader interface {
	Funnel(ctx context.Context, eventID string) (analytics.Funnel, error)
}

// Serve registers the service on nc. Stop the returned service first in
// shutdown.
func Serve(nc *nats.Conn, r Reader) (micro.Service, error) {
	s, err := micro.AddService(nc, micro.Config{
		Name: "analytics", Version: "1.0.0", Description: "on-sale funnels per event", QueueGroup: "analytics",
	})
	if err != nil {
		return nil, err
	}
	err = s.AddEndpoint("funnel", micro.HandlerFunc(func(req micro.Request) {
		const op = "analytics.funnel"
		var fr FunnelRequest
		if err := json.Unmarshal(req.Data(), &fr); err != nil {
			_ = microerr.Respond(req, errs.E(op, errs.Invalid, "malformed request: "+err.Error()))
			return
		}
		if fr.EventID == "" || len(fr.EventID) > analytics.MaxEventIDLen {
			_ = microerr.Respond(req, errs.Errorf(op, errs.Invalid, "event_id must have 1 to %d bytes", analytics.MaxEventIDLen))
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		f, err := r.Funnel(ctx, fr.EventID)
		if err != nil {
			_ = microerr.Respond(req, err)
			return
		}
		_ = req.RespondJSON(f)
	}), micro.WithEndpointSubject(SubjFunnel))
	if err != nil {
		_ = s.Stop()
		return nil, err
	}
	return s, nil
}

// Client calls the service.
type Client struct {
	NC *nats.Conn
	// Timeout bounds a call when ctx has no earlier deadline. Default 5s.
	Timeout time.Duration
}

// Funnel returns an event's funnel; errs.NotFound when nothing was counted
// for it, errs.Unavailable when no service answers.
func (c *Client) Funnel(ctx context.Context, eventID string) (analytics.Funnel, error) {
	const op = "analytics.funnel"
	b, _ := json.Marshal(FunnelRequest{EventID: eventID})
	to := c.Timeout
	if to == 0 {
		to = 5 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, to)
	defer cancel()
	m, err := c.NC.RequestWithContext(ctx, SubjFunnel, b)
	if err != nil {
		return analytics.Funnel{}, errs.E(op, errs.Unavailable, "the analytics service is not reachable; try again", err)
	}
	if err := microerr.Decode(op, m); err != nil {
		return analytics.Funnel{}, err
	}
	var f analytics.Funnel
	if err := json.Unmarshal(m.Data, &f); err != nil {
		return analytics.Funnel{}, errs.E(op, errs.Other, "malformed answer", err)
	}
	if f.TimeToSellOutSeconds != nil {
		d := time.Duration(*f.TimeToSellOutSeconds * float64(time.Second))
		f.TimeToSellOut = &d
	}
	return f, nil
}
