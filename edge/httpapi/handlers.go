package httpapi

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/internal/jsonw"
	"github.com/ticketing/ticketing/services/catalog"
	"github.com/ticketing/ticketing/services/inventory"
)

// EventSummary is an event in the list.
type EventSummary struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	VenueID   string    `json:"venue_id"`
	VenueName string    `json:"venue_name"`
	City      string    `json:"city"`
	StartsAt  time.Time `json:"starts_at"`
	OnSaleAt  time.Time `json:"on_sale_at"`
	// Queue: the event's waiting room is on; holds need an admission token.
	Queue bool `json:"queue"`
}

// EventList is the body of GET /v1/events.
type EventList struct {
	Events []EventSummary `json:"events"`
}

func (a *API) listEvents(c *fiber.Ctx) error {
	out := EventList{Events: []EventSummary{}}
	for _, e := range a.deps.Catalog.Events() {
		v, _ := a.deps.Catalog.Venue(e.VenueID)
		out.Events = append(out.Events, EventSummary{ID: e.ID, Name: e.Name, VenueID: v.ID, VenueName: v.Name,
			City: v.City, StartsAt: e.StartsAt, OnSaleAt: e.OnSaleAt, Queue: e.Queue})
	}
	return c.JSON(out)
}

// RowView is a row of an event's layout with its seat ids.
type RowView struct {
	ID    string   `json:"id"`
	Zone  string   `json:"zone"`
	Seats []string `json:"seats"`
}

// SectionView is a section of an event's layout.
type SectionView struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Partition int       `json:"partition"`
	Rows      []RowView `json:"rows"`
}

// ZoneView is a price zone of an event.
type ZoneView struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	Kind       string `json:"kind"`
	Capacity   int    `json:"capacity"`
	PriceCents int64  `json:"price_cents"`
	Currency   string `json:"currency"`
	Partition  *int   `json:"partition,omitempty"`
}

// VenueView is the venue of an event.
type VenueView struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	City string `json:"city"`
}

// EventView is the body of GET /v1/events/{id}.
type EventView struct {
	ID         string        `json:"id"`
	Name       string        `json:"name"`
	Venue      VenueView     `json:"venue"`
	StartsAt   time.Time     `json:"starts_at"`
	OnSaleAt   time.Time     `json:"on_sale_at"`
	Queue      bool          `json:"queue"`
	Partitions int           `json:"partitions"`
	Zones      []ZoneView    `json:"zones"`
	Sections   []SectionView `json:"sections"`
}

func (a *API) event(c *fiber.Ctx) (catalog.Event, catalog.Venue, error) {
	id := c.Params("id")
	e, v, ok := a.deps.Catalog.Event(id)
	if !ok {
		return e, v, errs.Errorf("edge.event", errs.NotFound, "no event %q", id)
	}
	return e, v, nil
}

func (a *API) getEvent(c *fiber.Ctx) error {
	e, v, err := a.event(c)
	if err != nil {
		return err
	}
	view := EventView{ID: e.ID, Name: e.Name, Venue: VenueView{v.ID, v.Name, v.City}, StartsAt: e.StartsAt,
		OnSaleAt: e.OnSaleAt, Queue: e.Queue, Partitions: e.PartitionCount(), Zones: []ZoneView{}, Sections: []SectionView{}}
	sectionPart := map[string]int{}
	gaPart := map[string]int{}
	for _, l := range e.Layouts(&v) {
		for _, s := range l.Seats {
			sectionPart[s.Section] = l.Index
		}
		for _, z := range l.GAZones {
			gaPart[z.ID] = l.Index
		}
	}
	seatsPerZone := map[string]int{}
	for _, s := range v.Sections {
		sv := SectionView{ID: s.ID, Name: s.Name, Partition: sectionPart[s.ID]}
		for _, r := range s.Rows {
			rv := RowView{ID: r.ID, Zone: r.Zone, Seats: make([]string, r.Seats)}
			for n := 1; n <= r.Seats; n++ {
				rv.Seats[n-1] = catalog.SeatID(s.ID, r.ID, n)
			}
			seatsPerZone[r.Zone] += r.Seats
			sv.Rows = append(sv.Rows, rv)
		}
		view.Sections = append(view.Sections, sv)
	}
	for _, z := range v.Zones {
		zv := ZoneView{ID: z.ID, Name: z.Name, Kind: string(z.Kind), Capacity: z.Capacity, PriceCents: z.PriceCents, Currency: z.Currency}
		if z.Kind == catalog.Reserved {
			zv.Capacity = seatsPerZone[z.ID]
		} else {
			p := gaPart[z.ID]
			zv.Partition = &p
		}
		view.Zones = append(view.Zones, zv)
	}
	return c.JSON(view)
}

// ZoneAvailability is a zone's counts.
type ZoneAvailability struct {
	ID        string `json:"id"`
	Kind      string `json:"kind"`
	Capacity  int    `json:"capacity"`
	Held      int    `json:"held"`
	Sold      int    `json:"sold"`
	Available int    `json:"available"`
}

