// Package natsapi serves the settings service as two NATS micro services of
// the core: "config" (config.get, config.set, config.unset) for settings
// and "flags" (flags.get, flags.set, flags.delete) for feature flags, both
// over the one settings.Service that validates, writes with
// compare-and-set and audits. `ticketing config` is their client (Client).
//
// Only core users reach these subjects: an edge's leaf user may read the
// settings bucket and may not send these requests (conf/nats/core.conf).
package natsapi

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/internal/microerr"
	"github.com/ticketing/ticketing/services/settings"
)

// Subjects of the operations.
const (
	SubjGet        = "config.get"
	SubjSet        = "config.set"
	SubjUnset      = "config.unset"
	SubjFlagGet    = "flags.get"
	SubjFlagSet    = "flags.set"
	SubjFlagDelete = "flags.delete"
)

// GetRequest asks for every setting, or one by name.
type GetRequest struct {
	Name string `json:"name,omitempty"`
}

// GetResponse lists settings.
type GetResponse struct {
	Settings []settings.Setting `json:"settings"`
}

// FlagGetRequest asks for every flag, or one by key.
type FlagGetRequest struct {
	Key string `json:"key,omitempty"`
}

// FlagGetResponse lists flags.
type FlagGetResponse struct {
	Flags []settings.Flag `json:"flags"`
}

// Services are the running micro services.
type Services struct {
	svcs []micro.Service
}

// Stop stops the services.
func (s *Services) Stop() {
	for _, m := range s.svcs {
		_ = m.Stop()
	}
}

// maxRequest bounds a request's body (a flag definition and its envelope).
const maxRequest = settings.MaxEntrySize + 4<<10

// Serve registers the "config" and "flags" services on nc. Their metric
// (ticketing_settings_writes_total) is registered with reg when it is not
// nil.
func Serve(nc *nats.Conn, svc *settings.Service, reg prometheus.Registerer) (*Services, error) {
	writes := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ticketing_settings_writes_total",
		Help: "Writes asked of the config and flags services, by operation and outcome (accepted, refused: invalid or conflicting, failed: store or audit unavailable).",
	}, []string{"op", "outcome"})
	if reg != nil {
		if err := reg.Register(writes); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				return nil, err
			}
			writes = are.ExistingCollector.(*prometheus.CounterVec)
		}
	}
	handle := func(op string, write bool, do func(ctx context.Context, body []byte) (any, error)) micro.HandlerFunc {
		return func(req micro.Request) {
			var out any
			var err error
			if len(req.Data()) > maxRequest {
				err = errs.Errorf(op, errs.TooLarge, "a request has at most %d bytes", maxRequest)
			} else {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				out, err = do(ctx, req.Data())
				cancel()
			}
			if write {
				outcome := "accepted"
				switch errs.KindOf(err) {
				case errs.Other, errs.Unavailable:
					if err != nil {
						outcome = "failed"
					}
				default:
					outcome = "refused"
				}
				writes.WithLabelValues(op, outcome).Inc()
			}
			if err != nil {
				_ = microerr.Respond(req, err)
				return
			}
			_ = req.RespondJSON(out)
		}
	}
	s := &Services{}
	cfg, err := micro.AddService(nc, micro.Config{Name: "config", Version: "1.0.0",
		Description: "dynamic settings: validated, compare-and-set, audited", QueueGroup: "config"})
	if err != nil {
		return nil, err
	}
	s.svcs = append(s.svcs, cfg)
	fl, err := micro.AddService(nc, micro.Config{Name: "flags", Version: "1.0.0",
		Description: "feature flag definitions: validated, compare-and-set, audited", QueueGroup: "flags"})
	if err != nil {
		s.Stop()
		return nil, err
	}
	s.svcs = append(s.svcs, fl)
	eps := []struct {
		svc   micro.Service
		name  string
		subj  string
		write bool
		do    func(ctx context.Context, body []byte) (any, error)
	}{
		{cfg, "get", SubjGet, false, func(ctx context.Context, b []byte) (any, error) {
			var r GetRequest
			if err := decode("settings.get", b, &r); err != nil {
				return nil, err
			}
			list, err := svc.Settings(ctx, r.Name)
			return GetResponse{Settings: list}, err
		}},
		{cfg, "set", SubjSet, true, func(ctx context.Context, b []byte) (any, error) {
			var r settings.SetRequest
			if err := decode("settings.set", b, &r); err != nil {
				return nil, err
			}
			return svc.Set(ctx, r)
		}},
		{cfg, "unset", SubjUnset, true, func(ctx context.Context, b []byte) (any, error) {
			var r settings.UnsetRequest
			if err := decode("settings.unset", b, &r); err != nil {
				return nil, err
			}
			return svc.Unset(ctx, r)
		}},
		{fl, "get", SubjFlagGet, false, func(ctx context.Context, b []byte) (any, error) {
			var r FlagGetRequest
			if err := decode("flags.get", b, &r); err != nil {
				return nil, err
			}
			list, err := svc.Flags(ctx, r.Key)
			return FlagGetResponse{Flags: list}, err
		}},
		{fl, "set", SubjFlagSet, true, func(ctx context.Context, b []byte) (any, error) {
			var r settings.SetFlagRequest
			if err := decode("flags.set", b, &r); err != nil {
				return nil, err
			}
			return svc.SetFlag(ctx, r)
		}},
		{fl, "delete", SubjFlagDelete, true, func(ctx context.Context, b []byte) (any, error) {
			var r settings.DeleteFlagRequest
			if err := decode("flags.delete", b, &r); err != nil {
				return nil, err
			}
			return struct{}{}, svc.DeleteFlag(ctx, r)
		}},
	}
	for _, ep := range eps {
		op := ep.subj
		if err := ep.svc.AddEndpoint(ep.name, handle(op, ep.write, ep.do), micro.WithEndpointSubject(ep.subj)); err != nil {
			s.Stop()
			return nil, err
		}
	}
	return s, nil
}

