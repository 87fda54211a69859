// Package smtp is the production mail.Mailer: it hands each message to an
// SMTP server (a relay or submission server) with
// github.com/wneessen/go-mail, one connection a message: dial, EHLO,
// STARTTLS as the TLS policy says, AUTH when a username is configured,
// MAIL FROM/RCPT TO/DATA, QUIT. Messages are rendered by services/mail/eml.
//
// Its tests run the contract suite (services/mail/mailtest) against a real
// SMTP server, Mailpit, started by compose/devstack, and read what arrived
// through Mailpit's REST API. Nothing in the binary uses it yet.
package smtp

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/textproto"
	"strconv"
	"strings"
	"sync"
	"time"

	gomail "github.com/wneessen/go-mail"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/services/mail"
	"github.com/ticketing/ticketing/services/mail/eml"
)

// TLSPolicy says whether the connection to the server is upgraded with
// STARTTLS.
type TLSPolicy string

// The TLS policies.
const (
	// TLSMandatory: STARTTLS or no delivery (the server's certificate is
	// verified). The default.
	TLSMandatory TLSPolicy = "mandatory"
	// TLSOpportunistic: STARTTLS when the server offers it, else plain.
	TLSOpportunistic TLSPolicy = "opportunistic"
	// TLSNone: never STARTTLS (a relay on loopback, Mailpit in tests).
	TLSNone TLSPolicy = "none"
)

// AuthMechanism is an SMTP AUTH mechanism.
type AuthMechanism string

// The mechanisms. PLAIN and LOGIN send the password as it is: go-mail
// refuses them on a connection without TLS unless AllowInsecureAuth is set.
const (
	AuthPlain   AuthMechanism = "plain"
	AuthLogin   AuthMechanism = "login"
	AuthCRAMMD5 AuthMechanism = "cram-md5"
)

// Defaults.
const (
	DefaultTimeout = 30 * time.Second
	DefaultHELO    = "localhost"
)

// Config is how to reach the SMTP server.
type Config struct {
	// Addr is the server as host:port, e.g. smtp.example.com:587.
	Addr string
	// Username and Password, when Username is set, log in with Auth
	// (default AuthPlain). Without a username there is no AUTH.
	Username string
	Password string
	Auth     AuthMechanism
	// AllowInsecureAuth lets PLAIN and LOGIN send the password over a
	// connection without TLS (TLSNone, or TLSOpportunistic when the server
	// offers no STARTTLS). For a relay on loopback only.
	AllowInsecureAuth bool
	// TLS is the STARTTLS policy (default TLSMandatory).
	TLS TLSPolicy
	// TLSConfig is used for STARTTLS when set (roots, client
	// certificates); ServerName defaults to Addr's host.
	TLSConfig *tls.Config
	// Timeout bounds the dial and each command of a delivery (default
	// DefaultTimeout). The context given to Send bounds the whole of it.
	Timeout time.Duration
	// HELO is the name given in EHLO (default DefaultHELO).
	HELO string
}

