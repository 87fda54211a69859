package httpapi

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"runtime"
	"strings"
	"testing"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/services/inventory"
)

// call sends a request through app.Test and checks its answer against the
// contract.
func (e *env) call(t *testing.T, method, target, body string, headers ...string) result {
	t.Helper()
	req := request(method, target, body, headers...)
	r := e.send(t, req)
	loadContract(t).check(t, req, r)
	return r
}

func wantError(t *testing.T, r result, status int, code, reason string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("got %s, want %d %s", r, status, code)
	}
	d, err := r.errorBody()
	if err != nil {
		t.Fatalf("error body %s: %v", r.body, err)
	}
	if d.Code != code || (reason != "" && d.Reason != reason) || d.Message == "" {
		t.Fatalf("got %+v, want code %q reason %q", d, code, reason)
	}
}

func decode[T any](t *testing.T, r result) T {
	t.Helper()
	var v T
	d := json.NewDecoder(bytes.NewReader(r.body))
	d.DisallowUnknownFields()
	if err := d.Decode(&v); err != nil {
		t.Fatalf("decode %s: %v", r, err)
	}
	return v
}

func TestOpenAPIDocumentIsValid(t *testing.T) {
	c := loadContract(t)
	for _, e := range c.docErrs {
		t.Error(e)
	}
	var doc map[string]any
	if err := json.Unmarshal(OpenAPI(), &doc); err != nil {
		t.Fatal(err)
	}
	if doc["openapi"] != "3.1.0" {
		t.Errorf("openapi = %v", doc["openapi"])
	}
	// Every error code the server can send is in the document's enum.
	enum := map[string]bool{}
	for _, c := range doc["components"].(map[string]any)["schemas"].(map[string]any)["ErrorCode"].(map[string]any)["enum"].([]any) {
		enum[c.(string)] = true
	}
	for k := errs.Other; k <= errs.Gone; k++ {
		if !enum[k.Code()] {
			t.Errorf("code %q missing from ErrorCode", k.Code())
		}
	}
	if !enum["method_not_allowed"] || len(enum) != int(errs.Gone)+2 {
		t.Errorf("ErrorCode enum = %v", enum)
	}
}

// pathParam is a path parameter of the document ({id}), :id in Fiber.
var pathParam = regexp.MustCompile(`\{(\w+)\}`)

// The document lists exactly the routes the app serves.
func TestOpenAPIRoutesMatchApp(t *testing.T) {
	e := newEnv(t)
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(OpenAPI(), &doc); err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{}
	for p, item := range doc.Paths {
		for m := range item {
			if m == "parameters" || m == "summary" || m == "description" {
				continue
			}
			documented[strings.ToUpper(m)+" "+pathParam.ReplaceAllString(p, ":$1")] = true
		}
	}
	served := map[string]bool{}
	for _, r := range e.app.GetRoutes(true) {
		if r.Method == http.MethodHead || r.Path == "/" {
			continue
		}
		served[r.Method+" "+r.Path] = true
	}
	for r := range served {
		if !documented[r] {
			t.Errorf("%s is served but not documented", r)
		}
	}
	for r := range documented {
		if !served[r] {
			t.Errorf("%s is documented but not served", r)
		}
	}
}

const (
	finals    = "/v1/events/arena-finals"
	holdsPath = finals + "/holds"
)

func TestOperations(t *testing.T) {
	e := newEnv(t)
	r := e.call(t, "GET", "/healthz", "")
	if r.status != 200 || string(r.body) != `{"status":"ok"}` {
		t.Fatalf("healthz: %s", r)
	}
	r = e.call(t, "GET", "/readyz", "")
	if r.status != 200 {
		t.Fatalf("readyz: %s", r)
	}
	if !bytes.Contains(r.body, []byte(`{"name":"nats-leaf","state":"running","ready":true}`)) {
		t.Fatalf("readyz does not name the component: %s", r)
	}
	e.setNotReady(errs.E("edge.ready", errs.Unavailable, "the leaf node is not connected"))
	r = e.call(t, "GET", "/readyz", "")
	if r.status != 503 || !bytes.Contains(r.body, []byte(`"error":{"code":"unavailable","message":"nats-leaf: edge.ready: the leaf node is not connected"}`)) {
		t.Fatalf("readyz while not ready: %s", r)
	}
	if !bytes.Contains(r.body, []byte(`"name":"nats-leaf","state":"running","ready":false`)) ||
		!bytes.Contains(r.body, []byte("the leaf node is not connected")) {
		t.Fatalf("readyz does not say which component is not ready and why: %s", r)
	}
	e.setNotReady(nil)

	r = e.call(t, "GET", "/metrics", "")
	if r.status != 200 || !strings.HasPrefix(r.header.Get("Content-Type"), "text/plain") ||
		!bytes.Contains(r.body, []byte("ticketing_http_requests_total")) {
		t.Fatalf("metrics: %s", r)
	}
	r = e.call(t, "GET", "/v1/openapi.json", "")
	if r.status != 200 || !bytes.Equal(r.body, OpenAPI()) {
		t.Fatalf("openapi.json: %d", r.status)
	}
	r = e.call(t, "HEAD", "/v1/events", "")
	if r.status != 200 {
		t.Fatalf("HEAD: %s", r)
	}
}

func TestUnknownRoutesAndMethods(t *testing.T) {
	e := newEnv(t)
	for _, target := range []string{"/", "/nope", "/v1", "/v1/nope", "/v1/events/arena-finals/nope", "/v1/holds", "/v1/admin"} {
		wantError(t, e.call(t, "GET", target, ""), 404, "not_found", "")
	}
	for _, c := range []struct{ method, target, allow string }{
		{"PUT", "/v1/events", "GET, HEAD"},
		{"POST", "/v1/events", "GET, HEAD"},
		{"DELETE", finals, "GET, HEAD"},
		{"GET", holdsPath, "POST"},
		{"PATCH", "/v1/holds/arena-finals.0.aaaaaaaaaaaaaaaa", "DELETE, GET, HEAD"},
		{"GET", "/v1/admin/venues", "POST"},
		{"POST", "/healthz", "GET, HEAD"},
		{"GET", "/v1/quotes", "POST"},
		{"PUT", "/v1/orders", "POST"},
		{"DELETE", "/v1/orders/o_x", "GET, HEAD"},
		{"GET", "/v1/orders/o_x/pay", "POST"},
		{"POST", "/v1/orders/o_x/return", "GET, HEAD"},
		{"GET", "/v1/admin/orders/o_x/refund", "POST"},
		{"POST", "/v1/me/orders", "GET, HEAD"},
	} {
		r := e.call(t, c.method, c.target, "")
		wantError(t, r, 405, "method_not_allowed", "")
		if got := r.header.Get("Allow"); got != c.allow {
			t.Errorf("%s %s: Allow %q, want %q", c.method, c.target, got, c.allow)
		}
	}
	if n := e.inv.callCount() + e.admin.callCount() + e.orders.callCount(); n != 0 {
		t.Fatalf("%d calls to the core", n)
	}
}

