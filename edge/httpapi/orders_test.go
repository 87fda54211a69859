package httpapi

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/services/catalog"
	"github.com/ticketing/ticketing/services/identity"
	"github.com/ticketing/ticketing/services/identity/client"
	"github.com/ticketing/ticketing/services/inventory"
	"github.com/ticketing/ticketing/services/orders"
	ordersapi "github.com/ticketing/ticketing/services/orders/natsapi"
	"github.com/ticketing/ticketing/services/pricing"
)

const (
	quotesPath = "/v1/quotes"
	ordersPath = "/v1/orders"
	myOrders   = "/v1/me/orders"
	// publicURL is the site's public URL in the orders' tests.
	publicURL = "https://tickets.example"
)

// newOrdersEnv is an env whose site has a public URL.
func newOrdersEnv(t *testing.T) *env {
	return newEnvWith(t, func(c *Config, _ *Deps) { c.PublicURL = publicURL + "/" })
}

// holdAs places a hold on arena-finals for w and returns its id.
func holdAs(t *testing.T, e *env, w who, key, body string) string {
	t.Helper()
	r := e.callAs(t, w, "POST", holdsPath, body, "Idempotency-Key", key)
	if r.status != 201 {
		t.Fatalf("hold %s: %s", body, r)
	}
	return decode[HoldCreated](t, r).HoldID
}

// placeOrder places an order as w with the key and returns the answer.
func placeOrder(t *testing.T, e *env, w who, key, body string) result {
	t.Helper()
	return e.callAs(t, w, "POST", ordersPath, body, "Idempotency-Key", key)
}

// wantOrder decodes an order answer of status.
func wantOrder(t *testing.T, r result, status int) orders.View {
	t.Helper()
	if r.status != status {
		t.Fatalf("got %s, want %d", r, status)
	}
	return decode[orders.View](t, r)
}

func cartOf(holds ...string) string {
	b := new(strings.Builder)
	b.WriteString(`{"holds":[`)
	for i, h := range holds {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(b, "%q", h)
	}
	b.WriteString("]}")
	return b.String()
}

func orderPath(id string, more ...string) string {
	return ordersPath + "/" + id + strings.Join(more, "")
}

// A purchase from the holds to the refund, through the edge and the real
// orders service: every answer keeps to the contract, every request the
// core hears names the caller.
func TestOrderLifecycle(t *testing.T) {
	e := newOrdersEnv(t)
	me := e.account(t, buyer)
	h0 := holdAs(t, e, buyer, "h0", `{"seats":["101-A-1","101-A-2"]}`)
	h1 := holdAs(t, e, buyer, "h1", `{"seats":["106-A-1"]}`)

	// A quote: 3 premium seats, priced with the catalog's face value.
	r := e.callAs(t, buyer, "POST", quotesPath, cartOf(h0, h1))
	if r.status != 201 {
		t.Fatal(r)
	}
	q := decode[pricing.Quote](t, r)
	if q.Account != me.ID || !slices.Equal(q.Holds, []string{h0, h1}) || q.Total.Amount != 3*18900 || q.Total.Currency != "USD" ||
		!pricing.ValidQuoteID(q.ID) || !q.ExpiresAt.After(time.Now()) {
		t.Fatalf("quote %+v", q)
	}
	if qr := lastRequest[orders.QuoteRequest](t, e.orders, ordersapi.OpQuote); qr.Account != me.ID || !slices.Equal(qr.Holds, []string{h0, h1}) {
		t.Fatalf("quote request %+v", qr)
	}

	// The order, priced by the quote.
	body := fmt.Sprintf(`{"holds":[%q,%q],"quote_id":%q}`, h0, h1, q.ID)
	r = placeOrder(t, e, buyer, "o1", body)
	o := wantOrder(t, r, 201)
	if loc := r.header.Get("Location"); loc != "/v1/orders/"+o.ID {
		t.Fatalf("Location %q", loc)
	}
	if o.State != orders.AwaitingPayment || o.QuoteID != q.ID || o.Amounts.Total != q.Total.Amount || o.Tickets != 3 || len(o.Holds) != 2 ||
		o.Event != "arena-finals" || !o.PayBy.Truncate(time.Microsecond).Equal(q.ExpiresAt) {
		t.Fatalf("order %+v", o)
	}
	cr := lastRequest[orders.CreateRequest](t, e.orders, ordersapi.OpCreate)
	if cr.Account != me.ID || cr.IdemKey != me.ID+":o1" || cr.Channel != ChannelWeb || cr.QuoteID != q.ID || cr.Fingerprint == "" {
		t.Fatalf("create request %+v", cr)
	}

	// A retry replays it (200), whatever the formatting, the holds' order
	// and the key's form; the same key with another request is refused.
	for _, again := range []struct{ key, body string }{
		{"o1", body},
		{`"o1"`, body},
		{"o1", fmt.Sprintf(" {\"quote_id\": %q,\n\t\"holds\": [%q, %q], \"add_ons\": [], \"voucher\": \"\"} ", q.ID, h1, h0)},
	} {
		r := placeOrder(t, e, buyer, again.key, again.body)
		if got := wantOrder(t, r, 200); got.ID != o.ID || r.header.Get("Location") != "/v1/orders/"+o.ID {
			t.Fatalf("replay of %s: %s", again.body, r)
		}
		if fp := lastRequest[orders.CreateRequest](t, e.orders, ordersapi.OpCreate).Fingerprint; fp != cr.Fingerprint {
			t.Fatalf("fingerprint of %s is %s, of the first %s", again.body, fp, cr.Fingerprint)
		}
	}
	for _, other := range []string{
		cartOf(h0, h1),
		fmt.Sprintf(`{"holds":[%q],"quote_id":%q}`, h0, q.ID),
		fmt.Sprintf(`{"holds":[%q,%q],"quote_id":%q,"voucher":"SPRING10"}`, h0, h1, q.ID),
		fmt.Sprintf(`{"holds":[%q,%q],"quote_id":%q,"add_ons":[{"id":"parking","quantity":1}]}`, h0, h1, q.ID),
	} {
		wantError(t, placeOrder(t, e, buyer, "o1", other), 422, "idempotency_key_mismatch", "")
		if fp := lastRequest[orders.CreateRequest](t, e.orders, ordersapi.OpCreate).Fingerprint; fp == cr.Fingerprint {
			t.Fatalf("another request %s has the fingerprint of the first", other)
		}
	}

	// Read, listed.
	if got := wantOrder(t, e.callAs(t, buyer, "GET", orderPath(o.ID), ""), 200); got.ID != o.ID || got.State != orders.AwaitingPayment {
		t.Fatalf("get %+v", got)
	}
	if gr := lastRequest[ordersapi.OrderRequest](t, e.orders, ordersapi.OpGet); gr != (ordersapi.OrderRequest{Account: me.ID, ID: o.ID}) {
		t.Fatalf("get request %+v", gr)
	}
	list := decode[ordersapi.List](t, e.callAs(t, buyer, "GET", myOrders, ""))
	if len(list.Orders) != 1 || list.Orders[0].ID != o.ID || list.Next != "" {
		t.Fatalf("my orders %+v", list)
	}
	if lr := lastRequest[ordersapi.ListRequest](t, e.orders, ordersapi.OpList); lr != (ordersapi.ListRequest{Account: me.ID, Limit: 20}) {
		t.Fatalf("list request %+v", lr)
	}

	// Paid: captured, the seats sold, the return URL the site's.
	paid := wantOrder(t, e.callAs(t, buyer, "POST", orderPath(o.ID, "/pay"), `{"method":"`+pmCard+`"}`), 200)
	if paid.State != orders.Confirmed || paid.Payment.Captured != o.Amounts.Total || paid.Payment.Last4 != "4242" {
		t.Fatalf("paid %+v", paid)
	}
	pr := lastRequest[ordersapi.PayRequest](t, e.orders, ordersapi.OpPay)
	if pr.Account != me.ID || pr.ID != o.ID || pr.Method != pmCard || pr.ReturnURL != publicURL+"/v1/orders/"+o.ID+"/return" {
		t.Fatalf("pay request %+v", pr)
	}
	if got := e.orders.pay.lastPay(t); got.Amount != o.Amounts.Total || got.ReturnURL != pr.ReturnURL || got.Account != me.ID {
		t.Fatalf("payment %+v", got)
	}
	for _, h := range []string{h0, h1} {
		if st, _ := e.inv.status(h); st != inventory.Sold {
			t.Fatalf("hold %s is %v after the payment", h, st)
		}
	}
	// Paid: neither paid again nor cancelled.
	wantError(t, e.callAs(t, buyer, "POST", orderPath(o.ID, "/pay"), `{"method":"`+pmCard+`"}`), 409, "conflict", orders.ReasonNotOpen)
	wantError(t, e.callAs(t, buyer, "POST", orderPath(o.ID, "/cancel"), ""), 409, "conflict", orders.ReasonNotOpen)

	// Refunded by an admin: the seats are free again, the money back.
	refunded := wantOrder(t, e.callAs(t, adminUser, "POST", "/v1/admin/orders/"+o.ID+"/refund", `{"reason":"event_cancelled"}`), 200)
	if refunded.State != orders.Refunded || refunded.Payment.Refunded != o.Amounts.Total || refunded.Reason != "event_cancelled" {
		t.Fatalf("refunded %+v", refunded)
	}
	for _, h := range []string{h0, h1} {
		if st, _ := e.inv.status(h); st != inventory.Cancelled {
			t.Fatalf("hold %s is %v after the refund", h, st)
		}
	}
	// Idempotent.
	if again := wantOrder(t, e.callAs(t, adminUser, "POST", "/v1/admin/orders/"+o.ID+"/refund", `{"reason":"event_cancelled"}`), 200); again.State != orders.Refunded {
		t.Fatalf("refund again %+v", again)
	}
}

