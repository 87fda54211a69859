// Package natskv is the notification.Ledger of `ticketing dev`: one
// JetStream key-value bucket, a key d.<delivery key> per delivery whose
// value is "begun" or "done". Begin creates the key (or finds it done);
// Finish puts "done", which nothing overwrites: Begin never writes over a
// key that exists.
package natskv

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/services/notification"
)

// Config configures the ledger.
type Config struct {
	// Bucket is the key-value bucket. Default "notifications".
	Bucket string
	// Replicas of the bucket: 1 alone, 3 or 5 in a cluster. Default 1.
	Replicas int
}

// Defaults fills zero fields.
func (c *Config) Defaults() {
	if c.Bucket == "" {
		c.Bucket = "notifications"
	}
	if c.Replicas == 0 {
		c.Replicas = 1
	}
}

// Validate checks the config after Defaults.
func (c *Config) Validate() error {
	if c.Replicas != 1 && c.Replicas != 3 && c.Replicas != 5 {
		return errs.Errorf("notification.natskv", errs.Invalid, "replicas must be 1, 3 or 5, not %d", c.Replicas)
	}
	return nil
}

// Ledger is a notification.Ledger on a JetStream bucket.
type Ledger struct {
	kv jetstream.KeyValue
}

var _ notification.Ledger = (*Ledger)(nil)

// Open creates or updates the bucket and returns a ledger on it.
func Open(ctx context.Context, js jetstream.JetStream, c Config) (*Ledger, error) {
	c.Defaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: c.Bucket,
		Description: "notification deliveries: begun or done, by delivery key", History: 1,
		Storage: jetstream.FileStorage, Replicas: c.Replicas})
	if err != nil {
		return nil, errs.E("notification.natskv", errs.Unavailable, fmt.Errorf("bucket %s: %w", c.Bucket, err))
	}
	return &Ledger{kv: kv}, nil
}

const (
	begun = "begun"
	done  = "done"
)

func unavailable(op string, err error) error {
	return errs.E(op, errs.Unavailable, "notification ledger unavailable", err)
}

// Begin implements notification.Ledger.
func (l *Ledger) Begin(ctx context.Context, key string) (bool, error) {
	const op = "notification.begin"
	if !notification.ValidKey(key) {
		return false, notification.BadKey(op)
	}
	_, err := l.kv.Create(ctx, "d."+key, []byte(begun))
	switch {
	case err == nil:
		return false, nil
	case !errors.Is(err, jetstream.ErrKeyExists):
		return false, unavailable(op, err)
	}
	e, err := l.kv.Get(ctx, "d."+key)
	if err != nil {
		return false, unavailable(op, err)
	}
	return string(e.Value()) == done, nil
}

// Finish implements notification.Ledger.
func (l *Ledger) Finish(ctx context.Context, key string) error {
	const op = "notification.finish"
	if !notification.ValidKey(key) {
		return notification.BadKey(op)
	}
	if _, err := l.kv.Put(ctx, "d."+key, []byte(done)); err != nil {
		return unavailable(op, err)
	}
	return nil
}
