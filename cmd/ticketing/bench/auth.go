package bench

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ticketing/ticketing/cmd/ticketing/cli"
	"github.com/ticketing/ticketing/core"
	"github.com/ticketing/ticketing/core/node"
	"github.com/ticketing/ticketing/internal/keyring"
	"github.com/ticketing/ticketing/internal/loadgen"
	"github.com/ticketing/ticketing/internal/supervisor"
	"github.com/ticketing/ticketing/services/identity/auth"
	idapi "github.com/ticketing/ticketing/services/identity/natsapi"
	"github.com/ticketing/ticketing/services/identity/password"
	"github.com/ticketing/ticketing/services/identity/token"
)

// AuthReport is what `ticketing bench auth --json` prints.
type AuthReport struct {
	Cores int `json:"cores"`
	// AccountStore and SessionStore name the stores the run used
	// ("jetstream", "postgres", "redis").
	AccountStore string `json:"account_store"`
	SessionStore string `json:"session_store"`
	Password     string `json:"password_params"`
	// Checks: fresh access tokens (each issued once, by the core's
	// identity service) verified by the verifier an edge runs, with the
	// public keys fetched as an edge fetches them; Raw: ed25519.Verify
	// alone over the same signed bytes, in the same rounds.
	Checks        perSec  `json:"access_token_checks"`
	Raw           perSec  `json:"raw_ed25519_verify"`
	ChecksOverRaw float64 `json:"checks_over_raw"`
	// SignIns: password sign-ins through the identity service (account
	// read, argon2id verification, a session written, an access token
	// issued); RawArgon2id: the configured hash's verification alone.
	SignIns        loadgen.Result `json:"signins"`
	RawArgon2id    loadgen.Result `json:"raw_argon2id"`
	SignInsOverRaw float64        `json:"signins_over_raw"`
	// Rotations: refresh-token rotations through the identity service,
	// each written durably to the session store before it answers.
	Rotations loadgen.Result `json:"refresh_rotations"`
	Errors    int64          `json:"errors"`
}

// perSec is a throughput.
type perSec struct {
	PerSec float64 `json:"per_sec"`
}

type authOpts struct {
	d, verifyFor  time.Duration
	tokens        int
	rotators      int
	accounts      int
	postgres      string
	redis         string
	asJSON        bool
	status        func(format string, a ...any)
	passwordParam password.Params
}

// benchAuth measures the identity service's hot paths next to their
// same-run ceilings: access-token checks against raw Ed25519, sign-ins
// against raw argon2id, and durable refresh rotations.
func benchAuth(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("bench auth", flag.ContinueOnError)
	var o authOpts
	fs.DurationVar(&o.d, "duration", 6*time.Second, "length of each of the sign-in phases and of the rotations phase")
	fs.DurationVar(&o.verifyFor, "verify-duration", 3*time.Second, "length of the token-check phases (checks and raw, in alternating rounds)")
	fs.IntVar(&o.tokens, "tokens", 8192, "distinct access tokens to verify")
	fs.IntVar(&o.rotators, "rotators", 64, "sessions refreshed concurrently")
	fs.IntVar(&o.accounts, "accounts", 400, "accounts signed in to, round robin (each about once a minute at this machine's rate, as people do)")
	fs.StringVar(&o.postgres, "accounts-postgres", "", "keep accounts in this PostgreSQL (default: the core's JetStream)")
	fs.StringVar(&o.redis, "sessions-redis", "", "keep sessions in this Redis (default: the core's JetStream)")
	fs.BoolVar(&o.asJSON, "json", false, "print one JSON object (its last line) instead of a table")
	if err := cli.Parse(fs, args); err != nil {
		return err
	}
	if o.tokens < 1 || o.rotators < 1 || o.accounts < 1 {
		return errors.New("bench auth: --tokens, --rotators and --accounts must be positive")
	}
	o.passwordParam = password.DefaultParams()
	o.status = func(format string, a ...any) {
		if !o.asJSON {
			fmt.Fprintf(os.Stderr, format+"\n", a...)
		}
	}
	rep, err := authOnce(ctx, o)
	if err != nil {
		return err
	}
	if o.asJSON {
		return json.NewEncoder(os.Stdout).Encode(rep)
	}
	printAuth(rep)
	return nil
}

