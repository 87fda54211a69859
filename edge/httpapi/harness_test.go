package httpapi

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/nats-io/nats.go"
	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
	"github.com/pb33f/libopenapi-validator/config"
	"github.com/pb33f/libopenapi-validator/helpers"
	"github.com/pb33f/libopenapi-validator/schema_validation"
	"github.com/pb33f/libopenapi/datamodel/high/base"
	v3 "github.com/pb33f/libopenapi/datamodel/high/v3"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ticketing/ticketing/core/node/nodetest"
	"github.com/ticketing/ticketing/internal/keyring"
	"github.com/ticketing/ticketing/internal/supervisor"
	"github.com/ticketing/ticketing/services/catalog"
	"github.com/ticketing/ticketing/services/identity"
	"github.com/ticketing/ticketing/services/identity/auth/authtest"
	"github.com/ticketing/ticketing/services/identity/token"
	"github.com/ticketing/ticketing/services/reporting"
)

// env is an API over fakes of its collaborators and the demo catalog,
// with the real identity service (services/identity/auth/authtest) on an
// embedded core node of its own: accounts, sessions, access tokens and
// partner clients are the real flows, and the edge verifies tokens with the
// keys it fetches from that service, as in production.
type env struct {
	app   *fiber.App
	inv   *fakeInventory
	admin *fakeAdmin
	// orders is the orders service: the real one on the env's node, its
	// inventory the env's (see fakeOrders).
	orders *fakeOrders
	// tickets is the tickets service on the env's node, its tickets
	// issued by the test.
	tickets *ticketsService
	// reports is the store behind the real reporting.Service that answers
	// the report endpoints.
	reports *fakeReportStore
	// funnels answers the funnel endpoint.
	funnels *fakeFunnelStore
	cache   *catalog.Cache
	// ids is the identity service; nc the connection it serves on.
	ids *authtest.Fixture
	nc  *nats.Conn
	// cfg and deps are what app was built from (restart builds it again).
	cfg  Config
	deps Deps

	mu       sync.Mutex
	notReady error
	accounts map[who]authtest.Account
}

// who is one of an env's signed-in accounts.
type who int

const (
	buyer      who = iota // an account without roles
	otherBuyer            // another account without roles
	adminUser             // an account with the admin role
)

func (w who) String() string { return [...]string{"buyer", "other buyer", "admin"}[w] }

// identityBaseURL is the identity service's base URL in tests: the access
// tokens' issuer, the authorization server metadata's, and the origin of
// mailed links and passkey ceremonies (http on localhost, as `ticketing
// dev` runs).
const identityBaseURL = "http://localhost:8080"

func newEnv(tb testing.TB) *env { return newEnvWith(tb, nil) }