// An order priced now (no quote), cancelled: the holds are released, and
// cancelling again answers the order again.
func TestOrderCancel(t *testing.T) {
	e := newOrdersEnv(t)
	h := holdAs(t, e, buyer, "h", `{"zone":"floor","quantity":2}`)
	o := wantOrder(t, placeOrder(t, e, buyer, "c1", cartOf(h)), 201)
	if o.QuoteID == "" || o.Amounts.Total != 2*7900 || len(o.Lines) != 1 || o.Holds[0].Zone != "floor" {
		t.Fatalf("order %+v", o)
	}
	for range 2 {
		c := wantOrder(t, e.callAs(t, buyer, "POST", orderPath(o.ID, "/cancel"), ""), 200)
		if c.State != orders.Cancelled || c.Reason != "cancelled_by_buyer" {
			t.Fatalf("cancelled %+v", c)
		}
	}
	if st, _ := e.inv.status(h); st != inventory.Released {
		t.Fatalf("the hold is %v", st)
	}
	if cr := lastRequest[ordersapi.OrderRequest](t, e.orders, ordersapi.OpCancel); cr.Account != e.account(t, buyer).ID || cr.ID != o.ID {
		t.Fatalf("cancel request %+v", cr)
	}
	wantError(t, e.callAs(t, buyer, "POST", orderPath(o.ID, "/pay"), `{"method":"`+pmCard+`"}`), 409, "conflict", orders.ReasonNotOpen)
	// The hold is no longer live: another order of it is refused.
	wantError(t, placeOrder(t, e, buyer, "c2", cartOf(h)), 409, "conflict", orders.ReasonHoldNotLive)
}

// Each route's caller: anonymous is 401, a token without the scope 403, a
// cookie session's write without the CSRF header 403; none of them
// reaches the orders service. A cookie session with the header, and a
// partner client with the scopes, are served.
func TestOrderAuthentication(t *testing.T) {
	e := newOrdersEnv(t)
	h := holdAs(t, e, buyer, "h", `{"seats":["102-A-1"]}`)
	o := wantOrder(t, placeOrder(t, e, buyer, "a1", cartOf(h)), 201)
	readOnly := newPartner(t, e, "reader", client.ScopeOrdersRead, client.ScopeHoldsWrite).accessToken(t, e, "")
	writeOnly := newPartner(t, e, "writer", client.ScopeOrdersWrite).accessToken(t, e, "")
	s, _ := signInCookie(t, e, buyer)
	routes := []struct {
		method, target, body string
		scope                string // "" for the refund (a role)
	}{
		{"POST", quotesPath, cartOf(h), "orders:write"},
		{"POST", ordersPath, cartOf(h), "orders:write"},
		{"GET", orderPath(o.ID), "", "orders:read"},
		{"POST", orderPath(o.ID, "/pay"), `{"method":"` + pmCard + `"}`, "orders:write"},
		{"POST", orderPath(o.ID, "/cancel"), "", "orders:write"},
		{"GET", myOrders, "", "orders:read"},
		{"POST", "/v1/admin/orders/" + o.ID + "/refund", `{"reason":"x"}`, ""},
	}
	for _, rt := range routes {
		t.Run(rt.method+" "+rt.target, func(t *testing.T) {
			before := e.orders.callCount()
			key := []string{"Idempotency-Key", "auth-1"}
			r := e.call(t, rt.method, rt.target, rt.body, key...)
			wantError(t, r, 401, "unauthorized", "")
			if r.header.Get("WWW-Authenticate") != "Bearer" {
				t.Fatalf("WWW-Authenticate %q", r.header.Get("WWW-Authenticate"))
			}
			wantError(t, e.call(t, rt.method, rt.target, rt.body, append(key, "Authorization", "Bearer x.y.z")...), 401, "unauthorized", "")
			// The partner client lacks the route's scope (or, for the
			// refund, is no account).
			tok := readOnly.AccessToken
			if rt.scope == "orders:read" {
				tok = writeOnly.AccessToken
			}
			wantError(t, e.call(t, rt.method, rt.target, rt.body, append(key, "Authorization", "Bearer "+tok)...), 403, "forbidden", "")
			if rt.method != "GET" {
				// A cookie session's write without, or with a wrong,
				// X-CSRF-Token.
				wantError(t, e.call(t, rt.method, rt.target, rt.body, append(key, "Cookie", s.cookie(rt.target))...), 403, "forbidden", "csrf")
				wantError(t, e.call(t, rt.method, rt.target, rt.body, append(key, "Cookie", s.cookie(rt.target), HeaderCSRF, s.csrf+"x")...),
					403, "forbidden", "csrf")
			}
			if n := e.orders.callCount() - before; n != 0 {
				t.Fatalf("refused callers reached the orders service (%d calls)", n)
			}
		})
	}

	// A cookie session reads without the header and writes with it.
	cookie := []string{"Cookie", s.cookie(ordersPath)}
	if got := wantOrder(t, e.call(t, "GET", orderPath(o.ID), "", cookie...), 200); got.ID != o.ID {
		t.Fatalf("read by cookie: %+v", got)
	}
	if got := wantOrder(t, e.call(t, "POST", ordersPath, cartOf(h), append(cookie, HeaderCSRF, s.csrf, "Idempotency-Key", "a1")...), 200); got.ID != o.ID {
		t.Fatalf("order by cookie: %+v", got)
	}

	// A partner client with the scopes buys for itself (channel partner).
	p := newPartner(t, e, "reseller", client.ScopeHoldsWrite, client.ScopeOrdersWrite, client.ScopeOrdersRead)
	auth := []string{"Authorization", "Bearer " + p.accessToken(t, e, "").AccessToken}
	r := e.call(t, "POST", holdsPath, `{"seats":["102-A-2"]}`, append(auth, "Idempotency-Key", "p1")...)
	ph := decode[HoldCreated](t, r).HoldID
	po := wantOrder(t, e.call(t, "POST", ordersPath, cartOf(ph), append(auth, "Idempotency-Key", "p1")...), 201)
	if cr := lastRequest[orders.CreateRequest](t, e.orders, ordersapi.OpCreate); cr.Account != p.id || cr.Channel != ChannelPartner || cr.IdemKey != p.id+":p1" {
		t.Fatalf("the partner's create request %+v", cr)
	}
	if list := decode[ordersapi.List](t, e.call(t, "GET", myOrders, "", auth...)); len(list.Orders) != 1 || list.Orders[0].ID != po.ID {
		t.Fatalf("the partner's orders %+v", list)
	}
}

