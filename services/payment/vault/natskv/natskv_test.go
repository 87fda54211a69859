package natskv_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ticketing/ticketing/core/node/nodetest"
	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/services/payment/vault"
	"github.com/ticketing/ticketing/services/payment/vault/natskv"
	"github.com/ticketing/ticketing/services/payment/vault/vaulttest"
)

var buckets atomic.Int64

func TestContract(t *testing.T) {
	_, _, js := nodetest.Start(t)
	vaulttest.Run(t, func(t *testing.T) vault.Store {
		n := buckets.Add(1)
		s, err := natskv.Open(context.Background(), js, natskv.Config{
			Bucket: fmt.Sprintf("vault-test-%d", n), CVCBucket: fmt.Sprintf("vault-cvc-test-%d", n)})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestConfig(t *testing.T) {
	c := natskv.Config{}
	c.Defaults()
	if c.Bucket != "payment-vault" || c.CVCBucket != "payment-vault-cvc" || c.CVCMaxAge != time.Hour || c.Replicas != 1 || c.Validate() != nil {
		t.Fatalf("defaults: %+v", c)
	}
	for name, c := range map[string]natskv.Config{
		"replicas":    {Replicas: 2},
		"cvc max age": {CVCMaxAge: time.Second},
		"same bucket": {Bucket: "x", CVCBucket: "x"},
	} {
		c.Defaults()
		if err := c.Validate(); !errs.Is(errs.Invalid, err) {
			t.Errorf("%s: %v", name, err)
		}
	}
	kvs := (natskv.Config{CVCMaxAge: 2 * time.Hour}).KeyValueConfigs()
	if len(kvs) != 2 || kvs[0].TTL != 0 || kvs[1].TTL != 2*time.Hour {
		t.Fatalf("bucket configs: %+v", kvs)
	}
}
