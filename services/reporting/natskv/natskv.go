// Package natskv keeps the reporting aggregates in a JetStream key-value
// bucket, the embedded store of `ticketing dev` where no PostgreSQL runs.
//
// One key per Kafka partition, "p.<topic>.<partition>", holds that
// partition's cursor together with the aggregates of the records applied
// from it, as one JSON value. Apply folds a partition's records into its
// value and writes it back with a compare-and-set on the revision it read
// (KV Update, or Create for a new partition): the offset and the effects
// of a partition change together or not at all, and of two writers of one
// partition the second fails with errs.Conflict and, after reloading,
// skips what the first applied. A batch of several partitions is applied
// partition by partition: an error leaves the partitions before it
// applied, which the stored offsets say.
//
// Queries read every partition's value and merge them (an event's
// inventory records normally all sit on one partition, as the bridge keys
// them by event id; its orders' records spread over the events topic's
// partitions, keyed by order id). That suits a development machine: the
// values grow with the events and hours seen, up to the bucket's
// MaxValueSize.
//
// Values written before the money came from orders hold hourly rows with
// gross_cents and refunded_cents (the inventory's face values): they are
// read without them (unknown fields are ignored) and dropped when the
// partition is written next.
package natskv

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/services/reporting"
)

// Config configures the store.
type Config struct {
	// Bucket is the key-value bucket. Default "reporting".
	Bucket string
	// Replicas of the bucket: 1 alone, 3 or 5 in a cluster. Default 1.
	Replicas int
	// MaxValueSize caps one partition's value. Default 8 MiB (the server's
	// max_payload must allow it: conf/nats/core.conf sets 8 MB; the default 1 MB
	// of a bare server caps it lower). At least 64 KiB.
	MaxValueSize int32
}

// Defaults fills zero fields.
func (c *Config) Defaults() {
	if c.Bucket == "" {
		c.Bucket = "reporting"
	}
	if c.Replicas == 0 {
		c.Replicas = 1
	}
	if c.MaxValueSize == 0 {
		c.MaxValueSize = 8 << 20
	}
}

// Validate checks the config after Defaults.
func (c *Config) Validate() error {
	const op = "reporting.natskv"
	if c.Replicas != 1 && c.Replicas != 3 && c.Replicas != 5 {
		return errs.Errorf(op, errs.Invalid, "replicas must be 1, 3 or 5, not %d", c.Replicas)
	}
	if c.MaxValueSize < 64<<10 {
		return errs.Errorf(op, errs.Invalid, "max value size %d is below 64 KiB", c.MaxValueSize)
	}
	return nil
}

// KeyValueConfig is the bucket's configuration.
func (c Config) KeyValueConfig() jetstream.KeyValueConfig {
	c.Defaults()
	return jetstream.KeyValueConfig{
		Bucket:       c.Bucket,
		Description:  "reporting aggregates and Kafka offsets, one value per partition",
		History:      1,
		Storage:      jetstream.FileStorage,
		Replicas:     c.Replicas,
		MaxValueSize: c.MaxValueSize,
	}
}

// Store is a reporting.Store on a key-value bucket.
type Store struct {
	kv jetstream.KeyValue
	// beforePartition, when set (tests), runs before the write of the i-th
	// partition of a batch; an error ends Apply there.
	beforePartition func(i int) error
}

var _ reporting.Store = (*Store)(nil)

// Open creates or updates the bucket and returns a store on it.
func Open(ctx context.Context, js jetstream.JetStream, c Config) (*Store, error) {
	c.Defaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, c.KeyValueConfig())
	if err != nil {
		return nil, errs.E("reporting.natskv", errs.Unavailable, fmt.Errorf("bucket %s: %w", c.Bucket, err))
	}
	return &Store{kv: kv}, nil
}

// value is a partition's JSON value.
type value struct {
	Cursor  reporting.Cursor       `json:"cursor"`
	Hours   []reporting.HourRow    `json:"hours,omitempty"`
	Revenue []reporting.RevenueRow `json:"revenue,omitempty"`
	Levels  []reporting.LevelRow   `json:"levels,omitempty"`
	Events  []reporting.EventInfo  `json:"events,omitempty"`
}

func (v *value) aggregates() *reporting.Aggregates {
	a := reporting.NewAggregates()
	for _, h := range v.Hours {
		a.Hours[reporting.HourKey{EventID: h.EventID, Zone: h.Zone, Hour: h.Hour.UTC()}] = h.Counters
	}
	for _, r := range v.Revenue {
		a.Revenue[reporting.RevenueKey{EventID: r.EventID, Hour: r.Hour.UTC()}] = r.Revenue
	}
	for _, l := range v.Levels {
		a.Levels[reporting.ZoneKey{EventID: l.EventID, Zone: l.Zone}] = l.Level
	}
	for _, e := range v.Events {
		a.Events[e.EventID] = e
	}
	return a
}

func (v *value) setAggregates(a *reporting.Aggregates) {
	v.Hours, v.Revenue, v.Levels, v.Events = v.Hours[:0], v.Revenue[:0], v.Levels[:0], v.Events[:0]
	for _, k := range a.SortedHours() {
		v.Hours = append(v.Hours, reporting.HourRow{EventID: k.EventID, Zone: k.Zone, Hour: k.Hour, Counters: a.Hours[k]})
	}
	for _, k := range a.SortedRevenue() {
		v.Revenue = append(v.Revenue, reporting.RevenueRow{EventID: k.EventID, Hour: k.Hour, Revenue: a.Revenue[k]})
	}
	for _, k := range a.SortedLevels() {
		v.Levels = append(v.Levels, reporting.LevelRow{EventID: k.EventID, Zone: k.Zone, Level: a.Levels[k]})
	}
	for _, id := range a.SortedEvents() {
		v.Events = append(v.Events, a.Events[id])
	}
}

