// Package catalog holds venues, their seat layouts and price zones, and the
// events that sell them. It is the domain only: validation, the derivation of
// seat ids and inventory partitions, and the Store interface that adapters
// (services/catalog/natskv, …) implement.
package catalog

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/services/inventory"
)

// Limits on what a venue or an event may contain. They bound memory and the
// size of messages that carry layouts.
const (
	MaxSections      = 500
	MaxRowsPerSect   = 200
	MaxSeatsPerRow   = 500
	MaxSeatsPerVenue = 200_000
	MaxZones         = 100
	MaxGACapacity    = 1_000_000
	MaxPartitions    = 64
	MaxNameLen       = 200
	MaxPurchaseLimit = 1000
)

var idPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

// ValidID reports whether s may name a venue, event, zone or section: lower
// case letters, digits and dashes, at most 63 characters. IDs appear in NATS
// subjects and URL paths, so nothing else is allowed.
func ValidID(s string) bool { return idPattern.MatchString(s) }

var rowPattern = regexp.MustCompile(`^[A-Za-z0-9]{1,8}$`)

// ZoneKind tells reserved seating from general admission.
type ZoneKind string

const (
	Reserved ZoneKind = "reserved" // seats are chosen one by one
	GA       ZoneKind = "ga"       // a capacity, sold by quantity
)

// Zone is a price zone. Reserved zones group seats; GA zones have a capacity.
type Zone struct {
	ID         string   `json:"id"`
	Name       string   `json:"name"`
	Kind       ZoneKind `json:"kind"`
	Capacity   int      `json:"capacity,omitempty"` // GA only
	PriceCents int64    `json:"price_cents"`
	Currency   string   `json:"currency"`
}

// Row is a row of numbered seats, 1..Seats, all in one price zone.
type Row struct {
	ID    string `json:"id"`
	Seats int    `json:"seats"`
	Zone  string `json:"zone"`
}

// Section is a part of a venue's seating.
type Section struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	Rows []Row  `json:"rows"`
}

// Venue is a place with a seat layout. Venues are immutable once created, so
// that an event's inventory never changes shape under it.
type Venue struct {
	ID       string    `json:"id"`
	Name     string    `json:"name"`
	City     string    `json:"city"`
	Zones    []Zone    `json:"zones"`
	Sections []Section `json:"sections"`
}

// Seat is one reserved seat of a venue.
type Seat struct {
	ID      string `json:"id"` // "<section>-<row>-<number>", e.g. "floor-A-12"
	Section string `json:"section"`
	Row     string `json:"row"`
	Number  int    `json:"number"`
	Zone    string `json:"zone"`
}

// SeatID is the id of seat n of a row in a section.
func SeatID(section, row string, n int) string {
	return section + "-" + row + "-" + strconv.Itoa(n)
}

// Seats lists every reserved seat of the venue in layout order.
func (v *Venue) Seats() []Seat {
	var out []Seat
	for _, s := range v.Sections {
		for _, r := range s.Rows {
			for n := 1; n <= r.Seats; n++ {
				out = append(out, Seat{ID: SeatID(s.ID, r.ID, n), Section: s.ID, Row: r.ID, Number: n, Zone: r.Zone})
			}
		}
	}
	return out
}

// Zone returns the zone with the given id.
func (v *Venue) Zone(id string) (Zone, bool) {
	for _, z := range v.Zones {
		if z.ID == id {
			return z, true
		}
	}
	return Zone{}, false
}

// Capacity is the venue's total: reserved seats plus GA capacities.
func (v *Venue) Capacity() int {
	n := 0
	for _, s := range v.Sections {
		for _, r := range s.Rows {
			n += r.Seats
		}
	}
	for _, z := range v.Zones {
		if z.Kind == GA {
			n += z.Capacity
		}
	}
	return n
}

