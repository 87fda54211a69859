package postgres_test

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/ticketing/ticketing/internal/postgres/pgtest"
	"github.com/ticketing/ticketing/services/payment"
	"github.com/ticketing/ticketing/services/payment/vault"
	"github.com/ticketing/ticketing/services/payment/vault/postgres"
	"github.com/ticketing/ticketing/services/payment/vault/vaulttest"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func TestContract(t *testing.T) {
	vaulttest.Run(t, func(t *testing.T) vault.Store {
		pool := pgtest.Pool(t)
		if _, err := postgres.Migrate(context.Background(), pool, quiet); err != nil {
			t.Fatal(err)
		}
		return postgres.New(pool)
	})
}

func TestMigrations(t *testing.T) {
	pool := pgtest.Pool(t)
	ctx := context.Background()
	res, err := postgres.Migrate(ctx, pool, quiet)
	if err != nil || !slices.Equal(res.Applied, []int64{1}) {
		t.Fatalf("first run: %+v, %v", res, err)
	}
	res, err = postgres.Migrate(ctx, pool, quiet)
	if err != nil || len(res.Applied) != 0 {
		t.Fatalf("second run: %+v, %v", res, err)
	}
	// The checks hold for writers that skip the vault.
	if _, err := pool.Exec(ctx, `INSERT INTO vault_data_keys (id, kek, wrapped, created_at) VALUES ('dek_000000000000000000000001', 'k1', decode(repeat('00', 60), 'hex'), now())`); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`INSERT INTO vault_data_keys (id, kek, wrapped, created_at) VALUES ('dek_1', 'k1', decode(repeat('00', 60), 'hex'), now())`,
		`INSERT INTO vault_data_keys (id, kek, wrapped, created_at) VALUES ('dek_000000000000000000000002', 'k1', '\x00', now())`,
		`INSERT INTO vault_cards (token_id, data_key, brand, last4, exp_month, exp_year, fingerprint, created_at, sealed)
			VALUES ('pm_00000000000000000000000000000001', 'dek_000000000000000000000009', 'visa', '4242', 12, 2030, 'x', now(), decode(repeat('00', 40), 'hex'))`,
		`INSERT INTO vault_cards (token_id, data_key, brand, last4, exp_month, exp_year, fingerprint, created_at, sealed)
			VALUES ('pm_00000000000000000000000000000001', 'dek_000000000000000000000001', 'visa', '4242424242424242', 12, 2030, 'x', now(), decode(repeat('00', 40), 'hex'))`,
	} {
		if _, err := pool.Exec(ctx, q); err == nil {
			t.Fatalf("%s: succeeded", q)
		}
	}
}

// BenchmarkOpen is what the payment service reads of the vault for a
// payment: the card and its summary, by Open and Summary (three reads:
// the card, its CVC, the card again: µs-open-summary) and, interleaved
// with it, by OpenCard (one: µs-opencard).
func BenchmarkOpen(b *testing.B) {
	pool := pgtest.Pool(b)
	ctx := context.Background()
	if _, err := postgres.Migrate(ctx, pool, quiet); err != nil {
		b.Fatal(err)
	}
	v, err := vault.New(ctx, postgres.New(pool), vault.Config{Keyring: vaulttest.Keyring(b, "k1", "", "k1")})
	if err != nil {
		b.Fatal(err)
	}
	tok, err := v.Seal(ctx, payment.Card{Number: "4242424242424242", ExpMonth: 12, ExpYear: time.Now().Year() + 2, CVC: "123"})
	if err != nil {
		b.Fatal(err)
	}
	var two, one time.Duration
	for range b.N {
		t0 := time.Now()
		if _, err := v.Open(ctx, tok.ID); err != nil {
			b.Fatal(err)
		}
		if _, err := v.Summary(ctx, tok.ID); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if _, _, err := v.OpenCard(ctx, tok.ID); err != nil {
			b.Fatal(err)
		}
		two, one = two+t1.Sub(t0), one+time.Since(t1)
	}
	b.ReportMetric(float64(two.Microseconds())/float64(b.N), "µs-open-summary")
	b.ReportMetric(float64(one.Microseconds())/float64(b.N), "µs-opencard")
}

// BenchmarkPutCard is what Seal writes, a card and its CVC: by PutCVC
// and PutCard (two statements: µs-two) and, interleaved with it, by
// PutCardWithCVC (one: µs-one).
func BenchmarkPutCard(b *testing.B) {
	pool := pgtest.Pool(b)
	ctx := context.Background()
	if _, err := postgres.Migrate(ctx, pool, quiet); err != nil {
		b.Fatal(err)
	}
	s := postgres.New(pool)
	k, err := s.CreateKey(ctx, vault.WrappedKey{ID: vault.NewKeyID(), KEK: "k1", Wrapped: make([]byte, 60), Created: time.Now()})
	if err != nil {
		b.Fatal(err)
	}
	records := func() (vault.SealedCard, vault.SealedCVC) {
		id := vault.NewTokenID()
		return vault.SealedCard{Token: vault.Token{ID: id, Brand: payment.BrandVisa, Last4: "4242", ExpMonth: 12, ExpYear: 2030,
				Fingerprint: "0123456789abcdef0123456789abcdef", Created: time.Now()}, KeyID: k.ID, Sealed: make([]byte, 80)},
			vault.SealedCVC{TokenID: id, KeyID: k.ID, Sealed: make([]byte, 31), ExpiresAt: time.Now().Add(time.Hour)}
	}
	var two, one time.Duration
	for range b.N {
		t0 := time.Now()
		card, cvc := records()
		if err := s.PutCVC(ctx, cvc); err != nil {
			b.Fatal(err)
		}
		if err := s.PutCard(ctx, card); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		card, cvc = records()
		if err := s.PutCardWithCVC(ctx, card, &cvc); err != nil {
			b.Fatal(err)
		}
		two, one = two+t1.Sub(t0), one+time.Since(t1)
	}
	b.ReportMetric(float64(two.Microseconds())/float64(b.N), "µs-two")
	b.ReportMetric(float64(one.Microseconds())/float64(b.N), "µs-one")
}
