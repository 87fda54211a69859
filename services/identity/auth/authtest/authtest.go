// Package authtest runs the identity service for tests of its callers: the
// real flows (services/identity/auth) on the embedded stores, served as the
// NATS micro service on the connection given, with mail written to a
// directory the test reads.
package authtest

import (
	"context"
	"crypto/rand"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ticketing/ticketing/internal/eventually"
	"github.com/ticketing/ticketing/internal/keyring"
	"github.com/ticketing/ticketing/services/identity"
	"github.com/ticketing/ticketing/services/identity/auth"
	"github.com/ticketing/ticketing/services/identity/client"
	clientkv "github.com/ticketing/ticketing/services/identity/client/natskv"
	idapi "github.com/ticketing/ticketing/services/identity/natsapi"
	identitykv "github.com/ticketing/ticketing/services/identity/natskv"
	"github.com/ticketing/ticketing/services/identity/passkey"
	passkeykv "github.com/ticketing/ticketing/services/identity/passkey/natskv"
	"github.com/ticketing/ticketing/services/identity/password"
	"github.com/ticketing/ticketing/services/identity/session"
	sessionkv "github.com/ticketing/ticketing/services/identity/session/natskv"
	"github.com/ticketing/ticketing/services/identity/token"
	"github.com/ticketing/ticketing/services/mail"
	maildir "github.com/ticketing/ticketing/services/mail/dir"
)

// Fixture is a running identity service.
type Fixture struct {
	Auth     *auth.Service
	Client   *idapi.Client
	Ring     *keyring.KeyRing
	Verifier *token.Verifier // on Ring
	Tokens   token.Config
	Mail     *maildir.Dir
	// Accounts and Sessions are the stores behind Auth.
	Accounts identity.Store
	Sessions *session.Manager
	// Clients are the partner clients.
	Clients client.Store
	issuer  *token.Issuer
	// AdminToken is the bootstrap admin token the service accepts.
	AdminToken string
	baseURL    string
	passkeys   *passkey.Ceremonies
}