// Key is the key of a partition's value.
func Key(p reporting.Partition) string {
	return "p." + p.Topic + "." + strconv.Itoa(int(p.Partition))
}

func unavailable(op string, err error) error {
	return errs.E(op, errs.Unavailable, "reporting store unavailable", err)
}

// get reads a partition's value; revision 0 when there is none.
func (s *Store) get(ctx context.Context, op string, p reporting.Partition) (*value, uint64, error) {
	e, err := s.kv.Get(ctx, Key(p))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, unavailable(op, err)
	}
	var v value
	if err := json.Unmarshal(e.Value(), &v); err != nil {
		return nil, 0, errs.E(op, errs.Other, fmt.Errorf("value of %s: %w", Key(p), err))
	}
	return &v, e.Revision(), nil
}

// Offsets implements reporting.Store.
func (s *Store) Offsets(ctx context.Context, parts []reporting.Partition) (map[reporting.Partition]int64, error) {
	out := map[reporting.Partition]int64{}
	for _, p := range parts {
		v, _, err := s.get(ctx, "reporting.offsets", p)
		if err != nil {
			return nil, err
		}
		if v != nil {
			out[p] = v.Cursor.Next
		}
	}
	return out, nil
}

// Apply implements reporting.Store, atomically per partition.
func (s *Store) Apply(ctx context.Context, recs []reporting.Record) (reporting.Applied, error) {
	const op = "reporting.apply"
	byPart := map[reporting.Partition][]reporting.Record{}
	var parts []reporting.Partition
	for _, r := range recs {
		p := reporting.Partition{Topic: r.Topic, Partition: r.Partition}
		if byPart[p] == nil {
			parts = append(parts, p)
		}
		byPart[p] = append(byPart[p], r)
	}
	sort.Slice(parts, func(i, j int) bool { return Key(parts[i]) < Key(parts[j]) })
	var total reporting.Applied
	for i, p := range parts {
		if err := ctx.Err(); err != nil {
			return total, errs.E(op, errs.Unavailable, err)
		}
		v, rev, err := s.get(ctx, op, p)
		if err != nil {
			return total, err
		}
		cursors := map[reporting.Partition]reporting.Cursor{}
		agg := reporting.NewAggregates()
		if v != nil {
			cursors[p] = v.Cursor
			agg = v.aggregates()
		} else {
			v = &value{}
		}
		f := reporting.Fold(cursors, byPart[p])
		agg.Merge(f.Delta)
		v.Cursor = f.Cursors[p]
		v.setAggregates(agg)
		b, err := json.Marshal(v)
		if err != nil {
			return total, errs.E(op, errs.Other, err)
		}
		if s.beforePartition != nil {
			if err := s.beforePartition(i); err != nil {
				return total, err
			}
		}
		if rev == 0 {
			_, err = s.kv.Create(ctx, Key(p), b)
		} else {
			_, err = s.kv.Update(ctx, Key(p), b, rev)
		}
		switch {
		case errors.Is(err, jetstream.ErrKeyExists) || isWrongSequence(err):
			return total, errs.E(op, errs.Conflict, "partition "+Key(p)+" was written concurrently; reload and apply again", err)
		case err != nil:
			return total, unavailable(op, err)
		}
		total.Applied += f.Applied.Applied
		total.Skipped += f.Skipped
		total.Duplicates += f.Duplicates
		total.Ignored += f.Ignored
		total.Invalid = append(total.Invalid, f.Invalid...)
	}
	return total, nil
}

// isWrongSequence recognizes a failed compare-and-set of KV Update: the
// server's "wrong last sequence" (JetStream error codes 10071, 10164).
func isWrongSequence(err error) bool {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence || apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant) {
		return true
	}
	return err != nil && strings.Contains(err.Error(), "wrong last sequence")
}

// all merges every partition's aggregates.
func (s *Store) all(ctx context.Context, op string) (*reporting.Aggregates, error) {
	agg := reporting.NewAggregates()
	lister, err := s.kv.ListKeysFiltered(ctx, "p.>")
	if err != nil {
		return nil, unavailable(op, err)
	}
	defer func() { _ = lister.Stop() }()
	for key := range lister.Keys() {
		e, err := s.kv.Get(ctx, key)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue
		}
		if err != nil {
			return nil, unavailable(op, err)
		}
		var v value
		if err := json.Unmarshal(e.Value(), &v); err != nil {
			return nil, errs.E(op, errs.Other, fmt.Errorf("value of %s: %w", key, err))
		}
		agg.Merge(v.aggregates())
	}
	if err := ctx.Err(); err != nil {
		return nil, unavailable(op, err)
	}
	return agg, nil
}

// Event implements reporting.Store.
func (s *Store) Event(ctx context.Context, eventID string) (reporting.EventView, error) {
	const op = "reporting.event"
	agg, err := s.all(ctx, op)
	if err != nil {
		return reporting.EventView{}, err
	}
	v, ok := agg.View(eventID)
	if !ok {
		return v, errs.E(op, errs.NotFound, "no report for this event")
	}
	return v, nil
}

// Hours implements reporting.Store.
func (s *Store) Hours(ctx context.Context, from, to time.Time) (reporting.HoursView, error) {
	agg, err := s.all(ctx, "reporting.hours")
	if err != nil {
		return reporting.HoursView{}, err
	}
	return agg.HoursIn(from, to), nil
}