// Orders belong to their caller (OWASP API1): another account's or
// client's order does not exist for the caller, whatever it does with the
// id, and nothing changes.
func TestOrdersOfOthersAreNotFound(t *testing.T) {
	e := newOrdersEnv(t)
	h := holdAs(t, e, buyer, "h", `{"seats":["103-A-1"]}`)
	o := wantOrder(t, placeOrder(t, e, buyer, "mine", cartOf(h)), 201)
	for _, w := range []who{otherBuyer, adminUser} {
		for _, c := range []struct{ method, target, body string }{
			{"GET", orderPath(o.ID), ""},
			{"POST", orderPath(o.ID, "/pay"), `{"method":"` + pmCard + `"}`},
			{"POST", orderPath(o.ID, "/cancel"), ""},
		} {
			r := e.callAs(t, w, c.method, c.target, c.body)
			wantError(t, r, 404, "not_found", "")
			if strings.Contains(string(r.body), h) {
				t.Fatalf("%v %s %s: the answer tells of the order: %s", w, c.method, c.target, r)
			}
		}
		if list := decode[ordersapi.List](t, e.callAs(t, w, "GET", myOrders, "")); len(list.Orders) != 0 {
			t.Fatalf("%v lists %+v", w, list)
		}
		// Its holds are the buyer's: no other caller orders them.
		wantError(t, placeOrder(t, e, w, "theirs", cartOf(h)), 404, "not_found", "")
		wantError(t, e.callAs(t, w, "POST", quotesPath, cartOf(h)), 404, "not_found", "")
	}
	// The same key is the other buyer's own: another order, not a replay.
	h2 := holdAs(t, e, otherBuyer, "h", `{"seats":["103-A-2"]}`)
	theirs := wantOrder(t, placeOrder(t, e, otherBuyer, "mine", cartOf(h2)), 201)
	if theirs.ID == o.ID {
		t.Fatal("another account's key named the buyer's order")
	}
	if got := wantOrder(t, e.callAs(t, buyer, "GET", orderPath(o.ID), ""), 200); got.State != orders.AwaitingPayment || got.Payment.Attempts != 0 {
		t.Fatalf("the order changed: %+v", got)
	}
}

