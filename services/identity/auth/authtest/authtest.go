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
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ticketing/ticketing/internal/eventually"
	"github.com/ticketing/ticketing/internal/keyring"
	"github.com/ticketing/ticketing/internal/pow"
	"github.com/ticketing/ticketing/services/fraud"
	fraudmemory "github.com/ticketing/ticketing/services/fraud/memory"
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
	return f.service(t, h, nil)
}

// WithRisk returns another service on the same stores whose sign-ins the
// fraud engine judges (cfg; in-process counters, events kept in the
// returned recorder), with proofs of work of the difficulty.
func (f *Fixture) WithRisk(t testing.TB, cfg fraud.Config, difficulty int) (*auth.Service, *Events) {
	t.Helper()
	counters, err := fraudmemory.New(fraudmemory.Config{})
	if err != nil {
		t.Fatal(err)
	}
	ev := &Events{}
	engine, err := fraud.New(cfg, counters, ev)
	if err != nil {
		t.Fatal(err)
	}
	h, err := password.New(password.DefaultParams())
	if err != nil {
		t.Fatal(err)
	}
	return f.service(t, h, &auth.Risk{Engine: engine, PoW: pow.Issuer{Secret: []byte("authtest-pow-secret-0123456789abcdef"), TTL: time.Minute},
		Spent: spent{}, Difficulty: difficulty, SlowLane: time.Millisecond}), ev
}

func (f *Fixture) service(t testing.TB, h *password.Hasher, risk *auth.Risk) *auth.Service {
	s, err := auth.New(auth.Config{BaseURL: f.baseURL}, auth.Deps{Accounts: f.Accounts, Sessions: f.Sessions, Tokens: f.issuer, Hasher: h, Mailer: f.Mail,
		Passkeys: f.passkeys, Risk: risk})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Events records the fraud engine's decisions.
type Events struct {
	mu   sync.Mutex
	list []fraud.Event
}

// Publish implements fraud.Publisher.
func (e *Events) Publish(_ context.Context, ev fraud.Event) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.list = append(e.list, ev)
	return nil
}

// List returns the events so far.
func (e *Events) List() []fraud.Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]fraud.Event(nil), e.list...)
}

// spent is an in-process passkey.Spent for one test.
type spent struct{}

var spentMu sync.Mutex
var spentSet = map[string]string{}

func (spent) Spend(_ context.Context, jti, use string, _ time.Time) (bool, error) {
	spentMu.Lock()
	defer spentMu.Unlock()
	if u, ok := spentSet[jti]; ok {
		return u == use, nil
	}
	spentSet[jti] = use
	return true, nil
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
