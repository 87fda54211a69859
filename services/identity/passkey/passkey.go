package passkey

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/services/identity"
)

// Reasons refining the errors of the ceremonies (errs.ReasonOf).
const (
	// ReasonTooLarge (errs.TooLarge): the browser's payload is over
	// Config.MaxPayloadBytes.
	ReasonTooLarge = "passkey_payload_too_large"
	// ReasonMalformed (errs.Invalid): the payload is not a
	// PublicKeyCredential of the ceremony's kind, as JSON with base64url
	// fields, whose client data and authenticator data decode.
	ReasonMalformed = "passkey_malformed"
	// ReasonStateInvalid (errs.Unauthorized): the state is missing,
	// garbled, not sealed under this service's keys, of another purpose or
	// of another account.
	ReasonStateInvalid = "passkey_state_invalid"
	// ReasonStateExpired (errs.Unauthorized): the ceremony outlived
	// Config.Timeout.
	ReasonStateExpired = "passkey_state_expired"
	// ReasonStateUsed (errs.Unauthorized): the ceremony was already
	// finished, or tried: a state is good for one finish.
	ReasonStateUsed = "passkey_state_used"
	// ReasonRefused (errs.Unauthorized): the response does not verify:
	// challenge, origin, RP id, signature, flags or user handle.
	ReasonRefused = "passkey_refused"
	// ReasonUnknown (errs.Unauthorized): the credential is not one of the
	// account's passkeys, or its user handle names no account.
	ReasonUnknown = "passkey_unknown"
	// ReasonCloned (errs.Unauthorized): the authenticator's signature
	// counter did not go up, a sign that the key was copied.
	ReasonCloned = "passkey_cloned"
	// ReasonNotDiscoverable (errs.Invalid): the browser reports that the
	// new credential is not discoverable, so it could not sign in without
	// a password.
	ReasonNotDiscoverable = "passkey_not_discoverable"
	// ReasonExists (errs.Conflict): the new credential is already one of
	// the account's passkeys.
	ReasonExists = "passkey_exists"
	// ReasonLimit (errs.Conflict): the account has identity.MaxPasskeys.
	ReasonLimit = "passkey_limit"
	// ReasonNone (errs.Invalid): a second factor was asked of an account
	// without passkeys.
	ReasonNone = "passkey_none"
	// ReasonBadName (errs.Invalid): the passkey's name is not text of at
	// most identity.MaxPasskeyName characters.
	ReasonBadName = "passkey_bad_name"
)

// DefaultName names a passkey registered without a name.
const DefaultName = "Passkey"

// Spent remembers the challenges of finished ceremonies, so that each is
// finished once. admission.SpentStore's adapters (memory, redis) are
// Spents; give passkeys their own instance or key prefix.
type Spent interface {
	// Spend records jti as spent by use until the time until. ok reports
	// whether the use may proceed: jti was not spent, or was spent by this
	// same use. Of concurrent and repeated calls with one jti and
	// different uses before until, exactly one gets true. An unreachable
	// store returns an error (kind Unavailable).
	Spend(ctx context.Context, jti, use string, until time.Time) (ok bool, err error)
}

// Ceremonies runs the WebAuthn ceremonies of the identity service:
// registering a passkey, signing in with one (password-less), and using
// one as the second factor of a password sign-in. Each begin returns the
// options for the browser and a sealed state; the finish takes the state
// back with the browser's response. Nothing is kept per ceremony but the
// spent challenges. Safe for concurrent use.
type Ceremonies struct {
	cfg    Config
	wa     *webauthn.WebAuthn
	sealer *Sealer
	spent  Spent
}

// New returns the ceremonies of cfg, sealing their state with sealer and
// spending their challenges in spent.
func New(cfg Config, sealer *Sealer, spent Spent) (*Ceremonies, error) {
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if sealer == nil || spent == nil {
		return nil, errs.E("passkey.new", errs.Invalid, "a sealer and a spent store are needed")
	}
	timeout := webauthn.TimeoutConfig{Timeout: cfg.Timeout, TimeoutUVD: cfg.Timeout}
	wa, err := webauthn.New(&webauthn.Config{
		RPID:          cfg.RPID,
		RPDisplayName: cfg.RPDisplayName,
		RPOrigins:     append([]string(nil), cfg.Origins...),
		// Expiry is enforced here, with Config.Now, from the sealed state:
		// the library would use time.Now.
		Timeouts:              webauthn.TimeoutsConfig{Login: timeout, Registration: timeout},
		AttestationPreference: protocol.PreferNoAttestation,
		AuthenticatorSelection: protocol.AuthenticatorSelection{
			ResidentKey:        protocol.ResidentKeyRequirementRequired,
			RequireResidentKey: protocol.ResidentKeyRequired(),
			UserVerification:   protocol.VerificationPreferred,
		},
	})
	if err != nil {
		return nil, errs.E("passkey.new", errs.Invalid, err)
	}
	return &Ceremonies{cfg: cfg, wa: wa, sealer: sealer, spent: spent}, nil
}