func TestEvents(t *testing.T) {
	e := newEnv(t)
	list := decode[EventList](t, e.call(t, "GET", "/v1/events", ""))
	if len(list.Events) != 4 {
		t.Fatalf("events: %+v", list)
	}
	ev := decode[EventView](t, e.call(t, "GET", finals, ""))
	if ev.Partitions != 2 || len(ev.Sections) != 10 || ev.Venue.ID != "arena" {
		t.Fatalf("event: %+v", ev)
	}
	for _, s := range ev.Sections {
		want := 0
		if s.ID >= "106" {
			want = 1
		}
		if s.Partition != want {
			t.Errorf("section %s in partition %d, want %d", s.ID, s.Partition, want)
		}
	}
	for _, z := range ev.Zones {
		if (z.Kind == "ga") != (z.Partition != nil) || (z.ID == "floor" && *z.Partition != 0) {
			t.Errorf("zone %+v", z)
		}
	}
	club := decode[EventView](t, e.call(t, "GET", "/v1/events/club-night", ""))
	if club.Partitions != 1 || len(club.Sections) != 0 || len(club.Zones) != 1 {
		t.Fatalf("club: %+v", club)
	}
	for _, target := range []string{"/v1/events/nope", "/v1/events/NOPE", "/v1/events/%00", "/v1/events/" + strings.Repeat("a", 300)} {
		wantError(t, e.call(t, "GET", target, ""), 404, "not_found", "")
		wantError(t, e.call(t, "GET", target+"/availability", ""), 404, "not_found", "")
	}

	av := decode[AvailabilityView](t, e.call(t, "GET", finals+"/availability", ""))
	if len(av.Seats) != 10*20*20 || av.Seats["101-A-1"] != inventory.Free || len(av.Zones) != 4 {
		t.Fatalf("availability: %d seats, zones %+v", len(av.Seats), av.Zones)
	}
	r := hold(t, e, "k-avail", `{"seats":["106-A-1"]}`)
	if r.status != 201 {
		t.Fatal(r)
	}
	av = decode[AvailabilityView](t, e.call(t, "GET", finals+"/availability", ""))
	if av.Seats["106-A-1"] != inventory.Held {
		t.Fatalf("106-A-1 is %v", av.Seats["106-A-1"])
	}
	for _, z := range av.Zones {
		if z.ID == "premium" && (z.Held != 1 || z.Available != z.Capacity-1) {
			t.Fatalf("premium: %+v", z)
		}
	}
	e.inv.failNext("availability", errs.E("inventory.availability", errs.Unavailable, "the partition is changing owner; try again"))
	wantError(t, e.call(t, "GET", finals+"/availability", ""), 503, "unavailable", "")
}

// hold places a hold on arena-finals as the buyer.
func hold(t *testing.T, e *env, key, body string) result {
	t.Helper()
	return e.callAs(t, buyer, "POST", holdsPath, body, "Idempotency-Key", key)
}

