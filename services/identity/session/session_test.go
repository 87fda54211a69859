package session_test

import (
	"testing"
	"time"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/services/identity/session"
	"github.com/ticketing/ticketing/services/identity/session/sessiontest"
)

func TestContractInMemory(t *testing.T) {
	sessiontest.Run(t, func(t *testing.T, clock *sessiontest.Clock) session.Store {
		return newMemStore(clock.Now)
	})
}

func TestConfig(t *testing.T) {
	for _, c := range []session.Config{
		{Lifetime: time.Second},
		{Lifetime: 500 * 24 * time.Hour},
		{Grace: -time.Second},
		{Grace: 10 * time.Minute},
		{Lifetime: time.Minute, Grace: 2 * time.Minute},
	} {
		c.Defaults()
		if err := c.Validate(); !errs.Is(errs.Invalid, err) {
			t.Errorf("%+v: %v, want invalid", c, err)
		}
	}
	c := session.Config{}
	c.Defaults()
	if c.Lifetime != 30*24*time.Hour || c.Grace != 30*time.Second || c.Validate() != nil {
		t.Fatalf("defaults: %+v", c)
	}
	c = session.Config{NoGrace: true, Grace: time.Second}
	c.Defaults()
	if c.Grace != 0 || c.Validate() != nil {
		t.Fatalf("NoGrace: %+v", c)
	}
}