// Bad input is refused by the edge before the orders service hears of
// it, with a JSON error of the contract.
func TestOrderBadInput(t *testing.T) {
	e := newOrdersEnv(t)
	h := holdAs(t, e, buyer, "h", `{"seats":["104-A-1"]}`)
	o := wantOrder(t, placeOrder(t, e, buyer, "ok", cartOf(h)), 201)
	key := []string{"Idempotency-Key", "bad-1"}
	holds := func(n int) string {
		ids := make([]string, n)
		for i := range ids {
			ids[i] = fmt.Sprintf("arena-finals.0.%016d", i)
		}
		return cartOf(ids...)
	}
	addOns := func(n int) string {
		lines := make([]string, n)
		for i := range lines {
			lines[i] = fmt.Sprintf(`{"id":"a%d","quantity":1}`, i)
		}
		return fmt.Sprintf(`{"holds":[%q],"add_ons":[%s]}`, h, strings.Join(lines, ","))
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte(cartOf(h)))
	zw.Close()
	big := cartOf(h) + strings.Repeat(" ", maxOrderBody)
	pay, refund := orderPath(o.ID, "/pay"), "/v1/admin/orders/"+o.ID+"/refund"
	cases := []struct {
		name, method, target, body string
		who                        who
		headers                    []string
		status                     int
		code, reason               string
	}{
		{"order without key", "POST", ordersPath, cartOf(h), buyer, nil, 400, "invalid_request", "idempotency_key_missing"},
		{"order with an empty key", "POST", ordersPath, cartOf(h), buyer, []string{"Idempotency-Key", `""`}, 400, "invalid_request", ""},
		{"order with a long key", "POST", ordersPath, cartOf(h), buyer, []string{"Idempotency-Key", strings.Repeat("k", 256)}, 400, "invalid_request", ""},
		{"order with a key with a space", "POST", ordersPath, cartOf(h), buyer, []string{"Idempotency-Key", "a b"}, 400, "invalid_request", ""},
		{"quote empty body", "POST", quotesPath, "", buyer, nil, 400, "invalid_request", ""},
		{"order empty body", "POST", ordersPath, "", buyer, key, 400, "invalid_request", ""},
		{"quote null", "POST", quotesPath, "null", buyer, nil, 400, "invalid_request", ""},
		{"order array", "POST", ordersPath, "[" + cartOf(h) + "]", buyer, key, 400, "invalid_request", ""},
		{"quote malformed", "POST", quotesPath, `{"holds":["a"`, buyer, nil, 400, "invalid_request", ""},
		{"order trailing data", "POST", ordersPath, cartOf(h) + " {}", buyer, key, 400, "invalid_request", ""},
		{"quote unknown field", "POST", quotesPath, fmt.Sprintf(`{"holds":[%q],"price":0}`, h), buyer, nil, 400, "invalid_request", ""},
		{"order with an account", "POST", ordersPath, fmt.Sprintf(`{"holds":[%q],"account":"u_someone"}`, h), buyer, key, 400, "invalid_request", ""},
		{"order with a channel", "POST", ordersPath, fmt.Sprintf(`{"holds":[%q],"channel":"partner"}`, h), buyer, key, 400, "invalid_request", ""},
		{"order with a fingerprint", "POST", ordersPath, fmt.Sprintf(`{"holds":[%q],"fingerprint":"x"}`, h), buyer, key, 400, "invalid_request", ""},
		{"quote wrong type", "POST", quotesPath, fmt.Sprintf(`{"holds":%q}`, h), buyer, nil, 400, "invalid_request", ""},
		{"quote no holds", "POST", quotesPath, `{"holds":[]}`, buyer, nil, 400, "invalid_request", ""},
		{"order no holds", "POST", ordersPath, `{"add_ons":[{"id":"parking","quantity":1}]}`, buyer, key, 400, "invalid_request", ""},
		{"quote too many holds", "POST", quotesPath, holds(orders.MaxHolds + 1), buyer, nil, 400, "invalid_request", ""},
		{"order too many holds", "POST", ordersPath, holds(orders.MaxHolds + 1), buyer, key, 400, "invalid_request", ""},
		{"empty hold id", "POST", ordersPath, cartOf(""), buyer, key, 400, "invalid_request", ""},
		{"long hold id", "POST", quotesPath, cartOf(strings.Repeat("h", 201)), buyer, nil, 400, "invalid_request", ""},
		{"too many add-ons", "POST", ordersPath, addOns(orders.MaxAddOns + 1), buyer, key, 400, "invalid_request", ""},
		{"add-on quantity 0", "POST", quotesPath, fmt.Sprintf(`{"holds":[%q],"add_ons":[{"id":"parking","quantity":0}]}`, h), buyer, nil, 400, "invalid_request", ""},
		{"add-on quantity 11", "POST", quotesPath, fmt.Sprintf(`{"holds":[%q],"add_ons":[{"id":"parking","quantity":11}]}`, h), buyer, nil, 400, "invalid_request", ""},
		{"add-on bad id", "POST", ordersPath, fmt.Sprintf(`{"holds":[%q],"add_ons":[{"id":"Parking!","quantity":1}]}`, h), buyer, key, 400, "invalid_request", ""},
		{"add-on unknown field", "POST", ordersPath, fmt.Sprintf(`{"holds":[%q],"add_ons":[{"id":"parking","quantity":1,"price":0}]}`, h), buyer, key, 400, "invalid_request", ""},
		{"long voucher", "POST", quotesPath, fmt.Sprintf(`{"holds":[%q],"voucher":%q}`, h, strings.Repeat("V", 65)), buyer, nil, 400, "invalid_request", ""},
		{"quote with a quote id", "POST", quotesPath, fmt.Sprintf(`{"holds":[%q],"quote_id":"q_abc"}`, h), buyer, nil, 400, "invalid_request", ""},
		{"order with a bad quote id", "POST", ordersPath, fmt.Sprintf(`{"holds":[%q],"quote_id":"q abc"}`, h), buyer, key, 400, "invalid_request", ""},
		{"quote too large", "POST", quotesPath, big, buyer, nil, 413, "too_large", ""},
		{"order too large", "POST", ordersPath, big, buyer, key, 413, "too_large", ""},
		{"compressed order", "POST", ordersPath, gz.String(), buyer, append([]string{"Content-Encoding", "gzip"}, key...), 400, "invalid_request", ""},
		{"pay empty body", "POST", pay, "", buyer, nil, 400, "invalid_request", ""},
		{"pay without method", "POST", pay, `{}`, buyer, nil, 400, "invalid_request", ""},
		{"pay long method", "POST", pay, `{"method":"` + strings.Repeat("m", maxMethodLen+1) + `"}`, buyer, nil, 400, "invalid_request", ""},
		{"pay with a return URL", "POST", pay, `{"method":"` + pmCard + `","return_url":"https://evil.example/"}`, buyer, nil, 400, "invalid_request", ""},
		{"pay too large", "POST", pay, `{"method":"` + pmCard + `"}` + strings.Repeat(" ", maxOrderBody), buyer, nil, 413, "too_large", ""},
		{"pay compressed", "POST", pay, gz.String(), buyer, []string{"Content-Encoding", "gzip"}, 400, "invalid_request", ""},
		{"pay long order id", "POST", orderPath(strings.Repeat("o", maxOrderIDLen+1), "/pay"), `{"method":"` + pmCard + `"}`, buyer, nil, 404, "not_found", ""},
		{"get long order id", "GET", orderPath(strings.Repeat("o", maxOrderIDLen+1)), "", buyer, nil, 404, "not_found", ""},
		{"cancel long order id", "POST", orderPath(strings.Repeat("o", maxOrderIDLen+1), "/cancel"), "", buyer, nil, 404, "not_found", ""},
		{"refund without reason", "POST", refund, `{"reason":""}`, adminUser, nil, 400, "invalid_request", ""},
		{"refund long reason", "POST", refund, `{"reason":"` + strings.Repeat("r", maxReasonLen+1) + `"}`, adminUser, nil, 400, "invalid_request", ""},
		{"refund as admin in the body", "POST", refund, `{"reason":"x","admin":true}`, adminUser, nil, 400, "invalid_request", ""},
		{"refund too large", "POST", refund, `{"reason":"x"}` + strings.Repeat(" ", maxOrderBody), adminUser, nil, 413, "too_large", ""},
		{"refund long order id", "POST", "/v1/admin/orders/" + strings.Repeat("o", maxOrderIDLen+1) + "/refund", `{"reason":"x"}`, adminUser, nil, 404, "not_found", ""},
		{"my orders limit 0", "GET", myOrders + "?limit=0", "", buyer, nil, 400, "invalid_request", ""},
		{"my orders limit 101", "GET", myOrders + "?limit=101", "", buyer, nil, 400, "invalid_request", ""},
		{"my orders limit x", "GET", myOrders + "?limit=x", "", buyer, nil, 400, "invalid_request", ""},
		{"my orders long after", "GET", myOrders + "?after=" + strings.Repeat("o", maxOrderIDLen+1), "", buyer, nil, 400, "invalid_request", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before, inv := e.orders.callCount(), e.inv.callCount()
			wantError(t, e.callAs(t, c.who, c.method, c.target, c.body, c.headers...), c.status, c.code, c.reason)
			if n := e.orders.callCount() - before; n != 0 {
				t.Fatalf("bad input reached the orders service (%d calls)", n)
			}
			if n := e.inv.callCount() - inv; n != 0 {
				t.Fatalf("bad input reached the inventory (%d calls)", n)
			}
		})
	}
	// A refused request does not use its key up.
	h2 := holdAs(t, e, buyer, "h2", `{"seats":["104-A-2"]}`)
	if got := wantOrder(t, placeOrder(t, e, buyer, "bad-1", cartOf(h2)), 201); got.ID == o.ID {
		t.Fatalf("the key of refused requests: %+v", got)
	}
}

