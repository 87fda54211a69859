package natskv_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/ticketing/ticketing/core/node/nodetest"
	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/internal/keyring"
	"github.com/ticketing/ticketing/internal/keyring/keyringtest"
	"github.com/ticketing/ticketing/internal/keyring/natskv"
)

var buckets atomic.Int64

func TestContract(t *testing.T) {
	_, _, js := nodetest.Start(t)
	keyringtest.RunKeyStore(t, func(t *testing.T) keyring.KeyStore {
		s, err := natskv.Open(context.Background(), js, natskv.Config{Bucket: fmt.Sprintf("keyring-test-%d", buckets.Add(1))})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestConfig(t *testing.T) {
	c := natskv.Config{Bucket: "b", Replicas: 2}
	c.Defaults()
	if err := c.Validate(); !errs.Is(errs.Invalid, err) {
		t.Fatalf("replicas 2: %v", err)
	}
	c = natskv.Config{}
	c.Defaults()
	if err := c.Validate(); !errs.Is(errs.Invalid, err) {
		t.Fatalf("no bucket: %v", err)
	}
	c = natskv.Config{Bucket: "b"}
	c.Defaults()
	if c.Key != "keyset" || c.Replicas != 1 || c.Description == "" || c.Validate() != nil {
		t.Fatalf("defaults: %+v", c)
	}
}