// Validate checks the venue's shape and limits.
func (v *Venue) Validate() error {
	const op = "catalog.venue"
	bad := func(format string, args ...any) error { return errs.Errorf(op, errs.Invalid, format, args...) }
	if !ValidID(v.ID) {
		return bad("venue id %q: use 1-63 lower-case letters, digits and dashes", v.ID)
	}
	if v.Name == "" || len(v.Name) > MaxNameLen {
		return bad("venue name must be 1-%d characters", MaxNameLen)
	}
	if len(v.City) > MaxNameLen {
		return bad("city is longer than %d characters", MaxNameLen)
	}
	if len(v.Zones) == 0 || len(v.Zones) > MaxZones {
		return bad("a venue needs 1-%d zones", MaxZones)
	}
	zones := map[string]ZoneKind{}
	for _, z := range v.Zones {
		if !ValidID(z.ID) {
			return bad("zone id %q is not a valid id", z.ID)
		}
		if _, dup := zones[z.ID]; dup {
			return bad("zone %q is defined twice", z.ID)
		}
		zones[z.ID] = z.Kind
		if z.Name == "" || len(z.Name) > MaxNameLen {
			return bad("zone %q: name must be 1-%d characters", z.ID, MaxNameLen)
		}
		if z.PriceCents < 0 {
			return bad("zone %q: negative price", z.ID)
		}
		if len(z.Currency) != 3 {
			return bad("zone %q: currency must be an ISO 4217 code", z.ID)
		}
		switch z.Kind {
		case GA:
			if z.Capacity < 1 || z.Capacity > MaxGACapacity {
				return bad("GA zone %q: capacity must be 1-%d", z.ID, MaxGACapacity)
			}
		case Reserved:
			if z.Capacity != 0 {
				return bad("reserved zone %q: capacity comes from its seats; leave it out", z.ID)
			}
		default:
			return bad("zone %q: kind must be %q or %q", z.ID, Reserved, GA)
		}
	}
	if len(v.Sections) > MaxSections {
		return bad("at most %d sections", MaxSections)
	}
	sections := map[string]bool{}
	seats := 0
	for _, s := range v.Sections {
		if !ValidID(s.ID) {
			return bad("section id %q is not a valid id", s.ID)
		}
		if sections[s.ID] {
			return bad("section %q is defined twice", s.ID)
		}
		sections[s.ID] = true
		if len(s.Name) > MaxNameLen {
			return bad("section %q: name longer than %d characters", s.ID, MaxNameLen)
		}
		if len(s.Rows) == 0 || len(s.Rows) > MaxRowsPerSect {
			return bad("section %q needs 1-%d rows", s.ID, MaxRowsPerSect)
		}
		rows := map[string]bool{}
		for _, r := range s.Rows {
			if !rowPattern.MatchString(r.ID) {
				return bad("section %q: row id %q must be 1-8 letters or digits", s.ID, r.ID)
			}
			if rows[r.ID] {
				return bad("section %q: row %q is defined twice", s.ID, r.ID)
			}
			rows[r.ID] = true
			if r.Seats < 1 || r.Seats > MaxSeatsPerRow {
				return bad("section %q row %q: 1-%d seats", s.ID, r.ID, MaxSeatsPerRow)
			}
			if zones[r.Zone] != Reserved {
				return bad("section %q row %q: zone %q is not a reserved zone of this venue", s.ID, r.ID, r.Zone)
			}
			seats += r.Seats
		}
	}
	if seats > MaxSeatsPerVenue {
		return bad("%d seats is more than the %d allowed", seats, MaxSeatsPerVenue)
	}
	if v.Capacity() == 0 {
		return bad("venue has no seats and no GA capacity")
	}
	return nil
}

// PartitionSpec says which sections and GA zones one inventory partition of an
// event holds. A hold stays within one partition.
type PartitionSpec struct {
	Sections []string `json:"sections,omitempty"`
	GAZones  []string `json:"ga_zones,omitempty"`
}

// Event is a show at a venue. Its inventory is one partition unless
// Partitions splits it by section.
type Event struct {
	ID       string    `json:"id"`
	Name     string    `json:"name"`
	VenueID  string    `json:"venue_id"`
	StartsAt time.Time `json:"starts_at"`
	OnSaleAt time.Time `json:"on_sale_at"`
	// OrganizerID names who sells the event (reports and finance exports
	// are per organizer). Optional.
	OrganizerID string          `json:"organizer_id,omitempty"`
	Partitions  []PartitionSpec `json:"partitions,omitempty"`
	// Queue turns the event's waiting room on: users wait at the edge and
	// are admitted by the core, and holds need an admission token.
	Queue bool `json:"queue,omitempty"`
	// PurchaseLimit is how many tickets of the event one account may buy,
	// over all its orders and channels; 0: the platform's default.
	PurchaseLimit int `json:"purchase_limit,omitempty"`
}