// A body over the server's limit is refused before any handler runs, the
// orders' routes included (app.Test reports the server's error instead of
// its answer: these go through the server).
func TestOrderServerLimits(t *testing.T) {
	e := newOrdersEnv(t)
	c := loadContract(t)
	body := `{"holds":["` + strings.Repeat("h", 4<<20) + `"]}`
	for _, target := range []string{quotesPath, ordersPath, orderPath("o_x", "/pay"), "/v1/admin/orders/o_x/refund"} {
		req := request("POST", target, body, append(e.auth(t, adminUser), "Idempotency-Key", "big")...)
		r := e.serveRaw(t, req)
		wantError(t, r, 413, "too_large", "")
		c.check(t, request("POST", target, ""), r)
	}
	r := e.serveRaw(t, request("POST", ordersPath, `{"holds":["h"]}`, append(e.auth(t, buyer), "Idempotency-Key", strings.Repeat("k", 5000))...))
	wantError(t, r, 431, "too_large", "")
	if n := e.orders.callCount(); n != 0 {
		t.Fatalf("%d calls to the orders service", n)
	}
}

// The orders service's refusals reach the caller with their reasons,
// through NATS and the edge, in the contract's statuses.
func TestOrderRefusals(t *testing.T) {
	e := newOrdersEnv(t)
	ctx := context.Background()
	now := time.Now()
	// arena-finals: parking, one place; club-night not on sale yet;
	// vouchers.
	finals := orders.BaseRules(mustEvent(t, e.cache, "arena-finals"))
	finals.AddOns = []pricing.AddOn{{ID: "parking", Name: "Parking", Price: 2000, Capacity: 1, MaxPerOrder: 2}}
	club := orders.BaseRules(mustEvent(t, e.cache, "club-night"))
	club.OnSaleAt = now.Add(time.Hour)
	for _, r := range []pricing.Rules{finals, club} {
		if err := e.orders.prices.PutRules(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	for _, v := range []pricing.Voucher{
		{Code: "ONCE", PercentBP: 1000, MaxUses: 1},
		{Code: "LATER", PercentBP: 1000, ValidFrom: now.Add(time.Hour)},
		{Code: "GONE", PercentBP: 1000, ValidUntil: now.Add(-time.Hour)},
		{Code: "CONCERT", PercentBP: 1000, Events: []string{"arena-concert"}},
	} {
		if err := e.orders.prices.PutVoucher(ctx, v); err != nil {
			t.Fatal(err)
		}
	}
	h := func(w who, key, body string) string { return holdAs(t, e, w, key, body) }
	a1, a2, a3 := h(buyer, "a1", `{"seats":["105-A-1"]}`), h(buyer, "a2", `{"seats":["105-A-2"]}`), h(buyer, "a3", `{"seats":["105-A-3"]}`)
	clubHold := decode[HoldCreated](t, e.callAs(t, buyer, "POST", "/v1/events/club-night/holds", `{"zone":"ga","quantity":1}`, "Idempotency-Key", "c1")).HoldID
	b1 := h(otherBuyer, "b1", `{"seats":["105-B-1"]}`)
	released := h(buyer, "rel", `{"seats":["105-C-1"]}`)
	if r := e.callAs(t, buyer, "DELETE", "/v1/holds/"+released, ""); r.status != 200 {
		t.Fatal(r)
	}
	many := h(buyer, "many", `{"zone":"floor","quantity":9}`)

	// A quote of the other buyer's, and one already expired.
	theirQuote := decode[pricing.Quote](t, e.callAs(t, otherBuyer, "POST", quotesPath, cartOf(b1)))
	mine := decode[pricing.Quote](t, e.callAs(t, buyer, "POST", quotesPath, cartOf(a1)))
	expired := mine
	expired.ID, expired.CreatedAt, expired.ExpiresAt = "q_expired", now.Add(-2*time.Hour), now.Add(-time.Hour)
	if err := e.orders.prices.PutQuote(ctx, expired); err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		name, target, body string
		status             int
		code, reason       string
	}{
		{"mixed events", quotesPath, cartOf(a1, clubHold), 400, "invalid_request", orders.ReasonMixedEvents},
		{"a hold twice", ordersPath, cartOf(a1, a1), 400, "invalid_request", ""},
		{"unknown add-on", quotesPath, fmt.Sprintf(`{"holds":[%q],"add_ons":[{"id":"valet","quantity":1}]}`, a1), 400, "invalid_request", pricing.ReasonUnknownAddOn},
		{"add-on limit", quotesPath, fmt.Sprintf(`{"holds":[%q],"add_ons":[{"id":"parking","quantity":3}]}`, a1), 400, "invalid_request", pricing.ReasonAddOnLimit},
		{"voucher of the wrong form", quotesPath, fmt.Sprintf(`{"holds":[%q],"voucher":"no!"}`, a1), 400, "invalid_request", ""},
		{"voucher for another event", quotesPath, fmt.Sprintf(`{"holds":[%q],"voucher":"concert"}`, a1), 400, "invalid_request", pricing.ReasonVoucherNotApplicable},
		{"quote for other holds", ordersPath, fmt.Sprintf(`{"holds":[%q],"quote_id":%q}`, a2, mine.ID), 400, "invalid_request", orders.ReasonQuoteMismatch},
		{"quote for another voucher", ordersPath, fmt.Sprintf(`{"holds":[%q],"quote_id":%q,"voucher":"ONCE"}`, a1, mine.ID), 400, "invalid_request", orders.ReasonQuoteMismatch},
		{"not on sale", quotesPath, cartOf(clubHold), 403, "forbidden", pricing.ReasonNotOnSale},
		{"voucher not yet valid", quotesPath, fmt.Sprintf(`{"holds":[%q],"voucher":"later"}`, a1), 403, "forbidden", pricing.ReasonVoucherNotYetValid},
		{"unknown hold", quotesPath, cartOf("arena-finals.0.aaaaaaaaaaaaaaaa"), 404, "not_found", ""},
		{"malformed hold id", ordersPath, cartOf("nope"), 404, "not_found", ""},
		{"another's hold", ordersPath, cartOf(b1), 404, "not_found", ""},
		{"hold of an event not sold here", quotesPath, cartOf("nope.0.aaaaaaaaaaaaaaaa"), 404, "not_found", orders.ReasonEventNotForSale},
		{"unknown quote", ordersPath, fmt.Sprintf(`{"holds":[%q],"quote_id":"q_nope"}`, a1), 404, "not_found", orders.ReasonUnknownQuote},
		{"another's quote", ordersPath, fmt.Sprintf(`{"holds":[%q],"quote_id":%q}`, a1, theirQuote.ID), 404, "not_found", orders.ReasonUnknownQuote},
		{"unknown voucher", quotesPath, fmt.Sprintf(`{"holds":[%q],"voucher":"NOPE"}`, a1), 404, "not_found", pricing.ReasonVoucherNotFound},
		{"released hold", quotesPath, cartOf(released), 409, "conflict", orders.ReasonHoldNotLive},
		{"purchase limit", ordersPath, cartOf(many), 409, "conflict", orders.ReasonPurchaseLimit},
		{"expired quote", ordersPath, fmt.Sprintf(`{"holds":[%q],"quote_id":"q_expired"}`, a1), 410, "gone", orders.ReasonQuoteExpired},
		{"expired voucher", quotesPath, fmt.Sprintf(`{"holds":[%q],"voucher":"gone"}`, a1), 410, "gone", pricing.ReasonVoucherExpired},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			key := []string{"Idempotency-Key", fmt.Sprint("refused-", i)}
			wantError(t, e.callAs(t, buyer, "POST", c.target, c.body, key...), c.status, c.code, c.reason)
		})
	}

	// Orders that take what another needs: a hold, a voucher's one use,
	// the parking's one place.
	wantOrder(t, placeOrder(t, e, buyer, "first", fmt.Sprintf(`{"holds":[%q],"voucher":" once ","add_ons":[{"id":"parking","quantity":1}]}`, a1)), 201)
	wantError(t, placeOrder(t, e, buyer, "second", cartOf(a1)), 409, "conflict", orders.ReasonHoldTaken)
	wantError(t, placeOrder(t, e, buyer, "third", fmt.Sprintf(`{"holds":[%q],"voucher":"ONCE"}`, a2)), 409, "conflict", pricing.ReasonVoucherExhausted)
	wantError(t, placeOrder(t, e, buyer, "fourth", fmt.Sprintf(`{"holds":[%q],"add_ons":[{"id":"parking","quantity":1}]}`, a3)), 409, "conflict", orders.ReasonAddOnsSoldOut)
	// The refused ones took nothing: a2 and a3 are ordered.
	wantOrder(t, placeOrder(t, e, buyer, "fifth", cartOf(a2, a3)), 201)
}