func TestHoldLifecycle(t *testing.T) {
	e := newEnv(t)
	me := e.account(t, buyer)
	r := hold(t, e, "k1", `{"seats":["101-A-1","101-A-2"],"ttl_seconds":60}`)
	if r.status != 201 {
		t.Fatal(r)
	}
	// decode refuses unknown fields: the answer has no hold token.
	h := decode[HoldCreated](t, r)
	if len(h.Seats) != 2 || h.Quantity != 2 || h.Zone != "" || !strings.HasPrefix(h.HoldID, "arena-finals.0.") {
		t.Fatalf("hold: %+v", h)
	}
	if loc := r.header.Get("Location"); loc != "/v1/holds/"+h.HoldID {
		t.Fatalf("Location %q", loc)
	}
	// The hold is the caller's, and the key is scoped to the caller.
	req := e.inv.lastHoldRequest()
	if req.Holder != me.ID || req.IdempotencyKey != me.ID+":k1" || req.TTLSeconds != 60 || req.Fingerprint == "" {
		t.Fatalf("hold request %+v", req)
	}
	if got := e.inv.holder(h.HoldID); got != me.ID {
		t.Fatalf("the hold's holder is %q, want %q", got, me.ID)
	}

	// A retry replays: same hold, whatever the formatting and seat order;
	// nothing more is held.
	again := decode[HoldCreated](t, hold(t, e, "k1", " {\"ttl_seconds\": 60,\n \"seats\":[\"101-A-2\",\"101-A-1\"]} "))
	if again.HoldID != h.HoldID || !again.ExpiresAt.Equal(h.ExpiresAt) {
		t.Fatalf("replay %+v, want %+v", again, h)
	}
	// The key in RFC 8941 string form is the same key.
	quoted := decode[HoldCreated](t, hold(t, e, `"k1"`, `{"seats":["101-A-1","101-A-2"],"ttl_seconds":60}`))
	if quoted.HoldID != h.HoldID {
		t.Fatalf("quoted key: %+v", quoted)
	}
	// The same key with another request.
	for _, body := range []string{
		`{"seats":["101-A-1"],"ttl_seconds":60}`,
		`{"seats":["101-A-1","101-A-2"]}`,
		`{"seats":["101-A-1","101-A-3"],"ttl_seconds":60}`,
	} {
		wantError(t, hold(t, e, "k1", body), 422, "idempotency_key_mismatch", "")
	}
	// Another account's key "k1" is another key: another request is not a
	// mismatch, the same request is not a replay of this buyer's hold (its
	// seats are taken).
	theirs := e.callAs(t, otherBuyer, "POST", holdsPath, `{"seats":["101-A-9"]}`, "Idempotency-Key", "k1")
	if theirs.status != 201 || decode[HoldCreated](t, theirs).HoldID == h.HoldID {
		t.Fatalf("the other buyer's key k1: %s", theirs)
	}
	wantError(t, e.callAs(t, adminUser, "POST", holdsPath, `{"seats":["101-A-1","101-A-2"],"ttl_seconds":60}`, "Idempotency-Key", "k1"),
		409, "conflict", "seats_unavailable")
	// Keys are kept by the partition owner the request goes to, so the same
	// key on another event (or another partition of this one) is not
	// recognised: it places another hold (documented in openapi.json).
	if r := e.callAs(t, buyer, "POST", "/v1/events/arena-concert/holds", `{"seats":["101-A-1","101-A-2"],"ttl_seconds":60}`,
		"Idempotency-Key", "k1"); r.status != 201 {
		t.Fatal(r)
	}

	// Taken seats: 409, and the refusal is what the key replays.
	wantError(t, hold(t, e, "k2", `{"seats":["101-A-2","101-A-3"]}`), 409, "conflict", "seats_unavailable")
	wantError(t, hold(t, e, "k2", `{"seats":["101-A-2","101-A-3"]}`), 409, "conflict", "seats_unavailable")

	// Read and release as the holder.
	mine := e.auth(t, buyer)
	view := decode[HoldView](t, e.call(t, "GET", "/v1/holds/"+h.HoldID, "", mine...))
	if view.Status != "held" || view.EventID != "arena-finals" || len(view.Seats) != 2 || view.HoldID != h.HoldID {
		t.Fatalf("view %+v", view)
	}
	view = decode[HoldView](t, e.call(t, "GET", "/v1/holds/"+h.HoldID, "", "Authorization", "bearer   "+me.AccessToken))
	if view.Status != "held" {
		t.Fatalf("lower-case scheme: %+v", view)
	}
	// Another account's hold does not exist for this one (BOLA): 404, and
	// nothing changes.
	wantError(t, e.callAs(t, otherBuyer, "GET", "/v1/holds/"+h.HoldID, ""), 404, "not_found", "")
	wantError(t, e.callAs(t, otherBuyer, "DELETE", "/v1/holds/"+h.HoldID, ""), 404, "not_found", "")
	if view := decode[HoldView](t, e.call(t, "GET", "/v1/holds/"+h.HoldID, "", mine...)); view.Status != "held" {
		t.Fatalf("after another account's release: %+v", view)
	}
	view = decode[HoldView](t, e.call(t, "DELETE", "/v1/holds/"+h.HoldID, "", mine...))
	if view.Status != "released" {
		t.Fatalf("released: %+v", view)
	}
	view = decode[HoldView](t, e.call(t, "DELETE", "/v1/holds/"+h.HoldID, "", mine...))
	if view.Status != "released" {
		t.Fatalf("released again: %+v", view)
	}
	// The seats are free again.
	if r := hold(t, e, "k3", `{"seats":["101-A-1","101-A-2"]}`); r.status != 201 {
		t.Fatal(r)
	}

	// A hold in the other partition; an unknown hold.
	other := decode[HoldCreated](t, hold(t, e, "k4", `{"seats":["106-B-1"]}`))
	if !strings.HasPrefix(other.HoldID, "arena-finals.1.") {
		t.Fatalf("106 is in partition 1: %s", other.HoldID)
	}
	unknown := "arena-finals.1.aaaaaaaaaaaaaaaa"
	wantError(t, e.call(t, "GET", "/v1/holds/"+unknown, "", mine...), 404, "not_found", "")
	wantError(t, e.call(t, "DELETE", "/v1/holds/"+unknown, "", mine...), 404, "not_found", "")

	// A sold hold cannot be released.
	if err := e.inv.confirm(other.HoldID); err != nil {
		t.Fatal(err)
	}
	wantError(t, e.call(t, "DELETE", "/v1/holds/"+other.HoldID, "", mine...), 409, "conflict", "hold_confirmed")
	view = decode[HoldView](t, e.call(t, "GET", "/v1/holds/"+other.HoldID, "", mine...))
	if view.Status != "sold" {
		t.Fatalf("sold: %+v", view)
	}
	wantError(t, e.callAs(t, otherBuyer, "GET", "/v1/holds/"+other.HoldID, ""), 404, "not_found", "")

	// Unavailable owners: 503 with Retry-After.
	e.inv.failNext("get", errs.E("inventory.get", errs.Unavailable, "the inventory for this event is not answering; try again"))
	wantError(t, e.call(t, "GET", "/v1/holds/"+other.HoldID, "", mine...), 503, "unavailable", "")
	e.inv.failNext("release", errs.E("inventory.release", errs.Unavailable, "try again"))
	wantError(t, e.call(t, "DELETE", "/v1/holds/"+other.HoldID, "", mine...), 503, "unavailable", "")
	e.inv.failNext("hold", errs.E("inventory.hold", errs.Unavailable, "the partition is overloaded; try again"))
	wantError(t, hold(t, e, "k5", `{"seats":["101-A-5"]}`), 503, "unavailable", "")
	// An internal error of the core is not described, and not a 2xx.
	e.inv.failNext("hold", fmt.Errorf("boom"))
	r = e.send(t, request("POST", holdsPath, `{"seats":["101-A-5"]}`, append(mine, "Idempotency-Key", "k6")...))
	if d, _ := r.errorBody(); r.status != 500 || d.Code != "internal" || d.Message != "internal error" {
		t.Fatalf("internal: %s", r)
	}
}

func TestHoldGA(t *testing.T) {
	e := newEnv(t)
	r := hold(t, e, "g1", `{"zone":"floor","quantity":2}`)
	h := decode[HoldCreated](t, r)
	if r.status != 201 || h.Zone != "floor" || h.Quantity != 2 || h.Seats == nil || len(h.Seats) != 0 ||
		!strings.HasPrefix(h.HoldID, "arena-finals.0.") {
		t.Fatalf("GA hold: %s", r)
	}
	view := decode[HoldView](t, e.callAs(t, buyer, "GET", "/v1/holds/"+h.HoldID, ""))
	if view.Zone != "floor" || view.Quantity != 2 {
		t.Fatalf("view %+v", view)
	}
	// "seats": [] or null with a zone is the same request.
	for _, body := range []string{`{"seats":[],"zone":"floor","quantity":2}`, `{"seats":null,"zone":"floor","quantity":2,"ttl_seconds":0}`} {
		again := decode[HoldCreated](t, hold(t, e, "g1", body))
		if again.HoldID != h.HoldID {
			t.Fatalf("%s: %+v", body, again)
		}
	}
	// Fill the club's 800 places, then it is sold out.
	for i := range 80 {
		r := e.callAs(t, buyer, "POST", "/v1/events/club-night/holds", `{"zone":"ga","quantity":10}`, "Idempotency-Key", fmt.Sprint("c", i))
		if r.status != 201 {
			t.Fatal(r)
		}
	}
	wantError(t, e.callAs(t, buyer, "POST", "/v1/events/club-night/holds", `{"zone":"ga","quantity":1}`, "Idempotency-Key", "c-last"),
		409, "conflict", "sold_out")
	// The owner refuses a ttl out of its range; nothing is held.
	before := e.inv.callCount()
	wantError(t, hold(t, e, "g2", `{"zone":"floor","quantity":1,"ttl_seconds":5}`), 400, "invalid_request", "")
	if e.inv.callCount() != before+1 {
		t.Fatal("ttl_seconds 5 should reach the owner")
	}
}

func TestHoldInFlight(t *testing.T) {
	e := newEnv(t)
	e.inv.pending = true
	first := decode[HoldCreated](t, hold(t, e, "f1", `{"seats":["102-A-1"]}`))
	wantError(t, hold(t, e, "f1", `{"seats":["102-A-1"]}`), 409, "idempotency_key_in_flight", "")
	// Another request under the in-flight key is still a mismatch.
	wantError(t, hold(t, e, "f1", `{"seats":["102-A-2"]}`), 422, "idempotency_key_mismatch", "")
	e.inv.settle()
	again := decode[HoldCreated](t, hold(t, e, "f1", `{"seats":["102-A-1"]}`))
	if again.HoldID != first.HoldID {
		t.Fatalf("after settling: %+v, want %+v", again, first)
	}
}

