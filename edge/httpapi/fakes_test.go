package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ticketing/ticketing/conf"
	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/services/analytics"
	"github.com/ticketing/ticketing/services/catalog"
	"github.com/ticketing/ticketing/services/identity"
	"github.com/ticketing/ticketing/services/identity/token"
	"github.com/ticketing/ticketing/services/inventory"
	"github.com/ticketing/ticketing/services/orders"
	ordersapi "github.com/ticketing/ticketing/services/orders/natsapi"
	orderskv "github.com/ticketing/ticketing/services/orders/natskv"
	"github.com/ticketing/ticketing/services/pricing"
	pricingkv "github.com/ticketing/ticketing/services/pricing/natskv"
	"github.com/ticketing/ticketing/services/reporting"
	"github.com/ticketing/ticketing/services/reporting/reportingtest"
)

// fakeInventory is an in-memory stand-in for the partition owners reached
// over NATS. Each partition is a real inventory.Partition (the domain state
// machine the owners run, which records each hold's holder), driven the way
// core/owner drives it: a hold is read or released by its holder (another
// holder's hold is NotFound, as if it did not exist) or, for a reference
// without a holder, by its bearer token (an HMAC checked before anything
// else: Forbidden); placed holds carry their token; decisions are "durable"
// at once unless a test asks for the next one to stay in flight. Unknown
// partitions answer Unavailable, as the NATS client does when no owner
// answers.
type fakeInventory struct {
	mu      sync.Mutex
	secret  []byte
	parts   map[string]*inventory.Partition
	now     func() time.Time
	calls   []string // "hold <partition>", "get <hold>", …
	holdReq []inventory.HoldRequest
	// fail, when set, answers the next calls of the named operation ("hold",
	// "get", "release", "availability", "confirm", "cancel_sale") with the
	// error instead.
	fail map[string]error
	// pending keeps the decisions of Holds in flight (not yet durable)
	// until settle is called.
	pending bool
	gen     uint64
	durable uint64
}

func newFakeInventory(cache *catalog.Cache) *fakeInventory {
	f := &fakeInventory{secret: []byte("test-secret"), parts: map[string]*inventory.Partition{},
		now: time.Now, fail: map[string]error{}}
	for _, e := range cache.Events() {
		_, v, _ := cache.Event(e.ID)
		for _, pl := range e.Layouts(&v) {
			key := catalog.PartitionKey(e.ID, pl.Index)
			p, err := inventory.NewPartition(key, pl.Inventory(), inventory.DefaultLimits())
			if err != nil {
				panic(err)
			}
			p.SetBatch(0, func() uint64 { return f.durable }) // called with f.mu held
			f.parts[key] = p
		}
	}
	return f
}

var idEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

func newHoldNonce() string {
	var b [10]byte
	_, _ = rand.Read(b[:])
	return idEncoding.EncodeToString(b[:])
}

func (f *fakeInventory) enter(op, arg string) (*inventory.Partition, error) {
	f.calls = append(f.calls, op+" "+arg)
	if err, ok := f.fail[op]; ok {
		delete(f.fail, op)
		return nil, err
	}
	key := arg
	if op == "get" || op == "release" || op == "confirm" || op == "cancel_sale" {
		var ok bool
		if key, ok = inventory.PartitionOfHold(arg); !ok {
			return nil, errs.Errorf("inventory."+op, errs.NotFound, "no hold %q", arg)
		}
	}
	p, ok := f.parts[key]
	if !ok {
		return nil, errs.E("inventory."+op, errs.Unavailable, "the inventory for this event is not answering; try again")
	}
	return p, nil
}

func (f *fakeInventory) Hold(ctx context.Context, partition string, r inventory.HoldRequest) (inventory.Hold, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p, err := f.enter("hold", partition)
	if err != nil {
		return inventory.Hold{}, err
	}
	f.holdReq = append(f.holdReq, r)
	f.gen++
	if !f.pending {
		f.durable = f.gen
	}
	p.SetBatch(f.gen, func() uint64 { return f.durable })
	h, err := p.Hold(f.now(), r, newHoldNonce)
	p.TakeDecisions()
	if err == nil {
		h.HoldToken = inventory.HoldToken(f.secret, h.HoldID)
	}
	return h, err
}

