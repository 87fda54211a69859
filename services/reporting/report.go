package reporting

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"time"

	"github.com/ticketing/ticketing/internal/errs"
)

// Report is the report of one event.
type Report struct {
	EventID     string `json:"event_id"`
	OrganizerID string `json:"organizer_id,omitempty"`
	// Currency of the amounts: the orders' (and the event's prices').
	Currency string     `json:"currency,omitempty"`
	Capacity int        `json:"capacity,omitempty"`
	OnSaleAt *time.Time `json:"on_sale_at,omitempty"`
	// Totals over all zones and hours; HeldNow and SoldNow are the
	// tickets held and sold now.
	Totals Totals `json:"totals"`
	// Zones, sorted by zone id: tickets only (an order's money is not
	// split among zones).
	Zones []ZoneReport `json:"zones"`
	// Hours, all zones summed, sorted by hour: every hour with ticket
	// movements or money.
	Hours []HourReport `json:"hours"`
}

// Totals are the ticket movements and the money, with the net money and
// the current levels.
type Totals struct {
	Counters
	Revenue
	NetCents int64 `json:"net_cents"`
	HeldNow  int64 `json:"held_now"`
	SoldNow  int64 `json:"sold_now"`
}

// ZoneReport is one zone of a report: its ticket movements and levels.
type ZoneReport struct {
	Zone string `json:"zone"`
	Counters
	HeldNow int64 `json:"held_now"`
	SoldNow int64 `json:"sold_now"`
}

// HourReport is one hour of a report.
type HourReport struct {
	Hour time.Time `json:"hour"`
	Counters
	Revenue
	NetCents int64 `json:"net_cents"`
}

// BuildReport computes the report of an event from what the store keeps.
func BuildReport(v EventView) Report {
	r := Report{EventID: v.Info.EventID, OrganizerID: v.Info.OrganizerID, Currency: v.Info.Currency,
		Capacity: v.Info.Capacity, Zones: []ZoneReport{}, Hours: []HourReport{}}
	if !v.Info.OnSaleAt.IsZero() {
		t := v.Info.OnSaleAt.UTC()
		r.OnSaleAt = &t
	}
	zones := map[string]*ZoneReport{}
	zone := func(z string) *ZoneReport {
		if zones[z] == nil {
			zones[z] = &ZoneReport{Zone: z}
		}
		return zones[z]
	}
	hours := map[time.Time]*HourReport{}
	hour := func(t time.Time) *HourReport {
		t = t.UTC()
		if hours[t] == nil {
			hours[t] = &HourReport{Hour: t}
		}
		return hours[t]
	}
	for _, h := range v.Hours {
		zone(h.Zone).Counters.Add(h.Counters)
		hour(h.Hour).Counters.Add(h.Counters)
		r.Totals.Counters.Add(h.Counters)
	}
	for _, m := range v.Revenue {
		hour(m.Hour).Revenue.Add(m.Revenue)
		r.Totals.Revenue.Add(m.Revenue)
	}
	for _, l := range v.Levels {
		z := zone(l.Zone)
		z.HeldNow += l.Held
		z.SoldNow += l.Sold
		r.Totals.HeldNow += l.Held
		r.Totals.SoldNow += l.Sold
	}
	r.Totals.NetCents = r.Totals.Revenue.NetCents()
	for _, z := range zones {
		r.Zones = append(r.Zones, *z)
	}
	sort.Slice(r.Zones, func(i, j int) bool { return r.Zones[i].Zone < r.Zones[j].Zone })
	for _, h := range hours {
		h.NetCents = h.Revenue.NetCents()
		r.Hours = append(r.Hours, *h)
	}
	sort.Slice(r.Hours, func(i, j int) bool { return r.Hours[i].Hour.Before(r.Hours[j].Hour) })
	return r
}

// Service answers the queries of reporting over a store.
type Service struct {
	Store Store
}

// EventReport returns the report of an event: errs.Invalid for a malformed
// id, errs.NotFound for an event no record was applied of.
func (s *Service) EventReport(ctx context.Context, eventID string) (Report, error) {
	const op = "reporting.event_report"
	if !validID(eventID) {
		return Report{}, errs.E(op, errs.Invalid, "malformed event id")
	}
	v, err := s.Store.Event(ctx, eventID)
	if err != nil {
		return Report{}, errs.E(op, err)
	}
	return BuildReport(v), nil
}

// FinanceColumns are the columns of the daily finance CSV: one row per
// event, the tickets sold and cancelled that day (inventory events) and
// the money of its orders paid and refunded that day (Revenue), in minor
// units of currency; net_cents is captured_cents − refunded_cents.
var FinanceColumns = []string{"date", "organizer", "event", "currency",
	"tickets_sold", "tickets_cancelled", "orders_paid", "orders_refunded",
	"captured_cents", "gross_cents", "fees_cents", "tax_cents", "discount_cents", "refunded_cents", "net_cents"}