// Validate checks the event against its venue.
func (e *Event) Validate(v *Venue) error {
	const op = "catalog.event"
	bad := func(format string, args ...any) error { return errs.Errorf(op, errs.Invalid, format, args...) }
	if !ValidID(e.ID) {
		return bad("event id %q: use 1-63 lower-case letters, digits and dashes", e.ID)
	}
	if e.Name == "" || len(e.Name) > MaxNameLen {
		return bad("event name must be 1-%d characters", MaxNameLen)
	}
	if v == nil || e.VenueID != v.ID {
		return bad("venue %q does not exist", e.VenueID)
	}
	if e.OrganizerID != "" && !ValidID(e.OrganizerID) {
		return bad("organizer id %q: use 1-63 lower-case letters, digits and dashes", e.OrganizerID)
	}
	if e.StartsAt.IsZero() || e.OnSaleAt.IsZero() {
		return bad("starts_at and on_sale_at are required (RFC 3339)")
	}
	if !e.OnSaleAt.Before(e.StartsAt) {
		return bad("on_sale_at must be before starts_at")
	}
	if len(e.Partitions) > MaxPartitions {
		return bad("at most %d partitions", MaxPartitions)
	}
	if e.PurchaseLimit < 0 || e.PurchaseLimit > MaxPurchaseLimit {
		return bad("purchase_limit must be 0-%d", MaxPurchaseLimit)
	}
	if len(e.Partitions) > 0 {
		sections := map[string]int{}
		for _, s := range v.Sections {
			sections[s.ID] = -1
		}
		gas := map[string]int{}
		for _, z := range v.Zones {
			if z.Kind == GA {
				gas[z.ID] = -1
			}
		}
		for i, p := range e.Partitions {
			if len(p.Sections)+len(p.GAZones) == 0 {
				return bad("partition %d is empty", i)
			}
			for _, s := range p.Sections {
				prev, ok := sections[s]
				if !ok {
					return bad("partition %d: venue has no section %q", i, s)
				}
				if prev >= 0 {
					return bad("section %q is in partitions %d and %d", s, prev, i)
				}
				sections[s] = i
			}
			for _, z := range p.GAZones {
				prev, ok := gas[z]
				if !ok {
					return bad("partition %d: venue has no GA zone %q", i, z)
				}
				if prev >= 0 {
					return bad("GA zone %q is in partitions %d and %d", z, prev, i)
				}
				gas[z] = i
			}
		}
		for s, p := range sections {
			if p < 0 {
				return bad("section %q is in no partition", s)
			}
		}
		for z, p := range gas {
			if p < 0 {
				return bad("GA zone %q is in no partition", z)
			}
		}
	}
	return nil
}

// PartitionCount is how many inventory partitions the event has.
func (e *Event) PartitionCount() int {
	if len(e.Partitions) == 0 {
		return 1
	}
	return len(e.Partitions)
}

// PartitionLayout is what one inventory partition holds: its seats in layout
// order and its GA zones.
type PartitionLayout struct {
	Index   int
	Seats   []Seat
	GAZones []Zone
	// Zones are the venue's zones (for prices); Facts the event's, stamped
	// on domain events.
	Zones []Zone
	Facts inventory.EventFacts
}

// Layouts splits the venue's inventory into the event's partitions.
func (e *Event) Layouts(v *Venue) []PartitionLayout {
	n := e.PartitionCount()
	out := make([]PartitionLayout, n)
	sectionPart := map[string]int{}
	gaPart := map[string]int{}
	for i, p := range e.Partitions {
		for _, s := range p.Sections {
			sectionPart[s] = i
		}
		for _, z := range p.GAZones {
			gaPart[z] = i
		}
	}
	facts := inventory.EventFacts{OrganizerID: e.OrganizerID, OnSaleAt: e.OnSaleAt}
	seats := v.Seats()
	facts.Capacity = len(seats)
	for _, z := range v.Zones {
		facts.Capacity += z.Capacity // zero for reserved zones
	}
	for i := range out {
		out[i].Index = i
		out[i].Zones = v.Zones
		out[i].Facts = facts
	}
	for _, s := range seats {
		i := sectionPart[s.Section]
		out[i].Seats = append(out[i].Seats, s)
	}
	for _, z := range v.Zones {
		if z.Kind == GA {
			i := gaPart[z.ID]
			out[i].GAZones = append(out[i].GAZones, z)
		}
	}
	return out
}

// Inventory is the partition's layout as the inventory sees it: seats with
// their zones, the reserved zones they make up, and the GA zones with their
// capacities.
func (pl PartitionLayout) Inventory() inventory.Layout {
	l := inventory.Layout{Event: pl.Facts}
	price := map[string]Zone{}
	for _, z := range pl.Zones {
		price[z.ID] = z
	}
	zones := map[string]bool{}
	for _, s := range pl.Seats {
		l.Seats = append(l.Seats, inventory.SeatDef{ID: s.ID, Zone: s.Zone})
		if !zones[s.Zone] {
			zones[s.Zone] = true
			z := price[s.Zone]
			l.Zones = append(l.Zones, inventory.ZoneDef{ID: s.Zone, PriceCents: z.PriceCents, Currency: z.Currency})
		}
	}
	for _, z := range pl.GAZones {
		l.Zones = append(l.Zones, inventory.ZoneDef{ID: z.ID, GA: true, Capacity: z.Capacity, PriceCents: z.PriceCents, Currency: z.Currency})
	}
	return l
}

