// Package natsapi serves reporting's queries as a NATS micro service
// ("reporting", subject "reporting.event_report") and calls them: the
// edge's GET /v1/reports/events/{id} answers with Client.EventReport.
// Errors travel as internal/microerr answers and come back as errs errors
// of the same kind (Invalid, NotFound, Unavailable).
package natsapi

import (
	"context"
	"encoding/json"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/internal/microerr"
	"github.com/ticketing/ticketing/services/reporting"
)

// SubjEventReport is the subject of event report requests.
const SubjEventReport = "reporting.event_report"

// EventReportRequest asks for the report of one event.
type EventReportRequest struct {
	EventID string `json:"event_id"`
}

// Timeout bounds the store queries of one request. Default of Serve.
const Timeout = 10 * time.Second

// Serve registers the reporting service on nc; stop it with Stop.
func Serve(nc *nats.Conn, svc *reporting.Service) (micro.Service, error) {
	s, err := micro.AddService(nc, micro.Config{
		Name: "reporting", Version: "1.0.0", Description: "ticket sales reports", QueueGroup: "reporting",
	})
	if err != nil {
		return nil, errs.E("reporting.serve", errs.Unavailable, err)
	}
	err = s.AddEndpoint("event_report", micro.HandlerFunc(func(req micro.Request) {
		const op = "reporting.event_report"
		var r EventReportRequest
		if err := json.Unmarshal(req.Data(), &r); err != nil {
			_ = microerr.Respond(req, errs.E(op, errs.Invalid, "malformed request: "+err.Error()))
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), Timeout)
		defer cancel()
		rep, err := svc.EventReport(ctx, r.EventID)
		if err != nil {
			_ = microerr.Respond(req, err)
			return
		}
		_ = req.RespondJSON(rep)
	}), micro.WithEndpointSubject(SubjEventReport))
	if err != nil {
		_ = s.Stop()
		return nil, errs.E("reporting.serve", errs.Unavailable, err)
	}
	return s, nil
}

// Client calls the reporting service.
type Client struct {
	NC *nats.Conn
}

// EventReport returns the report of an event: errs.Invalid for a malformed
// id, errs.NotFound for an event without records, errs.Unavailable when
// no reporting service answers.
func (c *Client) EventReport(ctx context.Context, eventID string) (reporting.Report, error) {
	const op = "reporting.event_report"
	b, _ := json.Marshal(EventReportRequest{EventID: eventID})
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, Timeout+time.Second)
		defer cancel()
	}
	m, err := c.NC.RequestWithContext(ctx, SubjEventReport, b)
	if err != nil {
		return reporting.Report{}, errs.E(op, errs.Unavailable, "the reporting service is not reachable; try again", err)
	}
	if err := microerr.Decode(op, m); err != nil {
		return reporting.Report{}, err
	}
	var r reporting.Report
	if err := json.Unmarshal(m.Data, &r); err != nil {
		return reporting.Report{}, errs.E(op, errs.Other, "malformed answer", err)
	}
	return r, nil
}
