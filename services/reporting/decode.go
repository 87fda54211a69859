package reporting

import (
	"bytes"
	"encoding/json"
	"math/bits"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/ticketing/ticketing/internal/cloudevents"
	"github.com/ticketing/ticketing/internal/errs"
)

// Kind is the inventory change an event reports.
type Kind uint8

// The kinds, by CloudEvents type.
const (
	Placed    Kind = iota + 1 // ticketing.inventory.hold.placed
	Released                  // ticketing.inventory.hold.released
	Expired                   // ticketing.inventory.hold.expired
	Sold                      // ticketing.inventory.seats.sold
	Cancelled                 // ticketing.inventory.sale.cancelled
)

// TypePrefix prefixes the CloudEvents type of inventory events.
const TypePrefix = "ticketing.inventory."

var kindOfType = map[string]Kind{
	TypePrefix + "hold.placed":    Placed,
	TypePrefix + "hold.released":  Released,
	TypePrefix + "hold.expired":   Expired,
	TypePrefix + "seats.sold":     Sold,
	TypePrefix + "sale.cancelled": Cancelled,
}

// KindOf returns the kind of a CloudEvents type; ok is false for types
// that do not change the figures.
func KindOf(typ string) (k Kind, ok bool) {
	k, ok = kindOfType[typ]
	return k, ok
}

// EventData is the data of an inventory domain event, as much of it as
// reporting reads (services/inventory.EventData writes it).
type EventData struct {
	EventID  string    `json:"event_id"`
	HoldID   string    `json:"hold_id"`
	Seats    []string  `json:"seats,omitempty"`
	Zone     string    `json:"zone,omitempty"`
	Quantity int       `json:"quantity,omitempty"`
	OrderID  string    `json:"order_id,omitempty"`
	At       time.Time `json:"at"`
	// Zones counts the tickets per price zone.
	Zones map[string]int `json:"zones,omitempty"`
	// AmountCents is the face value of those tickets.
	AmountCents int64 `json:"amount_cents"`
	// ZoneAmounts is AmountCents per zone; events without it have their
	// amount split among zones by tickets.
	ZoneAmounts   map[string]int64 `json:"zone_amount_cents,omitempty"`
	Currency      string           `json:"currency,omitempty"`
	OrganizerID   string           `json:"organizer_id,omitempty"`
	EventCapacity int              `json:"event_capacity,omitempty"`
	OnSaleAt      *time.Time       `json:"on_sale_at,omitempty"`
}

// Event is a decoded, valid inventory domain event.
type Event struct {
	ID   string // CloudEvents id
	Kind Kind
	Data EventData
	// Tickets per zone, sorted by zone: Data.Zones, or, when an older
	// producer sent none, the GA zone and quantity or the seats under
	// UnzonedZone.
	Tickets []ZoneTickets
}

// ZoneTickets is a number of tickets of one zone, with their share of the
// event's amount.
type ZoneTickets struct {
	Zone        string
	Tickets     int64
	AmountCents int64
}

