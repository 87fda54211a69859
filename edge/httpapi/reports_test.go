package httpapi

import (
	"context"
	"encoding/json"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pb33f/libopenapi/datamodel/high/base"

	"github.com/ticketing/ticketing/core/node/nodetest"
	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/services/analytics"
	"github.com/ticketing/ticketing/services/analytics/filestore"
	analyticsapi "github.com/ticketing/ticketing/services/analytics/natsapi"
	"github.com/ticketing/ticketing/services/reporting"
	reportingapi "github.com/ticketing/ticketing/services/reporting/natsapi"
	"github.com/ticketing/ticketing/services/reporting/natskv"
)

const reportPath = "/v1/reports/events/arena-finals"

func TestEventReport(t *testing.T) {
	e := newEnv(t)
	admin := e.auth(t, adminUser)
	r := e.call(t, "GET", reportPath, "", admin...)
	if r.status != 200 {
		t.Fatal(r)
	}
	got := decode[EventReportView](t, r)
	// What the reporting service itself answers, through the API's view.
	rep, err := (&reporting.Service{Store: e.reports}).EventReport(t.Context(), "arena-finals")
	if err != nil {
		t.Fatal(err)
	}
	if want := eventReportView(rep); !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
	// The figures of reportRecords: tickets from the inventory, money
	// from the orders.
	tot := got.Totals
	if tot.Held != 10 || tot.Sold != 3 || tot.Expired != 4 || tot.Released != 2 || tot.Cancelled != 1 ||
		tot.HeldNow != 1 || tot.SoldNow != 2 {
		t.Errorf("totals %+v", tot)
	}
	if want := (ReportMoney{OrdersPaid: 2, OrdersRefunded: 1, CapturedCents: 42777 + 8390, GrossCents: 45700, FeesCents: 1500,
		TaxCents: 4757, DiscountCents: 790, RefundedCents: 8390, NetCents: 42777}); tot.ReportMoney != want {
		t.Errorf("money %+v, want %+v", tot.ReportMoney, want)
	}
	if len(got.Zones) != 2 || got.Zones[0].Zone != "floor" || got.Zones[1].Zone != "premium" ||
		got.Zones[1].HeldNow != 1 || got.Zones[1].SoldNow != 2 || got.Zones[0].SoldNow != 0 {
		t.Errorf("zones %+v", got.Zones)
	}
	if len(got.Hours) != 2 || !got.Hours[0].Hour.Equal(reportTimeT0()) || got.Hours[0].Sold != 3 || got.Hours[1].Expired != 4 ||
		got.Hours[0].NetCents != 42777+8390 || got.Hours[1].RefundedCents != 8390 || got.Hours[1].NetCents != -8390 {
		t.Errorf("hours %+v", got.Hours)
	}
	if got.OrganizerID != "org-1" || got.Currency != "USD" || got.OnSaleAt == nil || got.Capacity == 0 {
		t.Errorf("facts %+v", got)
	}
	// The lower-case scheme is the same credential.
	if r := e.call(t, "GET", reportPath, "", "Authorization", "bearer  "+e.account(t, adminUser).AccessToken); r.status != 200 {
		t.Fatal(r)
	}
}

func reportTimeT0() time.Time { return time.Date(2026, 5, 4, 10, 0, 0, 0, time.UTC) }