// settle makes every decision durable.
func (f *fakeInventory) settle() {
	f.mu.Lock()
	f.pending = false
	f.durable = f.gen
	f.mu.Unlock()
}

// byRef finds the owner of a hold's partition (no owner: Unavailable),
// which checks, as core/owner does, that the caller may see the hold: its
// holder, or (a reference without a holder) the bearer of its token.
func (f *fakeInventory) byRef(op string, ref inventory.HoldRef) (*inventory.Partition, error) {
	p, err := f.enter(op, ref.HoldID)
	if err != nil {
		return nil, err
	}
	if ref.Holder == "" {
		if !inventory.CheckHoldToken(f.secret, ref.HoldID, ref.Token) {
			return nil, errs.E("inventory."+op, errs.Forbidden, "the hold token does not match this hold")
		}
		return p, nil
	}
	if h, err := p.Get(ref.HoldID); err == nil && h.Holder != ref.Holder {
		// Another holder's hold does not exist for this caller.
		return nil, errs.E("inventory."+op, errs.NotFound, "no such hold")
	}
	return p, nil
}

// holder is who holds a hold ("" for none or no such hold).
func (f *fakeInventory) holder(holdID string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	key, _ := inventory.PartitionOfHold(holdID)
	p, ok := f.parts[key]
	if !ok {
		return ""
	}
	h, err := p.Get(holdID)
	if err != nil {
		return ""
	}
	return h.Holder
}

func (f *fakeInventory) Get(ctx context.Context, ref inventory.HoldRef) (inventory.Hold, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p, err := f.byRef("get", ref)
	if err != nil {
		return inventory.Hold{}, err
	}
	return p.Get(ref.HoldID)
}

func (f *fakeInventory) Release(ctx context.Context, ref inventory.HoldRef) (inventory.Hold, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p, err := f.byRef("release", ref)
	if err != nil {
		return inventory.Hold{}, err
	}
	h, err := p.Release(f.now(), ref.HoldID)
	p.TakeDecisions()
	return h, err
}

// confirm sells a hold, as the order saga would.
func (f *fakeInventory) confirm(holdID string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	key, _ := inventory.PartitionOfHold(holdID)
	p, ok := f.parts[key]
	if !ok {
		return fmt.Errorf("no partition %q", key)
	}
	_, err := p.Confirm(f.now(), inventory.ConfirmRequest{HoldID: holdID, OrderID: "o-1"})
	p.TakeDecisions()
	return err
}

// Confirm sells a hold for an order (with Reclaim, a hold that ended if
// its seats are free), as the owner does for the order saga
// (orders.Inventory).
func (f *fakeInventory) Confirm(ctx context.Context, r inventory.ConfirmRequest) (inventory.Hold, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p, err := f.enter("confirm", r.HoldID)
	if err != nil {
		return inventory.Hold{}, err
	}
	h, err := p.Confirm(f.now(), r)
	p.TakeDecisions()
	return h, err
}

// CancelSale frees a sold hold of an order (a refund; orders.Inventory).
func (f *fakeInventory) CancelSale(ctx context.Context, r inventory.ConfirmRequest) (inventory.Hold, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p, err := f.enter("cancel_sale", r.HoldID)
	if err != nil {
		return inventory.Hold{}, err
	}
	h, err := p.CancelSale(f.now(), r)
	p.TakeDecisions()
	return h, err
}

// status is a hold's status now (false for no such hold).
func (f *fakeInventory) status(holdID string) (inventory.Status, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	key, _ := inventory.PartitionOfHold(holdID)
	p, ok := f.parts[key]
	if !ok {
		return 0, false
	}
	h, err := p.Get(holdID)
	if err != nil {
		return 0, false
	}
	return h.Status, true
}

func (f *fakeInventory) Availability(ctx context.Context, partition string) (inventory.Availability, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p, err := f.enter("availability", partition)
	if err != nil {
		return inventory.Availability{}, err
	}
	return p.Availability(), nil
}

func (f *fakeInventory) failNext(op string, err error) {
	f.mu.Lock()
	f.fail[op] = err
	f.mu.Unlock()
}

func (f *fakeInventory) callCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.calls)
}

func (f *fakeInventory) lastHoldRequest() inventory.HoldRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.holdReq[len(f.holdReq)-1]
}