func authOnce(ctx context.Context, o authOpts) (AuthReport, error) {
	rep := AuthReport{Cores: runtime.GOMAXPROCS(0), AccountStore: "jetstream", SessionStore: "jetstream"}
	p := o.passwordParam
	rep.Password = fmt.Sprintf("argon2id m=%d KiB t=%d p=%d", p.Memory, p.Time, p.Threads)
	if o.postgres != "" {
		rep.AccountStore = "postgres"
	}
	if o.redis != "" {
		rep.SessionStore = "redis"
	}
	dir, done, err := runDir("", "ticketing-bench-auth")
	if err != nil {
		return rep, err
	}
	defer done()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	sup, err := supervisor.New(supervisor.Config{Log: log})
	if err != nil {
		return rep, err
	}
	defer func() { _ = sup.Shutdown() }()
	o.status("starting a core (in this process) with its identity service …")
	c, err := core.Start(ctx, core.Config{
		Node:       node.Config{Name: "core-1", DataDir: dir, ClientAddr: "-", LeafAddr: "127.0.0.1:0"},
		AdminToken: "bench-admin-token-0123456789",
		Identity:   core.IdentityConfig{PostgresURL: o.postgres, RedisAddr: o.redis, Password: p},
	}, sup, log, prometheus.NewRegistry())
	if err != nil {
		return rep, err
	}
	if err := authChecks(ctx, c, o, &rep); err != nil {
		return rep, err
	}
	if err := authSignIns(ctx, c, o, &rep); err != nil {
		return rep, err
	}
	if err := authRotations(ctx, c, o, &rep); err != nil {
		return rep, err
	}
	return rep, nil
}

// authChecks measures access-token checks against raw verification, in
// alternating rounds so that both see the same machine.
func authChecks(ctx context.Context, c *core.Core, o authOpts, rep *AuthReport) error {
	issuer, _ := c.AccessTokens()
	// The edge's verifier, on keys fetched over NATS as an edge fetches
	// them (the identity service's keys operation).
	keys := keyring.NewRemote("access token", &idapi.Client{NC: c.NC}, nil)
	if err := keys.Refresh(ctx); err != nil {
		return err
	}
	var cfg idapi.Config
	if err := (&idapi.Client{NC: c.NC}).Call(ctx, idapi.OpConfig, struct{}{}, &cfg); err != nil {
		return err
	}
	tc := token.Config{Audience: cfg.Audience}
	auth.TokenDefaults(&tc, cfg.Issuer)
	v, err := token.NewVerifier(keys, tc)
	if err != nil {
		return err
	}
	o.status("issuing %d access tokens …", o.tokens)
	type tok struct {
		token    string
		msg, sig []byte
		pub      ed25519.PublicKey
	}
	now := time.Now()
	toks := make([]tok, o.tokens)
	for i := range toks {
		t, claims, err := issuer.Issue(token.Request{Subject: fmt.Sprintf("u_%026x", i), ClientID: "web", Scope: auth.BuyerScopes}, now)
		if err != nil {
			return err
		}
		j := strings.LastIndexByte(t, '.')
		sig, err := base64.RawURLEncoding.DecodeString(t[j+1:])
		if err != nil {
			return err
		}
		k, ok := keys.PublicKeys().Lookup(claims.KeyID)
		if !ok {
			return fmt.Errorf("bench auth: the edge's keys lack %s", claims.KeyID)
		}
		toks[i] = tok{token: t, msg: []byte(t[:j]), sig: sig, pub: k}
	}
	var bad atomic.Int64
	o.status("checking tokens against raw Ed25519, %v …", o.verifyFor)
	rates := inRounds(o.verifyFor, 5, len(toks),
		func(i int) {
			if _, err := v.Verify(toks[i].token, now); err != nil {
				bad.Add(1)
			}
		},
		func(i int) {
			if !ed25519.Verify(toks[i].pub, toks[i].msg, toks[i].sig) {
				bad.Add(1)
			}
		})
	rep.Checks.PerSec, rep.Raw.PerSec = rates[0], rates[1]
	rep.ChecksOverRaw = ratio(rates[0], rates[1])
	rep.Errors += bad.Load()
	return nil
}