func mustEvent(t *testing.T, c *catalog.Cache, id string) (catalog.Event, catalog.Venue) {
	t.Helper()
	ev, v, ok := c.Event(id)
	if !ok {
		t.Fatalf("no event %s", id)
	}
	return ev, v
}

// Payments that do not succeed at once: declined (the order stays open,
// the decline shown), too late (the holds expired), and 3-D Secure, whose
// return route syncs the payment and redirects without a session.
func TestOrderPayments(t *testing.T) {
	e := newOrdersEnv(t)
	me := e.account(t, buyer)
	h := holdAs(t, e, buyer, "h", `{"seats":["107-A-1"]}`)
	o := wantOrder(t, placeOrder(t, e, buyer, "p1", cartOf(h)), 201)

	// A card the vault does not have: 404, the order still open.
	wantError(t, e.callAs(t, buyer, "POST", orderPath(o.ID, "/pay"), `{"method":"`+pmUnknown+`"}`), 404, "not_found", "")
	declined := wantOrder(t, e.callAs(t, buyer, "POST", orderPath(o.ID, "/pay"), `{"method":"`+pmDeclined+`"}`), 200)
	if declined.State != orders.AwaitingPayment || declined.Payment.DeclineCode != "card_declined" || declined.Payment.Attempts != 2 {
		t.Fatalf("declined %+v", declined)
	}

	// 3-D Secure: the challenge's return is this site's, from its public
	// URL.
	challenged := wantOrder(t, e.callAs(t, buyer, "POST", orderPath(o.ID, "/pay"), `{"method":"`+pm3DS+`"}`), 200)
	returnURL := publicURL + "/v1/orders/" + o.ID + "/return"
	if challenged.State != orders.RequiresAction || !strings.HasPrefix(challenged.Payment.RedirectURL, "https://psp.example/3ds/") {
		t.Fatalf("challenged %+v", challenged)
	}
	if got := e.orders.pay.lastPay(t).ReturnURL; got != returnURL {
		t.Fatalf("return URL %q, want %q", got, returnURL)
	}
	// The browser comes back before the challenge is done, then after,
	// without credentials: a redirect to the order's page each time, and
	// the sync carries no account.
	ret := func() {
		t.Helper()
		r := e.call(t, "GET", orderPath(o.ID, "/return"), "")
		if r.status != http.StatusSeeOther || r.header.Get("Location") != "/orders/"+o.ID || len(r.body) != 0 {
			t.Fatalf("return: %s %v", r, r.header)
		}
		if sr := lastRequest[ordersapi.OrderRequest](t, e.orders, ordersapi.OpSync); sr != (ordersapi.OrderRequest{ID: o.ID}) {
			t.Fatalf("sync request %+v", sr)
		}
	}
	ret()
	if got := wantOrder(t, e.callAs(t, buyer, "GET", orderPath(o.ID), ""), 200); got.State != orders.RequiresAction {
		t.Fatalf("before the challenge ends: %+v", got)
	}
	e.orders.pay.finish3DS(o.ID)
	ret()
	if got := wantOrder(t, e.callAs(t, buyer, "GET", orderPath(o.ID), ""), 200); got.State != orders.Confirmed || got.Payment.Attempts != 3 {
		t.Fatalf("after the return: %+v", got)
	}
	// A signed-in browser is redirected the same, and a repeat changes
	// nothing.
	r := e.callAs(t, buyer, "GET", orderPath(o.ID, "/return"), "")
	if r.status != http.StatusSeeOther {
		t.Fatal(r)
	}
	if sr := lastRequest[ordersapi.OrderRequest](t, e.orders, ordersapi.OpSync); sr.Account != "" {
		t.Fatalf("the return synced as %q", sr.Account)
	}
	// The payment service not answering: redirected all the same (the
	// webhook will tell). An unknown order: 404.
	e.orders.failNext(ordersapi.OpSync, errs.E("orders.sync", errs.Unavailable, "the payment service is not answering"))
	if r := e.call(t, "GET", orderPath(o.ID, "/return"), ""); r.status != http.StatusSeeOther {
		t.Fatal(r)
	}
	wantError(t, e.call(t, "GET", orderPath("o_aaaaaaaaaaaaaaaaaaaaaaaaaa", "/return"), ""), 404, "not_found", "")

	// Too late: the holds expired (the saga's clock says) before the
	// payment.
	h2 := holdAs(t, e, buyer, "h2", `{"seats":["107-A-2"]}`)
	late := wantOrder(t, placeOrder(t, e, buyer, "p2", cartOf(h2)), 201)
	e.orders.advance(time.Hour)
	wantError(t, e.callAs(t, buyer, "POST", orderPath(late.ID, "/pay"), `{"method":"`+pmCard+`"}`), 409, "conflict", orders.ReasonPayByOver)
	if pr := lastRequest[ordersapi.PayRequest](t, e.orders, ordersapi.OpPay); pr.Account != me.ID {
		t.Fatalf("pay request %+v", pr)
	}
}

// Without a public URL the return URL is the request's own origin; never
// one the request body names.
func TestOrderReturnURLWithoutPublicURL(t *testing.T) {
	e := newEnv(t)
	h := holdAs(t, e, buyer, "h", `{"seats":["108-A-1"]}`)
	o := wantOrder(t, placeOrder(t, e, buyer, "p", cartOf(h)), 201)
	req := request("POST", orderPath(o.ID, "/pay"), `{"method":"`+pm3DS+`"}`, e.auth(t, buyer)...)
	req.Host = "edge.example:8443"
	r := e.send(t, req)
	loadContract(t).check(t, req, r)
	wantOrder(t, r, 200)
	if got, want := lastRequest[ordersapi.PayRequest](t, e.orders, ordersapi.OpPay).ReturnURL, "http://edge.example:8443/v1/orders/"+o.ID+"/return"; got != want {
		t.Fatalf("return URL %q, want %q", got, want)
	}
}