// fakeAdmin is the catalog service behind the admin endpoints: it checks
// the token as services/catalog/natsapi does (the core's admin token, or an
// access token with the admin role, verified with the identity service's
// keys: Unauthorized otherwise), validates like catalog.Service (Invalid)
// and refuses existing ids (Conflict).
type fakeAdmin struct {
	mu       sync.Mutex
	token    string
	verifier *token.Verifier
	store    map[string]catalog.Venue
	evs      map[string]catalog.Event
	calls    int
	fail     error
}

func newFakeAdmin(cache *catalog.Cache, v *token.Verifier) *fakeAdmin {
	a := &fakeAdmin{token: "admin-secret", verifier: v, store: map[string]catalog.Venue{}, evs: map[string]catalog.Event{}}
	for _, e := range cache.Events() {
		_, v, _ := cache.Event(e.ID)
		a.store[v.ID] = v
		a.evs[e.ID] = e
	}
	return a
}

func (a *fakeAdmin) check(tok string) error {
	a.calls++
	if a.fail != nil {
		err := a.fail
		a.fail = nil
		return err
	}
	if tok == a.token {
		return nil
	}
	if c, err := a.verifier.Verify(tok, time.Now()); err == nil && c.HasScope(identity.RoleAdmin) {
		return nil
	}
	return errs.E("catalog.admin", errs.Unauthorized, "an admin's access token is required")
}

func (a *fakeAdmin) CreateVenue(ctx context.Context, tok string, v catalog.Venue) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if err := a.check(tok); err != nil {
		return err
	}
	if err := v.Validate(); err != nil {
		return err
	}
	if _, ok := a.store[v.ID]; ok {
		return errs.Errorf("catalog.create_venue", errs.Conflict, "venue %q exists", v.ID)
	}
	a.store[v.ID] = v
	return nil
}

func (a *fakeAdmin) CreateEvent(ctx context.Context, tok string, e catalog.Event) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if err := a.check(tok); err != nil {
		return err
	}
	if !catalog.ValidID(e.VenueID) {
		return errs.Errorf("catalog.event", errs.Invalid, "venue_id %q is not a valid id", e.VenueID)
	}
	v, ok := a.store[e.VenueID]
	if !ok {
		return errs.Errorf("catalog.event", errs.Invalid, "venue %q does not exist", e.VenueID)
	}
	if err := e.Validate(&v); err != nil {
		return err
	}
	if _, ok := a.evs[e.ID]; ok {
		return errs.Errorf("catalog.create_event", errs.Conflict, "event %q exists", e.ID)
	}
	a.evs[e.ID] = e
	return nil
}

func (a *fakeAdmin) callCount() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.calls
}

// demoCache is the catalog of conf/demo/demo.json.
func demoCache() *catalog.Cache {
	b, err := conf.Files.ReadFile("demo/demo.json")
	if err != nil {
		panic(err)
	}
	d, err := catalog.ParseDataset(b)
	if err != nil {
		panic(err)
	}
	c := catalog.NewCache()
	for _, v := range d.Venues {
		c.PutVenue(v)
	}
	for _, e := range d.Events {
		c.PutEvent(e)
	}
	c.MarkReady()
	return c
}

// fakeReportStore is an in-memory reporting.Store: the reporting domain's
// own fold (reporting.Fold) over records applied to it, behind the real
// reporting.Service, as the reporting micro service runs it over its
// stores. fail, when set, answers the next read with the error instead.
type fakeReportStore struct {
	mu      sync.Mutex
	agg     *reporting.Aggregates
	cursors map[reporting.Partition]reporting.Cursor
	reads   int
	fail    error
}

func newFakeReportStore(recs []reporting.Record) *fakeReportStore {
	s := &fakeReportStore{agg: reporting.NewAggregates(), cursors: map[reporting.Partition]reporting.Cursor{}}
	if _, err := s.Apply(context.Background(), recs); err != nil {
		panic(err)
	}
	return s
}

func (s *fakeReportStore) Offsets(_ context.Context, parts []reporting.Partition) (map[reporting.Partition]int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[reporting.Partition]int64{}
	for _, p := range parts {
		if c, ok := s.cursors[p]; ok {
			out[p] = c.Next
		}
	}
	return out, nil
}