// Bad input is a 4xx with a JSON error body and reaches nothing behind the
// edge.
func TestHoldBadInput(t *testing.T) {
	e := newEnv(t)
	key := []string{"Idempotency-Key", "bad-1"}
	big := `{"seats":["101-A-1"]}` + strings.Repeat(" ", maxHoldBody)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte(`{"seats":["101-A-1"]}`))
	zw.Close()
	cases := []struct {
		name, target, body string
		headers            []string
		status             int
		code, reason       string
	}{
		{"unknown event", "/v1/events/nope/holds", `{"seats":["101-A-1"]}`, key, 404, "not_found", ""},
		{"missing key", holdsPath, `{"seats":["101-A-1"]}`, nil, 400, "invalid_request", "idempotency_key_missing"},
		{"empty key", holdsPath, `{"seats":["101-A-1"]}`, []string{"Idempotency-Key", ""}, 400, "invalid_request", "idempotency_key_missing"},
		{"empty quoted key", holdsPath, `{"seats":["101-A-1"]}`, []string{"Idempotency-Key", `""`}, 400, "invalid_request", ""},
		{"key too long", holdsPath, `{"seats":["101-A-1"]}`, []string{"Idempotency-Key", strings.Repeat("k", 256)}, 400, "invalid_request", ""},
		{"quoted key too long", holdsPath, `{"seats":["101-A-1"]}`, []string{"Idempotency-Key", `"` + strings.Repeat("k", 256) + `"`}, 400, "invalid_request", ""},
		{"non-ASCII key", holdsPath, `{"seats":["101-A-1"]}`, []string{"Idempotency-Key", "clé"}, 400, "invalid_request", ""},
		{"key with a space", holdsPath, `{"seats":["101-A-1"]}`, []string{"Idempotency-Key", "a b"}, 400, "invalid_request", ""},
		{"key with a quote", holdsPath, `{"seats":["101-A-1"]}`, []string{"Idempotency-Key", `"a"b"`}, 400, "invalid_request", ""},
		{"hold body too large", holdsPath, big, key, 413, "too_large", ""},
		{"empty body", holdsPath, "", key, 400, "invalid_request", ""},
		{"blank body", holdsPath, " \n\t", key, 400, "invalid_request", ""},
		{"null", holdsPath, "null", key, 400, "invalid_request", ""},
		{"array", holdsPath, `[{"seats":["101-A-1"]}]`, key, 400, "invalid_request", ""},
		{"malformed JSON", holdsPath, `{"seats":["101-A-1"`, key, 400, "invalid_request", ""},
		{"syntax error", holdsPath, `{"seats":[101-A-1]}`, key, 400, "invalid_request", ""},
		{"unknown field", holdsPath, `{"seats":["101-A-1"],"price":0}`, key, 400, "invalid_request", ""},
		{"trailing data", holdsPath, `{"seats":["101-A-1"]} {}`, key, 400, "invalid_request", ""},
		{"trailing garbage", holdsPath, `{"seats":["101-A-1"]}x`, key, 400, "invalid_request", ""},
		{"wrong type", holdsPath, `{"seats":"101-A-1"}`, key, 400, "invalid_request", ""},
		{"float quantity", holdsPath, `{"zone":"floor","quantity":1.5}`, key, 400, "invalid_request", ""},
		{"huge quantity", holdsPath, `{"zone":"floor","quantity":1e40}`, key, 400, "invalid_request", ""},
		{"seats and zone", holdsPath, `{"seats":["101-A-1"],"zone":"floor","quantity":1}`, key, 400, "invalid_request", ""},
		{"seats and quantity", holdsPath, `{"seats":["101-A-1"],"quantity":1}`, key, 400, "invalid_request", ""},
		{"nothing asked", holdsPath, `{}`, key, 400, "invalid_request", ""},
		{"no seats", holdsPath, `{"seats":[]}`, key, 400, "invalid_request", ""},
		{"too many seats", holdsPath, `{"seats":["101-A-1","101-A-2","101-A-3","101-A-4","101-A-5","101-A-6","101-A-7","101-A-8","101-A-9","101-A-10","101-A-11"]}`, key, 400, "invalid_request", ""},
		{"duplicate seat", holdsPath, `{"seats":["101-A-1","101-A-2","101-A-1"]}`, key, 400, "invalid_request", ""},
		{"empty seat id", holdsPath, `{"seats":[""]}`, key, 400, "invalid_request", ""},
		{"long seat id", holdsPath, `{"seats":["` + strings.Repeat("1", 65) + `"]}`, key, 400, "invalid_request", ""},
		{"quantity 0", holdsPath, `{"zone":"floor","quantity":0}`, key, 400, "invalid_request", ""},
		{"quantity missing", holdsPath, `{"zone":"floor"}`, key, 400, "invalid_request", ""},
		{"quantity 11", holdsPath, `{"zone":"floor","quantity":11}`, key, 400, "invalid_request", ""},
		{"negative quantity", holdsPath, `{"zone":"floor","quantity":-1}`, key, 400, "invalid_request", ""},
		{"quantity without zone", holdsPath, `{"quantity":2}`, key, 400, "invalid_request", ""},
		{"invalid zone id", holdsPath, `{"zone":"Floor!","quantity":1}`, key, 400, "invalid_request", ""},
		{"negative ttl", holdsPath, `{"seats":["101-A-1"],"ttl_seconds":-1}`, key, 400, "invalid_request", ""},
		{"ttl overflowing a Duration", holdsPath, `{"seats":["101-A-1"],"ttl_seconds":18446744104}`, key, 400, "invalid_request", ""},
		{"unknown seat", holdsPath, `{"seats":["101-A-1","999-Z-1"]}`, key, 400, "invalid_request", "unknown_seat"},
		{"unknown zone", holdsPath, `{"zone":"vip","quantity":1}`, key, 400, "invalid_request", "unknown_zone"},
		{"reserved zone by quantity", holdsPath, `{"zone":"premium","quantity":1}`, key, 400, "invalid_request", "unknown_zone"},
		{"cross partition", holdsPath, `{"seats":["101-A-1","106-A-1"]}`, key, 400, "invalid_request", "cross_partition"},
		{"cross partition 105/106", holdsPath, `{"seats":["105-T-20","106-A-1"]}`, key, 400, "invalid_request", "cross_partition"},
		{"compressed body", holdsPath, gz.String(), append([]string{"Content-Encoding", "gzip"}, key...), 400, "invalid_request", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := e.inv.callCount()
			wantError(t, e.callAs(t, buyer, "POST", c.target, c.body, c.headers...), c.status, c.code, c.reason)
			if n := e.inv.callCount() - before; n != 0 {
				t.Fatalf("bad input reached the inventory (%d calls)", n)
			}
		})
	}
	// The key of a refused request is not used up.
	if r := hold(t, e, "bad-1", `{"seats":["101-A-1"]}`); r.status != 201 {
		t.Fatal(r)
	}
}