// Refunds: an admin's, staff of the order's organizer (the edge passes
// the caller's organizers), not staff of another, not a plain account nor
// a partner client; an order not paid is not refunded.
func TestOrderRefund(t *testing.T) {
	e := newOrdersEnv(t)
	staff := e.ids.SignedIn(t, identity.RoleStaffPrefix+"echoes-live", identity.RoleStaffPrefix+"national-league")
	otherStaff := e.ids.SignedIn(t, identity.RoleStaffPrefix+"echoes-live")
	paid := func(key, seat string) orders.View {
		t.Helper()
		h := holdAs(t, e, buyer, key, `{"seats":["`+seat+`"]}`)
		o := wantOrder(t, placeOrder(t, e, buyer, key, cartOf(h)), 201)
		return wantOrder(t, e.callAs(t, buyer, "POST", orderPath(o.ID, "/pay"), `{"method":"`+pmCard+`"}`), 200)
	}
	refund := func(id string) string { return "/v1/admin/orders/" + id + "/refund" }
	bearer := func(tok string) []string { return []string{"Authorization", "Bearer " + tok} }
	o1, o2 := paid("r1", "109-A-1"), paid("r2", "109-A-2")

	// Refused before the orders service hears of it.
	p := newPartner(t, e, "partner", client.ScopeOrdersWrite, client.ScopeOrdersRead)
	before := e.orders.callCount()
	for _, c := range []struct {
		name string
		auth []string
		body string
	}{
		{"a buyer", e.auth(t, buyer), `{"reason":"x"}`},
		{"a buyer, malformed body", e.auth(t, buyer), `{"reason":`},
		{"another buyer", e.auth(t, otherBuyer), `{"reason":"x"}`},
		{"a partner client", bearer(p.accessToken(t, e, "").AccessToken), `{"reason":"x"}`},
	} {
		wantError(t, e.call(t, "POST", refund(o1.ID), c.body, c.auth...), 403, "forbidden", "")
	}
	if n := e.orders.callCount() - before; n != 0 {
		t.Fatalf("refused refunds reached the orders service (%d calls)", n)
	}

	// Staff of another organizer: not found, as if it did not exist.
	wantError(t, e.call(t, "POST", refund(o1.ID), `{"reason":"x"}`, bearer(otherStaff.AccessToken)...), 404, "not_found", "")
	if rr := lastRequest[ordersapi.RefundRequest](t, e.orders, ordersapi.OpRefund); rr.Admin || !slices.Equal(rr.Staff, []string{"echoes-live"}) || rr.ID != o1.ID {
		t.Fatalf("refund request %+v", rr)
	}
	// Staff of the organizer (national-league sells arena-finals).
	got := wantOrder(t, e.call(t, "POST", refund(o1.ID), `{"reason":"duplicate"}`, bearer(staff.AccessToken)...), 200)
	if got.State != orders.Refunded || got.Reason != "duplicate" {
		t.Fatalf("refunded by staff: %+v", got)
	}
	rr := lastRequest[ordersapi.RefundRequest](t, e.orders, ordersapi.OpRefund)
	slices.Sort(rr.Staff)
	if rr.Admin || !slices.Equal(rr.Staff, []string{"echoes-live", "national-league"}) || rr.Reason != "duplicate" {
		t.Fatalf("refund request %+v", rr)
	}
	// An admin.
	if got := wantOrder(t, e.callAs(t, adminUser, "POST", refund(o2.ID), `{"reason":"x"}`), 200); got.State != orders.Refunded {
		t.Fatalf("refunded by an admin: %+v", got)
	}
	if rr := lastRequest[ordersapi.RefundRequest](t, e.orders, ordersapi.OpRefund); !rr.Admin {
		t.Fatalf("refund request %+v", rr)
	}
	// Not paid; unknown.
	h := holdAs(t, e, buyer, "r3", `{"seats":["109-A-3"]}`)
	open := wantOrder(t, placeOrder(t, e, buyer, "r3", cartOf(h)), 201)
	wantError(t, e.callAs(t, adminUser, "POST", refund(open.ID), `{"reason":"x"}`), 409, "conflict", orders.ReasonNotOpen)
	wantError(t, e.callAs(t, adminUser, "POST", refund("o_aaaaaaaaaaaaaaaaaaaaaaaaaa"), `{"reason":"x"}`), 404, "not_found", "")
}

// My orders, a page at a time.
func TestMyOrdersPages(t *testing.T) {
	e := newOrdersEnv(t)
	me := e.account(t, buyer)
	var ids []string
	for i := range 3 {
		h := holdAs(t, e, buyer, fmt.Sprint("h", i), fmt.Sprintf(`{"seats":["110-A-%d"]}`, i+1))
		ids = append(ids, wantOrder(t, placeOrder(t, e, buyer, fmt.Sprint("o", i), cartOf(h)), 201).ID)
	}
	var seen []string
	after := ""
	for range 3 {
		target := myOrders + "?limit=2"
		if after != "" {
			target += "&after=" + after
		}
		page := decode[ordersapi.List](t, e.callAs(t, buyer, "GET", target, ""))
		if lr := lastRequest[ordersapi.ListRequest](t, e.orders, ordersapi.OpList); lr != (ordersapi.ListRequest{Account: me.ID, After: after, Limit: 2}) {
			t.Fatalf("list request %+v", lr)
		}
		for _, o := range page.Orders {
			seen = append(seen, o.ID)
		}
		if after = page.Next; after == "" {
			break
		}
	}
	slices.Sort(ids)
	slices.Sort(seen)
	if !slices.Equal(seen, ids) {
		t.Fatalf("pages list %v, want %v", seen, ids)
	}
}

// Without the orders service every orders route answers 503 with
// Retry-After; the service unavailable, the same.
func TestOrdersUnavailable(t *testing.T) {
	e := newEnvWith(t, func(_ *Config, d *Deps) { d.Orders = nil })
	for _, c := range []struct{ method, target, body string }{
		{"POST", quotesPath, cartOf("h")},
		{"POST", ordersPath, cartOf("h")},
		{"GET", orderPath("o_x"), ""},
		{"POST", orderPath("o_x", "/pay"), `{"method":"pm_1"}`},
		{"POST", orderPath("o_x", "/cancel"), ""},
		{"GET", orderPath("o_x", "/return"), ""},
		{"GET", myOrders, ""},
		{"POST", "/v1/admin/orders/o_x/refund", `{"reason":"x"}`},
	} {
		r := e.callAs(t, adminUser, c.method, c.target, c.body, "Idempotency-Key", "k")
		wantError(t, r, 503, "unavailable", "")
	}
	e = newOrdersEnv(t)
	for _, op := range []string{ordersapi.OpQuote, ordersapi.OpList} {
		e.orders.failNext(op, errs.E("orders", errs.Unavailable, "the orders service is not answering; try again"))
	}
	wantError(t, e.callAs(t, buyer, "POST", quotesPath, cartOf("arena-finals.0.aaaaaaaaaaaaaaaa")), 503, "unavailable", "")
	wantError(t, e.callAs(t, buyer, "GET", myOrders, ""), 503, "unavailable", "")
}

