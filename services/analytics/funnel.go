package analytics

import (
	"maps"
	"time"
)

// MinuteWindow is how many of the newest minutes State keeps hold counts
// for: a hold placed more than this long before the newest one seen is
// counted in the totals but can no longer raise the peak.
const MinuteWindow = 60

// State is the stored fold of one event's domain events.
type State struct {
	EventID          string     `json:"event_id"`
	Joined           int64      `json:"joined"`
	Admitted         int64      `json:"admitted"`
	HoldsPlaced      int64      `json:"holds_placed"`
	HeldTickets      int64      `json:"held_tickets"`
	HoldsEnded       int64      `json:"holds_ended"` // released or expired
	Sales            int64      `json:"sales"`
	SoldTickets      int64      `json:"sold_tickets"` // gross
	Cancellations    int64      `json:"cancellations"`
	CancelledTickets int64      `json:"cancelled_tickets"`
	Capacity         int64      `json:"capacity,omitempty"`
	OnSaleAt         *time.Time `json:"on_sale_at,omitempty"`
	SoldOutAt        *time.Time `json:"sold_out_at,omitempty"`
	PeakHolds        int64      `json:"peak_holds_per_minute"`
	PeakMinute       *time.Time `json:"peak_minute,omitempty"`
	LastAt           time.Time  `json:"last_at"`
	// Minutes counts holds placed per Unix minute, for the newest
	// MinuteWindow minutes.
	Minutes map[int64]int64 `json:"minutes,omitempty"`
}

// Clone returns a deep copy.
func (s *State) Clone() *State {
	c := *s
	c.Minutes = maps.Clone(s.Minutes)
	return &c
}

// Apply folds one event into s. It is pure: the same events in the same
// order give the same state.
func (s *State) Apply(e *Event) {
	d := &e.Data
	if d.EventCapacity > 0 {
		s.Capacity = d.EventCapacity
	}
	if d.OnSaleAt != nil {
		t := *d.OnSaleAt
		s.OnSaleAt = &t
	}
	if d.At.After(s.LastAt) {
		s.LastAt = d.At
	}
	n := d.Tickets()
	switch e.Type {
	case TypeQueueJoined:
		s.Joined++
	case TypeQueueAdmitted:
		s.Admitted++
	case TypeHoldPlaced:
		s.HoldsPlaced++
		s.HeldTickets += n
		s.countMinute(d.At)
	case TypeHoldReleased, TypeHoldExpired:
		s.HoldsEnded++
	case TypeSeatsSold:
		s.Sales++
		s.SoldTickets += n
	case TypeSaleCancelled:
		s.Cancellations++
		s.CancelledTickets += n
	}
	if s.SoldOutAt == nil && s.Capacity > 0 && s.SoldTickets-s.CancelledTickets >= s.Capacity {
		t := d.At
		s.SoldOutAt = &t
	}
}

func (s *State) countMinute(at time.Time) {
	m := at.Unix() / 60
	if at.Unix() < 0 && at.Unix()%60 != 0 {
		m--
	}
	if s.Minutes == nil {
		s.Minutes = map[int64]int64{}
	}
	newest := m
	for k := range s.Minutes {
		newest = max(newest, k)
	}
	if m <= newest-MinuteWindow {
		return
	}
	s.Minutes[m]++
	if c := s.Minutes[m]; c > s.PeakHolds {
		s.PeakHolds = c
		t := time.Unix(m*60, 0).UTC()
		s.PeakMinute = &t
	}
	for k := range s.Minutes {
		if k <= newest-MinuteWindow {
			delete(s.Minutes, k)
		}
	}
}

// Funnel is the on-sale funnel of one event, as answered to callers.
type Funnel struct {
	EventID  string `json:"event_id"`
	Joined   int64  `json:"queue_joined"`
	Admitted int64  `json:"queue_admitted"`
	// Holds placed, and the tickets they held.
	HoldsPlaced int64 `json:"holds_placed"`
	HeldTickets int64 `json:"held_tickets"`
	// SoldTickets are net of refunds; Orders net of cancelled sales.
	SoldTickets      int64 `json:"sold_tickets"`
	Orders           int64 `json:"orders"`
	CancelledTickets int64 `json:"cancelled_tickets"`
	// Capacity is the event's tickets (0 until an event carried it).
	Capacity int64      `json:"capacity"`
	OnSaleAt *time.Time `json:"on_sale_at"`
	// SoldOutAt is the first moment net sold tickets reached Capacity.
	SoldOutAt *time.Time `json:"sold_out_at"`
	// TimeToSellOut is SoldOutAt minus OnSaleAt; nil until sold out or
	// when the on-sale time is unknown.
	TimeToSellOut        *time.Duration `json:"-"`
	TimeToSellOutSeconds *float64       `json:"time_to_sell_out_seconds"`
	PeakHoldsPerMinute   int64          `json:"peak_holds_per_minute"`
	PeakMinute           *time.Time     `json:"peak_minute"`
	Conversion           Conversion     `json:"conversion"`
}

// Conversion ratios; nil when the denominator is 0.
type Conversion struct {
	// AdmittedPerJoined: admitted / joined sessions.
	AdmittedPerJoined *float64 `json:"admitted_per_joined"`
	// SoldPerHeldTickets: net sold tickets / tickets held.
	SoldPerHeldTickets *float64 `json:"sold_per_held_tickets"`
	// SoldPerJoined: net orders / joined sessions (a session buys with one
	// order).
	SoldPerJoined *float64 `json:"sold_per_joined"`
}

func ratio(a, b int64) *float64 {
	if b == 0 {
		return nil
	}
	r := float64(a) / float64(b)
	return &r
}

// Funnel derives the funnel from the state.
func (s *State) Funnel() Funnel {
	f := Funnel{
		EventID: s.EventID, Joined: s.Joined, Admitted: s.Admitted,
		HoldsPlaced: s.HoldsPlaced, HeldTickets: s.HeldTickets,
		SoldTickets: s.SoldTickets - s.CancelledTickets, Orders: s.Sales - s.Cancellations,
		CancelledTickets: s.CancelledTickets, Capacity: s.Capacity,
		OnSaleAt: s.OnSaleAt, SoldOutAt: s.SoldOutAt,
		PeakHoldsPerMinute: s.PeakHolds, PeakMinute: s.PeakMinute,
	}
	if s.SoldOutAt != nil && s.OnSaleAt != nil {
		d := s.SoldOutAt.Sub(*s.OnSaleAt)
		secs := d.Seconds()
		f.TimeToSellOut, f.TimeToSellOutSeconds = &d, &secs
	}
	f.Conversion = Conversion{
		AdmittedPerJoined:  ratio(s.Admitted, s.Joined),
		SoldPerHeldTickets: ratio(f.SoldTickets, s.HeldTickets),
		SoldPerJoined:      ratio(f.Orders, s.Joined),
	}
	return f
}