func decode(op string, b []byte, v any) error {
	if err := json.Unmarshal(b, v); err != nil {
		return errs.E(op, errs.Invalid, "malformed request: "+err.Error())
	}
	return nil
}

// Client calls the services.
type Client struct {
	NC *nats.Conn
	// Timeout bounds a call. Default 10s.
	Timeout time.Duration
}

func (c *Client) call(ctx context.Context, service, op, subj string, req, resp any) error {
	to := c.Timeout
	if to == 0 {
		to = 10 * time.Second
	}
	return microerr.Call(ctx, c.NC, to, service, op, subj, req, resp)
}

// Settings lists every setting, or name's values.
func (c *Client) Settings(ctx context.Context, name string) ([]settings.Setting, error) {
	var r GetResponse
	err := c.call(ctx, "config", "config.get", SubjGet, GetRequest{Name: name}, &r)
	return r.Settings, err
}

// Set changes a setting.
func (c *Client) Set(ctx context.Context, r settings.SetRequest) (settings.Setting, error) {
	var s settings.Setting
	err := c.call(ctx, "config", "config.set", SubjSet, r, &s)
	return s, err
}

// Unset removes a setting's value.
func (c *Client) Unset(ctx context.Context, r settings.UnsetRequest) (settings.Setting, error) {
	var s settings.Setting
	err := c.call(ctx, "config", "config.unset", SubjUnset, r, &s)
	return s, err
}

// Flags lists every flag, or key's.
func (c *Client) Flags(ctx context.Context, key string) ([]settings.Flag, error) {
	var r FlagGetResponse
	err := c.call(ctx, "flags", "flags.get", SubjFlagGet, FlagGetRequest{Key: key}, &r)
	return r.Flags, err
}

// SetFlag creates or replaces a flag's definition.
func (c *Client) SetFlag(ctx context.Context, r settings.SetFlagRequest) (settings.Flag, error) {
	var f settings.Flag
	err := c.call(ctx, "flags", "flags.set", SubjFlagSet, r, &f)
	return f, err
}

// DeleteFlag deletes a flag.
func (c *Client) DeleteFlag(ctx context.Context, r settings.DeleteFlagRequest) error {
	var out struct{}
	return c.call(ctx, "flags", "flags.delete", SubjFlagDelete, r, &out)
}
