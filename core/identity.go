package core

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/ticketing/ticketing/core/streams"
	"github.com/ticketing/ticketing/internal/keyring"
	keyringkv "github.com/ticketing/ticketing/internal/keyring/natskv"
	"github.com/ticketing/ticketing/internal/postgres"
	"github.com/ticketing/ticketing/internal/pow"
	"github.com/ticketing/ticketing/internal/supervisor"
	"github.com/ticketing/ticketing/services/fraud"
	fraudmemory "github.com/ticketing/ticketing/services/fraud/memory"
	"github.com/ticketing/ticketing/services/fraud/natsevents"
	fraudredis "github.com/ticketing/ticketing/services/fraud/redis"
	"github.com/ticketing/ticketing/services/identity"
	"github.com/ticketing/ticketing/services/identity/auth"
	"github.com/ticketing/ticketing/services/identity/client"
	clientkv "github.com/ticketing/ticketing/services/identity/client/natskv"
	clientpg "github.com/ticketing/ticketing/services/identity/client/postgres"
	idapi "github.com/ticketing/ticketing/services/identity/natsapi"
	identitykv "github.com/ticketing/ticketing/services/identity/natskv"
	"github.com/ticketing/ticketing/services/identity/passkey"
	passkeykv "github.com/ticketing/ticketing/services/identity/passkey/natskv"
	"github.com/ticketing/ticketing/services/identity/password"
	identitypg "github.com/ticketing/ticketing/services/identity/postgres"
	"github.com/ticketing/ticketing/services/identity/session"
	sessionkv "github.com/ticketing/ticketing/services/identity/session/natskv"
	sessionredis "github.com/ticketing/ticketing/services/identity/session/redis"
	"github.com/ticketing/ticketing/services/identity/token"
	"github.com/ticketing/ticketing/services/mail"
	maildir "github.com/ticketing/ticketing/services/mail/dir"
	"github.com/ticketing/ticketing/services/mail/smtp"
)

// IdentityConfig configures the identity service the core runs.
type IdentityConfig struct {
	// Auth tunes the flows; Auth.BaseURL (where mailed links point, the
	// edges' public URL, the tokens' issuer and the passkeys' relying
	// party) defaults to http://localhost:8080.
	Auth auth.Config
	// Tokens: issuer (default Auth.BaseURL), audience and lifetimes of
	// access tokens; the edges ask for the issuer and audience.
	Tokens token.Config
	// Keys rotate the token signing keys; KeySyncEvery is how often a
	// node looks for a rotation by another. Default 1m.
	Keys         keyring.KeyRingConfig
	KeySyncEvery time.Duration
	// Password is the argon2id cost of new hashes (and of upgrades at
	// sign-in). Default the OWASP minimum.
	Password password.Params
	Sessions session.Config
	// PostgresURL, when set, keeps accounts in PostgreSQL; else in the
	// core's JetStream (bucket identity-users).
	PostgresURL string
	// RedisAddr, when set, keeps sessions in Redis; else in JetStream
	// (bucket identity-sessions).
	RedisAddr     string
	RedisPassword string
	// SMTP, when its Addr is set, sends mail; else mail is written to
	// MailDir (default <data>/mail), the development sink.
	SMTP    smtp.Config
	MailDir string
	// Fraud tunes the fraud engine that judges sign-ins.
	Fraud fraud.Config
}

// Defaults fills zero fields.
func (c *IdentityConfig) Defaults(dataDir string) {
	if c.Auth.BaseURL == "" {
		c.Auth.BaseURL = "http://localhost:8080"
	}
	c.Auth.Defaults()
	auth.TokenDefaults(&c.Tokens, c.Auth.BaseURL)
	c.Keys.Defaults()
	if c.KeySyncEvery == 0 {
		c.KeySyncEvery = time.Minute
	}
	if c.Password == (password.Params{}) {
		c.Password = password.DefaultParams()
	}
	c.Sessions.Defaults()
	c.Fraud.Defaults()
	if c.SMTP.Addr == "" && c.MailDir == "" {
		c.MailDir = filepath.Join(dataDir, "mail")
	}
}

// Validate checks the config after Defaults.
func (c *IdentityConfig) Validate() error {
	var errl []error
	errl = append(errl, c.Auth.Validate(), c.Tokens.Validate(), c.Keys.Validate(), c.Sessions.Validate(), c.Fraud.Validate())
	if c.SMTP.Addr != "" {
		errl = append(errl, c.SMTP.WithDefaults().Validate())
	}
	if c.KeySyncEvery < time.Second {
		errl = append(errl, errors.New("identity: key sync period below 1s"))
	}
	return errors.Join(errl...)
}