func TestHoldRefBadInput(t *testing.T) {
	e := newEnv(t)
	h := decode[HoldCreated](t, hold(t, e, "r1", `{"seats":["103-A-1"]}`))
	auth := e.auth(t, buyer)
	at := e.account(t, buyer).AccessToken
	cases := []struct {
		name, path string
		headers    []string
		status     int
		code       string
	}{
		{"no Authorization", "/v1/holds/" + h.HoldID, nil, 401, "unauthorized"},
		{"empty Authorization", "/v1/holds/" + h.HoldID, []string{"Authorization", ""}, 401, "unauthorized"},
		{"Basic", "/v1/holds/" + h.HoldID, []string{"Authorization", "Basic dXNlcjpwYXNz"}, 401, "unauthorized"},
		{"Bearer alone", "/v1/holds/" + h.HoldID, []string{"Authorization", "Bearer"}, 401, "unauthorized"},
		{"Bearer and blanks", "/v1/holds/" + h.HoldID, []string{"Authorization", "Bearer    "}, 401, "unauthorized"},
		{"no blank", "/v1/holds/" + h.HoldID, []string{"Authorization", "Bearer" + at}, 401, "unauthorized"},
		{"the token twice", "/v1/holds/" + h.HoldID, []string{"Authorization", "Bearer " + at + " " + at}, 401, "unauthorized"},
		{"a token cut short", "/v1/holds/" + h.HoldID, []string{"Authorization", "Bearer " + at[:len(at)-1]}, 401, "unauthorized"},
		{"token too long", "/v1/holds/" + h.HoldID, []string{"Authorization", "Bearer " + strings.Repeat("t", 513)}, 401, "unauthorized"},
		{"malformed id", "/v1/holds/nope", auth, 404, "not_found"},
		{"id without nonce", "/v1/holds/arena-finals.0.", auth, 404, "not_found"},
		{"id with a bad partition", "/v1/holds/arena-finals.x.aaaaaaaaaaaaaaaa", auth, 404, "not_found"},
		{"id too long", "/v1/holds/arena-finals.0." + strings.Repeat("a", 200), auth, 404, "not_found"},
		{"id of an unknown event", "/v1/holds/nope.0.aaaaaaaaaaaaaaaa", auth, 404, "not_found"},
		{"id of an unknown partition", "/v1/holds/arena-finals.2.aaaaaaaaaaaaaaaa", auth, 404, "not_found"},
		{"id with wildcards", "/v1/holds/*.0.aaaaaaaaaaaaaaaa", auth, 404, "not_found"},
		{"id with a NATS wildcard", "/v1/holds/arena-finals.>.0.aaaa", auth, 404, "not_found"},
		{"id with empty tokens", "/v1/holds/..0.a", auth, 404, "not_found"},
	}
	for _, c := range cases {
		for _, method := range []string{"GET", "DELETE"} {
			t.Run(c.name+" "+method, func(t *testing.T) {
				before := e.inv.callCount()
				wantError(t, e.call(t, method, c.path, "", c.headers...), c.status, c.code, "")
				if n := e.inv.callCount() - before; n != 0 {
					t.Fatalf("bad input reached the inventory (%d calls)", n)
				}
			})
		}
	}
	view := decode[HoldView](t, e.call(t, "GET", "/v1/holds/"+h.HoldID, "", auth...))
	if view.Status != "held" {
		t.Fatalf("the hold changed: %+v", view)
	}
}

const clubVenue = `{"id":"cellar","name":"The Cellar","city":"Springfield",
 "zones":[{"id":"ga","name":"Standing","kind":"ga","capacity":120,"price_cents":2500,"currency":"EUR"},
          {"id":"seated","name":"Seated","kind":"reserved","price_cents":3500,"currency":"EUR"}],
 "sections":[{"id":"s1","name":"Balcony","rows":[{"id":"A","seats":10,"zone":"seated"}]}]}`

func TestAdmin(t *testing.T) {
	e := newEnv(t)
	admin := e.auth(t, adminUser)
	r := e.call(t, "POST", "/v1/admin/venues", clubVenue, admin...)
	if r.status != 201 || r.header.Get("Location") != "/v1/venues/cellar" {
		t.Fatal(r)
	}
	if got := decode[map[string]string](t, r); got["id"] != "cellar" {
		t.Fatal(got)
	}
	wantError(t, e.call(t, "POST", "/v1/admin/venues", clubVenue, admin...), 409, "conflict", "")
	wantError(t, e.call(t, "POST", "/v1/admin/venues", clubVenue, "Authorization", "Bearer wrong"), 401, "unauthorized", "")
	// The core's admin token is the catalog service's, not a credential of
	// the edge.
	wantError(t, e.call(t, "POST", "/v1/admin/venues", clubVenue, "Authorization", "Bearer "+e.admin.token), 401, "unauthorized", "")

	ev := `{"id":"cellar-jazz","name":"Jazz in the Cellar","venue_id":"cellar","starts_at":"2027-02-01T20:00:00Z","on_sale_at":"2026-12-01T10:00:00+01:00"}`
	r = e.call(t, "POST", "/v1/admin/events", ev, admin...)
	if r.status != 201 || r.header.Get("Location") != "/v1/events/cellar-jazz" {
		t.Fatal(r)
	}
	wantError(t, e.call(t, "POST", "/v1/admin/events", ev, admin...), 409, "conflict", "")
	// Checked by the catalog service, not by the edge.
	wantError(t, e.call(t, "POST", "/v1/admin/events",
		`{"id":"late","name":"Late","venue_id":"cellar","starts_at":"2027-02-01T20:00:00Z","on_sale_at":"2028-01-01T00:00:00Z"}`, admin...),
		400, "invalid_request", "")
	wantError(t, e.call(t, "POST", "/v1/admin/events",
		`{"id":"lost","name":"Lost","venue_id":"nowhere","starts_at":"2027-02-01T20:00:00Z","on_sale_at":"2026-01-01T00:00:00Z"}`, admin...),
		400, "invalid_request", "")

	e.admin.fail = errs.E("catalog.admin", errs.Unavailable, "the catalog service is not reachable; try again")
	wantError(t, e.call(t, "POST", "/v1/admin/events", ev, admin...), 503, "unavailable", "")

	// Refused by the edge: the catalog service hears nothing.
	cases := []struct {
		name, target, body string
		headers            []string
		status             int
		code               string
	}{
		{"venue without token", "/v1/admin/venues", clubVenue, nil, 401, "unauthorized"},
		{"venue with Basic", "/v1/admin/venues", clubVenue, []string{"Authorization", "Basic YWRtaW4="}, 401, "unauthorized"},
		{"event without token", "/v1/admin/events", ev, nil, 401, "unauthorized"},
		{"venue by a buyer", "/v1/admin/venues", clubVenue, e.auth(t, buyer), 403, "forbidden"},
		{"event by a buyer", "/v1/admin/events", ev, e.auth(t, buyer), 403, "forbidden"},
		{"venue with the bootstrap token", "/v1/admin/venues", clubVenue, []string{"Authorization", "Bearer " + e.ids.AdminToken}, 401, "unauthorized"},
		{"venue empty body", "/v1/admin/venues", "", admin, 400, "invalid_request"},
		{"venue malformed", "/v1/admin/venues", `{"id":`, admin, 400, "invalid_request"},
		{"venue unknown field", "/v1/admin/venues", strings.Replace(clubVenue, `"city"`, `"town":"x","city"`, 1), admin, 400, "invalid_request"},
		{"venue trailing data", "/v1/admin/venues", clubVenue + "{}", admin, 400, "invalid_request"},
		{"venue bad id", "/v1/admin/venues", strings.Replace(clubVenue, `"cellar"`, `"Cellar"`, 1), admin, 400, "invalid_request"},
		{"venue without zones", "/v1/admin/venues", `{"id":"v","name":"V","zones":[]}`, admin, 400, "invalid_request"},
		{"venue row in GA zone", "/v1/admin/venues", strings.Replace(clubVenue, `"zone":"seated"`, `"zone":"ga"`, 1), admin, 400, "invalid_request"},
		{"venue wrong type", "/v1/admin/venues", `{"id":"v","name":"V","zones":{}}`, admin, 400, "invalid_request"},
		{"event bad id", "/v1/admin/events", strings.Replace(ev, `"cellar-jazz"`, `"Cellar Jazz"`, 1), admin, 400, "invalid_request"},
		{"event bad time", "/v1/admin/events", strings.Replace(ev, `2027-02-01T20:00:00Z`, `tomorrow`, 1), admin, 400, "invalid_request"},
		{"event unknown field", "/v1/admin/events", strings.Replace(ev, `"name"`, `"title":"x","name"`, 1), admin, 400, "invalid_request"},
		{"event trailing data", "/v1/admin/events", ev + " x", admin, 400, "invalid_request"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := e.admin.callCount()
			wantError(t, e.call(t, "POST", c.target, c.body, c.headers...), c.status, c.code, "")
			if n := e.admin.callCount() - before; n != 0 {
				t.Fatalf("bad input reached the catalog service (%d calls)", n)
			}
		})
	}
}

