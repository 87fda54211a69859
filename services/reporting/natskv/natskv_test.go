package natskv_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/ticketing/ticketing/core/node/nodetest"
	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/services/reporting"
	"github.com/ticketing/ticketing/services/reporting/natskv"
	"github.com/ticketing/ticketing/services/reporting/reportingtest"
)

var buckets atomic.Int64

func TestContract(t *testing.T) {
	_, _, js := nodetest.Start(t)
	reportingtest.Run(t, func(t *testing.T) reporting.Store {
		s, err := natskv.Open(context.Background(), js, natskv.Config{Bucket: fmt.Sprintf("reporting-test-%d", buckets.Add(1))})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestConfig(t *testing.T) {
	c := natskv.Config{Replicas: 2}
	c.Defaults()
	if err := c.Validate(); !errs.Is(errs.Invalid, err) {
		t.Fatalf("replicas 2: %v", err)
	}
	c = natskv.Config{}
	c.Defaults()
	if c.Bucket != "reporting" || c.Validate() != nil {
		t.Fatalf("defaults: %+v", c)
	}
}

// A batch over four partitions that dies before the third leaves the
// first two applied with their offsets and the others untouched: reloading
// the offsets and applying again is exact.
func TestKilledBetweenPartitions(t *testing.T) {
	_, _, js := nodetest.Start(t)
	ctx := context.Background()
	s, err := natskv.Open(ctx, js, natskv.Config{Bucket: "reporting-killed"})
	if err != nil {
		t.Fatal(err)
	}
	// Partitions by key: ticketing.events 0 and 1, then
	// ticketing.inventory 0 and 1.
	recs := reportingtest.Sample()
	errKill := errors.New("killed")
	s.SetBeforePartition(func(i int) error {
		if i == 2 {
			return errKill
		}
		return nil
	})
	if _, err := s.Apply(ctx, recs); !errors.Is(err, errKill) {
		t.Fatalf("apply: %v", err)
	}
	part := func(topic string, n int32) reporting.Partition {
		return reporting.Partition{Topic: topic, Partition: n}
	}
	e0, e1 := part(reportingtest.EventsTopic, 0), part(reportingtest.EventsTopic, 1)
	i0, i1 := part(reportingtest.InventoryTopic, 0), part(reportingtest.InventoryTopic, 1)
	off, err := s.Offsets(ctx, []reporting.Partition{e0, e1, i0, i1})
	if err != nil || len(off) != 2 || off[e0] != 7 || off[e1] != 3 {
		t.Fatalf("offsets: %v, %v; want the events topic's partitions at 7 and 3 and nothing for the inventory's", off, err)
	}
	reportingtest.Check(t, s, reportingtest.Expected(recs[9:]), "arena", "club")
	s.SetBeforePartition(nil)
	if _, err := s.Apply(ctx, recs); err != nil {
		t.Fatal(err)
	}
	reportingtest.Check(t, s, reportingtest.Expected(recs), "arena", "club")
}

// A value written before the money came from orders (hourly rows with the
// inventory's gross_cents and refunded_cents) is read without them, and
// the partition takes new records on top of it.
func TestValueOfAnOlderVersion(t *testing.T) {
	_, _, js := nodetest.Start(t)
	ctx := context.Background()
	s, err := natskv.Open(ctx, js, natskv.Config{Bucket: "reporting-old"})
	if err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(ctx, "reporting-old")
	if err != nil {
		t.Fatal(err)
	}
	p := reporting.Partition{Topic: reportingtest.InventoryTopic, Partition: 0}
	old := `{"cursor":{"next":2,"recent":["a","b"]},
		"hours":[{"event_id":"arena","zone":"floor","hour":"2026-05-04T10:00:00Z","held":2,"released":0,"expired":0,"sold":2,"cancelled":0,"gross_cents":20000,"refunded_cents":0}],
		"levels":[{"event_id":"arena","zone":"floor","held":0,"sold":2}],
		"events":[{"event_id":"arena","organizer_id":"org1","currency":"USD","last_at":"2026-05-04T10:01:00Z"}]}`
	if _, err := kv.Create(ctx, natskv.Key(p), []byte(old)); err != nil {
		t.Fatal(err)
	}
	v, err := s.Event(ctx, "arena")
	if err != nil {
		t.Fatal(err)
	}
	r := reporting.BuildReport(v)
	if r.Totals.Held != 2 || r.Totals.Sold != 2 || r.Totals.SoldNow != 2 || r.Totals.GrossCents != 0 || r.OrganizerID != "org1" {
		t.Fatalf("report of the old value: %+v", r)
	}
	next := reportingtest.Body(reportingtest.Ev{Type: "hold.placed", EventID: "arena", Zones: map[string]int{"floor": 1}, Organizer: "org1"})
	paid := reportingtest.OrderBody(reportingtest.Ord{Type: "paid", Order: "o1", EventID: "arena", Organizer: "org1", Subtotal: 100})
	a, err := s.Apply(ctx, append(reportingtest.Records(p.Topic, 0, 1, next, next), reportingtest.Records(reportingtest.EventsTopic, 0, 0, paid)...))
	if err != nil || a.Applied != 2 || a.Skipped != 1 {
		t.Fatalf("apply on the old value: %+v, %v", a, err)
	}
	if v, _ = s.Event(ctx, "arena"); v.Levels[0].Held != 1 || v.Hours[0].Held != 3 || len(v.Revenue) != 1 || v.Revenue[0].GrossCents != 100 {
		t.Fatalf("after the apply: %+v", v)
	}
	e, err := kv.Get(ctx, natskv.Key(p))
	if err != nil || strings.Contains(string(e.Value()), "gross_cents") {
		t.Fatalf("the partition's value still holds the face values: %s, %v", e.Value(), err)
	}
}
