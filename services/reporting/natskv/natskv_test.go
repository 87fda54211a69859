package natskv_test

import (
	"context"
	"errors"
	"fmt"
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

// A batch over two partitions that dies between them leaves the first
// applied with its offset and the second untouched: reloading the offsets
// and applying again is exact.
func TestKilledBetweenPartitions(t *testing.T) {
	_, _, js := nodetest.Start(t)
	ctx := context.Background()
	s, err := natskv.Open(ctx, js, natskv.Config{Bucket: "reporting-killed"})
	if err != nil {
		t.Fatal(err)
	}
	recs := reportingtest.Sample() // partition 0, then partition 1
	errKill := errors.New("killed")
	s.SetBeforePartition(func(i int) error {
		if i == 1 {
			return errKill
		}
		return nil
	})
	if _, err := s.Apply(ctx, recs); !errors.Is(err, errKill) {
		t.Fatalf("apply: %v", err)
	}
	p0, p1 := reporting.Partition{Topic: "ticketing.inventory", Partition: 0}, reporting.Partition{Topic: "ticketing.inventory", Partition: 1}
	off, err := s.Offsets(ctx, []reporting.Partition{p0, p1})
	if err != nil || len(off) != 1 || off[p0] != 7 {
		t.Fatalf("offsets: %v, %v; want partition 0 at 7 and nothing for 1", off, err)
	}
	reportingtest.Check(t, s, reportingtest.Expected(recs[:7]), "arena", "club")
	s.SetBeforePartition(nil)
	if _, err := s.Apply(ctx, recs); err != nil {
		t.Fatal(err)
	}
	reportingtest.Check(t, s, reportingtest.Expected(recs), "arena", "club")
}