// inRounds runs each f on every core for d in total, in rounds that
// alternate between them, and returns each one's rate (calls a second).
// f(i) is called with i in [0, n).
func inRounds(d time.Duration, rounds, n int, fs ...func(i int)) []float64 {
	out := make([]float64, len(fs))
	workers := runtime.GOMAXPROCS(0)
	for range rounds {
		for k, f := range fs {
			var total atomic.Int64
			var wg sync.WaitGroup
			start := time.Now()
			stop := start.Add(d / time.Duration(rounds))
			for w := range workers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					c := 0
					for i := w * 997; ; i++ {
						if c%64 == 0 && time.Now().After(stop) {
							break
						}
						f(i % n)
						c++
					}
					total.Add(int64(c))
				}()
			}
			wg.Wait()
			out[k] += float64(total.Load()) / time.Since(start).Seconds() / float64(rounds)
		}
	}
	return out
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// authSignIns measures sign-ins against the hash's verification alone,
// two rounds each, alternating.
func authSignIns(ctx context.Context, c *core.Core, o authOpts, rep *AuthReport) error {
	workers := runtime.GOMAXPROCS(0)
	const pw = "bench password 0123"
	type acct struct{ email, hash string }
	// Enough accounts that none signs in more often than a person would:
	// the fraud engine slows an account signed in to many times a minute,
	// which is not the path measured here.
	accts := make([]acct, o.accounts)
	hasher, err := password.New(o.passwordParam)
	if err != nil {
		return err
	}
	o.status("creating %d accounts …", len(accts))
	run := time.Now().UnixNano()
	var next atomic.Int64
	errc := make(chan error, workers)
	for range workers {
		go func() {
			for i := int(next.Add(1) - 1); i < len(accts); i = int(next.Add(1) - 1) {
				accts[i].email = fmt.Sprintf("bench-%d-%d@example.com", run, i)
				if _, err := c.Identity.Seed(ctx, auth.SeedAccount{Email: accts[i].email, Password: pw}); err != nil {
					errc <- err
					return
				}
				h, err := hasher.Hash(pw)
				if err != nil {
					errc <- err
					return
				}
				accts[i].hash = h
			}
			errc <- nil
		}()
	}
	for range workers {
		if err := <-errc; err != nil {
			return err
		}
	}
	signIn := func(ctx context.Context, _ int, i int64) (loadgen.Outcome, error) {
		in, err := c.Identity.PasswordSignIn(ctx, auth.SignInRequest{Email: accts[i%int64(len(accts))].email, Password: pw})
		if err == nil && in.Tokens == nil {
			err = errors.New("sign-in asked for a second factor")
		}
		return loadgen.OK, err
	}
	raw := func(_ context.Context, _ int, i int64) (loadgen.Outcome, error) {
		ok, _, err := hasher.Verify(pw, accts[i%int64(len(accts))].hash)
		if err == nil && !ok {
			err = errors.New("the password did not verify")
		}
		return loadgen.OK, err
	}
	var signIns, raws []loadgen.Result
	const rounds = 2
	for r := range rounds {
		o.status("sign-ins and raw argon2id, round %d of %d (%v each) …", r+1, rounds, o.d/rounds)
		signIns = append(signIns, loadgen.Closed(ctx, "signins", workers, o.d/rounds, signIn, nil))
		raws = append(raws, loadgen.Closed(ctx, "raw_argon2id", workers, o.d/rounds, raw, nil))
	}
	rep.SignIns, rep.RawArgon2id = mergeResults(signIns), mergeResults(raws)
	rep.SignInsOverRaw = ratio(rep.SignIns.PerSec, rep.RawArgon2id.PerSec)
	rep.Errors += rep.SignIns.Errors + rep.RawArgon2id.Errors
	return nil
}

