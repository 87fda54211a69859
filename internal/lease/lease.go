// Package lease gives exactly one holder at a time a named lease, kept in a
// JetStream key-value bucket whose TTL is the lease's life. A holder renews
// by compare-and-set on the key's revision; when it stops renewing, the key
// expires and another may take it. The revision that took the lease is its
// epoch, unique and increasing, which owners write into their logs to fence
// out earlier holders.
package lease

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// ErrHeld is returned by Acquire when someone else holds the lease.
var ErrHeld = errors.New("lease: held by another")

// ErrLost is returned by Renew when the lease was taken or expired.
var ErrLost = errors.New("lease: lost")

// Record is what a lease key holds.
type Record struct {
	Holder   string    `json:"holder"`
	Acquired time.Time `json:"acquired"`
}

// Lease is a held lease. Renew and Release must not be called concurrently.
type Lease struct {
	kv     jetstream.KeyValue
	key    string
	holder string
	epoch  uint64 // revision that acquired
	rev    uint64 // revision of the last renewal
	ttl    time.Duration
	renew  time.Time // when the last renewal was sent
}

// Acquire takes the lease named key for holder, if no one holds it. ttl must
// be the bucket's TTL.
func Acquire(ctx context.Context, kv jetstream.KeyValue, key, holder string, ttl time.Duration) (*Lease, error) {
	sent := time.Now()
	b, _ := json.Marshal(Record{Holder: holder, Acquired: sent.UTC()})
	rev, err := kv.Create(ctx, key, b)
	if errors.Is(err, jetstream.ErrKeyExists) {
		return nil, ErrHeld
	}
	if err != nil {
		return nil, fmt.Errorf("lease: acquire %s: %w", key, err)
	}
	return &Lease{kv: kv, key: key, holder: holder, epoch: rev, rev: rev, ttl: ttl, renew: sent}, nil
}

// Holder reads who holds the lease, if anyone.
func Holder(ctx context.Context, kv jetstream.KeyValue, key string) (Record, bool, error) {
	e, err := kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return Record{}, false, nil
	}
	if err != nil {
		return Record{}, false, err
	}
	var r Record
	if err := json.Unmarshal(e.Value(), &r); err != nil {
		return Record{}, false, fmt.Errorf("lease: %s: %w", key, err)
	}
	return r, true, nil
}

// Epoch is the revision at which this lease was acquired.
func (l *Lease) Epoch() uint64 { return l.epoch }

// Key is the lease's name.
func (l *Lease) Key() string { return l.key }

// Renew extends the lease. ErrLost means another holder may have it now;
// any other error leaves the lease valid until ValidUntil.
func (l *Lease) Renew(ctx context.Context) error {
	sent := time.Now()
	b, _ := json.Marshal(Record{Holder: l.holder, Acquired: time.Unix(0, 0).UTC()})
	rev, err := l.kv.Update(ctx, l.key, b, l.rev)
	if err != nil {
		var apiErr *jetstream.APIError
		if errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence {
			return ErrLost
		}
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return ErrLost
		}
		return fmt.Errorf("lease: renew %s: %w", l.key, err)
	}
	l.rev, l.renew = rev, sent
	return nil
}

// ValidUntil is the earliest the lease can expire: the last successful
// renewal's send time plus the TTL. A holder must stop acting before then
// unless it renews.
func (l *Lease) ValidUntil() time.Time { return l.renew.Add(l.ttl) }

// Release gives the lease up at once, if it is still ours, so that another
// holder need not wait for the TTL.
func (l *Lease) Release(ctx context.Context) error {
	err := l.kv.Delete(ctx, l.key, jetstream.LastRevision(l.rev))
	if err != nil {
		return fmt.Errorf("lease: release %s: %w", l.key, err)
	}
	return nil
}
