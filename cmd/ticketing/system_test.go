package main

// System tests: they build the ticketing binary, run core nodes as separate
// processes (so that they can be killed with SIGKILL or paused with
// SIGSTOP), and put a real edge (Fiber HTTP API and an embedded leaf
// nats-server joined over TCP) in front of them.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/ticketing/ticketing/cmd/ticketing/cli"
	"github.com/ticketing/ticketing/edge"
	"github.com/ticketing/ticketing/internal/devpki"
	"github.com/ticketing/ticketing/internal/eventually"
	"github.com/ticketing/ticketing/internal/supervisor/supervisortest"
	"github.com/ticketing/ticketing/internal/tlsconf"
	"github.com/ticketing/ticketing/leafnodes"
	"github.com/ticketing/ticketing/services/catalog"
	"github.com/ticketing/ticketing/services/identity/auth"
)

var binPath string

// testSecrets are the secrets every process of the tests runs with (as
// production does: mutual TLS, nkeys, encrypted stores), made once.
var testSecrets devpki.Layout

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "ticketing-bin")
	if err != nil {
		panic(err)
	}
	res, err := devpki.Ensure(devpki.Config{Dir: filepath.Join(dir, "secrets")})
	if err != nil {
		panic(err)
	}
	testSecrets = res.Layout
	binPath = filepath.Join(dir, "ticketing")
	build := exec.Command("go", "build", "-race", "-o", binPath, ".")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building the binary:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

const testAdminToken = "system-test-admin-token"

// freeAddr returns a loopback address with a port nobody listens on,
// below Linux's ephemeral range (32768 and up): a port from that range can
// be taken, between the test choosing it and a server binding it, as the
// source port of any outgoing connection (core nodes dial each other's
// routes while they start). Ports are handed out once per test binary.
func freeAddr(t *testing.T) string {
	t.Helper()
	portsMu.Lock()
	defer portsMu.Unlock()
	for range 1000 {
		p := 20000 + mrand.IntN(12000)
		if portsGiven[p] {
			continue
		}
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			continue
		}
		l.Close()
		portsGiven[p] = true
		return l.Addr().String()
	}
	t.Fatal("no free port below the ephemeral range")
	return ""
}

var (
	portsMu    sync.Mutex
	portsGiven = map[int]bool{}
)

// coreProc is one `ticketing core` process.
type coreProc struct {
	t                                *testing.T
	name, dir                        string
	natsAddr, leafAddr, cluster, ops string
	routes                           []string
	extra                            []string
	cmd                              *exec.Cmd
	out                              *lockedBuffer
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// newCores makes n core configurations; n > 1 forms a cluster.
func newCores(t *testing.T, n int, extra ...string) []*coreProc {
	var cores []*coreProc
	var routes []string
	for i := 1; i <= n; i++ {
		c := &coreProc{t: t, name: fmt.Sprintf("core-%d", i), dir: t.TempDir(),
			natsAddr: freeAddr(t), leafAddr: freeAddr(t), ops: freeAddr(t), extra: extra}
		if n > 1 {
			c.cluster = freeAddr(t)
			routes = append(routes, "nats-route://"+c.cluster)
		}
		cores = append(cores, c)
	}
	for _, c := range cores {
		c.routes = routes
	}
	return cores
}

func (c *coreProc) start() {
	c.t.Helper()
	args := []string{"core", "--name", c.name, "--data", c.dir, "--nats", c.natsAddr, "--leaf", c.leafAddr,
		"--ops", c.ops, "--admin-token", testAdminToken, "--demo-accounts", "--log-format", "text", "--hold-min-ttl", "1s", "--secrets", testSecrets.Dir}
	if len(c.routes) > 0 {
		args = append(args, "--cluster", c.cluster, "--routes", strings.Join(c.routes, ","))
	}
	args = append(args, c.extra...)
	c.cmd = exec.Command(binPath, args...)
	c.out = &lockedBuffer{}
	c.cmd.Stdout, c.cmd.Stderr = c.out, c.out
	if err := c.cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() {
		if c.cmd != nil && c.cmd.ProcessState == nil {
			_ = c.cmd.Process.Kill()
			_ = c.cmd.Wait()
		}
		if c.t.Failed() {
			c.t.Logf("--- log of %s ---\n%s", c.name, tail(c.out.String(), 60))
		}
	})
}