// startIdentity serves the identity service ("identity-service") with its
// stores, and keeps its signing keys in step with the other nodes
// ("identity-keys").
func (c *Core) startIdentity(ctx context.Context, sup *supervisor.Supervisor) error {
	cfg := c.cfg.Identity
	log := c.log.With("component", "identity")
	accounts, err := c.accountStore(ctx, sup, cfg)
	if err != nil {
		return err
	}
	var sessions session.Store
	var rc *goredis.Client
	if cfg.RedisAddr != "" {
		rc = goredis.NewClient(&goredis.Options{Addr: cfg.RedisAddr, Password: cfg.RedisPassword,
			DialTimeout: 2 * time.Second, ReadTimeout: 2 * time.Second, WriteTimeout: 2 * time.Second})
		if _, err := sup.Add("identity-redis", func(context.Context) error { return rc.Close() }); err != nil {
			return err
		}
		if sessions, err = sessionredis.New(rc, sessionredis.Config{}); err != nil {
			return err
		}
	} else {
		// Open, not New: with replicas it reads from the stream's leader
		// (New refuses a replicated bucket, so a cluster would not start).
		sc := streams.SessionsConfig(c.cfg.Streams.Replicas)
		if sessions, err = sessionkv.Open(ctx, c.JS, sc); err != nil {
			return err
		}
	}
	manager, err := session.NewManager(sessions, cfg.Sessions)
	if err != nil {
		return err
	}
	keys, err := keyringkv.New(c.Streams.IdentityKeys, streams.IdentityKeysConfig(c.cfg.Streams.Replicas))
	if err != nil {
		return err
	}
	ring, err := keyring.NewKeyRing(cfg.Keys, time.Now())
	if err != nil {
		return err
	}
	if _, err := keyring.Sync(ctx, keys, ring, time.Now()); err != nil {
		return fmt.Errorf("core: identity keys: %w", err)
	}
	issuer, err := token.NewIssuer(ring, cfg.Tokens)
	if err != nil {
		return err
	}
	verifier, err := token.NewVerifier(ring, cfg.Tokens)
	if err != nil {
		return err
	}
	c.verifier.Store(verifier)
	c.issuer = issuer
	hasher, err := password.New(cfg.Password)
	if err != nil {
		return err
	}
	var mailer mail.Mailer
	if cfg.SMTP.Addr != "" {
		if mailer, err = smtp.New(cfg.SMTP); err != nil {
			return err
		}
	} else if mailer, err = maildir.New(cfg.MailDir); err != nil {
		return err
	}
	ceremonies, err := c.passkeys(ctx, cfg)
	if err != nil {
		return err
	}
	risk, err := c.risk(ctx, sup, cfg, rc)
	if err != nil {
		return err
	}
	c.mailer, c.accounts = mailer, accounts
	svc, err := auth.New(cfg.Auth, auth.Deps{Accounts: accounts, Sessions: manager, Tokens: issuer, Hasher: hasher, Mailer: mailer,
		Passkeys: ceremonies, Risk: risk, Log: log})
	if err != nil {
		return err
	}
	c.Identity = svc
	for _, d := range c.cfg.DemoAccounts {
		created, err := svc.Seed(ctx, d)
		if err != nil {
			return fmt.Errorf("core: demo account %s: %w", d.Email, err)
		}
		if created {
			log.Info("demo account created", "email", d.Email, "roles", d.Roles)
		}
	}
	if _, err := sup.Add("identity-mail", svc.Close); err != nil {
		return err
	}
	clients, err := c.clientStore(ctx, cfg)
	if err != nil {
		return err
	}
	ms, err := idapi.Serve(c.NC, idapi.Server{Auth: svc, Verifier: verifier, Keys: ring, AdminToken: c.cfg.AdminToken,
		Partners: &idapi.Partners{Clients: clients, Issuer: issuer},
		Tokens:   idapi.Config{Issuer: cfg.Tokens.Issuer, Audience: cfg.Tokens.Audience}})
	if err != nil {
		return fmt.Errorf("core: identity service: %w", err)
	}
	if _, err := sup.Add("identity-service", func(context.Context) error { return ms.Stop() }); err != nil {
		return err
	}
	_, err = sup.Start(supervisor.Component{Name: "identity-keys", Run: func(ctx context.Context) error {
		keyring.Keep(ctx, keys, ring, cfg.KeySyncEvery, time.Now, log, "identity")
		return nil
	}})
	return err
}

