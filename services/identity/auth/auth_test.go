package auth_test

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ticketing/ticketing/core/node/nodetest"
	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/services/identity"
	"github.com/ticketing/ticketing/services/identity/auth"
	"github.com/ticketing/ticketing/services/identity/auth/authtest"
	"github.com/ticketing/ticketing/services/identity/password"
	"github.com/ticketing/ticketing/services/identity/session"
	"github.com/ticketing/ticketing/services/identity/totp"
)

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return c
}

func start(t *testing.T) *authtest.Fixture {
	_, nc, js := nodetest.Start(t)
	return authtest.Start(t, nc, js, "https://tickets.example.com")
}

func wantReason(t *testing.T, err error, k errs.Kind, reason string) {
	t.Helper()
	if !errs.Is(k, err) || (reason != "" && errs.ReasonOf(err) != reason) {
		t.Fatalf("error %v (kind %v, reason %q), want kind %v reason %q", err, errs.KindOf(err), errs.ReasonOf(err), k, reason)
	}
}

func signIn(t *testing.T, f *authtest.Fixture, email, pw string) (auth.SignIn, error) {
	t.Helper()
	return f.Auth.PasswordSignIn(ctx(t), auth.SignInRequest{Email: email, Password: pw, Seen: session.Seen{UserAgent: "test", IP: "192.0.2.1"}})
}

