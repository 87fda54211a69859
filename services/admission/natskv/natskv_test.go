package natskv_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/ticketing/ticketing/core/node/nodetest"
	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/services/admission"
	"github.com/ticketing/ticketing/services/admission/admissiontest"
	"github.com/ticketing/ticketing/services/admission/natskv"
)

var buckets atomic.Int64

func TestContract(t *testing.T) {
	_, _, js := nodetest.Start(t)
	admissiontest.RunKeyStore(t, func(t *testing.T) admission.KeyStore {
		s, err := natskv.Open(context.Background(), js, natskv.Config{Bucket: fmt.Sprintf("admission-test-%d", buckets.Add(1))})
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
	if c.Bucket != "admission-keys" || c.Key != "keyset" || c.Validate() != nil {
		t.Fatalf("defaults: %+v", c)
	}
}
