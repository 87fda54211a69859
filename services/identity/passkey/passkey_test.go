package passkey

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/services/admission"
	admissionredis "github.com/ticketing/ticketing/services/admission/redis"
	"github.com/ticketing/ticketing/services/identity"
)

// admission's spent stores are Spents.
var (
	_ Spent = (*admission.MemorySpentStore)(nil)
	_ Spent = (*admissionredis.SpentStore)(nil)
)

const (
	testRPID   = "tickets.example"
	testOrigin = "https://tickets.example"
)

var testNow = time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newKey(t testing.TB) []byte {
	t.Helper()
	k := make([]byte, KeySize)
	_, _ = rand.Read(k)
	return k
}

// fixture is a Ceremonies on a fake clock, with a memory spent store on
// the same clock and accounts in a map.
type fixture struct {
	t        *testing.T
	clock    *clock
	key      []byte
	c        *Ceremonies
	mu       sync.Mutex
	accounts map[string]identity.Account
	loadErr  error
	spends   *countingSpent
}

// countingSpent counts the calls to Spend.
type countingSpent struct {
	Spent
	n atomic.Int64
}

func (s *countingSpent) Spend(ctx context.Context, jti, use string, until time.Time) (bool, error) {
	s.n.Add(1)
	return s.Spent.Spend(ctx, jti, use, until)
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{t: t, clock: &clock{t: testNow}, key: newKey(t), accounts: map[string]identity.Account{}}
	f.c = f.ceremonies(f.key, nil)
	return f
}

// ceremonies returns Ceremonies of the fixture's config, clock and spent
// store with other keys.
func (f *fixture) ceremonies(current, previous []byte) *Ceremonies {
	f.t.Helper()
	if f.c != nil {
		s, err := NewSealer(current, previous)
		if err != nil {
			f.t.Fatal(err)
		}
		return &Ceremonies{cfg: f.c.cfg, wa: f.c.wa, sealer: s, spent: f.c.spent}
	}
	spent, err := admission.NewMemorySpentStore(admission.MemorySpentConfig{Now: f.clock.Now})
	if err != nil {
		f.t.Fatal(err)
	}
	s, err := NewSealer(current, previous)
	if err != nil {
		f.t.Fatal(err)
	}
	f.spends = &countingSpent{Spent: spent}
	c, err := New(Config{RPID: testRPID, RPDisplayName: "Ticketing", Origins: []string{testOrigin}, Now: f.clock.Now}, s, f.spends)
	if err != nil {
		f.t.Fatal(err)
	}
	return c
}

func (f *fixture) account(email string) identity.Account {
	a := identity.Account{User: identity.User{ID: identity.NewID(), Email: email, DisplayName: "Ana", CreatedAt: testNow}}
	f.put(a)
	return a
}

