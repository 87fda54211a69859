package natskv_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ticketing/ticketing/core/node/nodetest"
	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/services/pricing"
	"github.com/ticketing/ticketing/services/pricing/natskv"
	"github.com/ticketing/ticketing/services/pricing/pricingtest"
)

var buckets atomic.Int64

func open(t *testing.T, js jetstream.JetStream, c natskv.Config) *natskv.Store {
	t.Helper()
	if c.Bucket == "" {
		c.Bucket = fmt.Sprintf("pricing-test-%d", buckets.Add(1))
	}
	s, err := natskv.Open(context.Background(), js, c)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestContract(t *testing.T) {
	_, _, js := nodetest.Start(t)
	pricingtest.Run(t, func(t *testing.T) pricing.Store {
		return open(t, js, natskv.Config{})
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
	if c.Bucket != "pricing" || c.Replicas != 1 || c.Validate() != nil {
		t.Fatalf("defaults: %+v", c)
	}
	if kc := c.KeyValueConfig(); kc.MaxValueSize != natskv.MaxValueSize || kc.History != 1 {
		t.Fatalf("bucket config %+v", kc)
	}
}

// Two stores on one bucket (two processes: their locks are their own)
// redeem a voucher of 100 uses 1,000 times at once: the compare-and-set
// alone keeps to the limit.
func TestRedeemAcrossProcesses(t *testing.T) {
	_, _, js := nodetest.Start(t)
	a := open(t, js, natskv.Config{Bucket: "pricing-shared"})
	b := open(t, js, natskv.Config{Bucket: "pricing-shared"})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := a.PutVoucher(ctx, pricing.Voucher{Code: "HUNDRED", PercentBP: 1000, MaxUses: 100, MaxPerAccount: 2}); err != nil {
		t.Fatal(err)
	}
	var ok, exhausted, limited atomic.Int64
	var wg sync.WaitGroup
	for i := range 1000 {
		s := a
		if i%2 == 1 {
			s = b
		}
		wg.Go(func() {
			err := s.Redeem(ctx, "HUNDRED", fmt.Sprintf("u_%d", i%60), fmt.Sprintf("o-%d", i), time.Now())
			switch {
			case err == nil:
				ok.Add(1)
			case errs.ReasonOf(err) == pricing.ReasonVoucherExhausted:
				exhausted.Add(1)
			case errs.ReasonOf(err) == pricing.ReasonVoucherAccountLimit:
				limited.Add(1)
			default:
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if ok.Load() != 100 || exhausted.Load()+limited.Load() != 900 {
		t.Fatalf("%d succeeded, %d exhausted, %d over the account limit", ok.Load(), exhausted.Load(), limited.Load())
	}
	kv, err := js.KeyValue(ctx, "pricing-shared")
	if err != nil {
		t.Fatal(err)
	}
	e, err := kv.Get(ctx, natskv.UsageKey("HUNDRED"))
	if err != nil {
		t.Fatal(err)
	}
	var u struct{ Orders map[string]string }
	if err := json.Unmarshal(e.Value(), &u); err != nil || len(u.Orders) != 100 {
		t.Fatalf("usage record with %d orders, %v", len(u.Orders), err)
	}
	per := map[string]int{}
	for _, acct := range u.Orders {
		if per[acct]++; per[acct] > 2 {
			t.Fatalf("account %s redeemed %d times", acct, per[acct])
		}
	}
}

// A redemption that would take the voucher's record past the value size
// is refused, and the record stays as it was.
func TestStoreLimit(t *testing.T) {
	_, _, js := nodetest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s := open(t, js, natskv.Config{Bucket: "pricing-limit"})
	if err := s.PutVoucher(ctx, pricing.Voucher{Code: "UNLIMITED", PercentBP: 1000}); err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(ctx, "pricing-limit")
	if err != nil {
		t.Fatal(err)
	}
	// Fill the record to just below the limit with long ids.
	orders := map[string]string{}
	long := strings.Repeat("x", pricing.MaxRefLen-8)
	size := len(`{"orders":{}}`)
	for i := 0; ; i++ {
		o := fmt.Sprintf("%08d%s", i, long)
		entry := len(o) + len(long) + 8 + 6
		if size+entry > natskv.MaxRecordSize-1000 {
			break
		}
		orders[o] = long + fmt.Sprintf("%08d", i)
		size += entry
	}
	// One more, padded to leave 50 bytes: fewer than a redemption takes.
	pad := natskv.MaxRecordSize - 50 - size - len("last") - 7
	orders["last"] = strings.Repeat("p", pad)
	b, _ := json.Marshal(map[string]any{"orders": orders})
	if free := natskv.MaxRecordSize - len(b); free < 40 || free > 60 {
		t.Fatalf("%d bytes left", free)
	}
	rev, err := kv.Put(ctx, natskv.UsageKey("UNLIMITED"), b)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d redemptions of ids of %d bytes in %d bytes", len(orders), pricing.MaxRefLen, len(b))
	err = s.Redeem(ctx, "UNLIMITED", long+"-acct", long+"-order", time.Now())
	if !errs.Is(errs.TooLarge, err) || errs.ReasonOf(err) != pricing.ReasonStoreLimit {
		t.Fatalf("redeem past the limit: %v", err)
	}
	e, err := kv.Get(ctx, natskv.UsageKey("UNLIMITED"))
	if err != nil || e.Revision() != rev {
		t.Fatalf("record after the refusal: %v, %v", e, err)
	}
	// A short one still fits.
	if err := s.Redeem(ctx, "UNLIMITED", "u", "o", time.Now()); err != nil {
		t.Fatal(err)
	}
}
