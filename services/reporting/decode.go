package reporting

import (
	"bytes"
	"encoding/json"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/ticketing/ticketing/internal/cloudevents"
	"github.com/ticketing/ticketing/internal/errs"
)

// Kind is the change an event reports.
type Kind uint8

// The kinds, by CloudEvents type: inventory events move tickets, order
// events move money.
const (
	Placed        Kind = iota + 1 // ticketing.inventory.hold.placed
	Released                      // ticketing.inventory.hold.released
	Expired                       // ticketing.inventory.hold.expired
	Sold                          // ticketing.inventory.seats.sold
	Cancelled                     // ticketing.inventory.sale.cancelled
	OrderPaid                     // ticketing.order.paid
	OrderRefunded                 // ticketing.order.refunded
)

// IsOrder reports whether k is the kind of an order event.
func (k Kind) IsOrder() bool { return k == OrderPaid || k == OrderRefunded }

// The prefixes of the CloudEvents types of inventory and order events.
const (
	InventoryTypePrefix = "ticketing.inventory."
	OrderTypePrefix     = "ticketing.order."
)

var kindOfType = map[string]Kind{
	InventoryTypePrefix + "hold.placed":    Placed,
	InventoryTypePrefix + "hold.released":  Released,
	InventoryTypePrefix + "hold.expired":   Expired,
	InventoryTypePrefix + "seats.sold":     Sold,
	InventoryTypePrefix + "sale.cancelled": Cancelled,
	OrderTypePrefix + "paid":               OrderPaid,
	OrderTypePrefix + "refunded":           OrderRefunded,
}

// KindOf returns the kind of a CloudEvents type; ok is false for types
// that do not change the figures.
func KindOf(typ string) (k Kind, ok bool) {
	k, ok = kindOfType[typ]
	return k, ok
}

// EventData is the data of an inventory domain event, as much of it as
// reporting reads (services/inventory.EventData writes it). Its face
// values (amount_cents) are not read: the money of a report is the
// orders'.
type EventData struct {
	EventID  string    `json:"event_id"`
	HoldID   string    `json:"hold_id"`
	Seats    []string  `json:"seats,omitempty"`
	Zone     string    `json:"zone,omitempty"`
	Quantity int       `json:"quantity,omitempty"`
	OrderID  string    `json:"order_id,omitempty"`
	At       time.Time `json:"at"`
	// Zones counts the tickets per price zone.
	Zones         map[string]int `json:"zones,omitempty"`
	Currency      string         `json:"currency,omitempty"`
	OrganizerID   string         `json:"organizer_id,omitempty"`
	EventCapacity int            `json:"event_capacity,omitempty"`
	OnSaleAt      *time.Time     `json:"on_sale_at,omitempty"`
}

// OrderData is the data of an order domain event, as much of it as
// reporting reads (services/orders.Summary writes it): the order's
// amounts as quoted and what its payment captured and refunded, in minor
// units of Amounts.Currency. A late payment (its "late") counts like any
// other.
type OrderData struct {
	Order     string       `json:"order"`
	Event     string       `json:"event"`
	Organizer string       `json:"organizer,omitempty"`
	Amounts   OrderAmounts `json:"amounts"`
	Captured  int64        `json:"captured"`
	Refunded  int64        `json:"refunded"`
}

// OrderAmounts are an order's totals (services/orders.Amounts): Subtotal
// is tickets and add-ons, Discount what a voucher took off, Tax included
// in the other amounts or added to them, Total what the buyer pays.
type OrderAmounts struct {
	Currency string `json:"currency"`
	Subtotal int64  `json:"subtotal"`
	Fees     int64  `json:"fees"`
	Tax      int64  `json:"tax"`
	Discount int64  `json:"discount"`
	Total    int64  `json:"total"`
}

// Event is a decoded, valid inventory or order domain event.
type Event struct {
	ID   string // CloudEvents id
	Kind Kind
	// At is when it happened, UTC, to the microsecond: an inventory
	// event's data "at" (its CloudEvents time when it has none), an order
	// event's CloudEvents time (the transition's).
	At time.Time
	// Data is an inventory event's data (kinds Placed to Cancelled).
	Data EventData
	// Tickets per zone, sorted by zone, of an inventory event: Data.Zones,
	// or, when an older producer sent none, the GA zone and quantity or
	// the seats under UnzonedZone.
	Tickets []ZoneTickets
	// Order is an order event's data (kinds OrderPaid and OrderRefunded).
	Order OrderData
}

// EventID is the id of the (ticketed) event the domain event is about.
func (e *Event) EventID() string {
	if e.Kind.IsOrder() {
		return e.Order.Event
	}
	return e.Data.EventID
}

// ZoneTickets is a number of tickets of one zone.
type ZoneTickets struct {
	Zone    string
	Tickets int64
}

