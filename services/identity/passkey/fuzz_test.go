package passkey

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/services/identity"
)

// writeSeeds rewrites testdata/fuzz from the fixed keys below:
//
//	go test ./services/identity/passkey -run TestFuzzSeeds -write-seeds
var writeSeeds = flag.Bool("write-seeds", false, "rewrite the fuzz seeds in testdata/fuzz")

// The fuzz targets' fixed inputs, so that the seeds in testdata/fuzz stay
// valid: the state key, the authenticator's key and credential, the
// account and the challenges.
var (
	fuzzStateKey  = bytes.Repeat([]byte{7}, KeySize)
	fuzzScalar    = bytes.Repeat([]byte{0x42}, 32)
	fuzzCredID    = bytes.Repeat([]byte{5}, 32)
	fuzzAccountID = "u_fuzz"
	fuzzRegChal   = []byte("fixed registration challenge 32B")
	fuzzLoginChal = []byte("fixed sign-in challenge of 32 B!")
)

// fuzzSetup is a Ceremonies on a stopped clock and a spent store that
// always lets through, the fixed authenticator, and the fixed account
// with that authenticator's passkey registered.
type fuzzSetup struct {
	c        *Ceremonies
	key      *softKey
	account  identity.Account // with the passkey
	regSess  webauthn.SessionData
	regOpts  []byte
	sfSess   webauthn.SessionData // second factor
	dlSess   webauthn.SessionData // discoverable
	loginOpt []byte
}