func (c *Core) accountStore(ctx context.Context, sup *supervisor.Supervisor, cfg IdentityConfig) (identity.Store, error) {
	if cfg.PostgresURL == "" {
		return identitykv.New(c.Streams.Accounts, streams.AccountsConfig(c.cfg.Streams.Replicas))
	}
	pool, err := postgres.Open(ctx, postgres.Config{URL: cfg.PostgresURL, ApplicationName: "ticketing-core-identity"})
	if err != nil {
		return nil, fmt.Errorf("core: identity database: %w", err)
	}
	c.identityPool = pool
	if _, err := sup.Add("identity-postgres", func(context.Context) error { pool.Close(); return nil }); err != nil {
		return nil, err
	}
	if _, err := identitypg.Migrate(ctx, pool, c.log); err != nil {
		return nil, fmt.Errorf("core: identity schema: %w", err)
	}
	return identitypg.New(pool), nil
}

// passkeys are the WebAuthn ceremonies: the relying party is the public
// URL's host, the state sealed with a key every node shares, spent
// challenges in JetStream.
func (c *Core) passkeys(ctx context.Context, cfg IdentityConfig) (*passkey.Ceremonies, error) {
	u, err := url.Parse(cfg.Auth.BaseURL)
	if err != nil {
		return nil, err
	}
	key, err := sharedSecret(ctx, c.NC, c.Streams.Secrets, "passkey-state-key")
	if err != nil {
		return nil, err
	}
	sealer, err := passkey.NewSealer(key, nil)
	if err != nil {
		return nil, err
	}
	origin := u.Scheme + "://" + u.Host
	p, err := passkey.New(passkey.Config{RPID: u.Hostname(), RPDisplayName: "Ticketing", Origins: []string{origin}},
		sealer, passkeykv.Spent{KV: c.Streams.PasskeySpent})
	if err != nil {
		// Passkeys need a domain served over https (http on localhost):
		// not an IP address. The rest of sign-in works without them.
		c.log.Warn("passkeys are off: the public URL cannot be a WebAuthn relying party (use a domain, or localhost)",
			"public_url", cfg.Auth.BaseURL, "err", err)
		return nil, nil
	}
	return p, nil
}

// risk is the fraud engine that judges sign-ins: its counters in Redis
// when the sessions are (shared by the core nodes), else in this process;
// its decisions on EVENTS.
func (c *Core) risk(ctx context.Context, sup *supervisor.Supervisor, cfg IdentityConfig, rc *goredis.Client) (*auth.Risk, error) {
	var counters fraud.Counters
	var err error
	if rc != nil {
		counters, err = fraudredis.New(rc, fraudredis.Config{})
	} else {
		counters, err = fraudmemory.New(fraudmemory.Config{})
	}
	if err != nil {
		return nil, err
	}
	pub, err := natsevents.New(c.NC, natsevents.Config{Source: "/core/" + c.cfg.Node.Name + "/fraud", Log: c.log})
	if err != nil {
		return nil, err
	}
	if _, err := sup.Add("fraud-events", func(ctx context.Context) error { pub.Close(ctx); return nil }); err != nil {
		return nil, err
	}
	engine, err := fraud.New(cfg.Fraud, counters, pub)
	if err != nil {
		return nil, err
	}
	key, err := sharedSecret(ctx, c.NC, c.Streams.Secrets, "signin-pow-key")
	if err != nil {
		return nil, err
	}
	return &auth.Risk{Engine: engine, PoW: pow.Issuer{Secret: key, TTL: 2 * time.Minute},
		Spent: passkeykv.Spent{KV: c.Streams.PasskeySpent}}, nil
}

// clientStore is the partner clients' store: in the accounts' database
// when there is one, else in JetStream.
func (c *Core) clientStore(ctx context.Context, cfg IdentityConfig) (client.Store, error) {
	if c.identityPool == nil {
		return clientkv.New(c.Streams.Clients), nil
	}
	if _, err := clientpg.Migrate(ctx, c.identityPool, c.log); err != nil {
		return nil, fmt.Errorf("core: partner clients schema: %w", err)
	}
	return clientpg.New(c.identityPool), nil
}

// AccessTokens returns the identity service's access token issuer and
// verifier (benchmarks and tests).
func (c *Core) AccessTokens() (*token.Issuer, *token.Verifier) { return c.issuer, c.verifier.Load() }

// adminAccessToken reports whether at is a valid access token of an
// account with the admin role (false until the identity service started).
func (c *Core) adminAccessToken(at string) bool {
	v := c.verifier.Load()
	if v == nil {
		return false
	}
	claims, err := v.Verify(at, time.Now())
	return err == nil && claims.HasScope(identity.RoleAdmin)
}