// A body over the server's limit is refused before any handler runs, with
// the same JSON error. app.Test reports the server's error instead of the
// answer, so these go through the server directly.
func TestServerLimits(t *testing.T) {
	e := newEnv(t)
	c := loadContract(t)
	body := `{"id":"x","name":"` + strings.Repeat("x", 4<<20) + `"}`
	for _, target := range []string{"/v1/admin/venues", "/v1/admin/events", holdsPath} {
		req := request("POST", target, body, append(e.auth(t, adminUser), "Idempotency-Key", "big")...)
		r := e.serveRaw(t, req)
		wantError(t, r, 413, "too_large", "")
		c.check(t, request("POST", target, ""), r)
	}
	// A request head over the server's read buffer (4 KiB) is 431, a client
	// error with the usual body (it was code "internal").
	for _, req := range []*http.Request{
		request("GET", "/v1/events/"+strings.Repeat("a", 5000), ""),
		request("POST", holdsPath, `{"seats":["101-A-1"]}`, "Idempotency-Key", strings.Repeat("k", 5000)),
	} {
		r := e.serveRaw(t, req)
		wantError(t, r, 431, "too_large", "")
		if ok, _ := c.sv.ValidateSchemaBytes(c.errSchema, r.body); !ok {
			t.Errorf("431 body %s", r.body)
		}
	}
	// A request the HTTP server cannot parse is 400; the message does not
	// quote the request (fasthttp's does, Authorization included).
	c2 := &rawConn{}
	c2.r.WriteString("GET /v1/events HTTP/1.1\r\nHost: edge\r\nAuthorization: Bearer s3cr3t-t0ken\r\n : x\r\n\r\n")
	e.app.Handler()
	_ = e.app.Server().ServeConn(c2)
	resp, err := http.ReadResponse(bufio.NewReader(&c2.w), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	r := result{resp.StatusCode, resp.Header, b}
	wantError(t, r, 400, "invalid_request", "")
	if bytes.Contains(b, []byte("s3cr3t")) {
		t.Fatalf("the answer quotes the request: %s", b)
	}
	if n := e.inv.callCount() + e.admin.callCount(); n != 0 {
		t.Fatalf("%d calls to the core", n)
	}
}

// Compressed bodies are not inflated: Fiber's c.Body() inflates
// Content-Encoding without a limit, so a few KiB could become gigabytes.
func TestCompressedBodyIsNotInflated(t *testing.T) {
	e := newEnv(t)
	var gz bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression)
	zw.Write(bytes.Repeat([]byte(" "), 64<<20))
	zw.Close()
	e.account(t, adminUser) // signed in before measuring (a password hash takes 19 MiB)
	for _, target := range []string{"/v1/admin/venues", "/v1/admin/events", holdsPath} {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		r := e.callAs(t, adminUser, "POST", target, gz.String(), "Content-Encoding", "gzip", "Idempotency-Key", "gz")
		runtime.ReadMemStats(&after)
		wantError(t, r, 400, "invalid_request", "")
		if grew := after.TotalAlloc - before.TotalAlloc; grew > 16<<20 {
			t.Errorf("%s: %d MiB allocated for a %d KiB body", target, grew>>20, gz.Len()>>10)
		}
	}
}

// recorder is a testing.TB that records failures instead of failing.
type recorder struct {
	testing.TB
	failures []string
}

func (r *recorder) Helper() {}
func (r *recorder) Errorf(format string, args ...any) {
	r.failures = append(r.failures, fmt.Sprintf(format, args...))
}
func (r *recorder) Fatalf(format string, args ...any) { r.Errorf(format, args...) }

