// Package vaulttest is the contract suite of vault.Store: every
// implementation runs it (the embedded natskv store and the PostgreSQL
// store), so that they behave the same to the vault. It also runs the
// vault itself (sealing, opening, forgetting CVCs, rotating KEKs) on each
// store.
package vaulttest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/services/payment"
	"github.com/ticketing/ticketing/services/payment/vault"
)

// Run runs the suite. newStore returns an empty store for each subtest;
// stores are used from many goroutines at once.
func Run(t *testing.T, newStore func(t *testing.T) vault.Store) {
	t.Helper()
	for _, tc := range []struct {
		name string
		f    func(*testing.T, vault.Store)
	}{
		{"KeyCreateAndRead", testKeyCreateAndRead},
		{"KeyInvalid", testKeyInvalid},
		{"KeysPaging", testKeysPaging},
		{"UpdateKey", testUpdateKey},
		{"UpdateKeyConcurrent", testUpdateKeyConcurrent},
		{"Card", testCard},
		{"CVC", testCVC},
		{"CardAndCVC", testCardAndCVC},
		{"PutCardWithCVC", testPutCardWithCVC},
		{"FingerprintCheck", testFingerprintCheck},
		{"CancelledContext", testCancelledContext},
		{"SealOpen", testSealOpen},
		{"SealInvalid", testSealInvalid},
		{"ForgetCVC", testForgetCVC},
		{"OpenCard", testOpenCard},
		{"CVCExpires", testCVCExpires},
		{"DataKeyPerCards", testDataKeyPerCards},
		{"DataKeyLifetime", testDataKeyLifetime},
		{"MovedCiphertext", testMovedCiphertext},
		{"Rotation", testRotation},
		{"RewrapResume", testRewrapResume},
		{"RewrapConcurrent", testRewrapConcurrent},
		{"KEKMissing", testKEKMissing},
		{"FingerprintKeyChanged", testFingerprintKeyChanged},
		{"ConcurrentSeal", testConcurrentSeal},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.f(t, newStore(t))
		})
	}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return c
}

// now has nanoseconds and a zone, so that the stores' normalization shows.
func now() time.Time {
	return time.Date(2026, 3, 14, 15, 9, 26, 535897932, time.FixedZone("CET", 3600))
}

func wantKind(t *testing.T, err error, k errs.Kind, reason string) {
	t.Helper()
	if !errs.Is(k, err) {
		t.Fatalf("error %v (kind %v), want kind %v", err, errs.KindOf(err), k)
	}
	if reason != "" && errs.ReasonOf(err) != reason {
		t.Fatalf("error %v has reason %q, want %q", err, errs.ReasonOf(err), reason)
	}
}

// kek is a deterministic test key.
func kek(name string) []byte {
	s := sha256.Sum256([]byte("vaulttest " + name))
	return s[:]
}

