package natskv_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ticketing/ticketing/core/node/nodetest"
	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/services/identity"
	"github.com/ticketing/ticketing/services/identity/session"
	"github.com/ticketing/ticketing/services/identity/session/natskv"
	"github.com/ticketing/ticketing/services/identity/session/sessiontest"
)

var buckets atomic.Int64

func open(t testing.TB, js jetstream.JetStream, c natskv.Config) *natskv.Store {
	t.Helper()
	if c.Bucket == "" {
		c.Bucket = fmt.Sprintf("sessions-test-%d", buckets.Add(1))
	}
	s, err := natskv.Open(context.Background(), js, c)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestContract(t *testing.T) {
	_, _, js := nodetest.Start(t)
	sessiontest.Run(t, func(t *testing.T, clock *sessiontest.Clock) session.Store {
		return open(t, js, natskv.Config{Now: clock.Now})
	})
}

func TestConfig(t *testing.T) {
	for _, c := range []natskv.Config{{Replicas: 2}, {MaxLifetime: time.Second}, {MaxLifetime: 500 * 24 * time.Hour}} {
		c.Defaults()
		if err := c.Validate(); !errs.Is(errs.Invalid, err) {
			t.Errorf("%+v: %v, want invalid", c, err)
		}
	}
	c := natskv.Config{}
	c.Defaults()
	if c.Bucket != "identity-sessions" || c.MaxLifetime != 30*24*time.Hour || c.Validate() != nil {
		t.Fatalf("defaults: %+v", c)
	}
	if kc := c.KeyValueConfig(); kc.TTL != c.MaxLifetime || kc.History != 1 {
		t.Fatalf("bucket config: %+v", kc)
	}
}

// A session that would outlive the bucket's MaxAge is refused: the server
// would drop it early.
func TestCreateBeyondMaxLifetime(t *testing.T) {
	_, _, js := nodetest.Start(t)
	s := open(t, js, natskv.Config{MaxLifetime: time.Hour})
	m, err := session.NewManager(s, session.Config{Lifetime: 2 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := m.Start(context.Background(), identity.NewID(), "web", session.Seen{}); !errs.Is(errs.Invalid, err) {
		t.Fatalf("Start = %v, want invalid", err)
	}
}

// BenchmarkRotate measures Manager.Refresh (a read and a compare-and-set
// write) on a file-backed bucket of one replica: one session rotated in
// turn, and many sessions rotated in parallel.
func BenchmarkRotate(b *testing.B) {
	_, _, js := nodetest.Start(b)
	s := open(b, js, natskv.Config{})
	sessiontest.BenchmarkRotate(b, s)
}