func TestSignUpVerifySignIn(t *testing.T) {
	f := start(t)
	c := ctx(t)
	const email, pw = "Ada@Example.com", "analytical engine"
	if err := f.Auth.SignUp(c, auth.SignUpRequest{Email: email, Password: pw, DisplayName: "Ada"}); err != nil {
		t.Fatal(err)
	}
	_, err := signIn(t, f, email, pw)
	wantReason(t, err, errs.Forbidden, auth.ReasonEmailUnverified)

	secret := f.Link(t, "ada@example.com", "https://tickets.example.com/verify")
	if err := f.Auth.Verify(c, secret); err != nil {
		t.Fatal(err)
	}
	wantReason(t, f.Auth.Verify(c, secret), errs.NotFound, auth.ReasonLinkInvalid) // single use
	wantReason(t, f.Auth.Verify(c, secret+"x"), errs.NotFound, auth.ReasonLinkInvalid)

	in, err := signIn(t, f, email, pw)
	if err != nil || in.Tokens == nil || in.MFA != "" {
		t.Fatalf("sign in: %+v %v", in, err)
	}
	claims, err := f.Verifier.Verify(in.Tokens.AccessToken, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if claims.Subject != in.Tokens.UserID || claims.ClientID != "web" || !claims.HasScope("holds:write") || claims.HasScope("admin") {
		t.Fatalf("claims %+v", claims)
	}
	p, err := f.Auth.Profile(c, claims.Subject)
	if err != nil || p.Email != "ada@example.com" || !p.EmailVerified || p.TOTP || !p.HasPassword {
		t.Fatalf("profile %+v %v", p, err)
	}
}

func TestNoEnumeration(t *testing.T) {
	f := start(t)
	c := ctx(t)
	known := f.SignedIn(t)
	// Sign-up with a taken address answers as a new one, and mails the
	// owner instead of creating anything.
	if err := f.Auth.SignUp(c, auth.SignUpRequest{Email: known.Email, Password: "another password"}); err != nil {
		t.Fatal(err)
	}
	f.MailTo(t, known.Email, regexp.MustCompile(`already has one[\s\S]*https://tickets\.example\.com/forgot`))
	_, err := signIn(t, f, known.Email, "another password")
	wantReason(t, err, errs.Unauthorized, auth.ReasonInvalidCredentials)
	// Unknown address and wrong password: one answer.
	_, errUnknown := signIn(t, f, "nobody@example.com", "whatever password")
	_, errWrong := signIn(t, f, known.Email, "wrong password!")
	wantReason(t, errUnknown, errs.Unauthorized, auth.ReasonInvalidCredentials)
	wantReason(t, errWrong, errs.Unauthorized, auth.ReasonInvalidCredentials)
	if errs.Message(errUnknown) != errs.Message(errWrong) {
		t.Fatalf("messages differ: %q and %q", errs.Message(errUnknown), errs.Message(errWrong))
	}
	// Reset: the same answer for both.
	if err := f.Auth.ForgotPassword(c, "nobody@example.com"); err != nil {
		t.Fatal(err)
	}
	if err := f.Auth.ForgotPassword(c, known.Email); err != nil {
		t.Fatal(err)
	}
	f.Link(t, known.Email, "https://tickets.example.com/reset")
}

func TestFailedSignInsCounted(t *testing.T) {
	f := start(t)
	a := f.SignedIn(t)
	for range 3 {
		_, err := signIn(t, f, a.Email, "wrong password!")
		wantReason(t, err, errs.Unauthorized, auth.ReasonInvalidCredentials)
	}
	acc := account(t, f, a.ID)
	if acc.Failures != 3 || acc.FailedAt.IsZero() {
		t.Fatalf("failures %d at %v", acc.Failures, acc.FailedAt)
	}
	if _, err := signIn(t, f, a.Email, a.Password); err != nil {
		t.Fatal(err)
	}
	if acc := account(t, f, a.ID); acc.Failures != 0 {
		t.Fatalf("failures %d after a success", acc.Failures)
	}
}

// account reads the stored account through a sign-in's profile path.
func account(t *testing.T, f *authtest.Fixture, id string) identity.Account {
	t.Helper()
	a, err := f.Accounts.ByID(ctx(t), id)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestResetPassword(t *testing.T) {
	f := start(t)
	c := ctx(t)
	a := f.SignedIn(t)
	if err := f.Auth.ForgotPassword(c, a.Email); err != nil {
		t.Fatal(err)
	}
	secret := f.Link(t, a.Email, "https://tickets.example.com/reset")
	wantReason(t, f.Auth.ResetPassword(c, secret, "short"), errs.Invalid, "")
	if err := f.Auth.ResetPassword(c, secret, "a brand new password"); err != nil {
		t.Fatal(err, "(a refused password must not spend the link)")
	}
	wantReason(t, f.Auth.ResetPassword(c, secret, "yet another password"), errs.NotFound, auth.ReasonLinkInvalid)
	if _, err := signIn(t, f, a.Email, a.Password); !errs.Is(errs.Unauthorized, err) {
		t.Fatalf("old password: %v", err)
	}
	if _, err := signIn(t, f, a.Email, "a brand new password"); err != nil {
		t.Fatal(err)
	}
	// The reset ended the sessions that existed before it.
	_, err := f.Auth.Refresh(c, auth.RefreshRequest{RefreshToken: a.Refresh})
	wantReason(t, err, errs.Unauthorized, session.ReasonRefreshInvalid)
}

func TestRefreshRotatesAndReuseRevokes(t *testing.T) {
	f := start(t)
	c := ctx(t)
	a := f.SignedIn(t)
	t1, err := f.Auth.Refresh(c, auth.RefreshRequest{RefreshToken: a.Refresh})
	if err != nil || t1.RefreshToken == a.Refresh || t1.AccessToken == "" {
		t.Fatalf("refresh: %+v %v", t1, err)
	}
	t2, err := f.Auth.Refresh(c, auth.RefreshRequest{RefreshToken: t1.RefreshToken})
	if err != nil {
		t.Fatal(err)
	}
	// a.Refresh is two generations back: a replay, the family is revoked.
	_, err = f.Auth.Refresh(c, auth.RefreshRequest{RefreshToken: a.Refresh})
	wantReason(t, err, errs.Unauthorized, session.ReasonRefreshReused)
	_, err = f.Auth.Refresh(c, auth.RefreshRequest{RefreshToken: t2.RefreshToken})
	wantReason(t, err, errs.Unauthorized, session.ReasonRefreshInvalid)
}

func TestTOTPSecondFactorAndReplay(t *testing.T) {
	f := start(t)
	c := ctx(t)
	a := f.SignedIn(t)
	enr, err := f.Auth.BeginTOTP(c, a.ID)
	if err != nil || !strings.HasPrefix(enr.URI, "otpauth://totp/") {
		t.Fatalf("begin: %+v %v", enr, err)
	}
	_, err = f.Auth.ConfirmTOTP(c, a.ID, "000000x")
	wantReason(t, err, errs.Invalid, "")
	code, _ := totp.Code(enr.Secret, time.Now())
	codes, err := f.Auth.ConfirmTOTP(c, a.ID, code)
	if err != nil || len(codes) != 10 {
		t.Fatalf("confirm: %v %v", codes, err)
	}
	in, err := signIn(t, f, a.Email, a.Password)
	if err != nil || in.Tokens != nil || in.MFA == "" || strings.Join(in.Methods, ",") != "totp,recovery" {
		t.Fatalf("sign in with TOTP on: %+v %v", in, err)
	}
	// The code that confirmed the enrolment is spent: replayed in its own
	// step it is refused, and the ticket with it.
	_, err = f.Auth.SecondFactor(c, auth.SecondFactorRequest{MFA: in.MFA, Code: code})
	wantReason(t, err, errs.Unauthorized, totp.ReasonCodeReused)
	_, err = f.Auth.SecondFactor(c, auth.SecondFactorRequest{MFA: in.MFA, Code: code})
	wantReason(t, err, errs.Unauthorized, auth.ReasonInvalidCredentials)
	// A recovery code signs in once.
	in, _ = signIn(t, f, a.Email, a.Password)
	tok, err := f.Auth.SecondFactor(c, auth.SecondFactorRequest{MFA: in.MFA, Code: codes[0], Recovery: true})
	if err != nil || tok.AccessToken == "" {
		t.Fatalf("recovery code: %v", err)
	}
	in, _ = signIn(t, f, a.Email, a.Password)
	_, err = f.Auth.SecondFactor(c, auth.SecondFactorRequest{MFA: in.MFA, Code: codes[0], Recovery: true})
	wantReason(t, err, errs.Unauthorized, auth.ReasonInvalidCredentials)
	if p, _ := f.Auth.Profile(c, a.ID); !p.TOTP || p.RecoveryLeft != 9 {
		t.Fatalf("profile %+v", p)
	}
}

func TestStepUp(t *testing.T) {
	f := start(t)
	c := ctx(t)
	a := f.SignedIn(t)
	enr, _ := f.Auth.BeginTOTP(c, a.ID)
	now := time.Now()
	code, _ := totp.Code(enr.Secret, now.Add(-30*time.Second))
	if _, err := f.Auth.ConfirmTOTP(c, a.ID, code); err != nil {
		t.Fatal(err)
	}
	// The password alone is not enough once TOTP is on.
	err := f.Auth.ChangePassword(c, a.ID, "", auth.StepUp{Password: a.Password}, "a new password here")
	wantReason(t, err, errs.Forbidden, auth.ReasonStepUp)
	next, _ := totp.Code(enr.Secret, now)
	err = f.Auth.ChangePassword(c, a.ID, "", auth.StepUp{Password: "wrong password!", Code: next}, "a new password here")
	wantReason(t, err, errs.Forbidden, auth.ReasonStepUp)
	err = f.Auth.DisableTOTP(c, a.ID, auth.StepUp{Password: a.Password, Code: next})
	if err != nil {
		t.Fatal(err)
	}
	if p, _ := f.Auth.Profile(c, a.ID); p.TOTP || p.RecoveryLeft != 0 {
		t.Fatalf("profile after disabling %+v", p)
	}
	if err := f.Auth.ChangePassword(c, a.ID, "", auth.StepUp{Password: a.Password}, "a new password here"); err != nil {
		t.Fatal(err)
	}
	if _, err := signIn(t, f, a.Email, "a new password here"); err != nil {
		t.Fatal(err)
	}
}

func TestRolesInTheNextToken(t *testing.T) {
	f := start(t)
	c := ctx(t)
	a := f.SignedIn(t)
	_, err := f.Auth.SetRoles(c, a.ID, []string{"root"})
	wantReason(t, err, errs.Invalid, "")
	if p, err := f.Auth.SetRoles(c, a.ID, []string{identity.RoleAdmin, "staff:org-1"}); err != nil || len(p.Roles) != 2 {
		t.Fatalf("roles: %+v %v", p, err)
	}
	tok, err := f.Auth.Refresh(c, auth.RefreshRequest{RefreshToken: a.Refresh})
	if err != nil {
		t.Fatal(err)
	}
	claims, err := f.Verifier.Verify(tok.AccessToken, time.Now())
	if err != nil || !claims.HasScope("admin") || !claims.HasScope("staff:org-1") {
		t.Fatalf("claims %+v %v", claims, err)
	}
}

func TestPasswordHashUpgradedAtSignIn(t *testing.T) {
	f := start(t)
	c := ctx(t)
	a := f.SignedIn(t)
	// Store a hash of a cheaper cost than the service's (t=2 → the
	// service hashes with t=3 below).
	weak, err := password.New(password.DefaultParams())
	if err != nil {
		t.Fatal(err)
	}
	h, _ := weak.Hash(a.Password)
	acc := account(t, f, a.ID)
	acc.Password = h
	if _, err := f.Accounts.Update(c, acc); err != nil {
		t.Fatal(err)
	}
	strong := password.DefaultParams()
	strong.Time = 3
	svc := f.WithHasher(t, strong)
	if _, err := svc.PasswordSignIn(c, auth.SignInRequest{Email: a.Email, Password: a.Password}); err != nil {
		t.Fatal(err)
	}
	got := account(t, f, a.ID).Password
	if !strings.Contains(got, ",t=3,") {
		t.Fatalf("hash not upgraded: %s", got)
	}
	if _, err := svc.PasswordSignIn(c, auth.SignInRequest{Email: a.Email, Password: a.Password}); err != nil {
		t.Fatal(err)
	}
}
