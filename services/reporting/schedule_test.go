package reporting_test

import (
	"testing"
	"time"

	"github.com/ticketing/ticketing/services/reporting"
)

func TestExportSchedule(t *testing.T) {
	at := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	daily := &reporting.ExportSchedule{Delay: 15 * time.Minute}
	for _, c := range []struct{ now, next string }{
		{"2026-12-01T10:00:00Z", "2026-12-02T00:15:00Z"},
		{"2026-12-01T00:05:00Z", "2026-12-01T00:15:00Z"}, // today's run is still to come
		{"2026-12-01T00:15:00Z", "2026-12-02T00:15:00Z"},
		{"2026-12-01T23:59:59Z", "2026-12-02T00:15:00Z"},
	} {
		if got := daily.Next(at(c.now)); !got.Equal(at(c.next)) {
			t.Errorf("Next(%s) = %s, want %s", c.now, got.Format(time.RFC3339), c.next)
		}
	}
	days := daily.DaysDue(at("2026-12-01T00:15:00Z"))
	if len(days) != 1 || !days[0].Equal(at("2026-11-30T00:00:00Z")) {
		t.Fatalf("daily days due: %v", days)
	}
	dev := &reporting.ExportSchedule{Delay: time.Minute, Today: true}
	days = dev.DaysDue(at("2026-12-01T10:00:00Z"))
	if len(days) != 2 || !days[1].Equal(at("2026-12-01T00:00:00Z")) {
		t.Fatalf("dev days due: %v", days)
	}
	if got := dev.Next(at("2026-12-01T10:00:00Z")); !got.Equal(at("2026-12-01T10:01:00Z")) {
		t.Fatalf("dev Next: %s", got)
	}
}