// Keyring returns a keyring of the named test keys (deterministic), with
// active and fingerprint as NewKeyring takes them.
func Keyring(t testing.TB, active, fingerprint string, ids ...string) vault.Keyring {
	t.Helper()
	keys := map[string][]byte{}
	for _, id := range ids {
		keys[id] = kek(id)
	}
	k, err := vault.NewKeyring(active, fingerprint, keys)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func wrapped(id, kekID string) vault.WrappedKey {
	return vault.WrappedKey{ID: id, KEK: kekID, Wrapped: bytes.Repeat([]byte{7}, 60), Created: now()}
}

func createKey(t *testing.T, s vault.Store, k vault.WrappedKey) vault.WrappedKey {
	t.Helper()
	got, err := s.CreateKey(ctx(t), k)
	if err != nil {
		t.Fatalf("CreateKey %s: %v", k.ID, err)
	}
	return got
}

func sameKey(t *testing.T, got, want vault.WrappedKey) {
	t.Helper()
	if got.ID != want.ID || got.KEK != want.KEK || !bytes.Equal(got.Wrapped, want.Wrapped) ||
		!got.Created.Equal(want.Created) || got.Created.Location() != time.UTC || got.Version != want.Version {
		t.Fatalf("key %+v, want %+v", got, want)
	}
}

func testKeyCreateAndRead(t *testing.T, s vault.Store) {
	c := ctx(t)
	k := wrapped(vault.NewKeyID(), "k1")
	got := createKey(t, s, k)
	if got.Version == 0 || got.Created.Nanosecond()%1000 != 0 || got.Created.Location() != time.UTC {
		t.Fatalf("CreateKey returned %+v", got)
	}
	read, err := s.Key(c, k.ID)
	if err != nil {
		t.Fatal(err)
	}
	sameKey(t, read, got)
	_, err = s.CreateKey(c, wrapped(k.ID, "k2"))
	wantKind(t, err, errs.Conflict, "")
	read, _ = s.Key(c, k.ID)
	sameKey(t, read, got)
	_, err = s.Key(c, vault.NewKeyID())
	wantKind(t, err, errs.NotFound, "")
	_, err = s.Key(c, "dek_*")
	wantKind(t, err, errs.NotFound, "")
}

func testKeyInvalid(t *testing.T, s vault.Store) {
	c := ctx(t)
	for name, k := range map[string]vault.WrappedKey{
		"id":      wrapped("dek_x", "k1"),
		"kek":     wrapped(vault.NewKeyID(), "k 1"),
		"short":   {ID: vault.NewKeyID(), KEK: "k1", Wrapped: []byte{1, 2, 3}, Created: now()},
		"created": {ID: vault.NewKeyID(), KEK: "k1", Wrapped: bytes.Repeat([]byte{1}, 60)},
	} {
		_, err := s.CreateKey(c, k)
		if !errs.Is(errs.Invalid, err) {
			t.Errorf("%s: CreateKey = %v, want invalid", name, err)
		}
	}
	keys, err := s.Keys(c, "", 10)
	if err != nil || len(keys) != 0 {
		t.Fatalf("after invalid creates: %v, %v", keys, err)
	}
	for _, limit := range []int{0, -1, vault.MaxKeysPage + 1} {
		_, err := s.Keys(c, "", limit)
		wantKind(t, err, errs.Invalid, "")
	}
}

func testKeysPaging(t *testing.T, s vault.Store) {
	c := ctx(t)
	var ids []string
	for i := 0; i < 25; i++ {
		k := createKey(t, s, wrapped(vault.NewKeyID(), fmt.Sprintf("k%d", i%3)))
		ids = append(ids, k.ID)
	}
	slices.Sort(ids)
	var got []string
	after := ""
	for pages := 0; ; pages++ {
		page, err := s.Keys(c, after, 10)
		if err != nil {
			t.Fatal(err)
		}
		if pages > 3 {
			t.Fatalf("too many pages")
		}
		for _, k := range page {
			if k.Version == 0 || len(k.Wrapped) != 60 {
				t.Fatalf("listed %+v", k)
			}
			got = append(got, k.ID)
		}
		if len(page) < 10 {
			break
		}
		after = page[len(page)-1].ID
	}
	if !slices.Equal(got, ids) {
		t.Fatalf("listed\n%v\nwant\n%v", got, ids)
	}
	page, err := s.Keys(c, ids[23], 10)
	if err != nil || len(page) != 1 || page[0].ID != ids[24] {
		t.Fatalf("after the second last: %v, %v", page, err)
	}
	// A cursor need not be a stored id.
	page, err = s.Keys(c, "dek_", 2)
	if err != nil || len(page) != 2 || page[0].ID != ids[0] {
		t.Fatalf("after dek_: %v, %v", page, err)
	}
}

func testUpdateKey(t *testing.T, s vault.Store) {
	c := ctx(t)
	k := createKey(t, s, wrapped(vault.NewKeyID(), "k1"))
	next := k
	next.KEK, next.Wrapped = "k2", bytes.Repeat([]byte{9}, 60)
	got, err := s.UpdateKey(c, next)
	if err != nil {
		t.Fatal(err)
	}
	if got.Version <= k.Version || got.KEK != "k2" {
		t.Fatalf("UpdateKey = %+v", got)
	}
	read, err := s.Key(c, k.ID)
	if err != nil {
		t.Fatal(err)
	}
	sameKey(t, read, got)

	_, err = s.UpdateKey(c, next) // at the old version
	wantKind(t, err, errs.Conflict, vault.ReasonVersionMismatch)
	moved := got
	moved.Created = moved.Created.Add(time.Second)
	_, err = s.UpdateKey(c, moved)
	wantKind(t, err, errs.Invalid, "")
	_, err = s.UpdateKey(c, wrapped(vault.NewKeyID(), "k1"))
	wantKind(t, err, errs.NotFound, "")
	bad := got
	bad.Wrapped = []byte{1}
	_, err = s.UpdateKey(c, bad)
	wantKind(t, err, errs.Invalid, "")
	read, _ = s.Key(c, k.ID)
	sameKey(t, read, got)
}

func testUpdateKeyConcurrent(t *testing.T, s vault.Store) {
	c := ctx(t)
	k := createKey(t, s, wrapped(vault.NewKeyID(), "k1"))
	var wins, conflicts atomic.Int32
	var wg sync.WaitGroup
	for i := 0; i < 10; i++ {
		wg.Go(func() {
			next := k
			next.KEK = fmt.Sprintf("k%d", i+2)
			_, err := s.UpdateKey(c, next)
			switch {
			case err == nil:
				wins.Add(1)
			case errs.Is(errs.Conflict, err):
				conflicts.Add(1)
			default:
				t.Errorf("UpdateKey: %v", err)
			}
		})
	}
	wg.Wait()
	if wins.Load() != 1 || conflicts.Load() != 9 {
		t.Fatalf("%d updates from one version succeeded, %d conflicted", wins.Load(), conflicts.Load())
	}
}

func token(id string) vault.Token {
	return vault.Token{ID: id, Brand: payment.BrandVisa, Last4: "4242", ExpMonth: 12, ExpYear: 2030,
		Fingerprint: strings.Repeat("ab", 16), Created: now()}
}

func testCard(t *testing.T, s vault.Store) {
	c := ctx(t)
	k := createKey(t, s, wrapped(vault.NewKeyID(), "k1"))
	sc := vault.SealedCard{Token: token(vault.NewTokenID()), KeyID: k.ID, Sealed: bytes.Repeat([]byte{3}, 80)}
	if err := s.PutCard(c, sc); err != nil {
		t.Fatal(err)
	}
	got, err := s.Card(c, sc.Token.ID)
	if err != nil {
		t.Fatal(err)
	}
	want := sc
	want.Token.Created = want.Token.Created.UTC().Truncate(time.Microsecond)
	if got.Token != want.Token || got.KeyID != want.KeyID || !bytes.Equal(got.Sealed, want.Sealed) ||
		got.Token.Created.Location() != time.UTC {
		t.Fatalf("Card = %+v, want %+v", got, want)
	}
	err = s.PutCard(c, vault.SealedCard{Token: token(sc.Token.ID), KeyID: k.ID, Sealed: bytes.Repeat([]byte{4}, 80)})
	wantKind(t, err, errs.Conflict, "")
	if got, _ := s.Card(c, sc.Token.ID); !bytes.Equal(got.Sealed, sc.Sealed) {
		t.Fatal("a conflicting PutCard replaced the card")
	}
	_, err = s.Card(c, vault.NewTokenID())
	wantKind(t, err, errs.NotFound, "")
	_, err = s.Card(c, "pm_>")
	wantKind(t, err, errs.NotFound, "")

	// The data key must exist.
	err = s.PutCard(c, vault.SealedCard{Token: token(vault.NewTokenID()), KeyID: vault.NewKeyID(), Sealed: bytes.Repeat([]byte{3}, 80)})
	wantKind(t, err, errs.Invalid, "")
	for name, bad := range map[string]vault.SealedCard{
		"token id": {Token: token("pm_1"), KeyID: k.ID, Sealed: bytes.Repeat([]byte{3}, 80)},
		"sealed":   {Token: token(vault.NewTokenID()), KeyID: k.ID, Sealed: []byte{1}},
		"last4":    {Token: func() vault.Token { tk := token(vault.NewTokenID()); tk.Last4 = "42"; return tk }(), KeyID: k.ID, Sealed: bytes.Repeat([]byte{3}, 80)},
		"key id":   {Token: token(vault.NewTokenID()), KeyID: "k1", Sealed: bytes.Repeat([]byte{3}, 80)},
	} {
		if err := s.PutCard(c, bad); !errs.Is(errs.Invalid, err) {
			t.Errorf("%s: PutCard = %v, want invalid", name, err)
		}
	}
}

func testCVC(t *testing.T, s vault.Store) {
	c := ctx(t)
	k := createKey(t, s, wrapped(vault.NewKeyID(), "k1"))
	id := vault.NewTokenID()
	cvc := vault.SealedCVC{TokenID: id, KeyID: k.ID, Sealed: bytes.Repeat([]byte{5}, 31), ExpiresAt: time.Now().Add(time.Hour)}
	if err := s.PutCVC(c, cvc); err != nil {
		t.Fatal(err)
	}
	got, err := s.CVC(c, id)
	if err != nil {
		t.Fatal(err)
	}
	if got.TokenID != id || got.KeyID != k.ID || !bytes.Equal(got.Sealed, cvc.Sealed) ||
		!got.ExpiresAt.Equal(cvc.ExpiresAt.Truncate(time.Microsecond)) || got.ExpiresAt.Location() != time.UTC {
		t.Fatalf("CVC = %+v, want %+v", got, cvc)
	}
	// Replaced.
	cvc.Sealed = bytes.Repeat([]byte{6}, 31)
	if err := s.PutCVC(c, cvc); err != nil {
		t.Fatal(err)
	}
	if got, err := s.CVC(c, id); err != nil || !bytes.Equal(got.Sealed, cvc.Sealed) {
		t.Fatalf("replaced CVC = %+v, %v", got, err)
	}
	// Deleted, twice.
	for i := 0; i < 2; i++ {
		if err := s.DeleteCVC(c, id); err != nil {
			t.Fatal(err)
		}
		_, err = s.CVC(c, id)
		wantKind(t, err, errs.NotFound, "")
	}
	if err := s.DeleteCVC(c, vault.NewTokenID()); err != nil {
		t.Fatalf("deleting a CVC never stored: %v", err)
	}
	// Expired.
	expired := vault.SealedCVC{TokenID: vault.NewTokenID(), KeyID: k.ID, Sealed: bytes.Repeat([]byte{5}, 31), ExpiresAt: time.Now().Add(-time.Minute)}
	if err := s.PutCVC(c, expired); err != nil {
		t.Fatal(err)
	}
	_, err = s.CVC(c, expired.TokenID)
	wantKind(t, err, errs.NotFound, "")
	// Its data key must exist.
	err = s.PutCVC(c, vault.SealedCVC{TokenID: vault.NewTokenID(), KeyID: vault.NewKeyID(), Sealed: bytes.Repeat([]byte{5}, 31), ExpiresAt: time.Now().Add(time.Hour)})
	wantKind(t, err, errs.Invalid, "")
	err = s.PutCVC(c, vault.SealedCVC{TokenID: vault.NewTokenID(), KeyID: k.ID, Sealed: bytes.Repeat([]byte{5}, 31)})
	wantKind(t, err, errs.Invalid, "")
	_, err = s.CVC(c, "pm_*")
	wantKind(t, err, errs.NotFound, "")
}

func testCardAndCVC(t *testing.T, s vault.Store) {
	c := ctx(t)
	k := createKey(t, s, wrapped(vault.NewKeyID(), "k1"))
	sc := vault.SealedCard{Token: token(vault.NewTokenID()), KeyID: k.ID, Sealed: bytes.Repeat([]byte{3}, 80)}
	if err := s.PutCard(c, sc); err != nil {
		t.Fatal(err)
	}
	want := sc
	want.Token.Created = want.Token.Created.UTC().Truncate(time.Microsecond)
	read := func(id string) *vault.SealedCVC {
		t.Helper()
		got, cvc, err := s.CardAndCVC(c, id)
		if err != nil {
			t.Fatalf("CardAndCVC: %v", err)
		}
		if got.Token != want.Token || got.KeyID != want.KeyID || !bytes.Equal(got.Sealed, want.Sealed) || got.Token.Created.Location() != time.UTC {
			t.Fatalf("CardAndCVC's card = %+v, want %+v", got, want)
		}
		return cvc
	}
	// No CVC stored.
	if cvc := read(sc.Token.ID); cvc != nil {
		t.Fatalf("a card without a CVC read with %+v", cvc)
	}
	// Stored: the CVC as CVC reads it.
	cvc := vault.SealedCVC{TokenID: sc.Token.ID, KeyID: k.ID, Sealed: bytes.Repeat([]byte{5}, 31), ExpiresAt: time.Now().Add(time.Hour)}
	if err := s.PutCVC(c, cvc); err != nil {
		t.Fatal(err)
	}
	got := read(sc.Token.ID)
	if got == nil || got.TokenID != cvc.TokenID || got.KeyID != k.ID || !bytes.Equal(got.Sealed, cvc.Sealed) ||
		!got.ExpiresAt.Equal(cvc.ExpiresAt.Truncate(time.Microsecond)) || got.ExpiresAt.Location() != time.UTC {
		t.Fatalf("CardAndCVC's CVC = %+v, want %+v", got, cvc)
	}
	// Deleted.
	if err := s.DeleteCVC(c, sc.Token.ID); err != nil {
		t.Fatal(err)
	}
	if cvc := read(sc.Token.ID); cvc != nil {
		t.Fatalf("a deleted CVC read as %+v", cvc)
	}
	// Expired.
	cvc.ExpiresAt = time.Now().Add(-time.Minute)
	if err := s.PutCVC(c, cvc); err != nil {
		t.Fatal(err)
	}
	if cvc := read(sc.Token.ID); cvc != nil {
		t.Fatalf("an expired CVC read as %+v", cvc)
	}
	// No card: not found, a CVC without its card too.
	orphan := vault.SealedCVC{TokenID: vault.NewTokenID(), KeyID: k.ID, Sealed: bytes.Repeat([]byte{5}, 31), ExpiresAt: time.Now().Add(time.Hour)}
	if err := s.PutCVC(c, orphan); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{vault.NewTokenID(), orphan.TokenID, "pm_>", ""} {
		_, _, err := s.CardAndCVC(c, id)
		wantKind(t, err, errs.NotFound, "")
	}
}

func testPutCardWithCVC(t *testing.T, s vault.Store) {
	c := ctx(t)
	k := createKey(t, s, wrapped(vault.NewKeyID(), "k1"))
	sc := vault.SealedCard{Token: token(vault.NewTokenID()), KeyID: k.ID, Sealed: bytes.Repeat([]byte{3}, 80)}
	cvc := vault.SealedCVC{TokenID: sc.Token.ID, KeyID: k.ID, Sealed: bytes.Repeat([]byte{5}, 31), ExpiresAt: time.Now().Add(time.Hour)}
	if err := s.PutCardWithCVC(c, sc, &cvc); err != nil {
		t.Fatal(err)
	}
	got, gotCVC, err := s.CardAndCVC(c, sc.Token.ID)
	if err != nil || got.KeyID != k.ID || !bytes.Equal(got.Sealed, sc.Sealed) || got.Token.Last4 != sc.Token.Last4 ||
		gotCVC == nil || !bytes.Equal(gotCVC.Sealed, cvc.Sealed) || !gotCVC.ExpiresAt.Equal(cvc.ExpiresAt.Truncate(time.Microsecond)) {
		t.Fatalf("CardAndCVC = %+v, %+v, %v", got, gotCVC, err)
	}
	// Without a CVC.
	bare := vault.SealedCard{Token: token(vault.NewTokenID()), KeyID: k.ID, Sealed: bytes.Repeat([]byte{4}, 80)}
	if err := s.PutCardWithCVC(c, bare, nil); err != nil {
		t.Fatal(err)
	}
	if got, gotCVC, err := s.CardAndCVC(c, bare.Token.ID); err != nil || !bytes.Equal(got.Sealed, bare.Sealed) || gotCVC != nil {
		t.Fatalf("CardAndCVC of a card stored without a CVC = %+v, %+v, %v", got, gotCVC, err)
	}
	// A token that exists: the card stays.
	again := vault.SealedCard{Token: sc.Token, KeyID: k.ID, Sealed: bytes.Repeat([]byte{6}, 80)}
	err = s.PutCardWithCVC(c, again, &vault.SealedCVC{TokenID: sc.Token.ID, KeyID: k.ID, Sealed: bytes.Repeat([]byte{7}, 31), ExpiresAt: time.Now().Add(time.Hour)})
	wantKind(t, err, errs.Conflict, "")
	if got, _ := s.Card(c, sc.Token.ID); !bytes.Equal(got.Sealed, sc.Sealed) {
		t.Fatal("a conflicting PutCardWithCVC replaced the card")
	}
	// Refused, nothing stored: the card's or the CVC's data key missing, a
	// CVC of another token, malformed records.
	other := vault.NewKeyID()
	for name, tc := range map[string]struct {
		card vault.SealedCard
		cvc  *vault.SealedCVC
	}{
		"card's key": {vault.SealedCard{Token: token(vault.NewTokenID()), KeyID: other, Sealed: bytes.Repeat([]byte{3}, 80)}, nil},
		"cvc's key":  {vault.SealedCard{Token: token(vault.NewTokenID()), KeyID: k.ID, Sealed: bytes.Repeat([]byte{3}, 80)}, &vault.SealedCVC{KeyID: other, Sealed: bytes.Repeat([]byte{5}, 31), ExpiresAt: time.Now().Add(time.Hour)}},
		"cvc's token": {vault.SealedCard{Token: token(vault.NewTokenID()), KeyID: k.ID, Sealed: bytes.Repeat([]byte{3}, 80)},
			&vault.SealedCVC{TokenID: vault.NewTokenID(), KeyID: k.ID, Sealed: bytes.Repeat([]byte{5}, 31), ExpiresAt: time.Now().Add(time.Hour)}},
		"card":       {vault.SealedCard{Token: token(vault.NewTokenID()), KeyID: k.ID, Sealed: []byte{1}}, nil},
		"cvc expiry": {vault.SealedCard{Token: token(vault.NewTokenID()), KeyID: k.ID, Sealed: bytes.Repeat([]byte{3}, 80)}, &vault.SealedCVC{KeyID: k.ID, Sealed: bytes.Repeat([]byte{5}, 31)}},
	} {
		if tc.cvc != nil && tc.cvc.TokenID == "" {
			tc.cvc.TokenID = tc.card.Token.ID
		}
		if err := s.PutCardWithCVC(c, tc.card, tc.cvc); !errs.Is(errs.Invalid, err) {
			t.Errorf("%s: PutCardWithCVC = %v, want invalid", name, err)
		}
		if _, err := s.Card(c, tc.card.Token.ID); !errs.Is(errs.NotFound, err) {
			t.Errorf("%s: the refused card is stored (%v)", name, err)
		}
	}
}

func testFingerprintCheck(t *testing.T, s vault.Store) {
	c := ctx(t)
	var wg sync.WaitGroup
	got := make([]string, 10)
	for i := range got {
		wg.Go(func() {
			v, err := s.FingerprintCheck(c, fmt.Sprintf("v1:%d", i))
			if err != nil {
				t.Errorf("FingerprintCheck: %v", err)
			}
			got[i] = v
		})
	}
	wg.Wait()
	for _, v := range got {
		if v != got[0] || !strings.HasPrefix(v, "v1:") {
			t.Fatalf("concurrent first checks returned %v", got)
		}
	}
	if v, err := s.FingerprintCheck(c, "v1:other"); err != nil || v != got[0] {
		t.Fatalf("later check = %q, %v; want %q", v, err, got[0])
	}
}

func testCancelledContext(t *testing.T, s vault.Store) {
	c, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.CreateKey(c, wrapped(vault.NewKeyID(), "k1")); err == nil {
		t.Fatal("CreateKey with a cancelled context succeeded")
	}
	if _, err := s.Key(c, vault.NewKeyID()); err == nil || errs.Is(errs.NotFound, err) {
		t.Fatalf("Key with a cancelled context: %v", err)
	}
}

// newVault opens a vault on s with the test keyring k1 (or the given
// one) and a clock.
func newVault(t *testing.T, s vault.Store, kr vault.Keyring, mod ...func(*vault.Config)) *vault.Vault {
	t.Helper()
	if kr.IsZero() {
		kr = Keyring(t, "k1", "", "k1")
	}
	cfg := vault.Config{Keyring: kr}
	for _, m := range mod {
		m(&cfg)
	}
	v, err := vault.New(ctx(t), s, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// The simulator's test cards and a few of other brands.
var cards = []struct {
	number string
	brand  payment.Brand
}{
	{"4242424242424242", payment.BrandVisa},
	{"4000002760003184", payment.BrandVisa},
	{"5555555555554444", payment.BrandMastercard},
	{"2223003122003222", payment.BrandMastercard},
	{"378282246310005", payment.BrandAmex},
	{"6011111111111117", payment.BrandDiscover},
}

func card(number string) payment.Card {
	cvc := "123"
	if strings.HasPrefix(number, "37") || strings.HasPrefix(number, "34") {
		cvc = "1234"
	}
	return payment.Card{Number: number, ExpMonth: 12, ExpYear: time.Now().Year() + 2, CVC: cvc}
}

func seal(t *testing.T, v *vault.Vault, c payment.Card) vault.Token {
	t.Helper()
	tok, err := v.Seal(ctx(t), c)
	if err != nil {
		t.Fatalf("Seal %v: %v", c, err)
	}
	return tok
}

func mustOpen(t *testing.T, v *vault.Vault, id string) payment.Card {
	t.Helper()
	c, err := v.Open(ctx(t), id)
	if err != nil {
		t.Fatalf("Open %s: %v", id, err)
	}
	return c
}

func testSealOpen(t *testing.T, s vault.Store) {
	v := newVault(t, s, vault.Keyring{})
	c := ctx(t)
	fingerprints := map[string]string{}
	for _, tc := range cards {
		in := card(tc.number)
		spaced := in
		spaced.Number = tc.number[:4] + " " + tc.number[4:8] + "-" + tc.number[8:]
		tok := seal(t, v, spaced)
		if !vault.ValidTokenID(tok.ID) || tok.Brand != tc.brand || tok.Last4 != tc.number[len(tc.number)-4:] ||
			tok.ExpMonth != 12 || tok.ExpYear != in.ExpYear || len(tok.Fingerprint) != 32 || tok.Created.IsZero() {
			t.Fatalf("token of %s: %+v", tc.number, tok)
		}
		got := mustOpen(t, v, tok.ID)
		if got != in {
			t.Fatalf("opened %s as a card ending %s, exp %d/%d, cvc %d digits", tc.number, got.Number[len(got.Number)-4:],
				got.ExpMonth, got.ExpYear, len(got.CVC))
		}
		read, err := v.Token(c, tok.ID)
		if err != nil || read != tok {
			t.Fatalf("Token = %+v, %v; want %+v", read, err, tok)
		}
		// The same number again: another token, the same fingerprint.
		again := seal(t, v, in)
		if again.ID == tok.ID || again.Fingerprint != tok.Fingerprint {
			t.Fatalf("second token of %s: %+v, first %+v", tc.number, again, tok)
		}
		if other, ok := fingerprints[tok.Fingerprint]; ok {
			t.Fatalf("%s and %s have one fingerprint", tc.number, other)
		}
		fingerprints[tok.Fingerprint] = tc.number
		if tok.Fingerprint != v.Fingerprint(tc.number) {
			t.Fatal("Fingerprint differs from the token's")
		}
	}
	// A card without a CVC.
	in := card("4242424242424242")
	in.CVC = ""
	tok := seal(t, v, in)
	if got := mustOpen(t, v, tok.ID); got != in {
		t.Fatalf("card without a CVC opened with %d CVC digits", len(got.CVC))
	}
	// The vault's fingerprints are the same in another vault with the same keyring.
	if newVault(t, s, vault.Keyring{}).Fingerprint("4242424242424242") != tok.Fingerprint {
		t.Fatal("another vault with the same keyring fingerprints differently")
	}
	// A vault on the same store opens the card (unwrapping the data key).
	if got := mustOpen(t, newVault(t, s, vault.Keyring{}), tok.ID); got != in {
		t.Fatal("another vault opened the card differently")
	}
	for _, id := range []string{vault.NewTokenID(), "pm_", "", "pm_../x", strings.Repeat("a", 1000)} {
		_, err := v.Open(c, id)
		wantKind(t, err, errs.NotFound, "")
		_, err = v.Token(c, id)
		wantKind(t, err, errs.NotFound, "")
	}
}

func testSealInvalid(t *testing.T, s vault.Store) {
	v := newVault(t, s, vault.Keyring{})
	c := ctx(t)
	year := time.Now().Year()
	for _, tc := range []struct {
		card   payment.Card
		reason string
	}{
		{payment.Card{Number: "4242424242424241", ExpMonth: 12, ExpYear: year + 1}, vault.ReasonIncorrectNumber},
		{payment.Card{Number: "4242", ExpMonth: 12, ExpYear: year + 1}, vault.ReasonIncorrectNumber},
		{payment.Card{Number: "4242424242424242", ExpMonth: 13, ExpYear: year + 1}, vault.ReasonInvalidExpiryMonth},
		{payment.Card{Number: "4242424242424242", ExpMonth: 1, ExpYear: year - 1}, vault.ReasonExpiredCard},
		{payment.Card{Number: "4242424242424242", ExpMonth: 1, ExpYear: year + 1, CVC: "12"}, vault.ReasonInvalidCVC},
	} {
		_, err := v.Seal(c, tc.card)
		wantKind(t, err, errs.Invalid, tc.reason)
		if strings.Contains(err.Error(), tc.card.Number) {
			t.Fatalf("error %q repeats the number", err)
		}
	}
	keys, err := s.Keys(c, "", 10)
	if err != nil || len(keys) != 0 {
		t.Fatalf("invalid cards made data keys: %v, %v", keys, err)
	}
}

func testForgetCVC(t *testing.T, s vault.Store) {
	v := newVault(t, s, vault.Keyring{})
	c := ctx(t)
	in := card("5555555555554444")
	tok := seal(t, v, in)
	if got := mustOpen(t, v, tok.ID); got.CVC != in.CVC {
		t.Fatal("CVC not kept before authorization")
	}
	for i := 0; i < 2; i++ {
		if err := v.ForgetCVC(c, tok.ID); err != nil {
			t.Fatal(err)
		}
		got := mustOpen(t, v, tok.ID)
		in.CVC = ""
		if got != in {
			t.Fatalf("after ForgetCVC: a card ending %s with %d CVC digits", got.Number[len(got.Number)-4:], len(got.CVC))
		}
	}
	if _, err := s.CVC(c, tok.ID); !errs.Is(errs.NotFound, err) {
		t.Fatalf("the store still has the CVC: %v", err)
	}
	if err := v.ForgetCVC(c, vault.NewTokenID()); err != nil {
		t.Fatalf("ForgetCVC of an unknown card: %v", err)
	}
	if err := v.ForgetCVC(c, "nonsense"); err != nil {
		t.Fatalf("ForgetCVC of a malformed id: %v", err)
	}
}

// OpenCard opens the card as Open does and gives its token's summary.
func testOpenCard(t *testing.T, s vault.Store) {
	v := newVault(t, s, vault.Keyring{})
	c := ctx(t)
	in := card("378282246310005")
	tok := seal(t, v, in)
	for _, cvc := range []string{in.CVC, ""} {
		got, sum, err := v.OpenCard(c, tok.ID)
		in.CVC = cvc
		if err != nil || got != in || sum != tok.Summary() {
			t.Fatalf("OpenCard = a card ending %s with %d CVC digits, %+v, %v; want the card with %d digits, %+v",
				got.Number[max(0, len(got.Number)-4):], len(got.CVC), sum, err, len(cvc), tok.Summary())
		}
		if err := v.ForgetCVC(c, tok.ID); err != nil {
			t.Fatal(err)
		}
	}
	// Another vault on the store (the data key unwrapped anew).
	if got, sum, err := newVault(t, s, vault.Keyring{}).OpenCard(c, tok.ID); err != nil || got != in || sum != tok.Summary() {
		t.Fatalf("another vault's OpenCard: %+v, %v", sum, err)
	}
	for _, id := range []string{vault.NewTokenID(), "pm_", ""} {
		_, _, err := v.OpenCard(c, id)
		wantKind(t, err, errs.NotFound, "")
	}
}

// A CVC nobody forgets is dropped after the CVC lifetime.
func testCVCExpires(t *testing.T, s vault.Store) {
	// The vault's clock is an hour behind: its CVCs expire (by the
	// store's clock) 45 minutes ago.
	v := newVault(t, s, vault.Keyring{}, func(c *vault.Config) {
		c.Now = func() time.Time { return time.Now().Add(-time.Hour) }
		c.CVCLifetime = 15 * time.Minute
	})
	in := card("4242424242424242")
	tok := seal(t, v, in)
	if got := mustOpen(t, v, tok.ID); got.CVC != "" || got.Number != in.Number {
		t.Fatalf("expired CVC still opened: %d digits", len(got.CVC))
	}
}

func keyCount(t *testing.T, s vault.Store) map[string]int {
	t.Helper()
	keys, err := s.Keys(ctx(t), "", vault.MaxKeysPage)
	if err != nil {
		t.Fatal(err)
	}
	n := map[string]int{}
	for _, k := range keys {
		n[k.KEK]++
	}
	return n
}

func testDataKeyPerCards(t *testing.T, s vault.Store) {
	v := newVault(t, s, vault.Keyring{}, func(c *vault.Config) { c.CardsPerDEK = 3 })
	var toks []vault.Token
	for i := 0; i < 7; i++ {
		toks = append(toks, seal(t, v, card(cards[i%len(cards)].number)))
	}
	if n := keyCount(t, s); n["k1"] != 3 {
		t.Fatalf("7 cards at 3 per data key made %v data keys", n)
	}
	keysOf := map[string]int{}
	for _, tok := range toks {
		sc, err := s.Card(ctx(t), tok.ID)
		if err != nil {
			t.Fatal(err)
		}
		keysOf[sc.KeyID]++
		mustOpen(t, v, tok.ID)
	}
	for id, n := range keysOf {
		if n > 3 {
			t.Fatalf("data key %s sealed %d cards", id, n)
		}
	}
}

func testDataKeyLifetime(t *testing.T, s vault.Store) {
	var clock atomic.Int64
	v := newVault(t, s, vault.Keyring{}, func(c *vault.Config) {
		c.DEKLifetime = time.Hour
		c.Now = func() time.Time { return time.Now().Add(time.Duration(clock.Load())) }
	})
	a := seal(t, v, card("4242424242424242"))
	b := seal(t, v, card("4242424242424242"))
	clock.Store(int64(61 * time.Minute))
	cc := seal(t, v, card("4242424242424242"))
	if n := keyCount(t, s); n["k1"] != 2 {
		t.Fatalf("data keys: %v, want 2", n)
	}
	ka, _ := s.Card(ctx(t), a.ID)
	kb, _ := s.Card(ctx(t), b.ID)
	kc, _ := s.Card(ctx(t), cc.ID)
	if ka.KeyID != kb.KeyID || kc.KeyID == ka.KeyID {
		t.Fatalf("data keys %s %s %s: want the first two equal, the third new", ka.KeyID, kb.KeyID, kc.KeyID)
	}
}

// A ciphertext copied into another record does not open: the associated
// data names the token and the data key.
func testMovedCiphertext(t *testing.T, s vault.Store) {
	v := newVault(t, s, vault.Keyring{}, func(c *vault.Config) { c.CardsPerDEK = 1 })
	c := ctx(t)
	a := seal(t, v, card("4242424242424242"))
	b := seal(t, v, card("5555555555554444"))
	sa, err := s.Card(c, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	sb, _ := s.Card(c, b.ID)

	// A's sealed card under a new token id.
	moved := sa
	moved.Token.ID = vault.NewTokenID()
	if err := s.PutCard(c, moved); err != nil {
		t.Fatal(err)
	}
	_, err = v.Open(c, moved.Token.ID)
	if !errors.Is(err, vault.ErrIntegrity) || !errs.Is(errs.Other, err) {
		t.Fatalf("Open of a moved card: %v", err)
	}
	// A's sealed card naming B's data key.
	rekeyed := sa
	rekeyed.Token.ID, rekeyed.KeyID = vault.NewTokenID(), sb.KeyID
	if err := s.PutCard(c, rekeyed); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Open(c, rekeyed.Token.ID); !errors.Is(err, vault.ErrIntegrity) {
		t.Fatalf("Open of a card under another data key: %v", err)
	}
	// A's CVC put on B.
	ca, err := s.CVC(c, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	ca.TokenID = b.ID
	if err := s.PutCVC(c, ca); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Open(c, b.ID); !errors.Is(err, vault.ErrIntegrity) {
		t.Fatalf("Open of a card with another's CVC: %v", err)
	}
	// A data key's wrapped form moved to another data key.
	ka, _ := s.Key(c, sa.KeyID)
	kb, _ := s.Key(c, sb.KeyID)
	kb.Wrapped = ka.Wrapped
	if _, err := s.UpdateKey(c, kb); err != nil {
		t.Fatal(err)
	}
	fresh := newVault(t, s, vault.Keyring{}) // nothing cached
	if _, err := fresh.Open(c, b.ID); !errors.Is(err, vault.ErrIntegrity) {
		t.Fatalf("Open with a moved data key: %v", err)
	}
	// A still opens, and no error says anything of the card.
	if got := mustOpen(t, fresh, a.ID); got.Number != "4242424242424242" {
		t.Fatal("A no longer opens")
	}
	_, err = fresh.Open(c, b.ID)
	if strings.Contains(err.Error(), "5555") {
		t.Fatalf("error %q tells digits of the card", err)
	}
}

func uses(t *testing.T, v *vault.Vault) map[string]vault.KEKUse {
	t.Helper()
	list, err := v.KEKs(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]vault.KEKUse{}
	for i, u := range list {
		if i > 0 && list[i-1].ID >= u.ID {
			t.Fatalf("KEKs not in id order: %+v", list)
		}
		m[u.ID] = u
	}
	return m
}

// The whole rotation: add a KEK, make it active, re-wrap, drop the old
// one.
func testRotation(t *testing.T, s vault.Store) {
	c := ctx(t)
	// "fp" is the fingerprint key's source throughout; k1 is active first.
	v1 := newVault(t, s, Keyring(t, "k1", "fp", "fp", "k1"), func(c *vault.Config) { c.CardsPerDEK = 2 })
	var toks []vault.Token
	for i := 0; i < 9; i++ {
		toks = append(toks, seal(t, v1, card(cards[i%len(cards)].number)))
	}
	u := uses(t, v1)
	if u["k1"].DEKs != 5 || !u["k1"].Active || !u["k1"].Referenced() || !u["fp"].Fingerprint || !u["fp"].Referenced() || u["fp"].DEKs != 0 {
		t.Fatalf("before rotation: %+v", u)
	}
	// Rotate: k2 active, k1 still there.
	v2 := newVault(t, s, Keyring(t, "k2", "fp", "fp", "k1", "k2"), func(c *vault.Config) { c.CardsPerDEK = 2 })
	if u := uses(t, v2); u["k1"].DEKs != 5 || u["k1"].Active || !u["k1"].Referenced() || !u["k2"].Active {
		t.Fatalf("after the keyring changed: %+v", u)
	}
	cardsBefore := map[string]vault.SealedCard{}
	for _, tok := range toks {
		sc, _ := s.Card(c, tok.ID)
		cardsBefore[tok.ID] = sc
	}
	var reports []vault.RewrapProgress
	p, err := v2.Rewrap(c, vault.RewrapOptions{BatchSize: 2, Progress: func(p vault.RewrapProgress) { reports = append(reports, p) }})
	if err != nil {
		t.Fatal(err)
	}
	if p.Scanned != 5 || p.Rewrapped != 5 || p.Current != 0 || p.Failed != 0 || !p.Done {
		t.Fatalf("Rewrap = %+v", p)
	}
	if len(reports) != 3 || reports[0].Scanned != 2 || reports[1].Scanned != 4 || !reports[2].Done || reports[2] != p {
		t.Fatalf("progress reports %+v", reports)
	}
	u = uses(t, v2)
	if u["k1"].DEKs != 0 || u["k1"].Referenced() || u["k2"].DEKs != 5 || !u["fp"].Referenced() {
		t.Fatalf("after Rewrap: %+v", u)
	}
	// Card ciphertexts were not touched.
	for _, tok := range toks {
		sc, _ := s.Card(c, tok.ID)
		if before := cardsBefore[tok.ID]; !bytes.Equal(sc.Sealed, before.Sealed) || sc.KeyID != before.KeyID {
			t.Fatalf("Rewrap changed card %s", tok.ID)
		}
	}
	// Again: nothing to do.
	p, err = v2.Rewrap(c, vault.RewrapOptions{})
	if err != nil || p.Rewrapped != 0 || p.Current != 5 || !p.Done {
		t.Fatalf("second Rewrap = %+v, %v", p, err)
	}
	// k1 dropped: every card opens, with the same fingerprint.
	v3 := newVault(t, s, Keyring(t, "k2", "fp", "fp", "k2"))
	for i, tok := range toks {
		got := mustOpen(t, v3, tok.ID)
		if got.Number != cards[i%len(cards)].number || v3.Fingerprint(got.Number) != tok.Fingerprint {
			t.Fatalf("after dropping k1, card %d opens as another or fingerprints differently", i)
		}
	}
	if _, ok := uses(t, v3)["k1"]; ok {
		t.Fatal("k1 is still listed")
	}
}

func testRewrapResume(t *testing.T, s vault.Store) {
	v1 := newVault(t, s, Keyring(t, "k1", "k1", "k1"), func(c *vault.Config) { c.CardsPerDEK = 1 })
	for i := 0; i < 7; i++ {
		seal(t, v1, card(cards[i%len(cards)].number))
	}
	v2 := newVault(t, s, Keyring(t, "k2", "k1", "k1", "k2"))
	// The first run stops after its second batch.
	c, cancel := context.WithCancel(ctx(t))
	batches := 0
	p, err := v2.Rewrap(c, vault.RewrapOptions{BatchSize: 2, Progress: func(vault.RewrapProgress) {
		if batches++; batches == 2 {
			cancel()
		}
	}})
	if err == nil || p.Done || p.Rewrapped != 4 || p.Cursor == "" {
		t.Fatalf("cancelled Rewrap = %+v, %v", p, err)
	}
	if u := uses(t, v2); u["k1"].DEKs != 3 || u["k2"].DEKs != 4 {
		t.Fatalf("after the cancelled run: %+v", u)
	}
	// Resumed from its cursor.
	q, err := v2.Rewrap(ctx(t), vault.RewrapOptions{After: p.Cursor, BatchSize: 2})
	if err != nil || !q.Done || q.Scanned != 3 || q.Rewrapped != 3 {
		t.Fatalf("resumed Rewrap = %+v, %v", q, err)
	}
	if u := uses(t, v2); u["k1"].DEKs != 0 || u["k2"].DEKs != 7 {
		t.Fatalf("after resuming: %+v", u)
	}
}

func testRewrapConcurrent(t *testing.T, s vault.Store) {
	v1 := newVault(t, s, Keyring(t, "k1", "k1", "k1"), func(c *vault.Config) { c.CardsPerDEK = 1 })
	var toks []vault.Token
	for i := 0; i < 12; i++ {
		toks = append(toks, seal(t, v1, card(cards[i%len(cards)].number)))
	}
	kr := Keyring(t, "k2", "k1", "k1", "k2")
	var total atomic.Int32
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Go(func() {
			v := newVault(t, s, kr)
			p, err := v.Rewrap(ctx(t), vault.RewrapOptions{BatchSize: 3})
			if err != nil {
				t.Errorf("Rewrap: %v", err)
			}
			if p.Rewrapped+p.Current != 12 {
				t.Errorf("Rewrap = %+v", p)
			}
			total.Add(int32(p.Rewrapped))
		})
	}
	wg.Wait()
	if total.Load() != 12 {
		t.Fatalf("concurrent runs re-wrapped %d keys in all, want 12", total.Load())
	}
	v := newVault(t, s, Keyring(t, "k2", "k1", "k1", "k2"))
	for _, tok := range toks {
		mustOpen(t, v, tok.ID)
	}
}

func testKEKMissing(t *testing.T, s vault.Store) {
	c := ctx(t)
	v0 := newVault(t, s, Keyring(t, "k0", "fp", "fp", "k0"))
	lost := seal(t, v0, card("4242424242424242"))
	v1 := newVault(t, s, Keyring(t, "k1", "fp", "fp", "k1"))
	kept := seal(t, v1, card("5555555555554444"))

	_, err := v1.Open(c, lost.ID)
	wantKind(t, err, errs.Other, vault.ReasonKEKMissing)
	mustOpen(t, v1, kept.ID)
	u := uses(t, v1)
	if k0 := u["k0"]; k0.InKeyring || k0.DEKs != 1 || !k0.Referenced() {
		t.Fatalf("a KEK missing from the keyring: %+v", u)
	}
	p, err := v1.Rewrap(c, vault.RewrapOptions{})
	wantKind(t, err, errs.Other, vault.ReasonKEKMissing)
	if p.Failed != 1 || p.Current != 1 || !p.Done {
		t.Fatalf("Rewrap = %+v", p)
	}
}

func testFingerprintKeyChanged(t *testing.T, s vault.Store) {
	newVault(t, s, Keyring(t, "k1", "k1", "k1"))
	_, err := vault.New(ctx(t), s, vault.Config{Keyring: Keyring(t, "k2", "k2", "k1", "k2")})
	wantKind(t, err, errs.Invalid, vault.ReasonFingerprintKeyChanged)
	// The right designation works.
	newVault(t, s, Keyring(t, "k2", "k1", "k1", "k2"))
}

func testConcurrentSeal(t *testing.T, s vault.Store) {
	v := newVault(t, s, vault.Keyring{}, func(c *vault.Config) { c.CardsPerDEK = 5 })
	toks := make([]vault.Token, 20)
	var wg sync.WaitGroup
	for i := range toks {
		wg.Go(func() {
			tok, err := v.Seal(ctx(t), card(cards[i%len(cards)].number))
			if err != nil {
				t.Errorf("Seal: %v", err)
			}
			toks[i] = tok
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	for i, tok := range toks {
		if got := mustOpen(t, v, tok.ID); got.Number != cards[i%len(cards)].number {
			t.Fatalf("token %d opens as another card", i)
		}
	}
	if n := keyCount(t, s); n["k1"] != 4 {
		t.Fatalf("20 cards at 5 per data key: %v data keys", n)
	}
}