// newEnvWith is newEnv with changes to the API's config and collaborators.
//
// Each env has its own core node: the identity service's subjects are
// fixed ("identity.<op>", one queue group), so two of them on one node
// (two envs of one test, the test before this one still stopping) would
// answer each other's requests with other keys and stores. A node starts
// in about 50ms.
func newEnvWith(tb testing.TB, change func(*Config, *Deps)) *env {
	tb.Helper()
	e := &env{cache: demoCache(), accounts: map[who]authtest.Account{}}
	_, nc, js := nodetest.Start(tb)
	e.nc = nc
	e.ids = authtest.Start(tb, nc, js, identityBaseURL)
	e.inv = newFakeInventory(e.cache)
	e.orders = newFakeOrders(tb, nc, js, e.inv, e.cache)
	e.tickets = newTicketsService(tb, nc, js, e.orders)
	e.admin = newFakeAdmin(e.cache, e.ids.Verifier)
	e.reports = newFakeReportStore(reportRecords())
	e.funnels = newFakeFunnelStore(funnelInputs())
	keys := keyring.NewRemote("access token", e.ids.Client, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := keys.Refresh(ctx); err != nil {
		tb.Fatal(err)
	}
	verifier, err := token.NewVerifier(keys, e.ids.Tokens)
	if err != nil {
		tb.Fatal(err)
	}
	// The edge's bootstrap admin token is the one the identity service
	// accepts for roles.
	cfg := Config{AvailabilityTTL: time.Nanosecond, AdminToken: e.ids.AdminToken, Issuer: e.ids.Tokens.Issuer}
	sup, err := supervisor.New(supervisor.Config{Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := sup.Start(supervisor.Component{Name: "nats-leaf",
		Ready: func() error { e.mu.Lock(); defer e.mu.Unlock(); return e.notReady }}); err != nil {
		tb.Fatal(err)
	}
	deps := Deps{
		Catalog: e.cache, Inventory: e.inv, Admin: e.admin,
		Reports: &reporting.Service{Store: e.reports}, Funnels: e.funnels,
		Identity: e.ids.Client, Tokens: verifier, TokenKeys: keys, MailBox: e.ids.Mail,
		Orders: e.orders, Tickets: e.tickets.client,
		Ready: sup.Report,
		Log:   slog.New(slog.NewTextHandler(io.Discard, nil)), Registry: prometheus.NewRegistry(),
	}
	if change != nil {
		change(&cfg, &deps)
	}
	e.cfg, e.deps = cfg, deps
	e.app = New(cfg, deps)
	return e
}

// restart builds the app again from its config and collaborators, with
// changes (and a new metrics registry).
func (e *env) restart(change func(*Config, *Deps)) {
	if change != nil {
		change(&e.cfg, &e.deps)
	}
	if e.deps.Registry != nil {
		e.deps.Registry = prometheus.NewRegistry()
	}
	e.app = New(e.cfg, e.deps)
}

// account is one of the env's accounts, made and signed in (client "web")
// the first time it is asked for.
func (e *env) account(tb testing.TB, w who) authtest.Account {
	tb.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	if a, ok := e.accounts[w]; ok {
		return a
	}
	var roles []string
	if w == adminUser {
		roles = []string{identity.RoleAdmin}
	}
	a := e.ids.SignedIn(tb, roles...)
	e.accounts[w] = a
	return a
}

// auth is the Authorization header of w's access token, as name, value.
func (e *env) auth(tb testing.TB, w who) []string {
	tb.Helper()
	return []string{"Authorization", "Bearer " + e.account(tb, w).AccessToken}
}

// callAs is call with w's access token.
func (e *env) callAs(t *testing.T, w who, method, target, body string, headers ...string) result {
	t.Helper()
	return e.call(t, method, target, body, append(e.auth(t, w), headers...)...)
}

func (e *env) setNotReady(err error) { e.mu.Lock(); e.notReady = err; e.mu.Unlock() }

// contract is the OpenAPI document, loaded once.
type contract struct {
	model     *v3.Document
	v         validator.Validator
	errSchema *base.Schema
	sv        schema_validation.SchemaValidator
	docErrs   []string
}

var (
	contractOnce sync.Once
	theContract  *contract
	contractErr  error
	validateMu   sync.Mutex // the validator's caches are not documented as safe for concurrent use
)

func loadContract(tb testing.TB) *contract {
	tb.Helper()
	contractOnce.Do(func() {
		doc, err := libopenapi.NewDocument(OpenAPI())
		if err != nil {
			contractErr = fmt.Errorf("parse openapi.json: %w", err)
			return
		}
		model, err := doc.BuildV3Model()
		if err != nil {
			contractErr = fmt.Errorf("build model: %w", err)
			return
		}
		v, errs := validator.NewValidator(doc, config.WithFormatAssertions())
		if len(errs) > 0 {
			contractErr = fmt.Errorf("validator: %v", errs)
			return
		}
		c := &contract{model: &model.Model, v: v, sv: schema_validation.NewSchemaValidator(config.WithFormatAssertions())}
		sp := model.Model.Components.Schemas.GetOrZero("Error")
		if sp == nil {
			contractErr = fmt.Errorf("no components.schemas.Error")
			return
		}
		c.errSchema = sp.Schema()
		if ok, verrs := v.ValidateDocument(); !ok {
			for _, ve := range verrs {
				c.docErrs = append(c.docErrs, describe(ve.Message, ve.Reason, ve.SchemaValidationErrors))
			}
		}
		theContract = c
	})
	if contractErr != nil {
		tb.Fatal(contractErr)
	}
	return theContract
}

// schema returns a schema of components.schemas.
func (c *contract) schema(tb testing.TB, name string) *base.Schema {
	tb.Helper()
	sp := c.model.Components.Schemas.GetOrZero(name)
	if sp == nil {
		tb.Fatalf("no schema %s", name)
	}
	return sp.Schema()
}

// valid reports whether a JSON document matches a schema.
func (c *contract) valid(s *base.Schema, doc []byte) (bool, string) {
	validateMu.Lock()
	defer validateMu.Unlock()
	ok, verrs := c.sv.ValidateSchemaBytes(s, doc)
	var msgs []string
	for _, ve := range verrs {
		msgs = append(msgs, describe(ve.Message, ve.Reason, ve.SchemaValidationErrors))
	}
	return ok, strings.Join(msgs, "; ")
}

func describe(msg, reason string, sverrs any) string {
	b, _ := json.Marshal(sverrs)
	return fmt.Sprintf("%s: %s %s", msg, reason, b)
}

// result is an answer of the app.
type result struct {
	status int
	header http.Header
	body   []byte
}

func (r result) String() string { return fmt.Sprintf("%d %s", r.status, r.body) }

// errorBody decodes an error answer strictly.
func (r result) errorBody() (ErrorDetail, error) {
	var b ErrorBody
	d := json.NewDecoder(bytes.NewReader(r.body))
	d.DisallowUnknownFields()
	if err := d.Decode(&b); err != nil {
		return ErrorDetail{}, err
	}
	return b.Error, nil
}

// send runs a request through app.Test and returns its answer unchecked.
func (e *env) send(tb testing.TB, req *http.Request) result {
	tb.Helper()
	resp, err := e.app.Test(req, -1)
	if err != nil {
		tb.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatal(err)
	}
	return result{resp.StatusCode, resp.Header, body}
}

// rawConn is a net.Conn over two buffers, for answers app.Test reports as
// errors (a body over the server's limit).
type rawConn struct{ r, w bytes.Buffer }

func (c *rawConn) Read(b []byte) (int, error)         { return c.r.Read(b) }
func (c *rawConn) Write(b []byte) (int, error)        { return c.w.Write(b) }
func (c *rawConn) Close() error                       { return nil }
func (c *rawConn) LocalAddr() net.Addr                { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 80} }
func (c *rawConn) RemoteAddr() net.Addr               { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 4242} }
func (c *rawConn) SetDeadline(t time.Time) error      { return nil }
func (c *rawConn) SetReadDeadline(t time.Time) error  { return nil }
func (c *rawConn) SetWriteDeadline(t time.Time) error { return nil }

// serveRaw serves one request on the app's fasthttp server and returns the
// answer whatever the server's error.
func (e *env) serveRaw(tb testing.TB, req *http.Request) result {
	tb.Helper()
	if req.ContentLength >= 0 && req.Header.Get("Content-Length") == "" {
		req.Header.Set("Content-Length", fmt.Sprint(req.ContentLength))
	}
	dump, err := httputil.DumpRequest(req, true)
	if err != nil {
		tb.Fatal(err)
	}
	c := &rawConn{}
	c.r.Write(dump)
	e.app.Handler() // starts the app up
	_ = e.app.Server().ServeConn(c)
	resp, err := http.ReadResponse(bufio.NewReader(&c.w), req)
	if err != nil {
		tb.Fatalf("%s %s: no answer: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return result{resp.StatusCode, resp.Header, body}
}

// check validates an answer against the OpenAPI document: documented
// operations with the response validator (status, headers, body schema);
// unknown routes and methods must be 404/405 with the Error schema. Every
// answer but /metrics and HEAD is JSON; 503s carry Retry-After.
func (c *contract) check(tb testing.TB, req *http.Request, r result) {
	tb.Helper()
	where := fmt.Sprintf("%s %s → %s", req.Method, req.URL.RequestURI(), r)
	if req.Method == http.MethodHead {
		if len(r.body) != 0 {
			tb.Errorf("%s: HEAD answer with a body", where)
		}
		return
	}
	// A 101 (the waiting room's WebSocket) has no body: the socket follows.
	// Nor has a 204, nor a redirect (the 3-D Secure return), which must
	// say where to.
	if redirect(r.status) && (r.header.Get("Location") == "" || len(r.body) != 0) {
		tb.Errorf("%s: a redirect without Location, or with a body", where)
	}
	if (req.URL.Path != "/metrics" || r.status != http.StatusOK) && !pageAnswer(req.URL.Path, r) && !devMailAnswer(req.URL.Path, r) &&
		r.status != http.StatusSwitchingProtocols && r.status != http.StatusNoContent && !redirect(r.status) {
		if ct := r.header.Get("Content-Type"); !jsonMedia(ct) {
			tb.Errorf("%s: Content-Type %q", where, ct)
		}
		if !json.Valid(r.body) {
			tb.Errorf("%s: body is not JSON", where)
		}
	}
	if r.status == http.StatusServiceUnavailable && r.header.Get("Retry-After") == "" {
		tb.Errorf("%s: 503 without Retry-After", where)
	}
	if r.status >= 500 && r.status != http.StatusServiceUnavailable {
		tb.Errorf("%s: server error", where)
	}
	if r.status == http.StatusNoContent && len(r.body) != 0 {
		tb.Errorf("%s: 204 with a body", where)
	}
	vreq := httptest.NewRequest(req.Method, req.URL.RequestURI(), nil)
	vresp := &http.Response{StatusCode: r.status, Header: r.header.Clone(), Body: io.NopCloser(bytes.NewReader(r.body)),
		Request: vreq}
	validateMu.Lock()
	ok, verrs := c.v.ValidateHttpResponse(vreq, vresp)
	validateMu.Unlock()
	if ok {
		return
	}
	undocumented := true
	for _, ve := range verrs {
		if ve.ValidationType != helpers.PathValidation ||
			(ve.ValidationSubType != helpers.ValidationMissing && ve.ValidationSubType != helpers.ValidationMissingOperation) {
			undocumented = false
		}
	}
	if !undocumented {
		for _, ve := range verrs {
			tb.Errorf("%s: does not match openapi.json: %s", where, describe(ve.Message, ve.Reason, ve.SchemaValidationErrors))
		}
		return
	}
	if r.status != http.StatusNotFound && r.status != http.StatusMethodNotAllowed {
		tb.Errorf("%s: undocumented route answered %d, want 404 or 405", where, r.status)
	}
	validateMu.Lock()
	ok, verrs = c.sv.ValidateSchemaBytes(c.errSchema, r.body)
	validateMu.Unlock()
	if !ok {
		for _, ve := range verrs {
			tb.Errorf("%s: not an Error body: %s", where, describe(ve.Message, ve.Reason, ve.SchemaValidationErrors))
		}
	}
}

// redirect reports whether status sends the client elsewhere.
func redirect(status int) bool {
	return status >= 300 && status <= 399 && status != http.StatusNotModified
}

// jsonMedia reports whether a Content-Type is JSON: application/json, or
// a JSON-based type (application/jwk-set+json).
func jsonMedia(ct string) bool {
	mt, _, _ := strings.Cut(ct, ";")
	mt = strings.TrimSpace(mt)
	return mt == "application/json" || strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json")
}

// devMailAnswer reports whether r is a development mail page or message
// (HTML, or the message as sent in text/plain).
func devMailAnswer(path string, r result) bool {
	ct := r.header.Get("Content-Type")
	path = strings.TrimSuffix(strings.ToLower(path), "/")
	return r.status == http.StatusOK && (path == "/dev/mail" && strings.HasPrefix(ct, "text/html") ||
		strings.HasPrefix(path, "/dev/mail/") && strings.HasPrefix(ct, "text/plain"))
}

// request builds a request; headers are name, value pairs.
func request(method, target, body string, headers ...string) *http.Request {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, target, rd)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	if body != "" && req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", "application/json")
	}
	return req
}
