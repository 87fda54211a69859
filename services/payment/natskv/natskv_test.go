package natskv_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ticketing/ticketing/core/node/nodetest"
	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/services/payment"
	"github.com/ticketing/ticketing/services/payment/natskv"
	"github.com/ticketing/ticketing/services/payment/paymenttest"
)

var buckets atomic.Int64

func TestContract(t *testing.T) {
	_, _, js := nodetest.Start(t)
	paymenttest.Run(t, func(t *testing.T) payment.Ledger {
		n := buckets.Add(1)
		s, err := natskv.Open(context.Background(), js, natskv.Config{
			Bucket: fmt.Sprintf("payments-test-%d", n), EventsBucket: fmt.Sprintf("payment-events-test-%d", n)})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestConfig(t *testing.T) {
	c := natskv.Config{}
	c.Defaults()
	if c.Bucket != "payments" || c.EventsBucket != "payment-events" || c.EventRetention != 8*24*time.Hour || c.Replicas != 1 || c.Validate() != nil {
		t.Fatalf("defaults: %+v", c)
	}
	for name, c := range map[string]natskv.Config{
		"replicas":    {Replicas: 4},
		"retention":   {EventRetention: 6 * 24 * time.Hour},
		"same bucket": {Bucket: "x", EventsBucket: "x"},
	} {
		c.Defaults()
		if err := c.Validate(); !errs.Is(errs.Invalid, err) {
			t.Errorf("%s: %v", name, err)
		}
	}
	kvs := (natskv.Config{}).KeyValueConfigs()
	if len(kvs) != 2 || kvs[0].TTL != 0 || kvs[1].TTL != 8*24*time.Hour {
		t.Fatalf("bucket configs: %+v", kvs)
	}
}