func (s *fakeReportStore) Apply(_ context.Context, recs []reporting.Record) (reporting.Applied, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := reporting.Fold(s.cursors, recs)
	s.agg.Merge(f.Delta)
	for p, c := range f.Cursors {
		s.cursors[p] = c
	}
	return f.Applied, nil
}

func (s *fakeReportStore) read() error {
	s.reads++
	if err := s.fail; err != nil {
		s.fail = nil
		return err
	}
	return nil
}

func (s *fakeReportStore) Event(_ context.Context, eventID string) (reporting.EventView, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.read(); err != nil {
		return reporting.EventView{}, err
	}
	v, ok := s.agg.View(eventID)
	if !ok {
		return v, errs.Errorf("reporting.event", errs.NotFound, "no record of event %q", eventID)
	}
	return v, nil
}

func (s *fakeReportStore) Hours(_ context.Context, from, to time.Time) (reporting.HoursView, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.read(); err != nil {
		return reporting.HoursView{}, err
	}
	return s.agg.HoursIn(from, to), nil
}

func (s *fakeReportStore) failNext(err error) {
	s.mu.Lock()
	s.fail = err
	s.mu.Unlock()
}

func (s *fakeReportStore) readCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reads
}

// reportRecords are the domain events of an on-sale of arena-finals as the
// bridge writes them to Kafka: on two partitions of the inventory topic,
// two hours of holds, sales, an expiry, a release and a cancelled sale
// over two zones; on the events topic, the two orders of the sales, one of
// them (the floor ticket, with a voucher) refunded.
func reportRecords() []reporting.Record {
	const ev, org = "arena-finals", "org-1"
	t0 := reportingtest.T0
	inv := func(typ string, zones map[string]int, d time.Duration) []byte {
		return reportingtest.Body(reportingtest.Ev{Type: typ, EventID: ev, Zones: zones, Organizer: org, At: t0.Add(d)})
	}
	p0 := [][]byte{
		inv("hold.placed", map[string]int{"premium": 2}, 0),
		inv("hold.placed", map[string]int{"floor": 1}, 0),
		inv("seats.sold", map[string]int{"premium": 2}, 5*time.Minute),
		inv("seats.sold", map[string]int{"floor": 1}, 5*time.Minute),
		inv("hold.placed", map[string]int{"floor": 4}, 65*time.Minute),
		inv("hold.expired", map[string]int{"floor": 4}, 80*time.Minute),
	}
	p1 := [][]byte{
		inv("hold.placed", map[string]int{"premium": 1}, 70*time.Minute),
		inv("hold.placed", map[string]int{"floor": 2}, 71*time.Minute),
		inv("hold.released", map[string]int{"floor": 2}, 72*time.Minute),
		inv("sale.cancelled", map[string]int{"floor": 1}, 75*time.Minute),
	}
	o1 := reportingtest.Ord{Order: "o-1", EventID: ev, Organizer: org, Subtotal: 37800, Fees: 1000, Tax: 3977}
	o2 := reportingtest.Ord{Order: "o-2", EventID: ev, Organizer: org, Subtotal: 7900, Fees: 500, Discount: 790, Tax: 780}
	ord := func(o reportingtest.Ord, typ string, d time.Duration) []byte {
		o.Type, o.At = typ, t0.Add(d)
		return reportingtest.OrderBody(o)
	}
	e0 := [][]byte{
		ord(o1, "created", time.Minute), ord(o1, "paid", 5*time.Minute), ord(o1, "confirmed", 5*time.Minute),
		ord(o2, "created", 2*time.Minute), ord(o2, "paid", 5*time.Minute), ord(o2, "confirmed", 5*time.Minute),
		ord(o2, "refunding", 75*time.Minute), ord(o2, "refunded", 75*time.Minute),
	}
	recs := append(reportingtest.Records(reportingtest.InventoryTopic, 0, 0, p0...), reportingtest.Records(reportingtest.InventoryTopic, 1, 0, p1...)...)
	return append(recs, reportingtest.Records(reportingtest.EventsTopic, 0, 0, e0...)...)
}

// fakeFunnelStore keeps funnels in memory with the analytics domain's own
// fold (analytics.Fold): what the analytics micro service answers from its
// stores. fail, when set, answers the next read with the error instead.
type fakeFunnelStore struct {
	mu     sync.Mutex
	next   map[analytics.Position]int64
	states map[string]*analytics.State
	reads  int
	fail   error
}