// Refused by the edge (401, 403, 400): the reporting service hears
// nothing. Refused by the service (404, 503): the same error body.
func TestEventReportErrors(t *testing.T) {
	e := newEnv(t)
	admin := e.auth(t, adminUser)
	at := e.account(t, adminUser).AccessToken
	cases := []struct {
		name, target string
		headers      []string
		status       int
		code         string
		reaches      bool
	}{
		{"no token", reportPath, nil, 401, "unauthorized", false},
		{"wrong token", reportPath, []string{"Authorization", "Bearer admin-secreT"}, 401, "unauthorized", false},
		{"token prefix", reportPath, []string{"Authorization", "Bearer " + at[:len(at)/2]}, 401, "unauthorized", false},
		{"longer token", reportPath, []string{"Authorization", "Bearer " + at + "x"}, 401, "unauthorized", false},
		{"Basic", reportPath, []string{"Authorization", "Basic YWRtaW4tc2VjcmV0"}, 401, "unauthorized", false},
		{"empty bearer", reportPath, []string{"Authorization", "Bearer "}, 401, "unauthorized", false},
		{"the core's admin token", reportPath, []string{"Authorization", "Bearer " + e.admin.token}, 401, "unauthorized", false},
		{"the bootstrap admin token", reportPath, []string{"Authorization", "Bearer " + e.ids.AdminToken}, 401, "unauthorized", false},
		{"a buyer", reportPath, e.auth(t, buyer), 403, "forbidden", false},
		{"bad id without a token", "/v1/reports/events/NOPE", nil, 401, "unauthorized", false},
		{"bad id by a buyer", "/v1/reports/events/NOPE", e.auth(t, buyer), 403, "forbidden", false},
		{"upper case id", "/v1/reports/events/Arena-Finals", admin, 400, "invalid_request", false},
		{"dotted id", "/v1/reports/events/arena.finals", admin, 400, "invalid_request", false},
		{"escaped id", "/v1/reports/events/arena%2Efinals", admin, 400, "invalid_request", false},
		{"NUL", "/v1/reports/events/%00", admin, 400, "invalid_request", false},
		{"leading dash", "/v1/reports/events/-x", admin, 400, "invalid_request", false},
		{"long id", "/v1/reports/events/" + strings.Repeat("a", 64), admin, 400, "invalid_request", false},
		{"unknown event", "/v1/reports/events/nope", admin, 404, "not_found", true},
		{"event without sales", "/v1/reports/events/club-night", admin, 404, "not_found", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := e.reports.readCount()
			wantError(t, e.call(t, "GET", c.target, "", c.headers...), c.status, c.code, "")
			if reached := e.reports.readCount() > before; reached != c.reaches {
				t.Fatalf("reached the reporting service: %v, want %v", reached, c.reaches)
			}
		})
	}
	e.reports.failNext(errs.E("reporting.natskv", errs.Unavailable, "the store is not reachable; try again"))
	wantError(t, e.call(t, "GET", reportPath, "", admin...), 503, "unavailable", "")
	// The message never quotes the token offered.
	for _, guess := range []string{"s3cr3t-guess-0123456789", "s3cr3t.guess.0123456789"} {
		r := e.call(t, "GET", reportPath, "", "Authorization", "Bearer "+guess)
		wantError(t, r, 401, "unauthorized", "")
		if strings.Contains(string(r.body), "s3cr3t") {
			t.Fatalf("the answer quotes the token: %s", r.body)
		}
	}
	wantError(t, e.call(t, "POST", reportPath, "", admin...), 405, "method_not_allowed", "")
}

// An edge that verifies no access token (Deps.Tokens nil) has only
// anonymous callers and refuses every report request, an admin's token
// included; one without a reporting client answers 503 to the admin.
func TestEventReportNotConfigured(t *testing.T) {
	e := newEnvWith(t, func(c *Config, d *Deps) { d.Tokens = nil })
	for _, auth := range []string{"Bearer " + e.account(t, adminUser).AccessToken, "Bearer " + e.ids.AdminToken, "Bearer ", "Bearer x"} {
		wantError(t, e.call(t, "GET", reportPath, "", "Authorization", auth), 401, "unauthorized", "")
	}
	if n := e.reports.readCount(); n != 0 {
		t.Fatalf("%d reads", n)
	}
	e = newEnvWith(t, func(c *Config, d *Deps) { d.Reports = nil })
	wantError(t, e.callAs(t, adminUser, "GET", reportPath, ""), 503, "unavailable", "")
}

// The report schemas of openapi.json are derived from the Go types the
// handlers answer: the same properties, and required exactly when the
// field is always sent (no omitempty).
func TestReportSchemasMatchGoTypes(t *testing.T) {
	c := loadContract(t)
	for name, v := range map[string]any{
		"EventReport":  EventReportView{},
		"ReportTotals": ReportTotals{},
		"ZoneReport":   ZoneReportView{},
		"HourReport":   HourReportView{},
		"EventFunnel":  EventFunnelView{},
	} {
		schemaMatchesType(t, name, c.schema(t, name), reflect.TypeOf(v))
	}
}

// jsonFields lists a struct's JSON properties (embedded structs
// flattened) and whether each is always sent.
func jsonFields(typ reflect.Type) map[string]bool {
	out := map[string]bool{}
	for i := range typ.NumField() {
		f := typ.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" || !f.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct {
			for k, v := range jsonFields(f.Type) {
				out[k] = v
			}
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = !slices.Contains(strings.Split(opts, ","), "omitempty") && !slices.Contains(strings.Split(opts, ","), "omitzero")
	}
	return out
}