// FinanceRow is one row of the daily finance CSV.
type FinanceRow struct {
	Date        string // YYYY-MM-DD, UTC
	OrganizerID string
	EventID     string
	Currency    string
	Sold        int64 // tickets sold
	Cancelled   int64 // tickets of cancelled sales
	Revenue
}

// FinanceRows sums the hours of one UTC day per organizer and event; events
// without a ticket sold or cancelled and without an order paid or refunded
// that day are left out. The result maps organizer ids (UnknownOrganizer
// for events that named none) to rows sorted by event.
func FinanceRows(day time.Time, v HoursView) map[string][]FinanceRow {
	date := day.UTC().Format(time.DateOnly)
	sums := map[string]*FinanceRow{}
	row := func(eventID string) *FinanceRow {
		r := sums[eventID]
		if r == nil {
			info := v.Events[eventID]
			org := info.OrganizerID
			if org == "" {
				org = UnknownOrganizer
			}
			r = &FinanceRow{Date: date, OrganizerID: org, EventID: eventID, Currency: info.Currency}
			sums[eventID] = r
		}
		return r
	}
	for _, h := range v.Hours {
		if h.Hour.UTC().Format(time.DateOnly) != date || h.Sold == 0 && h.Cancelled == 0 {
			continue
		}
		r := row(h.EventID)
		r.Sold += h.Sold
		r.Cancelled += h.Cancelled
	}
	for _, m := range v.Revenue {
		if m.Hour.UTC().Format(time.DateOnly) != date || m.Revenue == (Revenue{}) {
			continue
		}
		row(m.EventID).Revenue.Add(m.Revenue)
	}
	out := map[string][]FinanceRow{}
	for _, r := range sums {
		out[r.OrganizerID] = append(out[r.OrganizerID], *r)
	}
	for _, rows := range out {
		sort.Slice(rows, func(i, j int) bool { return rows[i].EventID < rows[j].EventID })
	}
	return out
}

// FinanceCSV encodes rows with a header line.
func FinanceCSV(rows []FinanceRow) []byte {
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	_ = w.Write(FinanceColumns)
	i := func(n int64) string { return strconv.FormatInt(n, 10) }
	for _, r := range rows {
		_ = w.Write([]string{r.Date, r.OrganizerID, r.EventID, r.Currency,
			i(r.Sold), i(r.Cancelled), i(r.OrdersPaid), i(r.OrdersRefunded),
			i(r.CapturedCents), i(r.GrossCents), i(r.FeesCents), i(r.TaxCents), i(r.DiscountCents), i(r.RefundedCents), i(r.NetCents())})
	}
	w.Flush()
	return b.Bytes()
}

// FinanceFileName is the name of an organizer's CSV of a day:
// "finance-YYYY-MM-DD-<organizer>.csv".
func FinanceFileName(day time.Time, organizer string) string {
	return fmt.Sprintf("finance-%s-%s.csv", day.UTC().Format(time.DateOnly), organizer)
}

// Sink receives export files. Put replaces a file of the same name
// atomically: a reader sees the old file or the new one, never a part.
type Sink interface {
	Put(ctx context.Context, name string, body []byte) error
}

// ExportDay writes one finance CSV per organizer with tickets sold or
// cancelled or orders paid or refunded on the UTC day of day to sink, and returns the file names.
// Exporting a day again replaces its files (late records included).
func (s *Service) ExportDay(ctx context.Context, day time.Time, sink Sink) ([]string, error) {
	const op = "reporting.export"
	from := day.UTC().Truncate(24 * time.Hour)
	v, err := s.Store.Hours(ctx, from, from.Add(24*time.Hour))
	if err != nil {
		return nil, errs.E(op, err)
	}
	byOrg := FinanceRows(from, v)
	orgs := make([]string, 0, len(byOrg))
	for o := range byOrg {
		orgs = append(orgs, o)
	}
	sort.Strings(orgs)
	var names []string
	for _, o := range orgs {
		if !SafeName(o) {
			return names, errs.Errorf(op, errs.Invalid, "organizer id %q cannot name a file", o)
		}
		name := FinanceFileName(from, o)
		if err := sink.Put(ctx, name, FinanceCSV(byOrg[o])); err != nil {
			return names, errs.E(op, errs.Unavailable, "writing "+name, err)
		}
		names = append(names, name)
	}
	return names, nil
}

// DirSink writes files into a directory: to a temporary file in the same
// directory, synced, then renamed over the name, and the directory synced.
type DirSink struct {
	Dir string
}

// Put implements Sink.
func (d DirSink) Put(_ context.Context, name string, body []byte) error {
	if name == "" || filepath.Base(name) != name || name == "." || name == ".." {
		return errs.Errorf("reporting.dir_sink", errs.Invalid, "file name %q is not a plain name", name)
	}
	if err := os.MkdirAll(d.Dir, 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(d.Dir, "."+name+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // after a successful rename there is nothing to remove
	if _, err := f.Write(body); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Chmod(tmp, 0o644); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(d.Dir, name)); err != nil {
		return err
	}
	if dir, err := os.Open(d.Dir); err == nil {
		_ = dir.Sync()
		dir.Close()
	}
	return nil
}
