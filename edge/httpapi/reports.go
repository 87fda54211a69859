package httpapi

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/services/analytics"
	"github.com/ticketing/ticketing/services/catalog"
	"github.com/ticketing/ticketing/services/reporting"
)

// Reports is what the API needs of the reporting service (NATS micro
// service "reporting"). Errors carry errs kinds: Invalid, NotFound (no
// record of the event yet), Unavailable (no service answers).
type Reports interface {
	EventReport(ctx context.Context, eventID string) (reporting.Report, error)
}

// ReportCounters are the ticket movements of a period (or of all
// periods), from the inventory's events.
type ReportCounters struct {
	Held      int64 `json:"held"`
	Released  int64 `json:"released"`
	Expired   int64 `json:"expired"`
	Sold      int64 `json:"sold"`
	Cancelled int64 `json:"cancelled"`
}

// ReportMoney is the money of a period's orders (or of all periods'), from
// the orders' events: orders paid and refunded in it, what they captured
// and refunded, and the paid orders' gross (tickets and add-ons before the
// discount), fees, tax and discount; net is captured minus refunded.
type ReportMoney struct {
	OrdersPaid     int64 `json:"orders_paid"`
	OrdersRefunded int64 `json:"orders_refunded"`
	CapturedCents  int64 `json:"captured_cents"`
	GrossCents     int64 `json:"gross_cents"`
	FeesCents      int64 `json:"fees_cents"`
	TaxCents       int64 `json:"tax_cents"`
	DiscountCents  int64 `json:"discount_cents"`
	RefundedCents  int64 `json:"refunded_cents"`
	NetCents       int64 `json:"net_cents"`
}

// ReportTotals are the ticket movements and the money, with the tickets
// held and sold now.
type ReportTotals struct {
	ReportCounters
	ReportMoney
	HeldNow int64 `json:"held_now"`
	SoldNow int64 `json:"sold_now"`
}

// ZoneReportView is one price zone of an event report: tickets only.
type ZoneReportView struct {
	Zone string `json:"zone"`
	ReportCounters
	HeldNow int64 `json:"held_now"`
	SoldNow int64 `json:"sold_now"`
}

// HourReportView is one hour (all zones) of an event report.
type HourReportView struct {
	Hour time.Time `json:"hour"`
	ReportCounters
	ReportMoney
}

// EventReportView is the body of GET /v1/reports/events/{id}.
type EventReportView struct {
	EventID     string           `json:"event_id"`
	OrganizerID string           `json:"organizer_id,omitempty"`
	Currency    string           `json:"currency,omitempty"`
	Capacity    int              `json:"capacity,omitempty"`
	OnSaleAt    *time.Time       `json:"on_sale_at,omitempty"`
	Totals      ReportTotals     `json:"totals"`
	Zones       []ZoneReportView `json:"zones"`
	Hours       []HourReportView `json:"hours"`
}

func reportCounters(c reporting.Counters) ReportCounters {
	return ReportCounters{Held: c.Held, Released: c.Released, Expired: c.Expired, Sold: c.Sold, Cancelled: c.Cancelled}
}

func reportMoney(r reporting.Revenue) ReportMoney {
	return ReportMoney{OrdersPaid: r.OrdersPaid, OrdersRefunded: r.OrdersRefunded, CapturedCents: r.CapturedCents,
		GrossCents: r.GrossCents, FeesCents: r.FeesCents, TaxCents: r.TaxCents, DiscountCents: r.DiscountCents,
		RefundedCents: r.RefundedCents, NetCents: r.NetCents()}
}

func eventReportView(r reporting.Report) EventReportView {
	v := EventReportView{EventID: r.EventID, OrganizerID: r.OrganizerID, Currency: r.Currency, Capacity: r.Capacity,
		Totals: ReportTotals{ReportCounters: reportCounters(r.Totals.Counters), ReportMoney: reportMoney(r.Totals.Revenue),
			HeldNow: r.Totals.HeldNow, SoldNow: r.Totals.SoldNow},
		Zones: make([]ZoneReportView, 0, len(r.Zones)), Hours: make([]HourReportView, 0, len(r.Hours))}
	if r.OnSaleAt != nil {
		t := r.OnSaleAt.UTC()
		v.OnSaleAt = &t
	}
	for _, z := range r.Zones {
		v.Zones = append(v.Zones, ZoneReportView{Zone: z.Zone, ReportCounters: reportCounters(z.Counters), HeldNow: z.HeldNow, SoldNow: z.SoldNow})
	}
	for _, h := range r.Hours {
		v.Hours = append(v.Hours, HourReportView{Hour: h.Hour.UTC(), ReportCounters: reportCounters(h.Counters), ReportMoney: reportMoney(h.Revenue)})
	}
	return v
}

// tokenDigest is what admin tokens are compared by: digests of equal
// length, so that the comparison takes the same time whatever the length
// of the token offered.
func tokenDigest(token string) [sha256.Size]byte { return sha256.Sum256([]byte(token)) }