// mergeResults joins rounds of one measure: every operation counted, the
// rate over their total time, the median's mean and the worst tail.
func mergeResults(rs []loadgen.Result) loadgen.Result {
	out := loadgen.Result{Name: rs[0].Name}
	for _, r := range rs {
		out.Ops += r.Ops
		out.OK += r.OK
		out.Rejected += r.Rejected
		out.Errors += r.Errors
		out.Seconds += r.Seconds
		out.P50ms += r.P50ms / float64(len(rs))
		out.P99ms = max(out.P99ms, r.P99ms)
		out.P999ms = max(out.P999ms, r.P999ms)
		out.MaxMs = max(out.MaxMs, r.MaxMs)
		if out.FirstErr == "" {
			out.FirstErr = r.FirstErr
		}
	}
	if out.Seconds > 0 {
		out.PerSec = float64(out.OK) / out.Seconds
	}
	return out
}

// authRotations measures refresh rotations: o.rotators sessions, each
// refreshed again as soon as its last refresh answered.
func authRotations(ctx context.Context, c *core.Core, o authOpts, rep *AuthReport) error {
	const pw = "bench password 0123"
	email := fmt.Sprintf("bench-rotations-%d@example.com", time.Now().UnixNano())
	if _, err := c.Identity.Seed(ctx, auth.SeedAccount{Email: email, Password: pw}); err != nil {
		return err
	}
	o.status("signing in %d sessions …", o.rotators)
	refresh := make([]string, o.rotators)
	for i := range refresh {
		in, err := c.Identity.PasswordSignIn(ctx, auth.SignInRequest{Email: email, Password: pw})
		if err != nil {
			return err
		}
		refresh[i] = in.Tokens.RefreshToken
	}
	o.status("refresh rotations, %v …", o.d)
	rep.Rotations = loadgen.Closed(ctx, "refresh_rotations", o.rotators, o.d, func(ctx context.Context, w int, _ int64) (loadgen.Outcome, error) {
		t, err := c.Identity.Refresh(ctx, auth.RefreshRequest{RefreshToken: refresh[w]})
		if err != nil {
			return loadgen.OK, err
		}
		refresh[w] = t.RefreshToken
		return loadgen.OK, nil
	}, nil)
	rep.Errors += rep.Rotations.Errors
	return nil
}

func printAuth(r AuthReport) {
	fmt.Printf("identity benchmark on %d cores; accounts in %s, sessions in %s; %s\n\n", r.Cores, r.AccountStore, r.SessionStore, r.Password)
	fmt.Printf("  %-34s %12s %10s %10s\n", "", "per second", "p50 ms", "p99 ms")
	fmt.Printf("  %-34s %12.0f\n", "access-token checks (edge verifier)", r.Checks.PerSec)
	fmt.Printf("  %-34s %12.0f\n", "raw Ed25519 verify (ceiling)", r.Raw.PerSec)
	fmt.Printf("  %-34s %12.2f\n", "  checks / raw", r.ChecksOverRaw)
	row := func(name string, x loadgen.Result) {
		fmt.Printf("  %-34s %12.1f %10.1f %10.1f\n", name, x.PerSec, x.P50ms, x.P99ms)
	}
	row("sign-ins", r.SignIns)
	row("raw argon2id verify (ceiling)", r.RawArgon2id)
	fmt.Printf("  %-34s %12.2f\n", "  sign-ins / raw", r.SignInsOverRaw)
	row("refresh rotations (durable)", r.Rotations)
	if r.Errors > 0 {
		fmt.Printf("\n  errors: %d (first: %s%s%s)\n", r.Errors, r.SignIns.FirstErr, r.RawArgon2id.FirstErr, r.Rotations.FirstErr)
	}
}