func newFakeFunnelStore(inputs []analytics.Input) *fakeFunnelStore {
	s := &fakeFunnelStore{next: map[analytics.Position]int64{}, states: map[string]*analytics.State{}}
	s.apply(inputs)
	return s
}

func (s *fakeFunnelStore) apply(inputs []analytics.Input) {
	s.mu.Lock()
	defer s.mu.Unlock()
	copies := map[string]*analytics.State{}
	for id, st := range s.states {
		copies[id] = st.Clone()
	}
	changed, moved, _ := analytics.Fold(s.next, copies, inputs)
	for id, st := range changed {
		s.states[id] = st
	}
	for p, n := range moved {
		s.next[p] = n
	}
}

func (s *fakeFunnelStore) Funnel(_ context.Context, eventID string) (analytics.Funnel, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reads++
	if err := s.fail; err != nil {
		s.fail = nil
		return analytics.Funnel{}, err
	}
	st := s.states[eventID]
	if st == nil {
		return analytics.Funnel{}, errs.E("analytics.funnel", errs.NotFound, "no funnel for this event")
	}
	return st.Funnel(), nil
}

func (s *fakeFunnelStore) failNext(err error) {
	s.mu.Lock()
	s.fail = err
	s.mu.Unlock()
}

func (s *fakeFunnelStore) readCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reads
}

// funnelInputs are the decoded domain events of a small on-sale of
// arena-finals (capacity 4): five sessions join the waiting room, four are
// admitted, four holds of six tickets, two sales that sell it out three
// minutes after the on-sale, a hold that expires.
func funnelInputs() []analytics.Input {
	const ev = "arena-finals"
	on := time.Date(2026, 6, 1, 10, 0, 0, 0, time.UTC)
	pos := analytics.Position{Topic: "ticketing.events", Partition: 0}
	var in []analytics.Input
	add := func(typ string, at time.Duration, tickets int64) {
		d := analytics.EventData{EventID: ev, Quantity: tickets, At: on.Add(at), EventCapacity: 4, OnSaleAt: &on}
		in = append(in, analytics.Input{Pos: pos, Offset: int64(len(in)),
			Event: &analytics.Event{ID: fmt.Sprint("e", len(in)), Type: typ, Data: d}})
	}
	for i := range 5 {
		add(analytics.TypeQueueJoined, time.Duration(i)*time.Second, 0)
	}
	for i := range 4 {
		add(analytics.TypeQueueAdmitted, 10*time.Second+time.Duration(i)*time.Second, 0)
	}
	add(analytics.TypeHoldPlaced, 60*time.Second, 2)
	add(analytics.TypeHoldPlaced, 70*time.Second, 2)
	add(analytics.TypeHoldPlaced, 80*time.Second, 1)
	add(analytics.TypeHoldPlaced, 130*time.Second, 1)
	add(analytics.TypeSeatsSold, 150*time.Second, 2)
	add(analytics.TypeSeatsSold, 180*time.Second, 2)
	add(analytics.TypeHoldExpired, 200*time.Second, 1)
	return in
}

// fakeOrders is the orders service of the edge's tests, run as the core
// runs it: the real checkout and saga (services/orders) over the real
// key-value stores of orders and prices (services/orders/natskv,
// services/pricing/natskv) on the env's node, served as the "orders"
// micro service (services/orders/natsapi) and reached through its client,
// as the edge reaches it in production. Only what lies beyond the orders
// service is faked: holds are the env's fakeInventory's (which confirms,
// releases and cancels them for the saga too), payments fakePayments'.
// The saga's clock can be moved (advance). It records the requests the
// edge sent, and failNext answers an operation's next call with an error
// without asking the service.
type fakeOrders struct {
	client   *ordersapi.Client
	checkout *orders.Checkout
	prices   pricing.Store
	pay      *fakePayments
	// skew moves the saga's clock: time.Now() + skew.
	skew atomic.Int64

	mu    sync.Mutex
	calls []orderCall
	fail  map[string]error
}

// orderCall is a request the edge sent to the orders service.
type orderCall struct {
	op  string // ordersapi.OpQuote, …
	req any    // its request, as sent
}