// requireAdmin checks the request's "Authorization: Bearer <admin token>"
// against the edge's admin token, in constant time. An edge configured
// without one refuses every request.
func (a *API) requireAdmin(c *fiber.Ctx, op string) error {
	tok, err := bearer(op, c.Get(fiber.HeaderAuthorization))
	if err != nil {
		return err
	}
	if a.adminDigest == nil {
		return errs.E(op, errs.Unauthorized, "this edge has no admin token configured")
	}
	got := tokenDigest(tok)
	if subtle.ConstantTimeCompare(got[:], a.adminDigest[:]) != 1 {
		return errs.E(op, errs.Unauthorized, "a valid admin token is required")
	}
	return nil
}

// reportEventID is the path's event id, checked like every event id
// before anything is asked of the core.
func reportEventID(c *fiber.Ctx, op string) (string, error) {
	id := c.Params("id")
	if !catalog.ValidID(id) {
		return "", errs.E(op, errs.Invalid, "the event id must be 1-63 lower-case letters, digits and dashes")
	}
	return id, nil
}

func (a *API) eventReport(c *fiber.Ctx) error {
	const op = "edge.event_report"
	id, err := reportEventID(c, op)
	if err != nil {
		return err
	}
	if a.deps.Reports == nil {
		return errs.E(op, errs.Unavailable, "reports are not served by this edge")
	}
	ctx, cancel := a.ctx(c)
	defer cancel()
	r, err := a.deps.Reports.EventReport(ctx, id)
	if err != nil {
		return err
	}
	return c.JSON(eventReportView(r))
}

// Funnels is what the API needs of the analytics service (NATS micro
// service "analytics"). Errors carry errs kinds: Invalid, NotFound (nothing
// counted for the event yet), Unavailable (no service answers).
type Funnels interface {
	Funnel(ctx context.Context, eventID string) (analytics.Funnel, error)
}

// FunnelConversion are the funnel's ratios; null when the denominator is 0.
type FunnelConversion struct {
	AdmittedPerJoined  *float64 `json:"admitted_per_joined"`
	SoldPerHeldTickets *float64 `json:"sold_per_held_tickets"`
	SoldPerJoined      *float64 `json:"sold_per_joined"`
}

// EventFunnelView is the body of GET /v1/reports/events/{id}/funnel.
type EventFunnelView struct {
	EventID              string           `json:"event_id"`
	QueueJoined          int64            `json:"queue_joined"`
	QueueAdmitted        int64            `json:"queue_admitted"`
	HoldsPlaced          int64            `json:"holds_placed"`
	HeldTickets          int64            `json:"held_tickets"`
	SoldTickets          int64            `json:"sold_tickets"`
	Orders               int64            `json:"orders"`
	CancelledTickets     int64            `json:"cancelled_tickets"`
	Capacity             int64            `json:"capacity"`
	OnSaleAt             *time.Time       `json:"on_sale_at"`
	SoldOutAt            *time.Time       `json:"sold_out_at"`
	TimeToSellOutSeconds *float64         `json:"time_to_sell_out_seconds"`
	PeakHoldsPerMinute   int64            `json:"peak_holds_per_minute"`
	PeakMinute           *time.Time       `json:"peak_minute"`
	Conversion           FunnelConversion `json:"conversion"`
}

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

func eventFunnelView(f analytics.Funnel) EventFunnelView {
	return EventFunnelView{EventID: f.EventID, QueueJoined: f.Joined, QueueAdmitted: f.Admitted,
		HoldsPlaced: f.HoldsPlaced, HeldTickets: f.HeldTickets, SoldTickets: f.SoldTickets, Orders: f.Orders,
		CancelledTickets: f.CancelledTickets, Capacity: f.Capacity, OnSaleAt: utcPtr(f.OnSaleAt),
		SoldOutAt: utcPtr(f.SoldOutAt), TimeToSellOutSeconds: f.TimeToSellOutSeconds,
		PeakHoldsPerMinute: f.PeakHoldsPerMinute, PeakMinute: utcPtr(f.PeakMinute),
		Conversion: FunnelConversion{AdmittedPerJoined: f.Conversion.AdmittedPerJoined,
			SoldPerHeldTickets: f.Conversion.SoldPerHeldTickets, SoldPerJoined: f.Conversion.SoldPerJoined}}
}

func (a *API) eventFunnel(c *fiber.Ctx) error {
	const op = "edge.event_funnel"
	id, err := reportEventID(c, op)
	if err != nil {
		return err
	}
	if a.deps.Funnels == nil {
		return errs.E(op, errs.Unavailable, "funnels are not served by this edge")
	}
	ctx, cancel := a.ctx(c)
	defer cancel()
	f, err := a.deps.Funnels.Funnel(ctx, id)
	if err != nil {
		return err
	}
	return c.JSON(eventFunnelView(f))
}