// WithDefaults returns c with its empty fields set to their defaults.
func (c Config) WithDefaults() Config {
	if c.TLS == "" {
		c.TLS = TLSMandatory
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.HELO == "" {
		c.HELO = DefaultHELO
	}
	if c.Username != "" && c.Auth == "" {
		c.Auth = AuthPlain
	}
	return c
}

// Validate checks c after WithDefaults; errors are errs.Invalid.
func (c Config) Validate() error {
	const op = "mail.smtp.config"
	host, port, err := net.SplitHostPort(c.Addr)
	if err != nil || host == "" {
		return errs.Errorf(op, errs.Invalid, "addr %q is not host:port", c.Addr)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		return errs.Errorf(op, errs.Invalid, "addr %q: port must be 1 to 65535", c.Addr)
	}
	switch c.TLS {
	case TLSMandatory, TLSOpportunistic, TLSNone:
	default:
		return errs.Errorf(op, errs.Invalid, "tls policy %q is not one of %s, %s, %s", c.TLS, TLSMandatory, TLSOpportunistic, TLSNone)
	}
	if c.Timeout <= 0 {
		return errs.E(op, errs.Invalid, "timeout must be positive")
	}
	if strings.ContainsAny(c.HELO, " \t\r\n") || c.HELO == "" {
		return errs.Errorf(op, errs.Invalid, "helo %q must be one word", c.HELO)
	}
	if c.Username == "" {
		if c.Password != "" || c.Auth != "" {
			return errs.E(op, errs.Invalid, "password or auth mechanism without a username")
		}
		return nil
	}
	switch c.Auth {
	case AuthPlain, AuthLogin, AuthCRAMMD5:
	default:
		return errs.Errorf(op, errs.Invalid, "auth mechanism %q is not one of %s, %s, %s", c.Auth, AuthPlain, AuthLogin, AuthCRAMMD5)
	}
	if c.TLS == TLSNone && !c.AllowInsecureAuth && c.Auth != AuthCRAMMD5 {
		return errs.Errorf(op, errs.Invalid, "auth %s without TLS sends the password in clear: set a TLS policy or allow insecure auth", c.Auth)
	}
	return nil
}

// Mailer sends through one SMTP server. It is safe for concurrent use.
type Mailer struct {
	cfg  Config
	host string
	port int
	tls  *tls.Config
	now  func() time.Time
}

var _ mail.Mailer = (*Mailer)(nil)

// New returns a Mailer for cfg (WithDefaults, then Validate). It does
// not connect: every Send does.
func New(cfg Config) (*Mailer, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	host, port, _ := net.SplitHostPort(cfg.Addr)
	p, _ := strconv.Atoi(port)
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if cfg.TLSConfig != nil {
		tc = cfg.TLSConfig.Clone()
	}
	if tc.ServerName == "" {
		tc.ServerName = host
	}
	return &Mailer{cfg: cfg, host: host, port: p, tls: tc, now: time.Now}, nil
}

// Send prepares m and delivers it over a new connection. See mail.Mailer.
// A server that refuses a recipient for good is errs.Invalid with reason
// ReasonRecipientRefused; an unreachable server, a timeout or an SMTP
// 4xx answer is errs.Unavailable; a refused login, missing STARTTLS under
// TLSMandatory and other permanent failures are errs.Other.
func (s *Mailer) Send(ctx context.Context, m mail.Message) error {
	const op = "mail.smtp.send"
	if err := ctx.Err(); err != nil {
		return errs.E(op, errs.Unavailable, err)
	}
	p, err := m.Prepare(s.now())
	if err != nil {
		return err
	}
	msg, err := eml.Build(p)
	if err != nil {
		return errs.E(op, err)
	}

	// The connection is closed when ctx ends: go-mail bounds the dial by
	// ctx, and the commands after it only by the timeout.
	var (
		mu    sync.Mutex
		stops []func() bool
	)
	defer func() {
		mu.Lock()
		defer mu.Unlock()
		for _, stop := range stops {
			stop()
		}
	}()
	dial := func(dctx context.Context, network, addr string) (net.Conn, error) {
		d := net.Dialer{}
		conn, err := d.DialContext(dctx, network, addr)
		if err != nil {
			return nil, err
		}
		mu.Lock()
		stops = append(stops, context.AfterFunc(ctx, func() { _ = conn.Close() }))
		mu.Unlock()
		return conn, nil
	}
	opts := []gomail.Option{
		gomail.WithPort(s.port),
		gomail.WithTimeout(s.cfg.Timeout),
		gomail.WithHELO(s.cfg.HELO),
		gomail.WithTLSConfig(s.tls.Clone()),
		gomail.WithDialContextFunc(dial),
	}
	switch s.cfg.TLS {
	case TLSMandatory:
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSMandatory))
	case TLSOpportunistic:
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSOpportunistic))
	case TLSNone:
		opts = append(opts, gomail.WithTLSPolicy(gomail.NoTLS))
	}
	if s.cfg.Username != "" {
		opts = append(opts, gomail.WithSMTPAuth(s.authType()),
			gomail.WithUsername(s.cfg.Username), gomail.WithPassword(s.cfg.Password))
	}
	c, err := gomail.NewClient(s.host, opts...)
	if err != nil {
		return errs.E(op, errs.Other, "smtp client", err)
	}
	err = c.DialAndSendWithContext(ctx, msg)
	if err == nil {
		return nil
	}
	if cerr := ctx.Err(); cerr != nil {
		return errs.E(op, errs.Unavailable, fmt.Errorf("%w (%v)", cerr, err))
	}
	return classify(op, err)
}

func (s *Mailer) authType() gomail.SMTPAuthType {
	switch s.cfg.Auth {
	case AuthLogin:
		if s.cfg.AllowInsecureAuth {
			return gomail.SMTPAuthLoginNoEnc
		}
		return gomail.SMTPAuthLogin
	case AuthCRAMMD5:
		return gomail.SMTPAuthCramMD5
	default:
		if s.cfg.AllowInsecureAuth {
			return gomail.SMTPAuthPlainNoEnc
		}
		return gomail.SMTPAuthPlain
	}
}

// ReasonRecipientRefused refines errs.Invalid from Send: the server refused
// a recipient for good (5xx to RCPT TO).
const ReasonRecipientRefused = "recipient_refused"

// classify gives a delivery error its kind.
func classify(op string, err error) error {
	var se *gomail.SendError
	if errors.As(err, &se) {
		switch {
		case se.IsTemp():
			return errs.E(op, errs.Unavailable, err)
		case se.Reason == gomail.ErrSMTPRcptTo:
			return errs.E(op, errs.Invalid, err).WithReason(ReasonRecipientRefused)
		}
		if code := se.ErrorCode(); code >= 400 && code < 500 {
			return errs.E(op, errs.Unavailable, err)
		}
		return errs.E(op, errs.Other, err)
	}
	var te *textproto.Error
	if errors.As(err, &te) {
		if te.Code >= 400 && te.Code < 500 {
			return errs.E(op, errs.Unavailable, err)
		}
		return errs.E(op, errs.Other, err)
	}
	var ne net.Error
	if errors.As(err, &ne) || errors.Is(err, net.ErrClosed) {
		return errs.E(op, errs.Unavailable, err)
	}
	return errs.E(op, errs.Other, err)
}
