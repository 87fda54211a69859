package postgres_test

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"github.com/ticketing/ticketing/internal/postgres/pgtest"
	"github.com/ticketing/ticketing/services/analytics"
	"github.com/ticketing/ticketing/services/analytics/analyticstest"
	"github.com/ticketing/ticketing/services/analytics/postgres"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func TestContract(t *testing.T) {
	analyticstest.Run(t, func(t *testing.T) analyticstest.Harness {
		pool := pgtest.Pool(t)
		if _, err := postgres.Migrate(context.Background(), pool, quiet); err != nil {
			t.Fatal(err)
		}
		return analyticstest.Harness{Store: postgres.New(pool), Reopen: func(t *testing.T) analytics.Store { return postgres.New(pool) }}
	})
}