var (
	idPattern       = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]*$`)
	currencyPattern = regexp.MustCompile(`^[A-Z]{3}$`)
)

func validID(s string) bool { return len(s) <= MaxIDLen && idPattern.MatchString(s) }

// ErrNotCounted is returned by Decode for a valid CloudEvent of a type
// that does not change the figures.
var ErrNotCounted = errs.E("reporting.decode", errs.NotFound, "not an event that reporting counts")

// Decode decodes a record's value: a CloudEvents structured JSON body of an
// inventory or order event. It returns ErrNotCounted for events of other
// types and an errs.Invalid error for a body it cannot use.
func Decode(body []byte) (Event, error) {
	const op = "reporting.decode"
	ce, err := cloudevents.Unmarshal(body)
	if err != nil {
		return Event{}, errs.E(op, errs.Invalid, "not a CloudEvent", err)
	}
	k, ok := KindOf(ce.Type)
	if !ok {
		return Event{}, ErrNotCounted
	}
	if len(ce.ID) > 256 {
		return Event{}, errs.E(op, errs.Invalid, "event id longer than 256 bytes")
	}
	if len(ce.Data) == 0 {
		return Event{}, errs.E(op, errs.Invalid, "no data")
	}
	e := Event{ID: ce.ID, Kind: k}
	var data any = &e.Data
	if k.IsOrder() {
		data = &e.Order
	}
	if err := json.NewDecoder(bytes.NewReader(ce.Data)).Decode(data); err != nil {
		return Event{}, errs.E(op, errs.Invalid, "data", err)
	}
	// Microseconds: the precision every store keeps.
	if k.IsOrder() {
		e.At = ce.Time.UTC().Truncate(time.Microsecond)
		err = e.validateOrder()
	} else {
		if e.Data.At.IsZero() {
			e.Data.At = ce.Time
		}
		e.Data.At = e.Data.At.UTC().Truncate(time.Microsecond)
		e.At = e.Data.At
		if e.Data.OnSaleAt != nil {
			t := e.Data.OnSaleAt.UTC().Truncate(time.Microsecond)
			e.Data.OnSaleAt = &t
		}
		err = e.validateInventory()
	}
	if err != nil {
		return Event{}, errs.E(op, errs.Invalid, err)
	}
	return e, nil
}

func bad(format string, args ...any) error { return errs.Errorf("", errs.Invalid, format, args...) }

func validTime(t time.Time) bool { y := t.Year(); return y >= 2000 && y <= 9999 }

func (e *Event) validateInventory() error {
	d := &e.Data
	if !validID(d.EventID) {
		return bad("event_id must be 1-%d letters, digits, '.', '_', ':' or '-'", MaxIDLen)
	}
	if d.OrganizerID != "" && !validID(d.OrganizerID) {
		return bad("organizer_id must be 1-%d letters, digits, '.', '_', ':' or '-'", MaxIDLen)
	}
	if d.Currency != "" && !currencyPattern.MatchString(d.Currency) {
		return bad("currency %q is not an ISO 4217 code", d.Currency)
	}
	if d.EventCapacity < 0 || d.EventCapacity > MaxZones*MaxTickets {
		return bad("event_capacity %d is out of range", d.EventCapacity)
	}
	if !validTime(d.At) {
		return bad("at %v is out of range", d.At)
	}
	if d.OnSaleAt != nil && !validTime(*d.OnSaleAt) {
		return bad("on_sale_at %v is out of range", d.OnSaleAt)
	}
	zones := d.Zones
	if len(zones) == 0 {
		switch {
		case d.Zone != "" && d.Quantity > 0:
			zones = map[string]int{d.Zone: d.Quantity}
		case len(d.Seats) > 0:
			zones = map[string]int{UnzonedZone: len(d.Seats)}
		}
	}
	if len(zones) == 0 {
		return bad("no tickets: zones, zone and quantity, or seats are required")
	}
	if len(zones) > MaxZones {
		return bad("more than %d zones", MaxZones)
	}
	e.Tickets = make([]ZoneTickets, 0, len(zones))
	for z, n := range zones {
		if z != UnzonedZone && !validID(z) {
			return bad("zone id %q is not valid", z)
		}
		if n <= 0 || n > MaxTickets {
			return bad("zone %s: %d tickets is outside 1…%d", z, n, MaxTickets)
		}
		e.Tickets = append(e.Tickets, ZoneTickets{Zone: z, Tickets: int64(n)})
	}
	sort.Slice(e.Tickets, func(i, j int) bool { return e.Tickets[i].Zone < e.Tickets[j].Zone })
	return nil
}

func (e *Event) validateOrder() error {
	d := &e.Order
	if !validID(d.Order) {
		return bad("order must be 1-%d letters, digits, '.', '_', ':' or '-'", MaxIDLen)
	}
	if !validID(d.Event) {
		return bad("event must be 1-%d letters, digits, '.', '_', ':' or '-'", MaxIDLen)
	}
	if d.Organizer != "" && !validID(d.Organizer) {
		return bad("organizer must be 1-%d letters, digits, '.', '_', ':' or '-'", MaxIDLen)
	}
	if !currencyPattern.MatchString(d.Amounts.Currency) {
		return bad("amounts.currency %q is not an ISO 4217 code", d.Amounts.Currency)
	}
	a := d.Amounts
	for _, m := range []struct {
		name string
		v    int64
	}{{"amounts.subtotal", a.Subtotal}, {"amounts.fees", a.Fees}, {"amounts.tax", a.Tax}, {"amounts.discount", a.Discount},
		{"amounts.total", a.Total}, {"captured", d.Captured}, {"refunded", d.Refunded}} {
		if m.v < 0 || m.v > MaxAmountCents {
			return bad("%s %d is outside 0…%d", m.name, m.v, int64(MaxAmountCents))
		}
	}
	if !validTime(e.At) {
		return bad("time %v is out of range", e.At)
	}
	return nil
}

// SafeName reports whether an organizer id can name a file as it is.
func SafeName(s string) bool {
	return validID(s) && !strings.Contains(s, "..")
}
