package reporting

import (
	"errors"
	"slices"
	"sort"
	"time"
)

// HourKey keys the hourly aggregates.
type HourKey struct {
	EventID, Zone string
	Hour          time.Time // UTC, truncated to the hour
}

// RevenueKey keys the money.
type RevenueKey struct {
	EventID string
	Hour    time.Time // UTC, truncated to the hour
}

// ZoneKey keys the current levels.
type ZoneKey struct{ EventID, Zone string }

// Aggregates are folded events: hourly counters, hourly money, current
// levels and the events' facts. Levels may be negative in a delta (a fold
// of a part of the stream), never in a fold of a whole partition.
type Aggregates struct {
	Hours   map[HourKey]Counters
	Revenue map[RevenueKey]Revenue
	Levels  map[ZoneKey]Level
	Events  map[string]EventInfo
}

// NewAggregates returns empty aggregates.
func NewAggregates() *Aggregates {
	return &Aggregates{Hours: map[HourKey]Counters{}, Revenue: map[RevenueKey]Revenue{}, Levels: map[ZoneKey]Level{}, Events: map[string]EventInfo{}}
}

// Add folds one event in, in the hour of its At. An inventory event,
// per zone:
//
//	placed     held +n                 level held +n
//	released   released +n             level held −n
//	expired    expired +n              level held −n
//	sold       sold +n                 level held −n, sold +n
//	cancelled  cancelled +n            level sold −n
//
// An order event, per event:
//
//	paid       orders paid +1, captured +captured, gross +amounts.subtotal,
//	           fees +amounts.fees, tax +amounts.tax, discount +amounts.discount
//	refunded   orders refunded +1, refunded +refunded
func (a *Aggregates) Add(e Event) {
	hour := e.At.UTC().Truncate(time.Hour)
	if e.Kind.IsOrder() {
		a.addOrder(e, hour)
		return
	}
	for _, z := range e.Tickets {
		hk := HourKey{e.Data.EventID, z.Zone, hour}
		zk := ZoneKey{e.Data.EventID, z.Zone}
		c, l := a.Hours[hk], a.Levels[zk]
		switch e.Kind {
		case Placed:
			c.Held += z.Tickets
			l.Held += z.Tickets
		case Released:
			c.Released += z.Tickets
			l.Held -= z.Tickets
		case Expired:
			c.Expired += z.Tickets
			l.Held -= z.Tickets
		case Sold:
			c.Sold += z.Tickets
			l.Held -= z.Tickets
			l.Sold += z.Tickets
		case Cancelled:
			c.Cancelled += z.Tickets
			l.Sold -= z.Tickets
		}
		a.Hours[hk], a.Levels[zk] = c, l
	}
	a.addInfo(EventInfo{EventID: e.Data.EventID, OrganizerID: e.Data.OrganizerID, Currency: e.Data.Currency,
		Capacity: e.Data.EventCapacity, OnSaleAt: derefTime(e.Data.OnSaleAt), LastAt: e.At})
}

func (a *Aggregates) addOrder(e Event, hour time.Time) {
	o := e.Order
	k := RevenueKey{o.Event, hour}
	r := a.Revenue[k]
	switch e.Kind {
	case OrderPaid:
		r.OrdersPaid++
		r.CapturedCents += o.Captured
		r.GrossCents += o.Amounts.Subtotal
		r.FeesCents += o.Amounts.Fees
		r.TaxCents += o.Amounts.Tax
		r.DiscountCents += o.Amounts.Discount
	case OrderRefunded:
		r.OrdersRefunded++
		r.RefundedCents += o.Refunded
	}
	a.Revenue[k] = r
	// No LastAt: an order's facts give way to any inventory event's (see
	// EventInfo.LastAt).
	a.addInfo(EventInfo{EventID: o.Event, OrganizerID: o.Organizer, Currency: o.Amounts.Currency})
}

func derefTime(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.UTC()
}

func (a *Aggregates) addInfo(in EventInfo) {
	a.Events[in.EventID] = MergeInfo(a.Events[in.EventID], in)
}

// MergeInfo merges the facts of an event: the later one's (by LastAt; b
// on a tie) non-empty fields win. The result does not depend on the order
// of the merges as long as the facts with a LastAt all have the same
// fields set (every inventory event carries the same ones): an order
// event's facts (organizer and currency, no LastAt) then only fill what
// no inventory event told.
func MergeInfo(a, b EventInfo) EventInfo {
	if b.LastAt.Before(a.LastAt) {
		a, b = b, a
	}
	out := b
	if out.EventID == "" {
		out.EventID = a.EventID
	}
	if out.OrganizerID == "" {
		out.OrganizerID = a.OrganizerID
	}
	if out.Currency == "" {
		out.Currency = a.Currency
	}
	if out.Capacity == 0 {
		out.Capacity = a.Capacity
	}
	if out.OnSaleAt.IsZero() {
		out.OnSaleAt = a.OnSaleAt
	}
	return out
}

// Merge adds b into a.
func (a *Aggregates) Merge(b *Aggregates) {
	for k, c := range b.Hours {
		ac := a.Hours[k]
		ac.Add(c)
		a.Hours[k] = ac
	}
	for k, r := range b.Revenue {
		ar := a.Revenue[k]
		ar.Add(r)
		a.Revenue[k] = ar
	}
	for k, l := range b.Levels {
		al := a.Levels[k]
		al.Held += l.Held
		al.Sold += l.Sold
		a.Levels[k] = al
	}
	for _, in := range b.Events {
		a.addInfo(in)
	}
}