func tail(s string, lines int) string {
	l := strings.Split(s, "\n")
	if len(l) > lines {
		l = l[len(l)-lines:]
	}
	return strings.Join(l, "\n")
}

// waitReady waits until the core answers /readyz.
func (c *coreProc) waitReady(timeout time.Duration) {
	c.t.Helper()
	eventually.Nil(c.t, timeout, func() error {
		if c.cmd.ProcessState != nil {
			return fmt.Errorf("%s exited: %v", c.name, c.cmd.ProcessState)
		}
		resp, err := httpsClient(testSecrets).Get("https://" + c.ops + "/readyz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("readyz %d", resp.StatusCode)
		}
		return nil
	})
}

func (c *coreProc) signal(sig syscall.Signal) {
	c.t.Helper()
	if err := c.cmd.Process.Signal(sig); err != nil {
		c.t.Fatal(err)
	}
}

func (c *coreProc) kill9() {
	c.t.Helper()
	c.signal(syscall.SIGKILL)
	_ = c.cmd.Wait()
}

// conn connects to the core's client port as the core user, for what an
// edge may not do (confirm a hold: the orders saga will).
func (c *coreProc) conn() *nats.Conn {
	c.t.Helper()
	nc, err := coreConn(testSecrets, c.natsAddr, nats.MaxReconnects(-1))
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(nc.Close)
	return nc
}

// coreConn connects to a core's client port (host:port) as the tools do:
// mutual TLS with the client certificate of l, user core's nkey.
func coreConn(l devpki.Layout, addr string, opts ...nats.Option) (*nats.Conn, error) {
	tc, err := tlsconf.Client(l.TLS(devpki.Client))
	if err != nil {
		return nil, err
	}
	seed, err := devpki.ReadSecret(l.Seed("core"))
	if err != nil {
		return nil, err
	}
	auth, err := leafnodes.NKeyAuth(seed)
	if err != nil {
		return nil, err
	}
	return nats.Connect("tls://"+addr, append([]nats.Option{nats.Secure(tc), auth}, opts...)...)
}

// httpsClient trusts l's CA.
func httpsClient(l devpki.Layout) *http.Client {
	tc, err := tlsconf.Client(tlsconf.Files{CA: l.CA()})
	if err != nil {
		panic(err)
	}
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: tc}}
}

// startEdge runs an edge in the test process, attached to the cores' leaf
// ports over mutual TLS with user edge's nkey (its HTTP API is plain: the
// browser tests drive it). Its tests send many requests from one address:
// no per-client limits.
func startEdge(t *testing.T, cores []*coreProc) *edge.Edge {
	return startEdgeWith(t, cores, edge.RateLimitConfig{Disabled: true})
}

func startEdgeWith(t *testing.T, cores []*coreProc, rl edge.RateLimitConfig) *edge.Edge {
	return startNamedEdge(t, cores, "edge-test", rl)
}

// startNamedEdge starts an edge named name (edges of one core need
// distinct names) attached to cores.
func startNamedEdge(t *testing.T, cores []*coreProc, name string, rl edge.RateLimitConfig) *edge.Edge {
	t.Helper()
	return startEdgeOn(t, cores, name, "127.0.0.1:0", rl)
}