func (f *fixture) put(a identity.Account) {
	f.t.Helper()
	a, err := identity.NormalizeAccount(a)
	if err != nil {
		f.t.Fatalf("account does not normalize: %v", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.accounts[a.ID] = a
}

func (f *fixture) get(id string) identity.Account {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.accounts[id]
}

func (f *fixture) load(_ context.Context, id string) (identity.Account, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.loadErr != nil {
		return identity.Account{}, f.loadErr
	}
	a, ok := f.accounts[id]
	if !ok {
		return identity.Account{}, errs.E("test.load", errs.NotFound, "no such account")
	}
	return a, nil
}

// register registers k for the account id and stores the passkey.
func (f *fixture) register(id string, k *softKey) identity.Passkey {
	f.t.Helper()
	a := f.get(id)
	s, err := f.c.BeginRegistration(a)
	if err != nil {
		f.t.Fatal(err)
	}
	p, err := f.c.FinishRegistration(context.Background(), a, s.State, k.create(f.t, s.Options), "")
	if err != nil {
		f.t.Fatalf("registration: %v", err)
	}
	a.Passkeys = append(a.Passkeys, p)
	f.put(a)
	return p
}

// login signs in with k (discoverable), stores the updated credential and
// returns the Login.
func (f *fixture) login(k *softKey) (Login, error) {
	f.t.Helper()
	s, err := f.c.BeginLogin()
	if err != nil {
		f.t.Fatal(err)
	}
	l, err := f.c.FinishLogin(context.Background(), s.State, k.get(f.t, s.Options), f.load)
	if err == nil {
		a, ok := l.Apply(f.get(l.Account.ID))
		if !ok {
			f.t.Fatal("Apply: passkey gone")
		}
		f.put(a)
	}
	return l, err
}

func credentialOf(t testing.TB, raw []byte) webauthn.Credential {
	t.Helper()
	var c webauthn.Credential
	if err := json.Unmarshal(raw, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

// wantErr checks err's kind and reason, and that the library's account of
// the refusal (its error's details and debug info), or err's text,
// contains about.
func wantErr(t testing.TB, err error, kind errs.Kind, reason, about string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error; want %v %s", kind, reason)
	}
	if errs.KindOf(err) != kind || errs.ReasonOf(err) != reason {
		t.Fatalf("error %v: kind %v reason %q; want %v %q", err, errs.KindOf(err), errs.ReasonOf(err), kind, reason)
	}
	text := err.Error()
	var pe *protocol.Error
	if errors.As(err, &pe) {
		text += " | " + pe.Details + " | " + pe.DevInfo
	}
	if !strings.Contains(strings.ToLower(text), strings.ToLower(about)) {
		t.Fatalf("error %q does not mention %q", text, about)
	}
}

func TestRegisterThenLogin(t *testing.T) {
	f := newFixture(t)
	a := f.account("ana@example.com")
	k := newSoftKey(t, testRPID, testOrigin)

	s, err := f.c.BeginRegistration(a)
	if err != nil {
		t.Fatal(err)
	}
	o := parseOptions(t, s.Options)
	if o.PublicKey.RP.ID != testRPID || o.PublicKey.User.ID != b64([]byte(a.ID)) || o.PublicKey.Challenge == "" ||
		o.PublicKey.Selection.ResidentKey != "required" || o.PublicKey.Selection.UserVerification != "preferred" ||
		o.PublicKey.Timeout != 300000 || len(o.PublicKey.Exclude) != 0 {
		t.Fatalf("creation options %s", s.Options)
	}
	if !s.Expires.Equal(testNow.Add(5*time.Minute)) || len(s.State) > 1024 {
		t.Fatalf("expires %v, state of %d bytes", s.Expires, len(s.State))
	}
	p, err := f.c.FinishRegistration(context.Background(), a, s.State, k.create(t, s.Options), " Laptop ")
	if err != nil {
		t.Fatal(err)
	}
	if p.ID != b64(k.credID) || p.Name != "Laptop" || !p.CreatedAt.Equal(testNow) || !p.LastUsedAt.IsZero() {
		t.Fatalf("passkey %+v", p)
	}
	cred := credentialOf(t, p.Credential)
	if !bytes.Equal(cred.ID, k.credID) || cred.Authenticator.SignCount != 0 || !cred.Flags.UserVerified || cred.AttestationFormat != "none" {
		t.Fatalf("credential %s", p.Credential)
	}
	a.Passkeys = append(a.Passkeys, p)
	f.put(a)

	// A second registration excludes the passkey.
	s, err = f.c.BeginRegistration(a)
	if err != nil {
		t.Fatal(err)
	}
	if o := parseOptions(t, s.Options); len(o.PublicKey.Exclude) != 1 || o.PublicKey.Exclude[0].ID != p.ID {
		t.Fatalf("creation options %s do not exclude %s", s.Options, p.ID)
	}

	f.clock.Add(time.Minute)
	s, err = f.c.BeginLogin()
	if err != nil {
		t.Fatal(err)
	}
	if o := parseOptions(t, s.Options); o.PublicKey.RPID != testRPID || len(o.PublicKey.Allow) != 0 || o.PublicKey.UserVerification != "preferred" {
		t.Fatalf("request options %s", s.Options)
	}
	l, err := f.c.FinishLogin(context.Background(), s.State, k.get(t, s.Options), f.load)
	if err != nil {
		t.Fatal(err)
	}
	if l.Account.ID != a.ID || l.PasskeyID != p.ID || !l.At.Equal(testNow.Add(time.Minute)) || !l.UserVerified {
		t.Fatalf("login %+v", l)
	}
	if c := credentialOf(t, l.Credential); c.Authenticator.SignCount != 1 || c.Authenticator.CloneWarning {
		t.Fatalf("credential after login %s", l.Credential)
	}
	updated, ok := l.Apply(f.get(a.ID))
	if !ok || !bytes.Equal(updated.Passkeys[0].Credential, l.Credential) || !updated.Passkeys[0].LastUsedAt.Equal(l.At) {
		t.Fatalf("Apply: %v %+v", ok, updated.Passkeys)
	}
	if bytes.Equal(f.get(a.ID).Passkeys[0].Credential, l.Credential) {
		t.Fatal("Apply changed the account it was given")
	}
	f.put(updated)

	// The stored credential carries the count on.
	if _, err := f.login(k); err != nil {
		t.Fatal(err)
	}
	if c := credentialOf(t, f.get(a.ID).Passkeys[0].Credential); c.Authenticator.SignCount != 2 {
		t.Fatalf("sign count %d, want 2", c.Authenticator.SignCount)
	}
}

func TestSecondFactor(t *testing.T) {
	f := newFixture(t)
	a := f.account("ana@example.com")
	k := newSoftKey(t, testRPID, testOrigin)
	p := f.register(a.ID, k)
	a = f.get(a.ID)

	for _, withHandle := range []bool{true, false} {
		s, err := f.c.BeginSecondFactor(a)
		if err != nil {
			t.Fatal(err)
		}
		if o := parseOptions(t, s.Options); len(o.PublicKey.Allow) != 1 || o.PublicKey.Allow[0].ID != p.ID || o.PublicKey.RPID != testRPID {
			t.Fatalf("request options %s", s.Options)
		}
		body := k.get(t, s.Options)
		if !withHandle { // security keys may answer with a null user handle
			body = edit(t, body, func(_, r map[string]any) { r["userHandle"] = nil })
		}
		l, err := f.c.FinishSecondFactor(context.Background(), a, s.State, body)
		if err != nil {
			t.Fatalf("user handle %v: %v", withHandle, err)
		}
		if l.PasskeyID != p.ID || l.Account.ID != a.ID {
			t.Fatalf("login %+v", l)
		}
		a, _ = l.Apply(a)
	}

	// An account without passkeys has no second factor here.
	b := f.account("bo@example.com")
	_, err := f.c.BeginSecondFactor(b)
	wantErr(t, err, errs.Invalid, ReasonNone, "no passkeys")

	// A state begun for a does not finish for b, even with b's passkey.
	kb := newSoftKey(t, testRPID, testOrigin)
	f.register(b.ID, kb)
	b = f.get(b.ID)
	s, err := f.c.BeginSecondFactor(a)
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.c.FinishSecondFactor(context.Background(), b, s.State, kb.get(t, s.Options))
	wantErr(t, err, errs.Unauthorized, ReasonStateInvalid, "another account")

	// a's state with b's passkey: not one of a's.
	s, err = f.c.BeginSecondFactor(a)
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.c.FinishSecondFactor(context.Background(), a, s.State, kb.get(t, s.Options))
	wantErr(t, err, errs.Unauthorized, ReasonUnknown, "unknown passkey")
}

// TestRefusals drives each refusal of a sign-in, then checks that the
// same key still signs in: the refusal was for the reason given, not a
// broken setup.
func TestRefusals(t *testing.T) {
	ctx := context.Background()
	type setup struct {
		f *fixture
		a identity.Account
		k *softKey
	}
	cases := []struct {
		name   string
		kind   errs.Kind
		reason string
		about  string
		run    func(t *testing.T, x setup) error
	}{
		{"wrong origin", errs.Unauthorized, ReasonRefused, "origin", func(t *testing.T, x setup) error {
			x.k.origin = "https://tickets.example.evil.test"
			defer func() { x.k.origin = testOrigin }()
			_, err := x.f.login(x.k)
			return err
		}},
		{"wrong origin, registration", errs.Unauthorized, ReasonRefused, "origin", func(t *testing.T, x setup) error {
			k := newSoftKey(t, testRPID, "https://evil.test")
			s, err := x.f.c.BeginRegistration(x.a)
			if err != nil {
				t.Fatal(err)
			}
			_, err = x.f.c.FinishRegistration(ctx, x.a, s.State, k.create(t, s.Options), "")
			return err
		}},
		{"wrong rp id", errs.Unauthorized, ReasonRefused, "rp hash mismatch", func(t *testing.T, x setup) error {
			x.k.rpID = "evil.test"
			defer func() { x.k.rpID = testRPID }()
			_, err := x.f.login(x.k)
			return err
		}},
		{"wrong rp id, registration", errs.Unauthorized, ReasonRefused, "rp hash mismatch", func(t *testing.T, x setup) error {
			k := newSoftKey(t, "evil.test", testOrigin)
			s, err := x.f.c.BeginRegistration(x.a)
			if err != nil {
				t.Fatal(err)
			}
			_, err = x.f.c.FinishRegistration(ctx, x.a, s.State, k.create(t, s.Options), "")
			return err
		}},
		{"replayed finish", errs.Unauthorized, ReasonStateUsed, "already finished", func(t *testing.T, x setup) error {
			s, err := x.f.c.BeginLogin()
			if err != nil {
				t.Fatal(err)
			}
			body := x.k.get(t, s.Options)
			if _, err := x.f.c.FinishLogin(ctx, s.State, body, x.f.load); err != nil {
				t.Fatalf("first finish: %v", err)
			}
			_, err = x.f.c.FinishLogin(ctx, s.State, body, x.f.load)
			return err
		}},
		{"replayed state, new signature", errs.Unauthorized, ReasonStateUsed, "already finished", func(t *testing.T, x setup) error {
			s, err := x.f.c.BeginSecondFactor(x.a)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := x.f.c.FinishSecondFactor(ctx, x.a, s.State, x.k.get(t, s.Options)); err != nil {
				t.Fatalf("first finish: %v", err)
			}
			_, err = x.f.c.FinishSecondFactor(ctx, x.a, s.State, x.k.get(t, s.Options))
			return err
		}},
		{"replayed registration", errs.Unauthorized, ReasonStateUsed, "already finished", func(t *testing.T, x setup) error {
			k := newSoftKey(t, testRPID, testOrigin)
			s, err := x.f.c.BeginRegistration(x.a)
			if err != nil {
				t.Fatal(err)
			}
			body := k.create(t, s.Options)
			if _, err := x.f.c.FinishRegistration(ctx, x.a, s.State, body, ""); err != nil {
				t.Fatalf("first finish: %v", err)
			}
			_, err = x.f.c.FinishRegistration(ctx, x.a, s.State, body, "")
			return err
		}},
		{"tampered signature", errs.Unauthorized, ReasonRefused, "signature", func(t *testing.T, x setup) error {
			s, err := x.f.c.BeginLogin()
			if err != nil {
				t.Fatal(err)
			}
			body := edit(t, x.k.get(t, s.Options), func(_, r map[string]any) { r["signature"] = flipByte(t, r["signature"].(string), -1) })
			_, err = x.f.c.FinishLogin(ctx, s.State, body, x.f.load)
			return err
		}},
		{"tampered authenticator data", errs.Unauthorized, ReasonRefused, "signature", func(t *testing.T, x setup) error {
			s, err := x.f.c.BeginSecondFactor(x.a)
			if err != nil {
				t.Fatal(err)
			}
			// The counter's last byte: a bigger count, unsigned.
			body := edit(t, x.k.get(t, s.Options), func(_, r map[string]any) {
				r["authenticatorData"] = flipByte(t, r["authenticatorData"].(string), -1)
			})
			_, err = x.f.c.FinishSecondFactor(ctx, x.a, s.State, body)
			return err
		}},
		{"other ceremony's challenge", errs.Unauthorized, ReasonRefused, "challenge", func(t *testing.T, x setup) error {
			s1, err := x.f.c.BeginLogin()
			if err != nil {
				t.Fatal(err)
			}
			s2, err := x.f.c.BeginLogin()
			if err != nil {
				t.Fatal(err)
			}
			_, err = x.f.c.FinishLogin(ctx, s1.State, x.k.get(t, s2.Options), x.f.load)
			return err
		}},
		{"expired state", errs.Unauthorized, ReasonStateExpired, "expired", func(t *testing.T, x setup) error {
			s, err := x.f.c.BeginLogin()
			if err != nil {
				t.Fatal(err)
			}
			x.f.clock.Add(5 * time.Minute)
			n := x.f.spends.n.Load()
			_, err = x.f.c.FinishLogin(ctx, s.State, x.k.get(t, s.Options), x.f.load)
			if x.f.spends.n.Load() != n {
				t.Error("an expired state reached the spent store")
			}
			return err
		}},
		{"state sealed with another key", errs.Unauthorized, ReasonStateInvalid, "not sealed by this service", func(t *testing.T, x setup) error {
			s, err := x.f.ceremonies(newKey(t), nil).BeginLogin()
			if err != nil {
				t.Fatal(err)
			}
			_, err = x.f.c.FinishLogin(ctx, s.State, x.k.get(t, s.Options), x.f.load)
			return err
		}},
		{"state of another purpose", errs.Unauthorized, ReasonStateInvalid, "is for second_factor, not login", func(t *testing.T, x setup) error {
			s, err := x.f.c.BeginSecondFactor(x.a)
			if err != nil {
				t.Fatal(err)
			}
			_, err = x.f.c.FinishLogin(ctx, s.State, x.k.get(t, s.Options), x.f.load)
			return err
		}},
		{"sign count went backwards", errs.Unauthorized, ReasonCloned, "counter went backwards", func(t *testing.T, x setup) error {
			x.k.counter = 4 // the next assertion counts 5
			if _, err := x.f.login(x.k); err != nil {
				t.Fatal(err)
			}
			x.k.counter = 2 // a copy of the key, behind: counts 3
			_, err := x.f.login(x.k)
			x.k.counter = 10
			return err
		}},
		{"sign count stood still", errs.Unauthorized, ReasonCloned, "counter went backwards", func(t *testing.T, x setup) error {
			x.k.counter = 6
			if _, err := x.f.login(x.k); err != nil { // 7
				t.Fatal(err)
			}
			x.k.counter = 6 // 7 again
			_, err := x.f.login(x.k)
			x.k.counter = 10
			return err
		}},
		{"unknown account", errs.Unauthorized, ReasonUnknown, "unknown passkey", func(t *testing.T, x setup) error {
			k := newSoftKey(t, testRPID, testOrigin)
			k.userHandle = []byte(identity.NewID())
			_, err := x.f.login(k)
			return err
		}},
		{"user handle not an id", errs.Unauthorized, ReasonUnknown, "unknown passkey", func(t *testing.T, x setup) error {
			k := newSoftKey(t, testRPID, testOrigin)
			k.userHandle = []byte("../admin")
			_, err := x.f.login(k)
			return err
		}},
		{"credential not the account's", errs.Unauthorized, ReasonUnknown, "unknown passkey", func(t *testing.T, x setup) error {
			k := newSoftKey(t, testRPID, testOrigin)
			k.userHandle = []byte(x.a.ID)
			_, err := x.f.login(k)
			return err
		}},
		{"no user handle", errs.Unauthorized, ReasonRefused, "blank user handle", func(t *testing.T, x setup) error {
			s, err := x.f.c.BeginLogin()
			if err != nil {
				t.Fatal(err)
			}
			body := edit(t, x.k.get(t, s.Options), func(_, r map[string]any) { delete(r, "userHandle") })
			_, err = x.f.c.FinishLogin(ctx, s.State, body, x.f.load)
			return err
		}},
		{"store unavailable", errs.Unavailable, "", "store down", func(t *testing.T, x setup) error {
			x.f.loadErr = errs.E("test.load", errs.Unavailable, "store down")
			defer func() { x.f.loadErr = nil }()
			_, err := x.f.login(x.k)
			return err
		}},
		{"backup eligibility changed", errs.Unauthorized, ReasonRefused, "backup eligible", func(t *testing.T, x setup) error {
			x.k.backup = true
			defer func() { x.k.backup = false }()
			_, err := x.f.login(x.k)
			return err
		}},
		{"malformed body", errs.Invalid, ReasonMalformed, "malformed passkey assertion", func(t *testing.T, x setup) error {
			s, err := x.f.c.BeginLogin()
			if err != nil {
				t.Fatal(err)
			}
			_, err = x.f.c.FinishLogin(ctx, s.State, []byte(`{"id":"AA","rawId":"AA","type":"public-key","response":{}}`), x.f.load)
			if err == nil {
				t.Fatal("accepted")
			}
			// The state was not spent: the real answer still goes through.
			if _, err := x.f.c.FinishLogin(ctx, s.State, x.k.get(t, s.Options), x.f.load); err != nil {
				t.Fatalf("after a malformed body: %v", err)
			}
			return err
		}},
		{"body too large", errs.TooLarge, ReasonTooLarge, "over 65536 bytes", func(t *testing.T, x setup) error {
			s, err := x.f.c.BeginLogin()
			if err != nil {
				t.Fatal(err)
			}
			body := edit(t, x.k.get(t, s.Options), func(m, _ map[string]any) { m["pad"] = strings.Repeat("x", 64<<10) })
			_, err = x.f.c.FinishLogin(ctx, s.State, body, x.f.load)
			return err
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			a := f.account("ana@example.com")
			k := newSoftKey(t, testRPID, testOrigin)
			f.register(a.ID, k)
			x := setup{f: f, a: f.get(a.ID), k: k}
			wantErr(t, tc.run(t, x), tc.kind, tc.reason, tc.about)
			// The key itself is fine.
			k.counter = max(k.counter, 10)
			if _, err := f.login(k); err != nil {
				t.Fatalf("the key no longer signs in: %v", err)
			}
		})
	}
}

func TestExpiryBoundary(t *testing.T) {
	f := newFixture(t)
	a := f.account("ana@example.com")
	k := newSoftKey(t, testRPID, testOrigin)
	f.register(a.ID, k)
	s, err := f.c.BeginLogin()
	if err != nil {
		t.Fatal(err)
	}
	f.clock.Add(5*time.Minute - time.Millisecond)
	if _, err := f.c.FinishLogin(context.Background(), s.State, k.get(t, s.Options), f.load); err != nil {
		t.Fatalf("a millisecond before expiry: %v", err)
	}
}

func TestKeyRotation(t *testing.T) {
	f := newFixture(t)
	a := f.account("ana@example.com")
	k := newSoftKey(t, testRPID, testOrigin)
	f.register(a.ID, k)
	old, next, after := f.key, newKey(t), newKey(t)

	s, err := f.ceremonies(old, nil).BeginLogin()
	if err != nil {
		t.Fatal(err)
	}
	body := k.get(t, s.Options)
	// Rotated once: the old key is previous, and its states still open.
	rotated := f.ceremonies(next, old)
	if _, err := rotated.FinishLogin(context.Background(), s.State, body, f.load); err != nil {
		t.Fatalf("state of the previous key: %v", err)
	}
	// New states are sealed with the current key only.
	s, err = rotated.BeginLogin()
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.ceremonies(old, nil).FinishLogin(context.Background(), s.State, k.get(t, s.Options), f.load)
	wantErr(t, err, errs.Unauthorized, ReasonStateInvalid, "not sealed")
	// Rotated twice: the first key is gone.
	s, err = f.ceremonies(old, nil).BeginLogin()
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.ceremonies(after, next).FinishLogin(context.Background(), s.State, k.get(t, s.Options), f.load)
	wantErr(t, err, errs.Unauthorized, ReasonStateInvalid, "not sealed")
}

func TestRegistrationRefusals(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	a := f.account("ana@example.com")
	k := newSoftKey(t, testRPID, testOrigin)
	f.register(a.ID, k)
	a = f.get(a.ID)

	begin := func(a identity.Account) Started {
		t.Helper()
		s, err := f.c.BeginRegistration(a)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}

	// The same authenticator again (a browser would have excluded it).
	s := begin(a)
	_, err := f.c.FinishRegistration(ctx, a, s.State, k.create(t, s.Options), "")
	wantErr(t, err, errs.Conflict, ReasonExists, "already registered")

	// The browser says the credential is not discoverable.
	nk := newSoftKey(t, testRPID, testOrigin)
	no := false
	nk.rk = &no
	s = begin(a)
	_, err = f.c.FinishRegistration(ctx, a, s.State, nk.create(t, s.Options), "")
	wantErr(t, err, errs.Invalid, ReasonNotDiscoverable, "without a password")

	// A name too long is refused before anything is spent.
	s = begin(a)
	body := newSoftKey(t, testRPID, testOrigin).create(t, s.Options)
	_, err = f.c.FinishRegistration(ctx, a, s.State, body, strings.Repeat("é", identity.MaxPasskeyName+1))
	wantErr(t, err, errs.Invalid, ReasonBadName, "at most 64 characters")
	if _, err := f.c.FinishRegistration(ctx, a, s.State, body, strings.Repeat("é", identity.MaxPasskeyName)); err != nil {
		t.Fatalf("after a bad name: %v", err)
	}

	// Another account's state.
	b := f.account("bo@example.com")
	s = begin(a)
	_, err = f.c.FinishRegistration(ctx, b, s.State, newSoftKey(t, testRPID, testOrigin).create(t, s.Options), "")
	wantErr(t, err, errs.Unauthorized, ReasonStateInvalid, "another account")

	// A login's state.
	ls, err := f.c.BeginLogin()
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.c.FinishRegistration(ctx, a, ls.State, newSoftKey(t, testRPID, testOrigin).create(t, s.Options), "")
	wantErr(t, err, errs.Unauthorized, ReasonStateInvalid, "is for login, not register")

	// An assertion where an attestation is due.
	s = begin(a)
	_, err = f.c.FinishRegistration(ctx, a, s.State, k.get(t, s.Options), "")
	wantErr(t, err, errs.Invalid, ReasonMalformed, "malformed passkey registration")

	// The limit.
	full := a
	for len(full.Passkeys) < identity.MaxPasskeys {
		full.Passkeys = append(full.Passkeys, a.Passkeys[0])
	}
	_, err = f.c.BeginRegistration(full)
	wantErr(t, err, errs.Conflict, ReasonLimit, "at most 20 passkeys")
}

func TestBackupFlags(t *testing.T) {
	f := newFixture(t)
	a := f.account("ana@example.com")
	k := newSoftKey(t, testRPID, testOrigin)
	k.backup = true
	p := f.register(a.ID, k)
	if c := credentialOf(t, p.Credential); !c.Flags.BackupEligible || !c.Flags.BackupState {
		t.Fatalf("credential %s: backup flags not kept", p.Credential)
	}
	// Synced passkeys keep their counter at zero: not a clone.
	k.step = 0
	for range 2 {
		l, err := f.login(k)
		if err != nil {
			t.Fatal(err)
		}
		if c := credentialOf(t, l.Credential); !c.Flags.BackupEligible || !c.Flags.BackupState || c.Authenticator.SignCount != 0 {
			t.Fatalf("credential after login %s", l.Credential)
		}
	}
}

// TestUserPresenceOnly: user verification is preferred, not required;
// the Login says whether it happened.
func TestUserPresenceOnly(t *testing.T) {
	f := newFixture(t)
	a := f.account("ana@example.com")
	k := newSoftKey(t, testRPID, testOrigin)
	k.presenceOnly = true
	f.register(a.ID, k)
	l, err := f.login(k)
	if err != nil {
		t.Fatal(err)
	}
	if l.UserVerified {
		t.Fatal("Login.UserVerified without the flag")
	}
}

// TestConcurrentFinish finishes one state from many goroutines: exactly
// one is accepted.
func TestConcurrentFinish(t *testing.T) {
	f := newFixture(t)
	a := f.account("ana@example.com")
	k := newSoftKey(t, testRPID, testOrigin)
	f.register(a.ID, k)
	s, err := f.c.BeginLogin()
	if err != nil {
		t.Fatal(err)
	}
	body := k.get(t, s.Options)
	const n = 16
	var wg sync.WaitGroup
	results := make(chan error, n)
	for range n {
		wg.Go(func() {
			_, err := f.c.FinishLogin(context.Background(), s.State, body, f.load)
			results <- err
		})
	}
	wg.Wait()
	close(results)
	ok := 0
	for err := range results {
		switch {
		case err == nil:
			ok++
		case errs.ReasonOf(err) != ReasonStateUsed:
			t.Errorf("unexpected error %v", err)
		}
	}
	if ok != 1 {
		t.Fatalf("%d finishes accepted, want 1", ok)
	}
}

// stubSpent answers every Spend with ok and err.
type stubSpent struct {
	ok  bool
	err error
}

func (s stubSpent) Spend(context.Context, string, string, time.Time) (bool, error) {
	return s.ok, s.err
}

// TestSpentErrors maps the spent store's answers: an expiry the store
// finds past is an expired state; an unreachable store is Unavailable.
func TestSpentErrors(t *testing.T) {
	f := newFixture(t)
	a := f.account("ana@example.com")
	k := newSoftKey(t, testRPID, testOrigin)
	f.register(a.ID, k)
	for _, tc := range []struct {
		spent  stubSpent
		kind   errs.Kind
		reason string
	}{
		{stubSpent{err: errs.E("stub", errs.Invalid, "expiry not in the future")}, errs.Unauthorized, ReasonStateExpired},
		{stubSpent{err: errs.E("stub", errs.Unavailable, "down")}, errs.Unavailable, ""},
		{stubSpent{ok: false}, errs.Unauthorized, ReasonStateUsed},
	} {
		c := *f.c
		c.spent = tc.spent
		s, err := c.BeginLogin()
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.FinishLogin(context.Background(), s.State, k.get(t, s.Options), f.load)
		if errs.KindOf(err) != tc.kind || errs.ReasonOf(err) != tc.reason {
			t.Errorf("spent %+v: error %v, want %v %q", tc.spent, err, tc.kind, tc.reason)
		}
	}
}

func TestStoredCredentialMustDecode(t *testing.T) {
	f := newFixture(t)
	a := f.account("ana@example.com")
	k := newSoftKey(t, testRPID, testOrigin)
	f.register(a.ID, k)
	a = f.get(a.ID)
	a.Passkeys[0].Credential = []byte(`{"id":"AAAA"}`) // another id
	_, err := f.c.BeginSecondFactor(a)
	if errs.KindOf(err) != errs.Other {
		t.Fatalf("error %v, want internal", err)
	}
}

func TestConfig(t *testing.T) {
	good := func() Config {
		return Config{RPID: "tickets.example", RPDisplayName: "Ticketing", Origins: []string{"https://tickets.example", "https://www.tickets.example:8443"}}
	}
	c := good()
	c.Defaults()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.Timeout != 5*time.Minute || c.MaxPayloadBytes != 64<<10 || c.Now == nil {
		t.Fatalf("defaults %+v", c)
	}
	dev := Config{RPID: "localhost", RPDisplayName: "Ticketing", Origins: []string{"http://localhost:8080"}}
	dev.Defaults()
	if err := dev.Validate(); err != nil {
		t.Fatal(err)
	}
	bad := map[string]func(c *Config){
		"no rp id":            func(c *Config) { c.RPID = "" },
		"rp id with scheme":   func(c *Config) { c.RPID = "https://tickets.example" },
		"no display name":     func(c *Config) { c.RPDisplayName = "" },
		"no origins":          func(c *Config) { c.Origins = nil },
		"http origin":         func(c *Config) { c.Origins = []string{"http://tickets.example"} },
		"origin with path":    func(c *Config) { c.Origins = []string{"https://tickets.example/login"} },
		"origin outside rpid": func(c *Config) { c.Origins = []string{"https://tickets.example.evil.test"} },
		"origin suffix only":  func(c *Config) { c.Origins = []string{"https://eviltickets.example"} },
		"timeout too short":   func(c *Config) { c.Timeout = time.Second },
		"timeout too long":    func(c *Config) { c.Timeout = time.Hour },
		"payload too small":   func(c *Config) { c.MaxPayloadBytes = 100 },
	}
	for name, f := range bad {
		c := good()
		f(&c)
		c.Defaults()
		if err := c.Validate(); !errs.Is(errs.Invalid, err) {
			t.Errorf("%s: Validate = %v, want invalid", name, err)
		}
	}
	if _, err := NewSealer(make([]byte, 16), nil); !errs.Is(errs.Invalid, err) {
		t.Errorf("16-byte key: %v", err)
	}
	if _, err := NewSealer(make([]byte, 32), make([]byte, 31)); !errs.Is(errs.Invalid, err) {
		t.Errorf("31-byte previous key: %v", err)
	}
	if _, err := New(good(), nil, nil); !errs.Is(errs.Invalid, err) {
		t.Errorf("New without sealer: %v", err)
	}
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
