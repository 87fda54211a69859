package inventory

import (
	"slices"
	"strings"
	"time"

	"github.com/ticketing/ticketing/internal/jsonw"
)

// EventTypePrefix prefixes the CloudEvents type of inventory domain events.
const EventTypePrefix = "ticketing.inventory."

// EventData is the data of an inventory domain event. Events are
// self-describing for the consumers behind Kafka (reporting, analytics,
// finance): besides the decision they carry the tickets per price zone, the
// face value and the facts of the event the partition belongs to, so that
// no consumer needs to call back into the catalog.
type EventData struct {
	EventID   string     `json:"event_id"`
	Partition string     `json:"partition"`
	HoldID    string     `json:"hold_id"`
	Seats     []string   `json:"seats,omitempty"`
	Zone      string     `json:"zone,omitempty"`
	Quantity  int        `json:"quantity,omitempty"`
	Holder    string     `json:"holder,omitempty"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
	OrderID   string     `json:"order_id,omitempty"`
	At        time.Time  `json:"at"`
	// Zones counts the tickets of the decision per price zone.
	Zones map[string]int `json:"zones,omitempty"`
	// AmountCents is the face value of those tickets at the catalog's zone
	// prices, in Currency.
	AmountCents int64  `json:"amount_cents"`
	Currency    string `json:"currency,omitempty"`
	// ZoneAmounts is AmountCents per price zone.
	ZoneAmounts map[string]int64 `json:"zone_amount_cents,omitempty"`
	// OrganizerID, EventCapacity (tickets of the whole event, every
	// partition) and OnSaleAt are the event's facts.
	OrganizerID   string     `json:"organizer_id,omitempty"`
	EventCapacity int        `json:"event_capacity,omitempty"`
	OnSaleAt      *time.Time `json:"on_sale_at,omitempty"`
}

// Events turns a partition's decisions into domain events. It reads only the
// partition's layout, which never changes, so it is safe for concurrent use
// beside the goroutine that drives the Partition.
type Events struct {
	key, event string
	seatZone   map[string]string
	zones      map[string]ZoneDef
	facts      EventFacts
}

// NewEvents returns the domain-event builder of partition key ("<event>.<i>")
// with layout l.
func NewEvents(key string, l Layout) *Events {
	e := &Events{key: key, event: key, seatZone: make(map[string]string, len(l.Seats)),
		zones: make(map[string]ZoneDef, len(l.Zones)), facts: l.Event}
	if i := strings.LastIndexByte(key, '.'); i > 0 {
		e.event = key[:i]
	}
	for _, s := range l.Seats {
		e.seatZone[s.ID] = s.Zone
	}
	for _, z := range l.Zones {
		e.zones[z.ID] = z
	}
	return e
}

// Of returns the domain event of decision d: its CloudEvents type and data.
// ok is false for decisions that are not domain events. Every decision
// carries the seats or zone and quantity it concerns.
func (e *Events) Of(d *Decision) (typ string, data EventData, ok bool) {
	if !d.Type.IsDomainEvent() {
		return "", EventData{}, false
	}
	data = EventData{EventID: e.event, Partition: e.key, HoldID: d.Hold, Seats: d.Seats, Zone: d.Zone,
		Quantity: d.Qty, Holder: d.Holder, OrderID: d.Order, At: d.Time(),
		OrganizerID: e.facts.OrganizerID, EventCapacity: e.facts.Capacity}
	if !e.facts.OnSaleAt.IsZero() {
		t := e.facts.OnSaleAt.UTC()
		data.OnSaleAt = &t
	}
	if d.Type == HoldPlaced {
		t := time.Unix(0, d.Expires).UTC()
		data.ExpiresAt = &t
	}
	count := func(zone string, n int) {
		if data.Zones == nil {
			data.Zones = make(map[string]int, 2)
			data.ZoneAmounts = make(map[string]int64, 2)
		}
		data.Zones[zone] += n
		z := e.zones[zone]
		data.ZoneAmounts[zone] += z.PriceCents * int64(n)
		data.AmountCents += z.PriceCents * int64(n)
		if data.Currency == "" {
			data.Currency = z.Currency
		}
	}
	for _, s := range d.Seats {
		count(e.seatZone[s], 1)
	}
	if d.Zone != "" && d.Qty > 0 {
		count(d.Zone, d.Qty)
	}
	return EventTypePrefix + string(d.Type), data, true
}

// AppendJSON appends d as encoding/json encodes it (the same fields, order,
// omissions and escaping; map keys sorted), without reflection: every
// decision's event is encoded on the relay's path. TestEventDataJSON
// compares the two.
func (d *EventData) AppendJSON(b []byte) ([]byte, error) {
	if d == nil {
		return append(b, "null"...), nil
	}
	var err error
	b = append(b, '{')
	b = jsonw.Key(b, "event_id", true)
	b = jsonw.String(b, d.EventID)
	b = jsonw.Key(b, "partition", false)
	b = jsonw.String(b, d.Partition)
	b = jsonw.Key(b, "hold_id", false)
	b = jsonw.String(b, d.HoldID)
	if len(d.Seats) > 0 {
		b = jsonw.Key(b, "seats", false)
		b = jsonw.Strings(b, d.Seats)
	}
	if d.Zone != "" {
		b = jsonw.Key(b, "zone", false)
		b = jsonw.String(b, d.Zone)
	}
	if d.Quantity != 0 {
		b = jsonw.Key(b, "quantity", false)
		b = jsonw.Int(b, int64(d.Quantity))
	}
	if d.Holder != "" {
		b = jsonw.Key(b, "holder", false)
		b = jsonw.String(b, d.Holder)
	}
	if d.ExpiresAt != nil {
		b = jsonw.Key(b, "expires_at", false)
		if b, err = jsonw.Time(b, *d.ExpiresAt); err != nil {
			return b, err
		}
	}
	if d.OrderID != "" {
		b = jsonw.Key(b, "order_id", false)
		b = jsonw.String(b, d.OrderID)
	}
	b = jsonw.Key(b, "at", false)
	if b, err = jsonw.Time(b, d.At); err != nil {
		return b, err
	}
	if len(d.Zones) > 0 {
		b = jsonw.Key(b, "zones", false)
		b = appendCounts(b, d.Zones)
	}
	b = jsonw.Key(b, "amount_cents", false)
	b = jsonw.Int(b, d.AmountCents)
	if d.Currency != "" {
		b = jsonw.Key(b, "currency", false)
		b = jsonw.String(b, d.Currency)
	}
	if len(d.ZoneAmounts) > 0 {
		b = jsonw.Key(b, "zone_amount_cents", false)
		b = appendCounts(b, d.ZoneAmounts)
	}
	if d.OrganizerID != "" {
		b = jsonw.Key(b, "organizer_id", false)
		b = jsonw.String(b, d.OrganizerID)
	}
	if d.EventCapacity != 0 {
		b = jsonw.Key(b, "event_capacity", false)
		b = jsonw.Int(b, int64(d.EventCapacity))
	}
	if d.OnSaleAt != nil {
		b = jsonw.Key(b, "on_sale_at", false)
		if b, err = jsonw.Time(b, *d.OnSaleAt); err != nil {
			return b, err
		}
	}
	return append(b, '}'), nil
}

// appendCounts appends a map of counts with its keys sorted, as
// encoding/json does. The maps here have a zone or two.
func appendCounts[N int | int64](b []byte, m map[string]N) []byte {
	var small [4]string
	keys := small[:0]
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	b = append(b, '{')
	for i, k := range keys {
		b = jsonw.Key(b, k, i == 0)
		b = jsonw.Int(b, int64(m[k]))
	}
	return append(b, '}')
}