// startEdgeOn is startNamedEdge with the HTTP API on httpAddr; the
// changes, if any, are made to the edge's config before it starts.
func startEdgeOn(t *testing.T, cores []*coreProc, name, httpAddr string, rl edge.RateLimitConfig, changes ...func(*edge.Config)) *edge.Edge {
	t.Helper()
	var hubs []string
	for _, c := range cores {
		hubs = append(hubs, "nats-leaf://"+c.leafAddr)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	seed, err := devpki.ReadSecret(testSecrets.Seed("edge"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := edge.Config{
		HTTPAddr: httpAddr,
		Leaf: leafnodes.EdgeConfig{Name: name, ClientAddr: "-", Hubs: hubs,
			TLS: testSecrets.TLS(devpki.Edge), Seed: seed},
		RateLimit: rl,
	}
	for _, change := range changes {
		change(&cfg)
	}
	e, err := edge.Start(context.Background(), cfg, supervisortest.New(t), log, cli.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// The demo accounts (demoAccounts), which every core of the tests seeds
// (--demo-accounts, or --demo through ticketing dev): a buyer and an admin.
var (
	testBuyer = demoAccounts[0]
	testAdmin = demoAccounts[1]
)

// api is an HTTP client of an edge: anonymous, or signed in to one
// account (signIn), whose access token it sends with every request that
// sets no Authorization header of its own, refreshing it before it
// expires.
type api struct {
	t    *testing.T
	base string
	hc   *http.Client

	mu       sync.Mutex
	email    string // signed in as, with password; "" anonymous
	password string
	tokens   sessionTokens
	expires  time.Time // of tokens.AccessToken
	admin    *api      // the admin's client (asAdmin), made once
}

// sessionTokens is the edge's answer to a sign-in or a refresh.
type sessionTokens struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	ExpiresIn    int    `json:"expires_in"`
	Scope        string `json:"scope"`
}

func newAPI(t *testing.T, e *edge.Edge) *api {
	return &api{t: t, base: e.URL(), hc: &http.Client{Timeout: 30 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: 512, MaxConnsPerHost: 512}}}
}

// anonymous is a client of the same edge signed in to no account.
func (a *api) anonymous() *api { return &api{t: a.t, base: a.base, hc: a.hc} }

// signIn signs a in as acct (email and password) and returns it; the test
// fails if the edge refuses.
func (a *api) signIn(acct auth.SeedAccount) *api {
	a.t.Helper()
	a.mu.Lock()
	defer a.mu.Unlock()
	a.email, a.password = acct.Email, acct.Password
	if err := a.signInLocked(); err != nil {
		a.t.Fatalf("sign in as %s: %v", acct.Email, err)
	}
	return a
}

// asAdmin is a client of the same edge signed in as the demo admin.
func (a *api) asAdmin() *api {
	a.t.Helper()
	a.mu.Lock()
	adm := a.admin
	if adm == nil {
		adm = a.anonymous()
		a.admin = adm
	}
	a.mu.Unlock()
	adm.mu.Lock()
	signedIn := adm.email != ""
	adm.mu.Unlock()
	if !signedIn {
		adm.signIn(testAdmin)
	}
	return adm
}

func (a *api) signInLocked() error {
	var t sessionTokens
	code, err := a.send("POST", "/v1/auth/signin", map[string]string{"Authorization": ""},
		map[string]string{"email": a.email, "password": a.password}, &t)
	if err == nil && (code != 200 || t.AccessToken == "") {
		err = fmt.Errorf("sign-in: HTTP %d, access token %q", code, t.AccessToken)
	}
	if err != nil {
		return err
	}
	a.tokens, a.expires = t, time.Now().Add(time.Duration(t.ExpiresIn)*time.Second)
	return nil
}

// accessToken is the session's access token ("" anonymous), refreshed
// when it has less than a minute left (access tokens live 5 minutes; some
// tests run longer), or, if the refresh is refused, signed in anew.
func (a *api) accessToken() (string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.email == "" || time.Until(a.expires) > time.Minute {
		return a.tokens.AccessToken, nil
	}
	var t sessionTokens
	req, _ := http.NewRequest("POST", a.base+"/v1/auth/token", strings.NewReader(url.Values{
		"grant_type": {"refresh_token"}, "refresh_token": {a.tokens.RefreshToken}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := a.hc.Do(req)
	if err != nil {
		return "", fmt.Errorf("refresh: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == 200 && json.NewDecoder(resp.Body).Decode(&t) == nil && t.AccessToken != "" {
		a.tokens, a.expires = t, time.Now().Add(time.Duration(t.ExpiresIn)*time.Second)
		return t.AccessToken, nil
	}
	if err := a.signInLocked(); err != nil {
		return "", fmt.Errorf("refresh refused (HTTP %d), and %w", resp.StatusCode, err)
	}
	return a.tokens.AccessToken, nil
}

// subject is the signed-in account's id.
func (a *api) subject() string {
	a.t.Helper()
	var p struct {
		ID string `json:"id"`
	}
	if code, err := a.do("GET", "/v1/account", nil, nil, &p); err != nil || code != 200 || p.ID == "" {
		a.t.Fatalf("account: HTTP %d %v, id %q", code, err, p.ID)
	}
	return p.ID
}

// do sends a request, with the session's access token unless headers set
// Authorization ("" for none), and decodes a JSON answer into out (if not
// nil).
func (a *api) do(method, path string, headers map[string]string, body any, out any) (int, error) {
	if _, ok := headers["Authorization"]; !ok {
		at, err := a.accessToken()
		if err != nil {
			return 0, err
		}
		if at != "" {
			h := map[string]string{"Authorization": "Bearer " + at}
			for k, v := range headers {
				h[k] = v
			}
			headers = h
		}
	}
	return a.send(method, path, headers, body, out)
}

// send sends a request as it is (do's own, without the session).
func (a *api) send(method, path string, headers map[string]string, body any, out any) (int, error) {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, a.base+path, rd)
	req.Header.Set("Content-Type", "application/json")
	for k, v := range headers {
		if v == "" {
			req.Header.Del(k)
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := a.hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil && len(b) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			return resp.StatusCode, fmt.Errorf("decoding %q: %w", b, err)
		}
	}
	return resp.StatusCode, nil
}

type holdAnswer struct {
	HoldID    string    `json:"hold_id"`
	Seats     []string  `json:"seats"`
	Zone      string    `json:"zone"`
	Quantity  int       `json:"quantity"`
	Status    string    `json:"status"`
	ExpiresAt time.Time `json:"expires_at"`
	Error     *struct {
		Code, Reason, Message string
	} `json:"error"`
}

type availability struct {
	Seats map[string]string `json:"seats"`
	Zones []struct {
		ID                   string
		Capacity, Held, Sold int
	} `json:"zones"`
}

func (a *api) availability(event string) (availability, error) {
	var av availability
	code, err := a.do("GET", "/v1/events/"+event+"/availability", nil, nil, &av)
	if err == nil && code != 200 {
		err = fmt.Errorf("availability: HTTP %d", code)
	}
	return av, err
}

// createEvent creates, through the admin API, a venue with seats seats (in
// rows of 20 and sections of 10 rows, zone "std") and a GA zone of gaCap,
// and an event at it. It returns the seat ids.
func (a *api) createEvent(id string, seats, gaCap int, partitions []catalog.PartitionSpec) []string {
	a.t.Helper()
	v := catalog.Venue{ID: id + "-venue", Name: "Venue " + id, City: "Testville",
		Zones: []catalog.Zone{{ID: "std", Name: "Standard", Kind: catalog.Reserved, PriceCents: 5000, Currency: "USD"},
			{ID: "ga", Name: "Floor", Kind: catalog.GA, Capacity: gaCap, PriceCents: 3000, Currency: "USD"}}}
	for r := 0; r < seats/20; r++ {
		if r%10 == 0 {
			v.Sections = append(v.Sections, catalog.Section{ID: fmt.Sprintf("s%d", r/10), Name: fmt.Sprintf("Section %d", r/10)})
		}
		sec := &v.Sections[len(v.Sections)-1]
		sec.Rows = append(sec.Rows, catalog.Row{ID: fmt.Sprintf("r%d", r%10), Seats: 20, Zone: "std"})
	}
	admin := a.asAdmin()
	if code, err := admin.do("POST", "/v1/admin/venues", nil, v, nil); err != nil || code != 201 {
		a.t.Fatalf("create venue: %d %v", code, err)
	}
	now := time.Now().UTC()
	ev := catalog.Event{ID: id, Name: "Event " + id, VenueID: v.ID, OnSaleAt: now.Add(-time.Hour),
		StartsAt: now.Add(30 * 24 * time.Hour), Partitions: partitions}
	if code, err := admin.do("POST", "/v1/admin/events", nil, ev, nil); err != nil || code != 201 {
		a.t.Fatalf("create event: %d %v", code, err)
	}
	// The edge learns of the event from its catalog mirror, and the owners
	// take its partitions.
	eventually.Nil(a.t, 30*time.Second, func() error {
		_, err := a.availability(id)
		return err
	})
	var ids []string
	for _, s := range v.Seats() {
		ids = append(ids, s.ID)
	}
	return ids
}