// SortedHours returns the hourly keys sorted by event, zone and hour: the
// order in which adapters lock rows, so that concurrent writers cannot
// deadlock.
func (a *Aggregates) SortedHours() []HourKey {
	keys := make([]HourKey, 0, len(a.Hours))
	for k := range a.Hours {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		x, y := keys[i], keys[j]
		if x.EventID != y.EventID {
			return x.EventID < y.EventID
		}
		if x.Zone != y.Zone {
			return x.Zone < y.Zone
		}
		return x.Hour.Before(y.Hour)
	})
	return keys
}

// SortedRevenue returns the revenue keys sorted by event and hour.
func (a *Aggregates) SortedRevenue() []RevenueKey {
	keys := make([]RevenueKey, 0, len(a.Revenue))
	for k := range a.Revenue {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].EventID != keys[j].EventID {
			return keys[i].EventID < keys[j].EventID
		}
		return keys[i].Hour.Before(keys[j].Hour)
	})
	return keys
}

// SortedLevels returns the level keys sorted by event and zone.
func (a *Aggregates) SortedLevels() []ZoneKey {
	keys := make([]ZoneKey, 0, len(a.Levels))
	for k := range a.Levels {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].EventID != keys[j].EventID {
			return keys[i].EventID < keys[j].EventID
		}
		return keys[i].Zone < keys[j].Zone
	})
	return keys
}

// SortedEvents returns the event ids sorted.
func (a *Aggregates) SortedEvents() []string {
	ids := make([]string, 0, len(a.Events))
	for id := range a.Events {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// Folded is the result of Fold.
type Folded struct {
	// Delta is what the applied records add to the aggregates.
	Delta *Aggregates
	// Cursors are the new cursors of the partitions of the records.
	Cursors map[Partition]Cursor
	Applied
}

// Fold applies recs, in order, to the stored cursors (a partition missing
// from cursors has none stored): a record below its partition's Next is
// skipped, the others advance Next past them; an event whose id is among
// the partition's recent ids is a duplicate; records of events reporting
// does not count are ignored and invalid ones reported. Fold does not
// change cursors.
func Fold(cursors map[Partition]Cursor, recs []Record) Folded {
	f := Folded{Delta: NewAggregates(), Cursors: map[Partition]Cursor{}}
	for _, r := range recs {
		p := Partition{r.Topic, r.Partition}
		c, ok := f.Cursors[p]
		if !ok {
			c, ok = cursors[p]
			c.Recent = slices.Clone(c.Recent)
		}
		if ok && r.Offset < c.Next {
			f.Skipped++
			f.Cursors[p] = c
			continue
		}
		c.Next = r.Offset + 1
		e, err := Decode(r.Value)
		switch {
		case errors.Is(err, ErrNotCounted):
			f.Ignored++
		case err != nil:
			f.Invalid = append(f.Invalid, Problem{Partition: p, Offset: r.Offset, Err: err})
		case slices.Contains(c.Recent, e.ID):
			f.Duplicates++
		default:
			f.Delta.Add(e)
			f.Applied.Applied++
			c.Recent = append(c.Recent, e.ID)
			if len(c.Recent) > RecentIDs {
				c.Recent = c.Recent[len(c.Recent)-RecentIDs:]
			}
		}
		f.Cursors[p] = c
	}
	return f
}

// View returns what the aggregates hold about an event, rows sorted as
// EventView says; ok is false when they hold nothing of it.
func (a *Aggregates) View(eventID string) (v EventView, ok bool) {
	info, ok := a.Events[eventID]
	if !ok {
		return EventView{}, false
	}
	v.Info = info
	for _, k := range a.SortedHours() {
		if k.EventID == eventID {
			v.Hours = append(v.Hours, HourRow{EventID: k.EventID, Zone: k.Zone, Hour: k.Hour, Counters: a.Hours[k]})
		}
	}
	for _, k := range a.SortedRevenue() {
		if k.EventID == eventID {
			v.Revenue = append(v.Revenue, RevenueRow{EventID: k.EventID, Hour: k.Hour, Revenue: a.Revenue[k]})
		}
	}
	for _, k := range a.SortedLevels() {
		if k.EventID == eventID {
			v.Levels = append(v.Levels, LevelRow{EventID: k.EventID, Zone: k.Zone, Level: a.Levels[k]})
		}
	}
	return v, true
}

// HoursIn returns the hourly and revenue rows with from <= Hour < to,
// sorted as HoursView says, with their events' facts.
func (a *Aggregates) HoursIn(from, to time.Time) HoursView {
	v := HoursView{Events: map[string]EventInfo{}}
	in := func(t time.Time) bool { return !t.Before(from) && t.Before(to) }
	event := func(id string) {
		if info, ok := a.Events[id]; ok {
			v.Events[id] = info
		}
	}
	for _, k := range a.SortedHours() {
		if in(k.Hour) {
			v.Hours = append(v.Hours, HourRow{EventID: k.EventID, Zone: k.Zone, Hour: k.Hour, Counters: a.Hours[k]})
			event(k.EventID)
		}
	}
	for _, k := range a.SortedRevenue() {
		if in(k.Hour) {
			v.Revenue = append(v.Revenue, RevenueRow{EventID: k.EventID, Hour: k.Hour, Revenue: a.Revenue[k]})
			event(k.EventID)
		}
	}
	return v
}