// WithHasher returns another service on the same stores whose password
// hashes have the cost p.
func (f *Fixture) WithHasher(t testing.TB, p password.Params) *auth.Service {
	t.Helper()
	h, err := password.New(p)
	if err != nil {
		t.Fatal(err)
	}
	s, err := auth.New(auth.Config{BaseURL: f.baseURL}, auth.Deps{Accounts: f.Accounts, Sessions: f.Sessions, Tokens: f.issuer, Hasher: h, Mailer: f.Mail,
		Passkeys: f.passkeys})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

var buckets atomic.Int64

// Start serves the identity service on nc, its stores in buckets of js
// named for the test; baseURL is where mailed links point. When baseURL's
// host is a domain (http://localhost:<port> for a browser test) the
// service has passkeys as the core sets them up: that host is the relying
// party, baseURL's origin the one origin; on an IP address it has none
// (WebAuthn binds passkeys to domains).
func Start(t testing.TB, nc *nats.Conn, js jetstream.JetStream, baseURL string) *Fixture {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n := buckets.Add(1)
	accounts, err := identitykv.Open(ctx, js, identitykv.Config{Bucket: fmt.Sprintf("authtest-users-%d", n)})
	if err != nil {
		t.Fatal(err)
	}
	sessions, err := sessionkv.Open(ctx, js, sessionkv.Config{Bucket: fmt.Sprintf("authtest-sessions-%d", n)})
	if err != nil {
		t.Fatal(err)
	}
	manager, err := session.NewManager(sessions, session.Config{})
	if err != nil {
		t.Fatal(err)
	}
	f := &Fixture{AdminToken: "authtest-admin-token-0123456789"}
	if f.Ring, err = keyring.NewKeyRing(keyring.KeyRingConfig{}, time.Now()); err != nil {
		t.Fatal(err)
	}
	auth.TokenDefaults(&f.Tokens, baseURL)
	issuer, err := token.NewIssuer(f.Ring, f.Tokens)
	if err != nil {
		t.Fatal(err)
	}
	if f.Verifier, err = token.NewVerifier(f.Ring, f.Tokens); err != nil {
		t.Fatal(err)
	}
	hasher, err := password.New(password.DefaultParams())
	if err != nil {
		t.Fatal(err)
	}
	if f.Mail, err = maildir.New(t.TempDir()); err != nil {
		t.Fatal(err)
	}
	f.Accounts, f.Sessions, f.issuer, f.baseURL = accounts, manager, issuer, baseURL
	f.passkeys = passkeys(ctx, t, js, baseURL, n)
	f.Auth, err = auth.New(auth.Config{BaseURL: baseURL}, auth.Deps{Accounts: accounts, Sessions: manager, Tokens: issuer, Hasher: hasher, Mailer: f.Mail,
		Passkeys: f.passkeys})
	if err != nil {
		t.Fatal(err)
	}
	clients, err := clientkv.Open(ctx, js, clientkv.Config{Bucket: fmt.Sprintf("authtest-clients-%d", n)})
	if err != nil {
		t.Fatal(err)
	}
	f.Clients = clients
	svc, err := idapi.Serve(nc, idapi.Server{Auth: f.Auth, Verifier: f.Verifier, Keys: f.Ring, AdminToken: f.AdminToken,
		Partners: &idapi.Partners{Clients: clients, Issuer: issuer},
		Tokens:   idapi.Config{Issuer: f.Tokens.Issuer, Audience: f.Tokens.Audience}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = svc.Stop()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = f.Auth.Close(ctx)
	})
	f.Client = &idapi.Client{NC: nc}
	return f
}

// passkeys are the ceremonies for baseURL, or nil when its host is not a
// domain.
func passkeys(ctx context.Context, t testing.TB, js jetstream.JetStream, baseURL string, n int64) *passkey.Ceremonies {
	t.Helper()
	u, err := url.Parse(baseURL)
	if err != nil || net.ParseIP(u.Hostname()) != nil {
		return nil
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	sealer, err := passkey.NewSealer(key, nil)
	if err != nil {
		t.Fatal(err)
	}
	kvc := passkeykv.KeyValueConfig(1)
	kvc.Bucket = fmt.Sprintf("authtest-passkey-spent-%d", n)
	kv, err := js.CreateOrUpdateKeyValue(ctx, kvc)
	if err != nil {
		t.Fatal(err)
	}
	c, err := passkey.New(passkey.Config{RPID: u.Hostname(), RPDisplayName: "Ticketing", Origins: []string{u.Scheme + "://" + u.Host}},
		sealer, passkeykv.Spent{KV: kv})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Account is a signed-in account of a test.
type Account struct {
	ID          string
	Email       string
	Password    string
	AccessToken string
	Refresh     string
}

var accounts atomic.Int64

// SignedIn creates a verified account with the roles and signs it in
// (client "web").
func (f *Fixture) SignedIn(t testing.TB, roles ...string) Account {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a := Account{Email: fmt.Sprintf("user%d-%d@example.com", time.Now().UnixNano(), accounts.Add(1)), Password: "correct horse battery"}
	if _, err := f.Auth.Seed(ctx, auth.SeedAccount{Email: a.Email, Password: a.Password, Roles: roles}); err != nil {
		t.Fatal(err)
	}
	in, err := f.Auth.PasswordSignIn(ctx, auth.SignInRequest{Email: a.Email, Password: a.Password})
	if err != nil || in.Tokens == nil {
		t.Fatalf("sign in: %v %+v", err, in)
	}
	a.ID, a.AccessToken, a.Refresh = in.Tokens.UserID, in.Tokens.AccessToken, in.Tokens.RefreshToken
	return a
}

// Link waits for the mail to addr whose text has a link to path
// ("/verify", "/reset") and returns the link's secret (after '#').
func (f *Fixture) Link(t testing.TB, addr, path string) string {
	t.Helper()
	re := regexp.MustCompile(regexp.QuoteMeta(path) + `#([A-Za-z0-9_-]+)`)
	return re.FindStringSubmatch(f.MailTo(t, addr, re).Text)[1]
}

// MailTo waits for a mail to addr whose text matches re and returns the
// newest such.
func (f *Fixture) MailTo(t testing.TB, addr string, re *regexp.Regexp) mail.Message {
	t.Helper()
	var m mail.Message
	eventually.True(t, 10*time.Second, "a mail to "+addr+" matching "+re.String(), func() bool {
		list, err := f.Mail.List()
		if err != nil {
			return false
		}
		for i := len(list) - 1; i >= 0; i-- {
			e := list[i]
			if len(e.Message.To) == 1 && e.Message.To[0] == addr && re.MatchString(e.Message.Text) {
				m = e.Message
				return true
			}
		}
		return false
	})
	return m
}
