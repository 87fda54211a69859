package bench

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/ticketing/ticketing/core"
	"github.com/ticketing/ticketing/services/identity/auth"
)

// benchAccount is the account the load generator buys as through the
// edge's HTTP API (holds need a signed-in caller).
type benchAccount struct{ email, password string }

// seedBenchAccount creates an account of its own for this run in c (a
// new address each run, so that a kept --data directory never holds
// another password for it).
func seedBenchAccount(ctx context.Context, c *core.Core) (benchAccount, error) {
	var b [12]byte
	_, _ = rand.Read(b[:])
	a := benchAccount{email: fmt.Sprintf("bench-%d@bench.invalid", time.Now().UnixNano()), password: hex.EncodeToString(b[:])}
	if _, err := c.Identity.Seed(ctx, auth.SeedAccount{Email: a.email, Password: a.password, DisplayName: "Benchmark"}); err != nil {
		return benchAccount{}, fmt.Errorf("bench account: %w", err)
	}
	return a, nil
}

// envAccountPassword hands the account's password to the load generator
// (its --account-password flag) without putting it on a command line.
const envAccountPassword = "TICKETING_ACCOUNT_PASSWORD"

// benchSession is the load generator's session at the edge: one access
// token that every request sends, as a browser's tab does, refreshed
// before it expires so that a run longer than its lifetime goes on.
type benchSession struct {
	base                string
	hc                  *http.Client
	acct                benchAccount
	authorization       atomic.Pointer[string] // "Bearer <access token>"
	refreshToken        string                 // the signing-in goroutine's
	expiresIn           time.Duration
	signIns, refreshes  atomic.Int64
	refreshBeforeExpiry time.Duration
}

func newBenchSession(base string, acct benchAccount, tc *tls.Config) *benchSession {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if tc != nil {
		tr.TLSClientConfig = tc.Clone()
	}
	return &benchSession{base: base, acct: acct, hc: &http.Client{Timeout: 30 * time.Second, Transport: tr},
		refreshBeforeExpiry: time.Minute}
}

// header is the Authorization header of the requests.
func (s *benchSession) header() string { return *s.authorization.Load() }

type benchTokens struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	ExpiresIn    int    `json:"expires_in"`
}

// signIn signs in with the account's password (POST /v1/auth/signin).
func (s *benchSession) signIn(ctx context.Context) error {
	body, _ := json.Marshal(map[string]string{"email": s.acct.email, "password": s.acct.password})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.base+"/v1/auth/signin", strings.NewReader(string(body)))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if err := s.tokens(req); err != nil {
		return fmt.Errorf("sign-in as %s: %w", s.acct.email, err)
	}
	s.signIns.Add(1)
	return nil
}

// refresh rotates the session's tokens (POST /v1/auth/token,
// grant_type=refresh_token).
func (s *benchSession) refresh(ctx context.Context) error {
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {s.refreshToken}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.base+"/v1/auth/token", strings.NewReader(form))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if err := s.tokens(req); err != nil {
		return fmt.Errorf("refresh: %w", err)
	}
	s.refreshes.Add(1)
	return nil
}

func (s *benchSession) tokens(req *http.Request) error {
	resp, err := s.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var t benchTokens
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(&t); err != nil || t.AccessToken == "" || t.ExpiresIn <= 0 {
		return fmt.Errorf("no tokens in the answer (%v)", err)
	}
	h := "Bearer " + t.AccessToken
	s.authorization.Store(&h)
	s.refreshToken, s.expiresIn = t.RefreshToken, time.Duration(t.ExpiresIn)*time.Second
	return nil
}

// keepFresh refreshes the tokens a minute before they expire (at half
// their lifetime if that is shorter), signing in again if a refresh is
// refused, until ctx ends. Failures are retried every second and noted on
// standard error; requests meanwhile go on with the token held (and fail
// with 401 once it expired: errors in the report).
func (s *benchSession) keepFresh(ctx context.Context) {
	for {
		wait := max(s.expiresIn-s.refreshBeforeExpiry, s.expiresIn/2)
		for {
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
			err := s.refresh(ctx)
			if err != nil && ctx.Err() == nil {
				err = s.signIn(ctx)
			}
			if err == nil || ctx.Err() != nil {
				break
			}
			fmt.Fprintf(os.Stderr, "bench: the session could not be renewed: %v\n", err)
			wait = time.Second
		}
	}
}
