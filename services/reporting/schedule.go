package reporting

import (
	"context"
	"github.com/ticketing/ticketing/internal/pause"
	"log/slog"
	"time"
)

// ExportSchedule runs the daily finance export: at start it exports the
// previous UTC day (and, with Today, the day so far), then again a little
// after each UTC midnight. Exports replace their files, so running one twice,
// or late, is harmless.
type ExportSchedule struct {
	Service *Service
	Sink    Sink
	// Delay after midnight, so that the bridge and the consumer have caught
	// up with the day's last events. Default 15m.
	Delay time.Duration
	// Today also exports the current day, every Delay: for development,
	// where nobody waits for midnight.
	Today bool
	Log   *slog.Logger
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Run exports until ctx is done.
func (s *ExportSchedule) Run(ctx context.Context) {
	if s.Delay <= 0 {
		s.Delay = 15 * time.Minute
	}
	if s.Now == nil {
		s.Now = time.Now
	}
	if s.Log == nil {
		s.Log = slog.Default()
	}
	for {
		now := s.Now().UTC()
		for _, day := range s.DaysDue(now) {
			names, err := s.Service.ExportDay(ctx, day, s.Sink)
			if err != nil {
				s.Log.Error("finance export failed", "day", day.Format(time.DateOnly), "err", err)
				continue
			}
			s.Log.Info("finance export written", "day", day.Format(time.DateOnly), "files", len(names))
		}
		if !pause.For(ctx, s.Next(now).Sub(now)) {
			return
		}
	}
}

// DaysDue is what a run at now exports: the previous day, and the current
// one with Today.
func (s *ExportSchedule) DaysDue(now time.Time) []time.Time {
	today := now.UTC().Truncate(24 * time.Hour)
	days := []time.Time{today.Add(-24 * time.Hour)}
	if s.Today {
		days = append(days, today)
	}
	return days
}

// Next is when the run after one at now is due: Delay after the next
// midnight, or Delay from now with Today.
func (s *ExportSchedule) Next(now time.Time) time.Time {
	if s.Today {
		return now.Add(s.Delay)
	}
	next := now.UTC().Truncate(24 * time.Hour).Add(24*time.Hour + s.Delay)
	if next.Sub(now) > 24*time.Hour { // before today's Delay: today's run is still due
		next = next.Add(-24 * time.Hour)
	}
	return next
}