// Started is what a begin returns.
type Started struct {
	// Options is the JSON for the browser: {"publicKey": {...}}, the
	// publicKey member being PublicKeyCredentialCreationOptionsJSON
	// (registration) or PublicKeyCredentialRequestOptionsJSON (sign-in),
	// binary fields as unpadded base64url, ready for
	// PublicKeyCredential.parseCreationOptionsFromJSON or
	// parseRequestOptionsFromJSON.
	Options json.RawMessage
	// State is the sealed state of the ceremony, opaque to the client, to
	// be handed back to the finish: base64url, about 200 characters for a
	// sign-in, 560 for a registration, 2000 for a second factor of an
	// account with identity.MaxPasskeys passkeys of 64-byte ids.
	State string
	// Expires is when the state stops being accepted.
	Expires time.Time
}

// Login is a successful sign-in with a passkey.
type Login struct {
	// Account is the account signed in to: as the load callback returned
	// it (FinishLogin) or as given (FinishSecondFactor), not yet updated.
	Account identity.Account
	// PasskeyID is the id of the passkey used (identity.Passkey.ID).
	PasskeyID string
	// Credential is the passkey's credential after this use (sign count,
	// backup state): store it in place of the old one (Apply).
	Credential []byte
	// At is when the sign-in was verified.
	At time.Time
	// UserVerified reports whether the authenticator verified the user
	// (PIN, biometrics) for this sign-in, not only their presence. User
	// verification is asked for but not required: a password-less
	// sign-in without it is one factor, and the caller may want more.
	UserVerified bool
}

// Apply returns a with the passkey used updated (Credential and
// LastUsedAt), and whether a still has it. a's Passkeys are copied, not
// changed.
func (l Login) Apply(a identity.Account) (identity.Account, bool) {
	ps := append([]identity.Passkey(nil), a.Passkeys...)
	for i := range ps {
		if ps[i].ID == l.PasskeyID {
			ps[i].Credential = append([]byte(nil), l.Credential...)
			ps[i].LastUsedAt = l.At
			a.Passkeys = ps
			return a, true
		}
	}
	return a, false
}

// BeginRegistration starts registering a new passkey for a. The browser
// is asked for a discoverable credential (resident key required), user
// verification preferred, no attestation, and none of a's passkeys.
// Errors: errs.Conflict (ReasonLimit) when a has identity.MaxPasskeys.
func (c *Ceremonies) BeginRegistration(a identity.Account) (Started, error) {
	const op = "passkey.begin_registration"
	creation, session, err := c.beginRegistration(op, a)
	if err != nil {
		return Started{}, err
	}
	return c.start(op, PurposeRegister, creation, session)
}

// beginRegistration builds the options and session of a registration;
// extra options are for the tests.
func (c *Ceremonies) beginRegistration(op string, a identity.Account, extra ...webauthn.RegistrationOption) (*protocol.CredentialCreation, *webauthn.SessionData, error) {
	if len(a.Passkeys) >= identity.MaxPasskeys {
		return nil, nil, errs.Errorf(op, errs.Conflict, "an account has at most %d passkeys", identity.MaxPasskeys).WithReason(ReasonLimit)
	}
	u, err := newUser(op, a)
	if err != nil {
		return nil, nil, err
	}
	opts := append([]webauthn.RegistrationOption{
		webauthn.WithExclusions(webauthn.Credentials(u.creds).CredentialDescriptors()),
		withCredProps,
	}, extra...)
	creation, session, err := c.wa.BeginRegistration(u, opts...)
	if err != nil {
		return nil, nil, errs.E(op, errs.Other, err)
	}
	return creation, session, nil
}

// withCredProps asks the browser whether the credential is discoverable
// (the credProps extension); FinishRegistration refuses one it says is not.
func withCredProps(o *protocol.PublicKeyCredentialCreationOptions) error {
	o.Extensions.CredProps = true
	return nil
}

