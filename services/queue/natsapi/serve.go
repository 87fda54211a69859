package natsapi

import (
	"context"
	"encoding/json"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/internal/microerr"
)

// Service is what the core answers. Errors are errs errors; an unknown or
// queue-off event is errs.NotFound.
type Service interface {
	Config(ctx context.Context, eventID string) (Config, error)
	PreQueue(ctx context.Context, chunk PreQueueChunk) error
	// Draw answers a page of the draw record; the request is normalized
	// (DrawRequest.Normalize) before.
	Draw(ctx context.Context, r DrawRequest) (DrawRecord, error)
}

// maxRequest bounds a request body: a full pre-queue chunk is about
// 35 bytes per ticket.
const maxRequest = 1 << 20

// Serve registers the "queue" micro service on nc (queue group "queue":
// every core node answers from shared state).
func Serve(nc *nats.Conn, svc Service) (micro.Service, error) {
	s, err := micro.AddService(nc, micro.Config{
		Name: ServiceName, Version: "1.0.0", Description: "waiting room: setup, pre-queues, draw records", QueueGroup: ServiceName,
	})
	if err != nil {
		return nil, err
	}
	handle := func(op string, run func(ctx context.Context, body []byte) (any, error)) micro.HandlerFunc {
		return func(req micro.Request) {
			var out any
			var err error
			if len(req.Data()) > maxRequest {
				err = errs.Errorf(op, errs.TooLarge, "request larger than %d bytes", maxRequest)
			} else {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				out, err = run(ctx, req.Data())
				cancel()
			}
			if err != nil {
				_ = microerr.Respond(req, err)
				return
			}
			_ = req.RespondJSON(out)
		}
	}
	decode := func(op string, b []byte, v any) error {
		if err := json.Unmarshal(b, v); err != nil {
			return errs.E(op, errs.Invalid, "malformed request: "+err.Error())
		}
		return nil
	}
	err = s.AddEndpoint("config", handle("queue.config", func(ctx context.Context, b []byte) (any, error) {
		var r EventRequest
		if err := decode("queue.config", b, &r); err != nil {
			return nil, err
		}
		return svc.Config(ctx, r.EventID)
	}), micro.WithEndpointSubject(SubjConfig))
	if err == nil {
		err = s.AddEndpoint("prequeue", handle("queue.prequeue", func(ctx context.Context, b []byte) (any, error) {
			var r PreQueueChunk
			if err := decode("queue.prequeue", b, &r); err != nil {
				return nil, err
			}
			if len(r.Tickets) > MaxPreQueueChunk {
				return nil, errs.Errorf("queue.prequeue", errs.TooLarge, "a chunk holds at most %d tickets", MaxPreQueueChunk)
			}
			return struct{}{}, svc.PreQueue(ctx, r)
		}), micro.WithEndpointSubject(SubjPreQueue))
	}
	if err == nil {
		err = s.AddEndpoint("draw", handle("queue.draw", func(ctx context.Context, b []byte) (any, error) {
			var r DrawRequest
			if err := decode("queue.draw", b, &r); err != nil {
				return nil, err
			}
			if err := r.Normalize(); err != nil {
				return nil, err
			}
			return svc.Draw(ctx, r)
		}), micro.WithEndpointSubject(SubjDraw))
	}
	if err != nil {
		_ = s.Stop()
		return nil, err
	}
	return s, nil
}