func schemaMatchesType(t *testing.T, where string, s *base.Schema, typ reflect.Type) {
	t.Helper()
	if s.AdditionalProperties == nil || !s.AdditionalProperties.IsB() || s.AdditionalProperties.B {
		t.Errorf("%s: additionalProperties must be false", where)
	}
	fields := jsonFields(typ)
	props := map[string]*base.Schema{}
	for name, p := range s.Properties.FromOldest() {
		props[name] = p.Schema()
		if _, ok := fields[name]; !ok {
			t.Errorf("%s: property %q is not a field of %s", where, name, typ)
		}
	}
	for name, always := range fields {
		if _, ok := props[name]; !ok {
			t.Errorf("%s: field %q of %s is not documented", where, name, typ)
		}
		if always != slices.Contains(s.Required, name) {
			t.Errorf("%s: %q required %v, but always sent %v", where, name, !always, always)
		}
	}
	// Nested objects and arrays of objects.
	for i := range typ.NumField() {
		f := typ.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		ft := f.Type
		p := props[name]
		if p == nil || f.Anonymous {
			continue
		}
		if ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct && ft.Elem() != reflect.TypeOf(time.Time{}) {
			if p.Items == nil || !p.Items.IsA() {
				t.Errorf("%s.%s: no items schema", where, name)
				continue
			}
			schemaMatchesType(t, where+"."+name+"[]", p.Items.A.Schema(), ft.Elem())
		} else if ft.Kind() == reflect.Struct && ft != reflect.TypeOf(time.Time{}) {
			schemaMatchesType(t, where+"."+name, p, ft)
		}
	}
}

// The answers of the contract check catch a report that strays from the
// document.
func TestContractCatchesReportMismatches(t *testing.T) {
	e := newEnv(t)
	c := loadContract(t)
	good := e.callAs(t, adminUser, "GET", reportPath, "")
	var doc map[string]any
	if err := json.Unmarshal(good.body, &doc); err != nil {
		t.Fatal(err)
	}
	mutate := func(f func(map[string]any)) result {
		var d map[string]any
		_ = json.Unmarshal(good.body, &d)
		f(d)
		b, _ := json.Marshal(d)
		return result{200, good.header, b}
	}
	for name, r := range map[string]result{
		"extra field":      mutate(func(d map[string]any) { d["secret"] = 1 }),
		"extra total":      mutate(func(d map[string]any) { d["totals"].(map[string]any)["x"] = 1 }),
		"no totals":        mutate(func(d map[string]any) { delete(d, "totals") }),
		"zone without id":  mutate(func(d map[string]any) { delete(d["zones"].([]any)[0].(map[string]any), "zone") }),
		"hour not a time":  mutate(func(d map[string]any) { d["hours"].([]any)[0].(map[string]any)["hour"] = "noon" }),
		"negative sold":    mutate(func(d map[string]any) { d["totals"].(map[string]any)["sold"] = -1 }),
		"no gross":         mutate(func(d map[string]any) { delete(d["totals"].(map[string]any), "gross_cents") }),
		"zone with money":  mutate(func(d map[string]any) { d["zones"].([]any)[0].(map[string]any)["gross_cents"] = 1 }),
		"hour without net": mutate(func(d map[string]any) { delete(d["hours"].([]any)[0].(map[string]any), "net_cents") }),
		"zones null":       mutate(func(d map[string]any) { d["zones"] = nil }),
		"string held":      mutate(func(d map[string]any) { d["totals"].(map[string]any)["held"] = "9" }),
		"lower currency":   mutate(func(d map[string]any) { d["currency"] = "usd" }),
		"undocumented 409": {409, good.header, []byte(`{"error":{"code":"conflict","message":"x"}}`)},
	} {
		rec := &recorder{TB: t}
		c.check(rec, request("GET", reportPath, ""), r)
		if len(rec.failures) == 0 {
			t.Errorf("%s: not caught", name)
		}
	}
}