// FinishRegistration verifies the browser's response to a registration
// begun for a, and returns the new passkey, named name (DefaultName if
// empty), for the caller to append to a.Passkeys and store. body is the
// PublicKeyCredential as JSON (PublicKeyCredential.toJSON()):
//
//	{"id","rawId","type":"public-key","authenticatorAttachment",
//	 "response":{"clientDataJSON","attestationObject","transports",...},
//	 "clientExtensionResults":{"credProps":{"rk":true}}}
//
// The state is spent once the body decodes, whatever the outcome: a
// refused response needs a new ceremony. Errors carry a reason: a state
// refused (errs.Unauthorized, ReasonState*), a body too large
// (errs.TooLarge) or malformed (errs.Invalid), a response that does not
// verify (errs.Unauthorized, ReasonRefused), a credential not discoverable
// (errs.Invalid) or already a's (errs.Conflict), a bad name (errs.Invalid);
// errs.Unavailable when the spent store is.
func (c *Ceremonies) FinishRegistration(ctx context.Context, a identity.Account, state string, body []byte, name string) (identity.Passkey, error) {
	const op = "passkey.finish_registration"
	name, err := passkeyName(op, name)
	if err != nil {
		return identity.Passkey{}, err
	}
	cer, err := c.open(op, state, PurposeRegister)
	if err != nil {
		return identity.Passkey{}, err
	}
	if !bytes.Equal(cer.session.UserID, []byte(a.ID)) {
		return identity.Passkey{}, errs.E(op, errs.Unauthorized, "passkey ceremony state is another account's").WithReason(ReasonStateInvalid)
	}
	parsed, err := decodeRegistration(body, c.cfg.MaxPayloadBytes)
	if err != nil {
		return identity.Passkey{}, err
	}
	if err := c.spend(ctx, op, cer); err != nil {
		return identity.Passkey{}, err
	}
	return c.register(op, a, name, cer.session, parsed)
}

// register verifies parsed against session and a and builds the passkey.
func (c *Ceremonies) register(op string, a identity.Account, name string, session webauthn.SessionData, parsed *protocol.ParsedCredentialCreationData) (identity.Passkey, error) {
	if len(a.Passkeys) >= identity.MaxPasskeys {
		return identity.Passkey{}, errs.Errorf(op, errs.Conflict, "an account has at most %d passkeys", identity.MaxPasskeys).WithReason(ReasonLimit)
	}
	u, err := newUser(op, a)
	if err != nil {
		return identity.Passkey{}, err
	}
	cred, err := c.wa.CreateCredential(u, session, parsed)
	if err != nil {
		return identity.Passkey{}, refused(op, err)
	}
	if rk := cred.Extensions.RK; rk != nil && !*rk {
		return identity.Passkey{}, errs.E(op, errs.Invalid, "the authenticator made a credential that cannot sign in without a password").WithReason(ReasonNotDiscoverable)
	}
	id := base64.RawURLEncoding.EncodeToString(cred.ID)
	for _, p := range a.Passkeys {
		if p.ID == id {
			return identity.Passkey{}, errs.E(op, errs.Conflict, "this passkey is already registered").WithReason(ReasonExists)
		}
	}
	// The attestation's raw data is dropped: it is "none", nothing in it
	// is checked later, and it would take most of identity.MaxCredential.
	cred.Attestation = webauthn.CredentialAttestation{PublicKeyAlgorithm: cred.Attestation.PublicKeyAlgorithm}
	raw, err := json.Marshal(cred)
	if err != nil {
		return identity.Passkey{}, errs.E(op, errs.Other, err)
	}
	if len(raw) > identity.MaxCredential {
		return identity.Passkey{}, errs.E(op, errs.Invalid, "the credential is too large to keep").WithReason(ReasonMalformed)
	}
	return identity.Passkey{
		ID:         id,
		Name:       name,
		CreatedAt:  c.cfg.Now().UTC().Truncate(time.Microsecond),
		Credential: raw,
	}, nil
}

// BeginLogin starts a password-less sign-in: the browser offers the
// user's discoverable passkeys for this RP, user verification preferred.
func (c *Ceremonies) BeginLogin() (Started, error) {
	const op = "passkey.begin_login"
	assertion, session, err := c.wa.BeginDiscoverableLogin()
	if err != nil {
		return Started{}, errs.E(op, errs.Other, err)
	}
	return c.start(op, PurposeLogin, assertion, session)
}