func newFakeOrders(tb testing.TB, nc *nats.Conn, js jetstream.JetStream, inv *fakeInventory, cache *catalog.Cache) *fakeOrders {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	prices, err := pricingkv.Open(ctx, js, pricingkv.Config{})
	if err != nil {
		tb.Fatal(err)
	}
	store, err := orderskv.Open(ctx, js, nc, orderskv.Config{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(store.Close)
	f := &fakeOrders{client: &ordersapi.Client{NC: nc, Timeout: 10 * time.Second}, prices: prices, pay: newFakePayments(),
		fail: map[string]error{}}
	saga := &orders.Saga{Store: store, Inventory: inv, Payments: f.pay, Extras: prices,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Now: func() time.Time { return time.Now().Add(time.Duration(f.skew.Load())) }}
	f.checkout = &orders.Checkout{Saga: saga, Holds: inv, Catalog: cache, Prices: &pricing.Service{Store: prices}}
	svc, err := ordersapi.Serve(nc, ordersapi.Server{Checkout: f.checkout})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = svc.Stop() })
	return f
}

// enter records a call and answers the failure set for its operation.
func (f *fakeOrders) enter(op string, req any) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, orderCall{op, req})
	if err, ok := f.fail[op]; ok {
		delete(f.fail, op)
		return err
	}
	return nil
}

func (f *fakeOrders) Quote(ctx context.Context, r orders.QuoteRequest) (pricing.Quote, error) {
	if err := f.enter(ordersapi.OpQuote, r); err != nil {
		return pricing.Quote{}, err
	}
	return f.client.Quote(ctx, r)
}

func (f *fakeOrders) Create(ctx context.Context, r orders.CreateRequest) (ordersapi.Created, error) {
	if err := f.enter(ordersapi.OpCreate, r); err != nil {
		return ordersapi.Created{}, err
	}
	return f.client.Create(ctx, r)
}

func (f *fakeOrders) Get(ctx context.Context, r ordersapi.OrderRequest) (orders.View, error) {
	if err := f.enter(ordersapi.OpGet, r); err != nil {
		return orders.View{}, err
	}
	return f.client.Get(ctx, r)
}

func (f *fakeOrders) List(ctx context.Context, r ordersapi.ListRequest) (ordersapi.List, error) {
	if err := f.enter(ordersapi.OpList, r); err != nil {
		return ordersapi.List{}, err
	}
	return f.client.List(ctx, r)
}

func (f *fakeOrders) Pay(ctx context.Context, r ordersapi.PayRequest) (orders.View, error) {
	if err := f.enter(ordersapi.OpPay, r); err != nil {
		return orders.View{}, err
	}
	return f.client.Pay(ctx, r)
}

func (f *fakeOrders) Sync(ctx context.Context, r ordersapi.OrderRequest) (orders.View, error) {
	if err := f.enter(ordersapi.OpSync, r); err != nil {
		return orders.View{}, err
	}
	return f.client.Sync(ctx, r)
}

func (f *fakeOrders) Cancel(ctx context.Context, r ordersapi.OrderRequest) (orders.View, error) {
	if err := f.enter(ordersapi.OpCancel, r); err != nil {
		return orders.View{}, err
	}
	return f.client.Cancel(ctx, r)
}

func (f *fakeOrders) Refund(ctx context.Context, r ordersapi.RefundRequest) (orders.View, error) {
	if err := f.enter(ordersapi.OpRefund, r); err != nil {
		return orders.View{}, err
	}
	return f.client.Refund(ctx, r)
}

func (f *fakeOrders) Prices(ctx context.Context, event string) (pricing.Rules, error) {
	if err := f.enter(ordersapi.OpPricesGet, event); err != nil {
		return pricing.Rules{}, err
	}
	return f.client.Prices(ctx, event)
}

func (f *fakeOrders) PutPrices(ctx context.Context, event string, rules []byte) (pricing.Rules, error) {
	if err := f.enter(ordersapi.OpPricesPut, ordersapi.PricesRequest{Event: event, Rules: rules}); err != nil {
		return pricing.Rules{}, err
	}
	return f.client.PutPrices(ctx, event, rules)
}

func (f *fakeOrders) PutVoucher(ctx context.Context, voucher []byte) (pricing.Voucher, error) {
	if err := f.enter(ordersapi.OpVoucher, ordersapi.VoucherRequest{Voucher: voucher}); err != nil {
		return pricing.Voucher{}, err
	}
	return f.client.PutVoucher(ctx, voucher)
}