// Router maps a seat or GA zone of an event to its partition index.
type Router struct {
	seats map[string]int
	zones map[string]int
}

// NewRouter builds the router for an event at its venue.
func NewRouter(e *Event, v *Venue) *Router {
	r := &Router{seats: map[string]int{}, zones: map[string]int{}}
	for _, l := range e.Layouts(v) {
		for _, s := range l.Seats {
			r.seats[s.ID] = l.Index
		}
		for _, z := range l.GAZones {
			r.zones[z.ID] = l.Index
		}
	}
	return r
}

// SeatsPartition returns the one partition that holds all the seats, or an
// Invalid error naming an unknown seat or saying that they span partitions.
func (r *Router) SeatsPartition(seats []string) (int, error) {
	const op = "catalog.route"
	part := -1
	for _, s := range seats {
		p, ok := r.seats[s]
		if !ok {
			return 0, errs.Errorf(op, errs.Invalid, "unknown seat %q", s).WithReason("unknown_seat")
		}
		if part >= 0 && p != part {
			return 0, errs.Errorf(op, errs.Invalid, "seats %q and %q are in different inventory partitions of this event; hold them separately", seats[0], s).WithReason("cross_partition")
		}
		part = p
	}
	if part < 0 {
		return 0, errs.Errorf(op, errs.Invalid, "no seats given")
	}
	return part, nil
}

// ZonePartition returns the partition that holds a GA zone.
func (r *Router) ZonePartition(zone string) (int, error) {
	p, ok := r.zones[zone]
	if !ok {
		return 0, errs.Errorf("catalog.route", errs.Invalid, "unknown general-admission zone %q", zone).WithReason("unknown_zone")
	}
	return p, nil
}

// Store keeps venues and events durably. Implementations are safe for
// concurrent use. Create methods fail with errs.Conflict when the id exists;
// Get methods fail with errs.NotFound.
type Store interface {
	CreateVenue(ctx context.Context, v Venue) error
	Venue(ctx context.Context, id string) (Venue, error)
	Venues(ctx context.Context) ([]Venue, error)
	CreateEvent(ctx context.Context, e Event) error
	Event(ctx context.Context, id string) (Event, error)
	Events(ctx context.Context) ([]Event, error)
}

// Service validates and stores catalog entries.
type Service struct {
	Store Store
}

// CreateVenue validates and stores a venue.
func (s *Service) CreateVenue(ctx context.Context, v Venue) error {
	if err := v.Validate(); err != nil {
		return err
	}
	return s.Store.CreateVenue(ctx, v)
}

// CreateEvent validates an event against its venue and stores it.
func (s *Service) CreateEvent(ctx context.Context, e Event) error {
	if !ValidID(e.VenueID) {
		return errs.Errorf("catalog.event", errs.Invalid, "venue_id %q is not a valid id", e.VenueID)
	}
	v, err := s.Store.Venue(ctx, e.VenueID)
	if errs.Is(errs.NotFound, err) {
		return errs.Errorf("catalog.event", errs.Invalid, "venue %q does not exist", e.VenueID)
	}
	if err != nil {
		return err
	}
	e.StartsAt, e.OnSaleAt = e.StartsAt.UTC(), e.OnSaleAt.UTC()
	if err := e.Validate(&v); err != nil {
		return err
	}
	return s.Store.CreateEvent(ctx, e)
}

// PartitionKey names partition i of an event: "<event>.<i>". It appears in
// NATS subjects and hold ids.
func PartitionKey(eventID string, i int) string { return fmt.Sprintf("%s.%d", eventID, i) }

// SeatZone returns the zone of a reserved seat of the venue by its id
// ("<section>-<row>-<number>"; rows are letters and digits, so the
// section is what precedes the last two dashes).
func (v *Venue) SeatZone(id string) (string, bool) {
	j := strings.LastIndexByte(id, '-')
	if j <= 0 {
		return "", false
	}
	n, err := strconv.Atoi(id[j+1:])
	if err != nil || n < 1 {
		return "", false
	}
	i := strings.LastIndexByte(id[:j], '-')
	if i <= 0 {
		return "", false
	}
	section, row := id[:i], id[i+1:j]
	for _, s := range v.Sections {
		if s.ID != section {
			continue
		}
		for _, r := range s.Rows {
			if r.ID == row && n <= r.Seats {
				return r.Zone, true
			}
		}
	}
	return "", false
}