// LoadAccount returns the account with the given id, or an error of kind
// errs.NotFound when there is none. Other errors end the sign-in as they
// are.
type LoadAccount func(ctx context.Context, id string) (identity.Account, error)

// FinishLogin verifies the browser's response to a BeginLogin: the
// response's user handle is the account id, load reads that account, and
// the credential must be one of its passkeys. body is the
// PublicKeyCredential as JSON:
//
//	{"id","rawId","type":"public-key","authenticatorAttachment",
//	 "response":{"clientDataJSON","authenticatorData","signature","userHandle"},
//	 "clientExtensionResults":{}}
//
// The caller stores the updated credential (Login.Apply). Errors as for
// FinishRegistration, and errs.Unauthorized with ReasonUnknown (no such
// account or passkey) or ReasonCloned (sign count went backwards); load's
// errors other than errs.NotFound are returned as they are.
func (c *Ceremonies) FinishLogin(ctx context.Context, state string, body []byte, load LoadAccount) (Login, error) {
	const op = "passkey.finish_login"
	cer, err := c.open(op, state, PurposeLogin)
	if err != nil {
		return Login{}, err
	}
	parsed, err := decodeAssertion(body, c.cfg.MaxPayloadBytes)
	if err != nil {
		return Login{}, err
	}
	if err := c.spend(ctx, op, cer); err != nil {
		return Login{}, err
	}
	return c.login(ctx, op, cer.session, parsed, load)
}

// login verifies a discoverable assertion.
func (c *Ceremonies) login(ctx context.Context, op string, session webauthn.SessionData, parsed *protocol.ParsedCredentialAssertionData, load LoadAccount) (Login, error) {
	var (
		account identity.Account
		failed  error // load's error, or why the account does not fit
	)
	unknown := errs.E(op, errs.Unauthorized, "unknown passkey").WithReason(ReasonUnknown)
	handler := func(rawID, userHandle []byte) (webauthn.User, error) {
		id := string(userHandle)
		if !identity.ValidID(id) {
			failed = unknown
			return nil, failed
		}
		a, err := load(ctx, id)
		switch {
		case errs.Is(errs.NotFound, err):
			failed = unknown
		case err != nil:
			failed = err
		case a.ID != id:
			failed = errs.Errorf(op, errs.Other, "load(%q) returned account %q", id, a.ID)
		}
		if failed != nil {
			return nil, failed
		}
		u, err := newUser(op, a)
		if err != nil {
			failed = err
			return nil, failed
		}
		if !u.has(rawID) {
			failed = unknown
			return nil, failed
		}
		account = a
		return u, nil
	}
	_, cred, err := c.wa.ValidatePasskeyLogin(handler, session, parsed)
	if failed != nil {
		return Login{}, failed
	}
	if err != nil {
		return Login{}, refused(op, err)
	}
	return c.loggedIn(op, account, cred, parsed)
}

// BeginSecondFactor starts a sign-in with one of a's passkeys, after a
// first factor (the password) has identified a. Errors: errs.Invalid
// (ReasonNone) when a has no passkeys.
func (c *Ceremonies) BeginSecondFactor(a identity.Account) (Started, error) {
	const op = "passkey.begin_second_factor"
	if len(a.Passkeys) == 0 {
		return Started{}, errs.E(op, errs.Invalid, "the account has no passkeys").WithReason(ReasonNone)
	}
	u, err := newUser(op, a)
	if err != nil {
		return Started{}, err
	}
	assertion, session, err := c.wa.BeginLogin(u)
	if err != nil {
		return Started{}, errs.E(op, errs.Other, err)
	}
	return c.start(op, PurposeSecondFactor, assertion, session)
}

// FinishSecondFactor verifies the browser's response to a
// BeginSecondFactor for a. body is as for FinishLogin (userHandle may be
// null). Errors as for FinishLogin; a state begun for another account is
// refused (ReasonStateInvalid).
func (c *Ceremonies) FinishSecondFactor(ctx context.Context, a identity.Account, state string, body []byte) (Login, error) {
	const op = "passkey.finish_second_factor"
	cer, err := c.open(op, state, PurposeSecondFactor)
	if err != nil {
		return Login{}, err
	}
	if !bytes.Equal(cer.session.UserID, []byte(a.ID)) {
		return Login{}, errs.E(op, errs.Unauthorized, "passkey ceremony state is another account's").WithReason(ReasonStateInvalid)
	}
	parsed, err := decodeAssertion(body, c.cfg.MaxPayloadBytes)
	if err != nil {
		return Login{}, err
	}
	if err := c.spend(ctx, op, cer); err != nil {
		return Login{}, err
	}
	return c.secondFactor(op, a, cer.session, parsed)
}