func newFuzzSetup(t testing.TB) *fuzzSetup {
	t.Helper()
	sealer, err := NewSealer(fuzzStateKey, nil)
	if err != nil {
		t.Fatal(err)
	}
	c, err := New(Config{RPID: testRPID, RPDisplayName: "Ticketing", Origins: []string{testOrigin}, Now: func() time.Time { return testNow }},
		sealer, stubSpent{ok: true})
	if err != nil {
		t.Fatal(err)
	}
	pk, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), fuzzScalar)
	if err != nil {
		t.Fatal(err)
	}
	s := &fuzzSetup{c: c, key: &softKey{rpID: testRPID, origin: testOrigin, key: pk, credID: fuzzCredID, step: 1}}
	yes := true
	s.key.rk = &yes
	a := identity.Account{User: identity.User{ID: fuzzAccountID, Email: "fuzz@example.com", DisplayName: "Fuzz", CreatedAt: testNow}}

	creation, sess, err := c.beginRegistration("fuzz", a, func(o *protocol.PublicKeyCredentialCreationOptions) error {
		o.Challenge = fuzzRegChal
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	s.regSess = *sess
	s.regOpts = mustJSON(t, creation)
	p, err := c.register("fuzz", a, "", s.regSess, mustParseRegistration(t, s.key.create(t, s.regOpts)))
	if err != nil {
		t.Fatal(err)
	}
	a.Passkeys = []identity.Passkey{p}
	s.account = a

	u, err := newUser("fuzz", a)
	if err != nil {
		t.Fatal(err)
	}
	assertion, sess, err := c.wa.BeginLogin(u, webauthn.WithChallenge(fuzzLoginChal))
	if err != nil {
		t.Fatal(err)
	}
	s.sfSess = *sess
	s.loginOpt = mustJSON(t, assertion)
	_, sess, err = c.wa.BeginDiscoverableLogin(webauthn.WithChallenge(fuzzLoginChal))
	if err != nil {
		t.Fatal(err)
	}
	s.dlSess = *sess
	return s
}

func mustParseRegistration(t testing.TB, body []byte) *protocol.ParsedCredentialCreationData {
	t.Helper()
	p, err := decodeRegistration(body, 64<<10)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func (s *fuzzSetup) load(_ context.Context, id string) (identity.Account, error) {
	if id != s.account.ID {
		return identity.Account{}, errs.E("fuzz.load", errs.NotFound, "no such account")
	}
	return s.account, nil
}

// checkRefusal fails unless err is an *errs.Error of one of kinds with a
// reason: what a payload may cause.
func checkRefusal(t *testing.T, err error, kinds ...errs.Kind) {
	t.Helper()
	for _, k := range kinds {
		if errs.KindOf(err) == k && errs.ReasonOf(err) != "" {
			return
		}
	}
	t.Fatalf("error %v: kind %v reason %q; want one of %v with a reason", err, errs.KindOf(err), errs.ReasonOf(err), kinds)
}

// registrationSeeds are a valid registration of the fixed authenticator
// for the fixed challenge, and its refusals.
func (s *fuzzSetup) registrationSeeds(t testing.TB) map[string][]byte {
	good := s.key.create(t, s.regOpts)
	k := *s.key
	k.origin = "https://evil.test"
	wrongOrigin := k.create(t, s.regOpts)
	k = *s.key
	k.rpID = "evil.test"
	wrongRP := k.create(t, s.regOpts)
	return map[string][]byte{
		"valid":        good,
		"wrong_origin": wrongOrigin,
		"wrong_rp_id":  wrongRP,
		"assertion":    k.get(t, s.loginOpt),
		"empty_object": []byte(`{}`),
		"truncated":    good[:len(good)/2],
	}
}

// assertionSeeds are a valid assertion of the fixed authenticator for
// the fixed challenge, and its refusals.
func (s *fuzzSetup) assertionSeeds(t testing.TB) map[string][]byte {
	k := *s.key
	k.counter = 0
	good := k.get(t, s.loginOpt)
	return map[string][]byte{
		"valid": good,
		"tampered_signature": edit(t, good, func(_, r map[string]any) {
			r["signature"] = flipByte(t, r["signature"].(string), -1)
		}),
		"null_user_handle": edit(t, good, func(_, r map[string]any) { r["userHandle"] = nil }),
		"registration":     s.key.create(t, s.regOpts),
		"truncated":        good[:len(good)/2],
	}
}

// stateSeeds are states of each purpose sealed with the fixed key, and
// ones that are not.
func (s *fuzzSetup) stateSeeds(t testing.TB) map[string][]byte {
	seal := func(purpose string) []byte {
		st, err := s.c.sealer.seal(ceremony{purpose: purpose, expires: testNow.Add(5 * time.Minute), session: s.sfSess})
		if err != nil {
			t.Fatal(err)
		}
		return []byte(st)
	}
	other, _ := NewSealer(bytes.Repeat([]byte{8}, KeySize), nil)
	ost, _ := other.seal(ceremony{purpose: PurposeLogin, expires: testNow.Add(5 * time.Minute), session: s.sfSess})
	login := seal(PurposeLogin)
	return map[string][]byte{
		"register":      seal(PurposeRegister),
		"login":         login,
		"second_factor": seal(PurposeSecondFactor),
		"other_key":     []byte(ost),
		"truncated":     login[:len(login)-3],
		"empty":         nil,
	}
}

// FuzzDecodeRegistration feeds arbitrary bodies to the registration
// decoder and, what it decodes, to the verification of the fixed
// registration: neither may panic, every refusal is a kind a payload may
// cause with a reason, and an accepted credential is the fixed
// authenticator's, storable on an account.
func FuzzDecodeRegistration(f *testing.F) {
	s := newFuzzSetup(f)
	for _, b := range s.registrationSeeds(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		p, err := decodeRegistration(body, 64<<10)
		if err != nil {
			checkRefusal(t, err, errs.Invalid, errs.TooLarge)
			return
		}
		a := s.account
		a.Passkeys = nil
		pk, err := s.c.register("fuzz", a, "", s.regSess, p)
		if err != nil {
			checkRefusal(t, err, errs.Unauthorized, errs.Invalid, errs.Conflict)
			return
		}
		if pk.ID != b64(fuzzCredID) {
			t.Fatalf("accepted credential %s, not the fixed one", pk.ID)
		}
		a.Passkeys = []identity.Passkey{pk}
		if _, err := identity.NormalizeAccount(a); err != nil {
			t.Fatalf("accepted passkey does not store: %v", err)
		}
	})
}

// FuzzDecodeAssertion feeds arbitrary bodies to the assertion decoder
// and, what it decodes, to the second-factor and password-less
// verifications of the fixed challenge: neither may panic, every refusal
// is a kind a payload may cause with a reason, and a sign-in accepted is
// the fixed account's passkey with a sign count above zero.
func FuzzDecodeAssertion(f *testing.F) {
	s := newFuzzSetup(f)
	for _, b := range s.assertionSeeds(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		p, err := decodeAssertion(body, 64<<10)
		if err != nil {
			checkRefusal(t, err, errs.Invalid, errs.TooLarge)
			return
		}
		check := func(l Login, err error) {
			t.Helper()
			if err != nil {
				checkRefusal(t, err, errs.Unauthorized, errs.Invalid)
				return
			}
			if l.Account.ID != fuzzAccountID || l.PasskeyID != b64(fuzzCredID) || credentialOf(t, l.Credential).Authenticator.SignCount == 0 {
				t.Fatalf("accepted %+v", l)
			}
		}
		check(s.c.secondFactor("fuzz", s.account, s.sfSess, p))
		check(s.c.login(context.Background(), "fuzz", s.dlSess, p, s.load))
	})
}