// The same answers from the real reporting micro service on an embedded
// core node with its embedded store, through the NATS client the edge
// wires: the same report as the in-memory store's, and the service's errors
// mapped to the same statuses, all checked against the contract.
func TestEventReportFromTheService(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	_, nc, js := nodetest.Start(t)
	store, err := natskv.Open(ctx, js, natskv.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Apply(ctx, reportRecords()); err != nil {
		t.Fatal(err)
	}
	ms, err := reportingapi.Serve(nc, &reporting.Service{Store: store})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ms.Stop() }()
	e := newEnvWith(t, func(_ *Config, d *Deps) { d.Reports = &reportingapi.Client{NC: nc} })
	admin := e.auth(t, adminUser)

	got := decode[EventReportView](t, e.call(t, "GET", reportPath, "", admin...))
	want := decode[EventReportView](t, newEnv(t).callAs(t, adminUser, "GET", reportPath, ""))
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("from the service %+v\nfrom the in-memory store %+v", got, want)
	}
	wantError(t, e.call(t, "GET", "/v1/reports/events/club-night", "", admin...), 404, "not_found", "")
	wantError(t, e.call(t, "GET", reportPath, ""), 401, "unauthorized", "")
	wantError(t, e.call(t, "GET", "/v1/reports/events/arena_finals", "", admin...), 400, "invalid_request", "")
	_ = ms.Stop()
	wantError(t, e.call(t, "GET", reportPath, "", admin...), 503, "unavailable", "")
}

const funnelPath = reportPath + "/funnel"

func TestEventFunnel(t *testing.T) {
	e := newEnv(t)
	admin := e.auth(t, adminUser)
	got := decode[EventFunnelView](t, e.call(t, "GET", funnelPath, "", admin...))
	on := time.Date(2026, 6, 1, 10, 0, 0, 0, time.UTC)
	if got.EventID != "arena-finals" || got.QueueJoined != 5 || got.QueueAdmitted != 4 || got.HoldsPlaced != 4 ||
		got.HeldTickets != 6 || got.SoldTickets != 4 || got.Orders != 2 || got.Capacity != 4 || got.PeakHoldsPerMinute != 3 {
		t.Fatalf("funnel %+v", got)
	}
	if got.OnSaleAt == nil || !got.OnSaleAt.Equal(on) || got.SoldOutAt == nil || !got.SoldOutAt.Equal(on.Add(3*time.Minute)) ||
		got.TimeToSellOutSeconds == nil || *got.TimeToSellOutSeconds != 180 || got.PeakMinute == nil || !got.PeakMinute.Equal(on.Add(time.Minute)) {
		t.Fatalf("funnel times %+v", got)
	}
	c := got.Conversion
	if c.AdmittedPerJoined == nil || *c.AdmittedPerJoined != 0.8 || c.SoldPerJoined == nil || *c.SoldPerJoined != 0.4 ||
		c.SoldPerHeldTickets == nil || *c.SoldPerHeldTickets != 4.0/6 {
		t.Fatalf("conversion %+v", c)
	}
	// Before any hold: nulls, sent as null.
	e.funnels.apply([]analytics.Input{{Pos: analytics.Position{Topic: "ticketing.events", Partition: 1}, Offset: 0,
		Event: &analytics.Event{ID: "q", Type: analytics.TypeQueueJoined, Data: analytics.EventData{EventID: "club-night", At: time.Now()}}}})
	r := e.call(t, "GET", "/v1/reports/events/club-night/funnel", "", admin...)
	early := decode[EventFunnelView](t, r)
	if early.QueueJoined != 1 || early.OnSaleAt != nil || early.SoldOutAt != nil || early.PeakMinute != nil ||
		early.TimeToSellOutSeconds != nil || early.Conversion.SoldPerHeldTickets != nil {
		t.Fatalf("early funnel %+v", early)
	}
	for _, null := range []string{`"sold_out_at":null`, `"peak_minute":null`, `"sold_per_held_tickets":null`} {
		if !strings.Contains(string(r.body), null) {
			t.Errorf("%s missing from %s", null, r.body)
		}
	}
}

