package postgres_test

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"github.com/ticketing/ticketing/internal/postgres/pgtest"
	"github.com/ticketing/ticketing/services/notification"
	"github.com/ticketing/ticketing/services/notification/notificationtest"
	"github.com/ticketing/ticketing/services/notification/postgres"
)

func TestContract(t *testing.T) {
	pool := pgtest.Pool(t)
	if _, err := postgres.Migrate(context.Background(), pool, slog.New(slog.NewTextHandler(io.Discard, nil))); err != nil {
		t.Fatal(err)
	}
	l := postgres.New(pool)
	notificationtest.Run(t, func(*testing.T) notification.Ledger { return l })
}