var (
	idPattern       = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]*$`)
	currencyPattern = regexp.MustCompile(`^[A-Z]{3}$`)
)

func validID(s string) bool { return len(s) <= MaxIDLen && idPattern.MatchString(s) }

// ErrNotInventory is returned by Decode for a valid CloudEvent of a type
// that does not change the figures.
var ErrNotInventory = errs.E("reporting.decode", errs.NotFound, "not an inventory event that reporting counts")

// Decode decodes a record's value: a CloudEvents structured JSON body of an
// inventory event. It returns ErrNotInventory for events of other types and
// an errs.Invalid error for a body it cannot use.
func Decode(body []byte) (Event, error) {
	const op = "reporting.decode"
	ce, err := cloudevents.Unmarshal(body)
	if err != nil {
		return Event{}, errs.E(op, errs.Invalid, "not a CloudEvent", err)
	}
	k, ok := KindOf(ce.Type)
	if !ok {
		return Event{}, ErrNotInventory
	}
	if len(ce.ID) > 256 {
		return Event{}, errs.E(op, errs.Invalid, "event id longer than 256 bytes")
	}
	var d EventData
	dec := json.NewDecoder(bytes.NewReader(ce.Data))
	if len(ce.Data) == 0 {
		return Event{}, errs.E(op, errs.Invalid, "no data")
	}
	if err := dec.Decode(&d); err != nil {
		return Event{}, errs.E(op, errs.Invalid, "data", err)
	}
	e := Event{ID: ce.ID, Kind: k, Data: d}
	if e.Data.At.IsZero() {
		e.Data.At = ce.Time
	}
	// Microseconds: the precision every store keeps.
	e.Data.At = e.Data.At.UTC().Truncate(time.Microsecond)
	if e.Data.OnSaleAt != nil {
		t := e.Data.OnSaleAt.UTC().Truncate(time.Microsecond)
		e.Data.OnSaleAt = &t
	}
	if err := e.validate(); err != nil {
		return Event{}, errs.E(op, errs.Invalid, err)
	}
	return e, nil
}

func (e *Event) validate() error {
	d := &e.Data
	bad := func(format string, args ...any) error { return errs.Errorf("", errs.Invalid, format, args...) }
	if !validID(d.EventID) {
		return bad("event_id must be 1-%d letters, digits, '.', '_', ':' or '-'", MaxIDLen)
	}
	if d.OrganizerID != "" && !validID(d.OrganizerID) {
		return bad("organizer_id must be 1-%d letters, digits, '.', '_', ':' or '-'", MaxIDLen)
	}
	if d.Currency != "" && !currencyPattern.MatchString(d.Currency) {
		return bad("currency %q is not an ISO 4217 code", d.Currency)
	}
	if d.AmountCents < 0 || d.AmountCents > MaxAmountCents {
		return bad("amount_cents %d is outside 0…%d", d.AmountCents, int64(MaxAmountCents))
	}
	if d.EventCapacity < 0 || d.EventCapacity > MaxZones*MaxTickets {
		return bad("event_capacity %d is out of range", d.EventCapacity)
	}
	if y := d.At.Year(); y < 2000 || y > 9999 {
		return bad("at %v is out of range", d.At)
	}
	if d.OnSaleAt != nil {
		if y := d.OnSaleAt.Year(); y < 2000 || y > 9999 {
			return bad("on_sale_at %v is out of range", d.OnSaleAt)
		}
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
	var total int64
	e.Tickets = make([]ZoneTickets, 0, len(zones))
	for z, n := range zones {
		if z != UnzonedZone && !validID(z) {
			return bad("zone id %q is not valid", z)
		}
		if n <= 0 || n > MaxTickets {
			return bad("zone %s: %d tickets is outside 1…%d", z, n, MaxTickets)
		}
		total += int64(n)
		e.Tickets = append(e.Tickets, ZoneTickets{Zone: z, Tickets: int64(n)})
	}
	sort.Slice(e.Tickets, func(i, j int) bool { return e.Tickets[i].Zone < e.Tickets[j].Zone })
	if exactAmounts(e.Tickets, d.ZoneAmounts, d.AmountCents) {
		return nil
	}
	splitAmount(e.Tickets, total, d.AmountCents)
	return nil
}

// exactAmounts takes each zone's amount from amounts when they cover
// exactly the zones and add up to amount; else it leaves zs alone and
// reports false.
func exactAmounts(zs []ZoneTickets, amounts map[string]int64, amount int64) bool {
	if len(amounts) != len(zs) {
		return false
	}
	var sum int64
	for _, z := range zs {
		a, ok := amounts[z.Zone]
		if !ok || a < 0 || a > MaxAmountCents {
			return false
		}
		sum += a
	}
	if sum != amount {
		return false
	}
	for i := range zs {
		zs[i].AmountCents = amounts[zs[i].Zone]
	}
	return true
}

// splitAmount shares amount among the zones in proportion to their tickets,
// by largest remainder, so that the zones' amounts sum to amount exactly.
// (For events that carry one amount for all their zones: a sale spanning
// zones of different prices is then split by tickets, not by price.)
func splitAmount(zs []ZoneTickets, total, amount int64) {
	if total == 0 {
		return
	}
	var given int64
	rems := make([]int64, len(zs))
	for i := range zs {
		// 128-bit product: amount × tickets may exceed 2^63; the quotient
		// does not (tickets ≤ total).
		hi, lo := bits.Mul64(uint64(amount), uint64(zs[i].Tickets))
		q, r := bits.Div64(hi, lo, uint64(total))
		zs[i].AmountCents, rems[i] = int64(q), int64(r)
		given += zs[i].AmountCents
	}
	order := make([]int, len(zs))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return rems[order[a]] > rems[order[b]] })
	for i := 0; given < amount; i++ {
		zs[order[i%len(zs)]].AmountCents++
		given++
	}
}

// SafeName reports whether an organizer id can name a file as it is.
func SafeName(s string) bool {
	return validID(s) && !strings.Contains(s, "..")
}