// failNext answers op's next call with err.
func (f *fakeOrders) failNext(op string, err error) {
	f.mu.Lock()
	f.fail[op] = err
	f.mu.Unlock()
}

func (f *fakeOrders) callCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.calls)
}

// lastRequest is the request of op's last call, or fails the test.
func lastRequest[T any](tb testing.TB, f *fakeOrders, op string) T {
	tb.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := len(f.calls) - 1; i >= 0; i-- {
		if c := f.calls[i]; c.op == op {
			r, ok := c.req.(T)
			if !ok {
				tb.Fatalf("%s request is a %T", op, c.req)
			}
			return r
		}
	}
	tb.Fatalf("no %s call", op)
	var zero T
	return zero
}

// advance moves the saga's clock forward.
func (f *fakeOrders) advance(d time.Duration) { f.skew.Add(int64(d)) }

// Card tokens of fakePayments.
const (
	pmCard     = "pm_00000000000000000000000000004242" // captured
	pmDeclined = "pm_00000000000000000000000000000002" // declined
	pm3DS      = "pm_00000000000000000000000000003220" // a 3-D Secure challenge
	pmUnknown  = "pm_ffffffffffffffffffffffffffffffff" // no such card in the vault
)

// fakePayments is the payment service as the saga sees it
// (orders.Payments), with the gateway simulator's kind of test cards: the
// card token decides how an attempt ends (pmDeclined is declined, pm3DS
// opens a 3-D Secure challenge that finish3DS ends, pmUnknown is not in
// the vault, any other token is captured). Like the real service, every call is idempotent by order.
// pays records the payment requests.
type fakePayments struct {
	mu      sync.Mutex
	byOrder map[string]orders.PaymentResult
	amounts map[string]int64
	pays    []orders.PayRequest
}

func newFakePayments() *fakePayments {
	return &fakePayments{byOrder: map[string]orders.PaymentResult{}, amounts: map[string]int64{}}
}

func (p *fakePayments) Pay(ctx context.Context, r orders.PayRequest) (orders.PaymentResult, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.pays = append(p.pays, r)
	if r.Method == pmUnknown {
		return orders.PaymentResult{}, errs.E("vault.open", errs.NotFound, "no such card")
	}
	p.amounts[r.Order] = r.Amount
	res := orders.PaymentResult{IntentID: "pi_" + r.Order}
	switch r.Method {
	case pmDeclined:
		res.Status, res.DeclineCode, res.DeclineMessage = orders.PaymentDeclined, "card_declined", "Your card was declined."
	case pm3DS:
		res.Status = orders.PaymentRequiresAction
		res.RedirectURL = "https://psp.example/3ds/" + r.Order + "?return_url=" + url.QueryEscape(r.ReturnURL)
	default:
		res.Status, res.Captured, res.Brand, res.Last4 = orders.PaymentSucceeded, r.Amount, "visa", "4242"
	}
	p.byOrder[r.Order] = res
	return res, nil
}

// finish3DS ends an order's open challenge: the payment is captured.
func (p *fakePayments) finish3DS(order string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	res := p.byOrder[order]
	res.Status, res.RedirectURL, res.Captured, res.Brand, res.Last4 = orders.PaymentSucceeded, "", p.amounts[order], "visa", "4242"
	p.byOrder[order] = res
}

// lastPay is the last payment request.
func (p *fakePayments) lastPay(tb testing.TB) orders.PayRequest {
	tb.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.pays) == 0 {
		tb.Fatal("no payment request")
	}
	return p.pays[len(p.pays)-1]
}

func (p *fakePayments) Status(ctx context.Context, order string) (orders.PaymentResult, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.byOrder[order], nil
}

func (p *fakePayments) Void(ctx context.Context, order string) (orders.PaymentResult, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	res := p.byOrder[order]
	if res.Status != orders.PaymentSucceeded && res.Status != orders.PaymentRefunded {
		res.Status, res.RedirectURL = orders.PaymentCanceled, ""
		p.byOrder[order] = res
	}
	return res, nil
}

func (p *fakePayments) Refund(ctx context.Context, order string, amount int64, reason string) (orders.PaymentResult, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	res := p.byOrder[order]
	res.Status, res.Refunded = orders.PaymentRefunded, amount
	p.byOrder[order] = res
	return res, nil
}