// secondFactor verifies an assertion by one of a's passkeys.
func (c *Ceremonies) secondFactor(op string, a identity.Account, session webauthn.SessionData, parsed *protocol.ParsedCredentialAssertionData) (Login, error) {
	u, err := newUser(op, a)
	if err != nil {
		return Login{}, err
	}
	if !u.has(parsed.RawID) {
		return Login{}, errs.E(op, errs.Unauthorized, "unknown passkey").WithReason(ReasonUnknown)
	}
	cred, err := c.wa.ValidateLogin(u, session, parsed)
	if err != nil {
		return Login{}, refused(op, err)
	}
	return c.loggedIn(op, a, cred, parsed)
}

// loggedIn refuses a cloned credential and builds the Login.
func (c *Ceremonies) loggedIn(op string, a identity.Account, cred *webauthn.Credential, parsed *protocol.ParsedCredentialAssertionData) (Login, error) {
	if cred.Authenticator.CloneWarning {
		return Login{}, errs.E(op, errs.Unauthorized, "the passkey's signature counter went backwards; it may have been copied").WithReason(ReasonCloned)
	}
	raw, err := json.Marshal(cred)
	if err != nil {
		return Login{}, errs.E(op, errs.Other, err)
	}
	return Login{
		Account:      a,
		PasskeyID:    base64.RawURLEncoding.EncodeToString(cred.ID),
		Credential:   raw,
		At:           c.cfg.Now().UTC().Truncate(time.Microsecond),
		UserVerified: parsed.Response.AuthenticatorData.Flags.HasUserVerified(),
	}, nil
}

// start seals session for purpose and marshals the options.
func (c *Ceremonies) start(op, purpose string, options any, session *webauthn.SessionData) (Started, error) {
	opts, err := json.Marshal(options)
	if err != nil {
		return Started{}, errs.E(op, errs.Other, err)
	}
	exp := c.cfg.Now().Add(c.cfg.Timeout).Truncate(time.Millisecond)
	state, err := c.sealer.seal(ceremony{purpose: purpose, expires: exp, session: *session})
	if err != nil {
		return Started{}, err
	}
	return Started{Options: opts, State: state, Expires: exp}, nil
}

// open unseals state and checks its purpose and expiry.
func (c *Ceremonies) open(op, state, purpose string) (ceremony, error) {
	cer, err := c.sealer.open(state)
	if err != nil {
		return ceremony{}, err
	}
	if cer.purpose != purpose {
		return ceremony{}, errs.Errorf(op, errs.Unauthorized, "passkey ceremony state is for %s, not %s", cer.purpose, purpose).WithReason(ReasonStateInvalid)
	}
	if !c.cfg.Now().Before(cer.expires) {
		return ceremony{}, errs.E(op, errs.Unauthorized, "passkey ceremony expired; start again").WithReason(ReasonStateExpired)
	}
	return cer, nil
}

// spend marks the ceremony's challenge as used until the state expires.
// Each call is a use of its own, so that a second finish of one state,
// even with the same body, is refused.
func (c *Ceremonies) spend(ctx context.Context, op string, cer ceremony) error {
	var b [16]byte
	_, _ = rand.Read(b[:])
	ok, err := c.spent.Spend(ctx, "passkey:"+cer.session.Challenge, base64.RawURLEncoding.EncodeToString(b[:]), cer.expires)
	switch {
	case errs.Is(errs.Invalid, err):
		// The store's clock has the state expired already.
		return errs.E(op, errs.Unauthorized, "passkey ceremony expired; start again", err).WithReason(ReasonStateExpired)
	case err != nil:
		return errs.E(op, err)
	case !ok:
		return errs.E(op, errs.Unauthorized, "passkey ceremony already finished; start again").WithReason(ReasonStateUsed)
	}
	return nil
}