func TestEventFunnelErrors(t *testing.T) {
	e := newEnv(t)
	admin := e.auth(t, adminUser)
	cases := []struct {
		name, target string
		headers      []string
		status       int
		code         string
		reaches      bool
	}{
		{"no token", funnelPath, nil, 401, "unauthorized", false},
		{"wrong token", funnelPath, []string{"Authorization", "Bearer admin-secreT"}, 401, "unauthorized", false},
		{"a buyer", funnelPath, e.auth(t, buyer), 403, "forbidden", false},
		{"Basic", funnelPath, []string{"Authorization", "Basic YWRtaW4tc2VjcmV0"}, 401, "unauthorized", false},
		{"bad id without a token", "/v1/reports/events/NOPE/funnel", nil, 401, "unauthorized", false},
		{"upper case id", "/v1/reports/events/Arena-Finals/funnel", admin, 400, "invalid_request", false},
		{"escaped id", "/v1/reports/events/arena%2Efinals/funnel", admin, 400, "invalid_request", false},
		{"long id", "/v1/reports/events/" + strings.Repeat("a", 64) + "/funnel", admin, 400, "invalid_request", false},
		{"unknown event", "/v1/reports/events/nope/funnel", admin, 404, "not_found", true},
		{"nothing counted", "/v1/reports/events/club-night/funnel", admin, 404, "not_found", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := e.funnels.readCount()
			wantError(t, e.call(t, "GET", c.target, "", c.headers...), c.status, c.code, "")
			if reached := e.funnels.readCount() > before; reached != c.reaches {
				t.Fatalf("reached the analytics service: %v, want %v", reached, c.reaches)
			}
		})
	}
	e.funnels.failNext(errs.E("analytics.funnel", errs.Unavailable, "the store is not reachable; try again"))
	wantError(t, e.call(t, "GET", funnelPath, "", admin...), 503, "unavailable", "")
	wantError(t, e.call(t, "DELETE", funnelPath, "", admin...), 405, "method_not_allowed", "")

	e = newEnvWith(t, func(c *Config, d *Deps) { d.Tokens = nil })
	wantError(t, e.callAs(t, adminUser, "GET", funnelPath, ""), 401, "unauthorized", "")
	e = newEnvWith(t, func(c *Config, d *Deps) { d.Funnels = nil })
	wantError(t, e.callAs(t, adminUser, "GET", funnelPath, ""), 503, "unavailable", "")
}

// The funnel from the real analytics micro service on an embedded node, its
// funnels in its embedded (file) store.
func TestEventFunnelFromTheService(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, nc, _ := nodetest.Start(t)
	store, err := filestore.Open(filestore.Config{Path: filepath.Join(t.TempDir(), "analytics.json")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Apply(ctx, funnelInputs()); err != nil {
		t.Fatal(err)
	}
	ms, err := analyticsapi.Serve(nc, store)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ms.Stop() }()
	e := newEnvWith(t, func(_ *Config, d *Deps) { d.Funnels = &analyticsapi.Client{NC: nc} })
	admin := e.auth(t, adminUser)

	got := decode[EventFunnelView](t, e.call(t, "GET", funnelPath, "", admin...))
	want := decode[EventFunnelView](t, newEnv(t).callAs(t, adminUser, "GET", funnelPath, ""))
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("from the service %+v\nfrom the in-memory store %+v", got, want)
	}
	wantError(t, e.call(t, "GET", "/v1/reports/events/club-night/funnel", "", admin...), 404, "not_found", "")
	wantError(t, e.call(t, "GET", funnelPath, ""), 401, "unauthorized", "")
	wantError(t, e.call(t, "GET", "/v1/reports/events/a.b/funnel", "", admin...), 400, "invalid_request", "")
	_ = ms.Stop()
	wantError(t, e.call(t, "GET", funnelPath, "", admin...), 503, "unavailable", "")
}

func TestContractCatchesFunnelMismatches(t *testing.T) {
	e := newEnv(t)
	c := loadContract(t)
	good := e.callAs(t, adminUser, "GET", funnelPath, "")
	mutate := func(f func(map[string]any)) result {
		var d map[string]any
		_ = json.Unmarshal(good.body, &d)
		f(d)
		b, _ := json.Marshal(d)
		return result{200, good.header, b}
	}
	for name, r := range map[string]result{
		"extra field":          mutate(func(d map[string]any) { d["time_to_sell_out"] = 1 }),
		"no sold_out_at":       mutate(func(d map[string]any) { delete(d, "sold_out_at") }),
		"no conversion":        mutate(func(d map[string]any) { delete(d, "conversion") }),
		"negative ratio":       mutate(func(d map[string]any) { d["conversion"].(map[string]any)["sold_per_joined"] = -1 }),
		"ratio as string":      mutate(func(d map[string]any) { d["conversion"].(map[string]any)["sold_per_joined"] = "0.4" }),
		"peak_minute not time": mutate(func(d map[string]any) { d["peak_minute"] = "10:01" }),
		"fractional holds":     mutate(func(d map[string]any) { d["holds_placed"] = 1.5 }),
		"bad event id":         mutate(func(d map[string]any) { d["event_id"] = "Arena Finals" }),
		"extra conversion":     mutate(func(d map[string]any) { d["conversion"].(map[string]any)["x"] = 1 }),
		"null queue_joined":    mutate(func(d map[string]any) { d["queue_joined"] = nil }),
	} {
		rec := &recorder{TB: t}
		c.check(rec, request("GET", funnelPath, ""), r)
		if len(rec.failures) == 0 {
			t.Errorf("%s: not caught", name)
		}
	}
}