// AvailabilityView is the body of GET /v1/events/{id}/availability.
type AvailabilityView struct {
	EventID string                      `json:"event_id"`
	Seats   map[string]inventory.Status `json:"seats"`
	Zones   []ZoneAvailability          `json:"zones"`
}

func (a *API) availability(c *fiber.Ctx) error {
	e, v, err := a.event(c)
	if err != nil {
		return err
	}
	ctx, cancel := a.ctx(c)
	defer cancel()
	out := AvailabilityView{EventID: e.ID, Seats: map[string]inventory.Status{}, Zones: []ZoneAvailability{}}
	counts := map[string]*ZoneAvailability{}
	for i := range e.PartitionCount() {
		key := catalog.PartitionKey(e.ID, i)
		av, err := a.avail.get(ctx, key, func(ctx context.Context) (inventory.Availability, error) {
			return a.deps.Inventory.Availability(ctx, key)
		})
		if err != nil {
			return err
		}
		for s, st := range av.Seats {
			out.Seats[s] = st
		}
		for _, z := range av.Zones {
			zc := counts[z.ID]
			if zc == nil {
				zc = &ZoneAvailability{ID: z.ID, Kind: string(catalog.Reserved)}
				if z.GA {
					zc.Kind = string(catalog.GA)
				}
				counts[z.ID] = zc
			}
			zc.Capacity += z.Capacity
			zc.Held += z.Held
			zc.Sold += z.Sold
		}
	}
	for _, z := range v.Zones {
		if zc, ok := counts[z.ID]; ok {
			zc.Available = zc.Capacity - zc.Held - zc.Sold
			out.Zones = append(out.Zones, *zc)
		}
	}
	return c.JSON(out)
}

// HoldCreated is the body of a successful POST /v1/events/{id}/holds.
type HoldCreated struct {
	HoldID    string    `json:"hold_id"`
	Seats     []string  `json:"seats"`
	Zone      string    `json:"zone,omitempty"`
	Quantity  int       `json:"quantity"`
	ExpiresAt time.Time `json:"expires_at"`
}

// HoldView is the body of GET and DELETE /v1/holds/{id}.
type HoldView struct {
	HoldID    string    `json:"hold_id"`
	EventID   string    `json:"event_id"`
	Seats     []string  `json:"seats"`
	Zone      string    `json:"zone,omitempty"`
	Quantity  int       `json:"quantity"`
	Status    string    `json:"status"`
	ExpiresAt time.Time `json:"expires_at"`
}

func (a *API) createHold(c *fiber.Ctx) error {
	const op = "edge.hold"
	e, _, err := a.event(c)
	if err != nil {
		return err
	}
	holdLimit := a.cfg.HoldLimit
	if a.deps.HoldLimit != nil {
		holdLimit = a.deps.HoldLimit()
	}
	who := callerOf(c)
	if err := a.limit(c, "hold", holdLimit); err != nil {
		return err
	}
	if err := a.limitKey(c, "hold_caller", who.Subject, holdLimit); err != nil {
		return err
	}
	if a.deps.HoldGate != nil {
		if err := a.deps.HoldGate(c, e); err != nil {
			return err
		}
	}
	idemKey, err := idempotencyKey(c.Get("Idempotency-Key"))
	if err != nil {
		return err
	}
	raw, err := requestBody(c, op)
	if err != nil {
		return err
	}
	body, err := decodeHold(raw)
	if err != nil {
		return err
	}
	router, ok := a.deps.Catalog.Router(e.ID)
	if !ok {
		return errs.Errorf(op, errs.NotFound, "no event %q", e.ID)
	}
	var part int
	if len(body.Seats) > 0 {
		part, err = router.SeatsPartition(body.Seats)
	} else {
		part, err = router.ZonePartition(body.Zone)
	}
	if err != nil {
		return err
	}
	claims, err := a.admit(c, e, idemKey)
	if err != nil {
		return err
	}
	ctx, cancel := a.ctx(c)
	defer cancel()
	key := catalog.PartitionKey(e.ID, part)
	defer a.avail.forget(key)
	h, err := a.deps.Inventory.Hold(ctx, key, inventory.HoldRequest{
		Seats: body.Seats, Zone: body.Zone, Quantity: body.Quantity, TTLSeconds: body.TTLSeconds,
		Holder: who.Subject,
		// Keys are scoped to the caller.
		IdempotencyKey: who.Subject + ":" + idemKey,
		Fingerprint:    body.fingerprint(e.ID),
	})
	if err != nil {
		a.giveBack(c, claims, idemKey, err)
		return err
	}
	c.Location("/v1/holds/" + h.HoldID)
	created := HoldCreated{HoldID: h.HoldID, Seats: h.Seats, Zone: h.Zone,
		Quantity: h.Quantity, ExpiresAt: h.ExpiresAt}
	out, err := created.appendJSON(make([]byte, 0, 256))
	if err != nil {
		return errs.E("edge.hold", errs.Other, err)
	}
	c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
	return c.Status(fiber.StatusCreated).Send(out)
}