// The contract check catches answers that stray from the document.
func TestContractCatchesMismatches(t *testing.T) {
	c := loadContract(t)
	jsonHdr := http.Header{"Content-Type": {"application/json"}}
	withLoc := http.Header{"Content-Type": {"application/json"}, "Location": {"/v1/holds/arena-finals.0.aaaaaaaaaaaaaaaa"}}
	created := `{"hold_id":"arena-finals.0.aaaaaaaaaaaaaaaa","seats":["101-A-1"],"quantity":1,"expires_at":"2026-01-15T10:10:00Z"}`
	view := `{"hold_id":"arena-finals.0.aaaaaaaaaaaaaaaa","event_id":"arena-finals","seats":[],"zone":"floor","quantity":1,"status":"held","expires_at":"2026-01-15T10:10:00Z"}`
	good := []struct {
		method, target string
		r              result
	}{
		{"POST", holdsPath, result{201, withLoc, []byte(created)}},
		{"GET", "/v1/holds/arena-finals.0.aaaaaaaaaaaaaaaa", result{200, jsonHdr, []byte(view)}},
	}
	for _, g := range good {
		rec := &recorder{TB: t}
		c.check(rec, request(g.method, g.target, ""), g.r)
		if len(rec.failures) != 0 {
			t.Fatalf("a good answer fails: %v", rec.failures)
		}
	}
	bad := []struct {
		name, method, target string
		r                    result
	}{
		{"a hold_token", "POST", holdsPath, result{201, withLoc, []byte(strings.Replace(created, `}`, `,"hold_token":"t"}`, 1))}},
		{"a holder", "GET", "/v1/holds/arena-finals.0.aaaaaaaaaaaaaaaa", result{200, jsonHdr, []byte(strings.Replace(view, `"status"`, `"holder":"u_1","status"`, 1))}},
		{"extra field", "POST", holdsPath, result{201, withLoc, []byte(strings.Replace(created, `"quantity"`, `"price":1,"quantity"`, 1))}},
		{"no Location", "POST", holdsPath, result{201, jsonHdr, []byte(created)}},
		{"bad expires_at", "POST", holdsPath, result{201, withLoc, []byte(strings.Replace(created, "2026-01-15T10:10:00Z", "soon", 1))}},
		{"seats null", "POST", holdsPath, result{201, withLoc, []byte(strings.Replace(created, `["101-A-1"]`, "null", 1))}},
		{"undocumented status", "POST", holdsPath, result{418, jsonHdr, []byte(`{"error":{"code":"conflict","message":"x"}}`)}},
		{"unknown code", "POST", holdsPath, result{409, jsonHdr, []byte(`{"error":{"code":"teapot","message":"x"}}`)}},
		{"no message", "POST", holdsPath, result{409, jsonHdr, []byte(`{"error":{"code":"conflict"}}`)}},
		{"bad status", "GET", "/v1/holds/arena-finals.0.aaaaaaaaaaaaaaaa", result{200, jsonHdr, []byte(strings.Replace(view, `"held"`, `"unknown"`, 1))}},
		{"503 without Retry-After", "GET", finals + "/availability", result{503, jsonHdr, []byte(`{"error":{"code":"unavailable","message":"x"}}`)}},
		{"unknown route not 404", "GET", "/nope", result{200, jsonHdr, []byte(`{}`)}},
		{"unknown route without error body", "GET", "/nope", result{404, jsonHdr, []byte(`{"message":"x"}`)}},
		{"not JSON", "GET", "/v1/events", result{200, jsonHdr, []byte(`<html>`)}},
		{"a 500", "GET", "/v1/events", result{500, jsonHdr, []byte(`{"error":{"code":"internal","message":"internal error"}}`)}},
		{"a password hash in a profile", "GET", "/v1/account", result{200, jsonHdr, []byte(`{"id":"u_1","email":"a@b.c","display_name":"","email_verified":true,"roles":[],"created_at":"2026-01-15T10:00:00Z","has_password":true,"totp":false,"recovery_codes_left":0,"passkeys":[],"password_hash":"$argon2id$"}`)}},
		{"a TOTP secret in a profile", "GET", "/v1/account", result{200, jsonHdr, []byte(`{"id":"u_1","email":"a@b.c","display_name":"","email_verified":true,"roles":[],"created_at":"2026-01-15T10:00:00Z","has_password":true,"totp":true,"recovery_codes_left":0,"passkeys":[],"totp_secret":"JBSWY3DP"}`)}},
		{"a refresh token in a session", "GET", "/v1/account/sessions", result{200, jsonHdr, []byte(`{"sessions":[{"id":"s_1","client_id":"web","created_at":"2026-01-15T10:00:00Z","last_used_at":"2026-01-15T10:00:00Z","expires_at":"2026-01-15T10:00:00Z","refresh_token":"s_1.x"}]}`)}},
		{"tokens in a cookie sign-in", "POST", "/v1/auth/refresh", result{200, jsonHdr, []byte(`{"user_id":"u_1","expires_in":300,"session_id":"s_1","refresh_token":"s_1.x"}`)}},
		{"undocumented sign-in status", "POST", "/v1/auth/signin", result{418, jsonHdr, []byte(`{"error":{"code":"conflict","message":"x"}}`)}},
		{"an OAuth error for a hold", "POST", holdsPath, result{400, jsonHdr, []byte(`{"error":"invalid_request"}`)}},
		{"a 405 without Allow", "GET", "/v1/events", result{405, jsonHdr, []byte(`{"error":{"code":"method_not_allowed","message":"x"}}`)}},
		{"an unknown OAuth error", "POST", "/v1/auth/token", result{400, jsonHdr, []byte(`{"error":"server_on_fire"}`)}},
	}
	for _, b := range bad {
		rec := &recorder{TB: t}
		c.check(rec, request(b.method, b.target, ""), b.r)
		if len(rec.failures) == 0 {
			t.Errorf("%s: not caught", b.name)
		}
	}
}