// FuzzOpenState feeds arbitrary states to the sealed-state decoder and
// the checks of a finish: no panic, and every refusal is Unauthorized
// with a reason.
func FuzzOpenState(f *testing.F) {
	s := newFuzzSetup(f)
	for _, b := range s.stateSeeds(f) {
		f.Add(string(b))
	}
	f.Fuzz(func(t *testing.T, state string) {
		c, err := s.c.sealer.open(state)
		if err != nil {
			if !errs.Is(errs.Unauthorized, err) || errs.ReasonOf(err) != ReasonStateInvalid {
				t.Fatalf("open: %v, want unauthorized %s", err, ReasonStateInvalid)
			}
			return
		}
		if purposeCode(c.purpose) == 0 || c.session.Challenge == "" {
			t.Fatalf("opened %+v", c)
		}
		for _, p := range []string{PurposeRegister, PurposeLogin, PurposeSecondFactor} {
			if _, err := s.c.open("fuzz", state, p); err != nil {
				checkRefusal(t, err, errs.Unauthorized)
			}
		}
	})
}

// TestFuzzSeeds checks that the committed seeds are what they say: the
// valid ones are accepted. With -write-seeds it writes them first.
func TestFuzzSeeds(t *testing.T) {
	s := newFuzzSetup(t)
	sets := map[string]map[string][]byte{
		"FuzzDecodeRegistration": s.registrationSeeds(t),
		"FuzzDecodeAssertion":    s.assertionSeeds(t),
		"FuzzOpenState":          s.stateSeeds(t),
	}
	if *writeSeeds {
		for target, seeds := range sets {
			dir := filepath.Join("testdata", "fuzz", target)
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			for name, b := range seeds {
				lit := "[]byte(" + strconv.Quote(string(b)) + ")"
				if target == "FuzzOpenState" {
					lit = "string(" + strconv.Quote(string(b)) + ")"
				}
				if err := os.WriteFile(filepath.Join(dir, name), []byte(fmt.Sprintf("go test fuzz v1\n%s\n", lit)), 0o644); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	read := func(target, name string) []byte {
		t.Helper()
		b, err := os.ReadFile(filepath.Join("testdata", "fuzz", target, name))
		if err != nil {
			t.Fatal(err)
		}
		lines := bytes.SplitN(b, []byte("\n"), 3)
		lit := string(lines[1])
		lit = lit[bytes.IndexByte(lines[1], '(')+1 : len(lit)-1]
		v, err := strconv.Unquote(lit)
		if err != nil {
			t.Fatalf("%s/%s: %v", target, name, err)
		}
		return []byte(v)
	}
	if _, err := s.c.register("fuzz", identity.Account{User: s.account.User}, "", s.regSess, mustParseRegistration(t, read("FuzzDecodeRegistration", "valid"))); err != nil {
		t.Errorf("registration seed: %v", err)
	}
	p, err := decodeAssertion(read("FuzzDecodeAssertion", "valid"), 64<<10)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.c.secondFactor("fuzz", s.account, s.sfSess, p); err != nil {
		t.Errorf("assertion seed, second factor: %v", err)
	}
	if _, err := s.c.login(context.Background(), "fuzz", s.dlSess, p, s.load); err != nil {
		t.Errorf("assertion seed, password-less: %v", err)
	}
	for _, purpose := range []string{PurposeRegister, PurposeLogin, PurposeSecondFactor} {
		c, err := s.c.sealer.open(string(read("FuzzOpenState", purpose)))
		if err != nil || c.purpose != purpose {
			t.Errorf("state seed %s: %+v, %v", purpose, c, err)
		}
	}
	if _, err := s.c.sealer.open(string(read("FuzzOpenState", "other_key"))); errs.ReasonOf(err) != ReasonStateInvalid {
		t.Errorf("state seed other_key: %v", err)
	}
}