// appendJSON appends h as encoding/json encodes it (every created hold's
// answer, without reflection; TestHoldCreatedJSON).
func (h *HoldCreated) appendJSON(b []byte) ([]byte, error) {
	b = append(b, '{')
	b = jsonw.Key(b, "hold_id", true)
	b = jsonw.String(b, h.HoldID)
	b = jsonw.Key(b, "seats", false)
	b = jsonw.Strings(b, h.Seats)
	if h.Zone != "" {
		b = jsonw.Key(b, "zone", false)
		b = jsonw.String(b, h.Zone)
	}
	b = jsonw.Key(b, "quantity", false)
	b = jsonw.Int(b, int64(h.Quantity))
	b = jsonw.Key(b, "expires_at", false)
	b, err := jsonw.Time(b, h.ExpiresAt)
	if err != nil {
		return b, err
	}
	return append(b, '}'), nil
}

func (a *API) holdRef(c *fiber.Ctx, op string) (inventory.HoldRef, error) {
	id := c.Params("id")
	if len(id) > 200 {
		return inventory.HoldRef{}, errs.E(op, errs.NotFound, "no such hold")
	}
	if p, ok := inventory.PartitionOfHold(id); !ok || !a.partitionExists(p) {
		return inventory.HoldRef{}, errs.Errorf(op, errs.NotFound, "no hold %q", id)
	}
	return inventory.HoldRef{HoldID: id, Holder: callerOf(c).Subject}, nil
}

// partitionExists reports whether p ("<event>.<i>") is a partition of a known
// event, so that a made-up hold id never becomes a NATS subject (an unknown
// event's subject has no responders: a 503 after the request timeout).
func (a *API) partitionExists(p string) bool {
	i := strings.LastIndexByte(p, '.')
	if i <= 0 {
		return false
	}
	n, err := strconv.Atoi(p[i+1:])
	if err != nil {
		return false
	}
	e, _, ok := a.deps.Catalog.Event(p[:i])
	return ok && n >= 0 && n < e.PartitionCount() && catalog.PartitionKey(e.ID, n) == p
}

func holdView(h inventory.Hold) HoldView {
	event := ""
	if p, ok := inventory.PartitionOfHold(h.HoldID); ok {
		if i := len(p) - 1; i > 0 {
			for i > 0 && p[i] != '.' {
				i--
			}
			event = p[:i]
		}
	}
	return HoldView{HoldID: h.HoldID, EventID: event, Seats: h.Seats, Zone: h.Zone, Quantity: h.Quantity,
		Status: h.Status.String(), ExpiresAt: h.ExpiresAt}
}

func (a *API) getHold(c *fiber.Ctx) error {
	ref, err := a.holdRef(c, "edge.get_hold")
	if err != nil {
		return err
	}
	ctx, cancel := a.ctx(c)
	defer cancel()
	h, err := a.deps.Inventory.Get(ctx, ref)
	if err != nil {
		return err
	}
	return c.JSON(holdView(h))
}

func (a *API) releaseHold(c *fiber.Ctx) error {
	ref, err := a.holdRef(c, "edge.release_hold")
	if err != nil {
		return err
	}
	ctx, cancel := a.ctx(c)
	defer cancel()
	h, err := a.deps.Inventory.Release(ctx, ref)
	if p, ok := inventory.PartitionOfHold(ref.HoldID); ok {
		a.avail.forget(p)
	}
	if err != nil {
		return err
	}
	return c.JSON(holdView(h))
}

// adminToken is the admin's access token, forwarded to the catalog
// service, which checks it again.
func (a *API) adminToken(c *fiber.Ctx, _ string) (string, error) {
	return callerOf(c).Token, nil
}

func (a *API) createVenue(c *fiber.Ctx) error {
	tok, err := a.adminToken(c, "edge.create_venue")
	if err != nil {
		return err
	}
	raw, err := requestBody(c, "edge.create_venue")
	if err != nil {
		return err
	}
	v, err := decodeVenue(raw)
	if err != nil {
		return err
	}
	ctx, cancel := a.ctx(c)
	defer cancel()
	if err := a.deps.Admin.CreateVenue(ctx, tok, v); err != nil {
		return err
	}
	c.Location("/v1/venues/" + v.ID)
	return c.Status(fiber.StatusCreated).JSON(fiber.Map{"id": v.ID})
}

func (a *API) createEvent(c *fiber.Ctx) error {
	tok, err := a.adminToken(c, "edge.create_event")
	if err != nil {
		return err
	}
	raw, err := requestBody(c, "edge.create_event")
	if err != nil {
		return err
	}
	e, err := decodeEvent(raw)
	if err != nil {
		return err
	}
	ctx, cancel := a.ctx(c)
	defer cancel()
	if err := a.deps.Admin.CreateEvent(ctx, tok, e); err != nil {
		return err
	}
	c.Location("/v1/events/" + e.ID)
	return c.Status(fiber.StatusCreated).JSON(fiber.Map{"id": e.ID})
}