// The contract check catches orders' answers that stray from the
// document: the saga's bookkeeping or another account in an order, an
// unknown state, a redirect without Location.
func TestContractCatchesOrderMismatches(t *testing.T) {
	c := loadContract(t)
	const id = "o_gzqmmq2jw6vtyb4yzd7ha4hxvq"
	jsonHdr := http.Header{"Content-Type": {"application/json"}}
	withLoc := http.Header{"Content-Type": {"application/json"}, "Location": {"/v1/orders/" + id}}
	order := `{"id":"` + id + `","state":"awaiting_payment","event":"arena-finals",` +
		`"holds":[{"partition":"arena-finals.0","hold_id":"arena-finals.0.k3xq7m2pa4bz5wcd","seats":["101-A-1"],"quantity":1,"expires_at":"2026-01-15T10:10:00Z"}],` +
		`"tickets":1,"add_ons":[],"quote_id":"q_k3xq7m2pa4bz5wcdm4ta",` +
		`"lines":[{"kind":"ticket","ref":"premium","description":"Ticket, zone premium","quantity":1,"unit":18900,"amount":18900}],` +
		`"amounts":{"currency":"USD","subtotal":18900,"fees":0,"tax":0,"discount":0,"total":18900},"payment":{},` +
		`"pay_by":"2026-01-15T10:10:00Z","created":"2026-01-15T10:02:00Z","updated":"2026-01-15T10:02:00Z",` +
		`"history":[{"to":"awaiting_payment","at":"2026-01-15T10:02:00Z","cause":"created"}]}`
	quote := `{"id":"q_k3xq7m2pa4bz5wcdm4ta","event":"arena-finals","account":"u_1","holds":["arena-finals.0.k3xq7m2pa4bz5wcd"],` +
		`"rules_version":1,"lines":[{"kind":"ticket","ref":"premium","description":"Ticket","quantity":1,"unit":18900,"amount":18900}],` +
		`"subtotal":{"amount":18900,"currency":"USD"},"fees":{"amount":0,"currency":"USD"},"discount":{"amount":0,"currency":"USD"},` +
		`"tax":{"amount":0,"currency":"USD"},"total":{"amount":18900,"currency":"USD"},` +
		`"created_at":"2026-01-15T10:01:00Z","expires_at":"2026-01-15T10:10:00Z"}`
	with := func(doc, field string) string { return strings.Replace(doc, `"state"`, field+`,"state"`, 1) }
	good := []struct {
		method, target string
		r              result
	}{
		{"POST", "/v1/orders", result{201, withLoc, []byte(order)}},
		{"POST", "/v1/orders", result{200, withLoc, []byte(order)}},
		{"GET", "/v1/orders/" + id, result{200, jsonHdr, []byte(order)}},
		{"GET", "/v1/me/orders", result{200, jsonHdr, []byte(`{"orders":[` + order + `],"next":"` + id + `"}`)}},
		{"POST", "/v1/quotes", result{201, jsonHdr, []byte(quote)}},
		{"GET", "/v1/orders/" + id + "/return", result{303, http.Header{"Location": {"/orders/" + id}}, nil}},
	}
	for _, g := range good {
		rec := &recorder{TB: t}
		c.check(rec, request(g.method, g.target, ""), g.r)
		if len(rec.failures) != 0 {
			t.Fatalf("a good answer fails: %v", rec.failures)
		}
	}
	bad := []struct {
		name, method, target string
		r                    result
	}{
		{"an account", "GET", "/v1/orders/" + id, result{200, jsonHdr, []byte(with(order, `"account":"u_1"`))}},
		{"an idempotency key", "GET", "/v1/orders/" + id, result{200, jsonHdr, []byte(with(order, `"idem_key":"u_1:k"`))}},
		{"a fingerprint", "POST", "/v1/orders", result{201, withLoc, []byte(with(order, `"fingerprint":"ab"`))}},
		{"the saga's steps", "GET", "/v1/orders/" + id, result{200, jsonHdr, []byte(with(order, `"todo":["confirm"]`))}},
		{"a version", "GET", "/v1/orders/" + id, result{200, jsonHdr, []byte(with(order, `"version":3`))}},
		{"an organizer", "GET", "/v1/orders/" + id, result{200, jsonHdr, []byte(with(order, `"organizer":"org"`))}},
		{"a card number", "GET", "/v1/orders/" + id, result{200, jsonHdr, []byte(strings.Replace(order, `"payment":{}`, `"payment":{"number":"4242424242424242"}`, 1))}},
		{"an unknown state", "GET", "/v1/orders/" + id, result{200, jsonHdr, []byte(strings.Replace(order, `"awaiting_payment","event"`, `"pending","event"`, 1))}},
		{"a float amount", "GET", "/v1/orders/" + id, result{200, jsonHdr, []byte(strings.Replace(order, `"total":18900`, `"total":189.5`, 1))}},
		{"holds null", "GET", "/v1/orders/" + id, result{200, jsonHdr, []byte(strings.Replace(order, `"holds":[{`, `"holds":null,"x":[{`, 1))}},
		{"a created order without Location", "POST", "/v1/orders", result{201, jsonHdr, []byte(order)}},
		{"an order for a quote", "POST", "/v1/quotes", result{201, jsonHdr, []byte(order)}},
		{"a quote without its total", "POST", "/v1/quotes", result{201, jsonHdr, []byte(strings.Replace(quote, `,"total":{"amount":18900,"currency":"USD"}`, "", 1))}},
		{"a quote in a lower-case currency", "POST", "/v1/quotes", result{201, jsonHdr, []byte(strings.ReplaceAll(quote, `"USD"`, `"usd"`))}},
		{"a page of null", "GET", "/v1/me/orders", result{200, jsonHdr, []byte(`{"orders":null}`)}},
		{"a return without Location", "GET", "/v1/orders/" + id + "/return", result{303, http.Header{}, nil}},
		{"a return with the order", "GET", "/v1/orders/" + id + "/return", result{200, jsonHdr, []byte(order)}},
		{"an undocumented refund status", "POST", "/v1/admin/orders/" + id + "/refund", result{422, jsonHdr, []byte(`{"error":{"code":"idempotency_key_mismatch","message":"x"}}`)}},
	}
	for _, b := range bad {
		rec := &recorder{TB: t}
		c.check(rec, request(b.method, b.target, ""), b.r)
		if len(rec.failures) == 0 {
			t.Errorf("%s: not caught", b.name)
		}
	}
}

// Metric labels must not alias request memory: Fiber's c.Method() points
// into fasthttp's reused request buffer, so a label taken from it changed
// under the registry and /metrics failed with "collected before with the
// same name and label values" (found by FuzzApp).
func TestMetricsLabelsAreStable(t *testing.T) {
	e := newEnv(t)
	mine := e.auth(t, buyer)
	for i := range 3 {
		for _, m := range []string{"GET", "DELETE", "PATCH", "OPTIONS", "PUT", "POST"} {
			e.send(t, request(m, "/v1/events", ""))
			e.send(t, request(m, holdsPath, fmt.Sprint(i), mine...))
		}
	}
	r := e.call(t, "GET", "/metrics", "")
	if r.status != 200 {
		t.Fatalf("metrics: %s", r)
	}
	for _, want := range []string{`method="GET",route="/v1/events",status="200"} 3`,
		`method="DELETE",route="unmatched",status="405"} 6`, `method="POST",route="/v1/events/:id/holds",status="400"} 3`} {
		if !bytes.Contains(r.body, []byte(want)) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// Many buyers at once: each seat is held once, the availability cache
// serves concurrent readers, and every answer keeps to the contract.
func TestConcurrentHolds(t *testing.T) {
	e := newEnv(t)
	const buyers = 16
	auth := [][]string{e.auth(t, buyer), e.auth(t, otherBuyer)}
	results := make(chan result, buyers)
	for i := range buyers {
		go func() {
			body := `{"seats":["104-C-1","104-C-2"]}`
			if i%2 == 1 {
				body = `{"seats":["104-C-2","104-C-3"]}`
			}
			resp, err := e.app.Test(request("POST", "/v1/events/arena-finals/holds", body,
				append(auth[i/2%2], "Idempotency-Key", fmt.Sprint("buyer-", i))...), -1)
			if err != nil {
				results <- result{status: -1, body: []byte(err.Error())}
				return
			}
			var b bytes.Buffer
			b.ReadFrom(resp.Body)
			resp.Body.Close()
			if resp, err := e.app.Test(request("GET", finals+"/availability", ""), -1); err == nil {
				resp.Body.Close()
			}
			results <- result{resp.StatusCode, resp.Header, b.Bytes()}
		}()
	}
	won := 0
	for range buyers {
		r := <-results
		switch r.status {
		case 201:
			won++
		case 409:
			if d, err := r.errorBody(); err != nil || d.Reason != "seats_unavailable" {
				t.Errorf("refusal %s", r)
			}
		default:
			t.Errorf("answer %s", r)
		}
	}
	if won != 1 {
		t.Fatalf("%d buyers hold 104-C-2", won)
	}
	av := decode[AvailabilityView](t, e.call(t, "GET", finals+"/availability", ""))
	held := 0
	for _, s := range []string{"104-C-1", "104-C-2", "104-C-3"} {
		if av.Seats[s] == inventory.Held {
			held++
		}
	}
	if held != 2 {
		t.Fatalf("%d seats held", held)
	}
}