// decodeRegistration decodes a registration response: its JSON, client
// data and attestation object. It does not verify it.
func decodeRegistration(body []byte, max int) (*protocol.ParsedCredentialCreationData, error) {
	const op = "passkey.decode_registration"
	if len(body) > max {
		return nil, errs.Errorf(op, errs.TooLarge, "passkey response is over %d bytes", max).WithReason(ReasonTooLarge)
	}
	p, err := protocol.ParseCredentialCreationResponseBytes(body)
	if err != nil {
		return nil, malformed(op, "malformed passkey registration", err)
	}
	return p, nil
}

// decodeAssertion decodes an assertion response: its JSON, client data
// and authenticator data. It does not verify it.
func decodeAssertion(body []byte, max int) (*protocol.ParsedCredentialAssertionData, error) {
	const op = "passkey.decode_assertion"
	if len(body) > max {
		return nil, errs.Errorf(op, errs.TooLarge, "passkey response is over %d bytes", max).WithReason(ReasonTooLarge)
	}
	p, err := protocol.ParseCredentialRequestResponseBytes(body)
	if err != nil {
		return nil, malformed(op, "malformed passkey assertion", err)
	}
	return p, nil
}

func malformed(op, msg string, err error) error {
	return errs.E(op, errs.Invalid, msg+detail(err), err).WithReason(ReasonMalformed)
}

// refused maps a verification failure of the library to
// errs.Unauthorized: the library's errors are the browser's fault or an
// attack, never the service's.
func refused(op string, err error) error {
	var unknown *protocol.ErrorUnknownCredential
	if errors.As(err, &unknown) {
		return errs.E(op, errs.Unauthorized, "unknown passkey", err).WithReason(ReasonUnknown)
	}
	return errs.E(op, errs.Unauthorized, "passkey refused"+detail(err), err).WithReason(ReasonRefused)
}

// detail is ": " and the library's description of err, if it has one.
func detail(err error) string {
	var pe *protocol.Error
	if errors.As(err, &pe) && pe.Details != "" {
		return ": " + strings.ToLower(pe.Details[:1]) + pe.Details[1:]
	}
	return ""
}

// passkeyName checks and trims a passkey's name.
func passkeyName(op, name string) (string, error) {
	name = strings.TrimSpace(name)
	if name == "" {
		return DefaultName, nil
	}
	if !utf8.ValidString(name) || utf8.RuneCountInString(name) > identity.MaxPasskeyName || strings.ContainsFunc(name, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return "", errs.Errorf(op, errs.Invalid, "a passkey's name is at most %d characters of text", identity.MaxPasskeyName).WithReason(ReasonBadName)
	}
	return name, nil
}

// user is an account as the library sees it.
type user struct {
	a     identity.Account
	creds []webauthn.Credential
}

// newUser decodes a's passkeys. One that does not decode, or whose id is
// not its credential's, is a fault of the store (errs.Other).
func newUser(op string, a identity.Account) (*user, error) {
	if !identity.ValidID(a.ID) {
		return nil, errs.Errorf(op, errs.Invalid, "bad account id %q", a.ID)
	}
	u := &user{a: a, creds: make([]webauthn.Credential, 0, len(a.Passkeys))}
	for _, p := range a.Passkeys {
		var cr webauthn.Credential
		if err := json.Unmarshal(p.Credential, &cr); err != nil {
			return nil, errs.Errorf(op, errs.Other, "account %s: passkey %s: credential does not decode: %v", a.ID, p.ID, err)
		}
		if base64.RawURLEncoding.EncodeToString(cr.ID) != p.ID {
			return nil, errs.Errorf(op, errs.Other, "account %s: passkey %s: credential has another id", a.ID, p.ID)
		}
		u.creds = append(u.creds, cr)
	}
	return u, nil
}

func (u *user) has(id []byte) bool {
	for _, c := range u.creds {
		if bytes.Equal(c.ID, id) {
			return true
		}
	}
	return false
}

// WebAuthnID is the user handle: the account id's bytes.
func (u *user) WebAuthnID() []byte { return []byte(u.a.ID) }

// WebAuthnName is the account's e-mail address, which the browser shows
// to tell passkeys apart.
func (u *user) WebAuthnName() string {
	if u.a.Email != "" {
		return u.a.Email
	}
	return u.a.ID
}

func (u *user) WebAuthnDisplayName() string {
	if u.a.DisplayName != "" {
		return u.a.DisplayName
	}
	return u.WebAuthnName()
}

func (u *user) WebAuthnCredentials() []webauthn.Credential { return u.creds }