// Price lists and vouchers through the edge's admin routes: staff of the
// event's organizer or an admin write and read an event's prices (a
// version after the stored one), admins vouchers; quotes price with them.
// Refused callers and bad bodies never reach the orders service.
func TestPricesAndVouchers(t *testing.T) {
	e := newOrdersEnv(t)
	staff := e.ids.SignedIn(t, identity.RoleStaffPrefix+"national-league")
	otherStaff := e.ids.SignedIn(t, identity.RoleStaffPrefix+"echoes-live")
	bearer := func(tok string) []string { return []string{"Authorization", "Bearer " + tok} }
	const prices = "/v1/admin/events/arena-finals/prices"
	rules := func(version int, extra string) string {
		return fmt.Sprintf(`{"event":"arena-finals","version":%d,"currency":"USD",
			"zones":{"floor":7900,"premium":18900,"standard":9900,"value":4900},
			"fees":{"per_ticket":350,"per_order":150},"tax":{"rate_bp":0},
			"on_sale_at":"2026-01-15T10:00:00Z"%s}`, version, extra)
	}
	wantError(t, e.callAs(t, adminUser, "GET", prices, ""), 404, "not_found", "")
	r := e.callAs(t, adminUser, "PUT", prices, rules(1, ""))
	if r.status != 200 {
		t.Fatal(r)
	}
	if got := decode[pricing.Rules](t, r); got.Version != 1 || got.Fees.PerTicket != 350 {
		t.Fatalf("written %+v", got)
	}
	wantError(t, e.callAs(t, adminUser, "PUT", prices, rules(1, "")), 409, "conflict", pricing.ReasonVersionMismatch)
	dynamic := `,"dynamic":{"enabled":true,"base":{"floor":7900,"premium":18900,"standard":9900,"value":4900},
		"sell_through":[{"at_bp":8000,"multiplier_bp":12000}],"floor":{"bp":8000},"ceiling":{"bp":20000},"max_step":{"bp":1000}}`
	if r := e.call(t, "PUT", prices, rules(2, dynamic), bearer(staff.AccessToken)...); r.status != 200 {
		t.Fatalf("staff write: %s", r)
	}
	got := decode[pricing.Rules](t, e.call(t, "GET", prices, "", bearer(staff.AccessToken)...))
	if got.Version != 2 || got.Dynamic == nil || !got.Dynamic.Enabled {
		t.Fatalf("read by staff %+v", got)
	}
	if pr := lastRequest[ordersapi.PricesRequest](t, e.orders, ordersapi.OpPricesPut); pr.Event != "arena-finals" {
		t.Fatalf("prices request %+v", pr)
	}

	// A voucher, written by an admin (the path's code in any case).
	r = e.callAs(t, adminUser, "PUT", "/v1/admin/vouchers/spring10", `{"code":"spring10","percent_bp":1000,"max_per_account":1}`)
	if v := decode[pricing.Voucher](t, r); r.status != 200 || v.Code != "SPRING10" {
		t.Fatalf("voucher %s", r)
	}
	// Quotes price with both.
	h := holdAs(t, e, buyer, "h", `{"seats":["101-A-1"]}`)
	q := decode[pricing.Quote](t, e.callAs(t, buyer, "POST", quotesPath, fmt.Sprintf(`{"holds":[%q],"voucher":"Spring10"}`, h)))
	if q.RulesVersion != 2 || q.Fees.Amount != 500 || q.Discount.Amount != 1890 || q.Total.Amount != 18900+500-1890 || q.Voucher != "SPRING10" {
		t.Fatalf("quote %+v", q)
	}

	// Refused by the edge.
	big := rules(3, `,"x":"`+strings.Repeat("x", pricing.MaxRulesDoc)+`"`)
	for _, c := range []struct {
		name, method, target, body string
		auth                       []string
		status                     int
		code                       string
	}{
		{"prices anonymous", "GET", prices, "", nil, 401, "unauthorized"},
		{"prices by a buyer", "GET", prices, "", e.auth(t, buyer), 403, "forbidden"},
		{"prices by another organizer's staff", "GET", prices, "", bearer(otherStaff.AccessToken), 403, "forbidden"},
		{"write by another organizer's staff", "PUT", prices, rules(3, ""), bearer(otherStaff.AccessToken), 403, "forbidden"},
		{"prices of no event", "GET", "/v1/admin/events/nope/prices", "", e.auth(t, adminUser), 404, "not_found"},
		{"malformed prices", "PUT", prices, `{"event":`, e.auth(t, adminUser), 400, "invalid_request"},
		{"prices with an unknown field", "PUT", prices, rules(3, `,"discount":1`), e.auth(t, adminUser), 400, "invalid_request"},
		{"prices with a repricing", "PUT", prices, rules(3, `,"repricing":{"version":3,"at":"2026-01-15T10:00:00Z","changes":[]}`), e.auth(t, adminUser), 400, "invalid_request"},
		{"a negative fee", "PUT", prices, strings.Replace(rules(3, ""), `"per_ticket":350`, `"per_ticket":-1`, 1), e.auth(t, adminUser), 400, "invalid_request"},
		{"prices too large", "PUT", prices, big, e.auth(t, adminUser), 413, "too_large"},
		{"a voucher by staff", "PUT", "/v1/admin/vouchers/X10", `{"code":"X10","percent_bp":1000}`, bearer(staff.AccessToken), 403, "forbidden"},
		{"a voucher by a buyer", "PUT", "/v1/admin/vouchers/X10", `{"code":"X10","percent_bp":1000}`, e.auth(t, buyer), 403, "forbidden"},
		{"a voucher of another code", "PUT", "/v1/admin/vouchers/X10", `{"code":"X11","percent_bp":1000}`, e.auth(t, adminUser), 400, "invalid_request"},
		{"a voucher with both discounts", "PUT", "/v1/admin/vouchers/X10", `{"code":"X10","percent_bp":1000,"amount":100,"currency":"USD"}`, e.auth(t, adminUser), 400, "invalid_request"},
		{"a malformed voucher", "PUT", "/v1/admin/vouchers/X10", `[]`, e.auth(t, adminUser), 400, "invalid_request"},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := e.orders.callCount()
			wantError(t, e.call(t, c.method, c.target, c.body, c.auth...), c.status, c.code, "")
			if n := e.orders.callCount() - before; n != 0 {
				t.Fatalf("refused requests reached the orders service (%d calls)", n)
			}
		})
	}
	// Refused by the orders service: a price list of another event.
	wantError(t, e.callAs(t, adminUser, "PUT", prices, strings.Replace(rules(3, ""), `"arena-finals"`, `"club-night"`, 1)), 400, "invalid_request", "")
}
