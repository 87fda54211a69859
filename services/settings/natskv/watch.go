package natskv

import (
	"context"
	"log/slog"
	"strings"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/internal/kvwatch"
	"github.com/ticketing/ticketing/services/flags"
	"github.com/ticketing/ticketing/services/settings"
)

// Metrics count what watchers apply and refuse.
type Metrics struct {
	changes *prometheus.CounterVec
}

// NewMetrics registers the watchers' metrics with reg (nil: kept but not
// registered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{changes: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ticketing_settings_watch_changes_total",
		Help: "Settings and flag changes seen by this process's watcher, by kind (setting, flag) and outcome (applied, removed, refused: invalid and kept the last good value, unknown: a setting this process does not know).",
	}, []string{"kind", "outcome"})}
	if reg != nil {
		if err := reg.Register(m.changes); err != nil {
			// Another process part in this one (a test's second core)
			// registered it first: count into that.
			if are, ok := err.(prometheus.AlreadyRegisteredError); ok {
				m.changes = are.ExistingCollector.(*prometheus.CounterVec)
			}
		}
	}
	return m
}

func (m *Metrics) count(kind, outcome string) {
	if m != nil {
		m.changes.WithLabelValues(kind, outcome).Inc()
	}
}

// Watch applies the bucket's current entries and then every change to
// live and set (either may be nil) until ctx is done (it then returns
// nil), or until the watch ends on its own (an error: the settings would
// go stale). live is marked ready once the current entries are in. A
// change is applied as soon as the server delivers it, well within a
// second of its write. An entry the domain refuses is logged and counted,
// and the value before it stays.
func Watch(ctx context.Context, kv jetstream.KeyValue, live *settings.Live, set *flags.Set, log *slog.Logger, m *Metrics) error {
	var ready func()
	if live != nil {
		ready = live.MarkReady
	}
	return kvwatch.Follow(ctx, kv, "settings watch", ready, func(e jetstream.KeyValueEntry) { apply(e, live, set, log, m) })
}

func apply(e jetstream.KeyValueEntry, live *settings.Live, set *flags.Set, log *slog.Logger, m *Metrics) {
	key, put := e.Key(), e.Operation() == jetstream.KeyValuePut
	switch {
	case strings.HasPrefix(key, settings.SettingPrefix) && live != nil:
		if !put {
			live.Remove(key)
			m.count("setting", "removed")
			log.Info("setting removed", "key", key, "revision", e.Revision())
			return
		}
		if err := live.Apply(key, e.Value()); err != nil {
			if errs.Is(errs.NotFound, err) {
				m.count("setting", "unknown")
				log.Debug("setting unknown to this process; ignored", "key", key, "revision", e.Revision())
				return
			}
			m.count("setting", "refused")
			log.Warn("invalid setting in the bucket; keeping the last good value", "key", key, "revision", e.Revision(), "err", err)
			return
		}
		m.count("setting", "applied")
		log.Info("setting applied", "key", key, "revision", e.Revision())
	case strings.HasPrefix(key, settings.FlagPrefix) && set != nil:
		flag := strings.TrimPrefix(key, settings.FlagPrefix)
		if !put {
			set.Remove(flag)
			m.count("flag", "removed")
			log.Info("flag removed", "flag", flag, "revision", e.Revision())
			return
		}
		entry, err := settings.DecodeEntry(e.Value())
		if err == nil {
			err = set.Apply(flag, entry.Value)
		}
		if err != nil {
			m.count("flag", "refused")
			log.Warn("invalid flag definition in the bucket; keeping the last good one", "flag", flag, "revision", e.Revision(), "err", err)
			return
		}
		m.count("flag", "applied")
		log.Info("flag applied", "flag", flag, "revision", e.Revision())
	}
}
