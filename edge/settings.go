package edge

import (
	"context"
	"log/slog"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/nats-io/nats.go/jetstream"
	of "github.com/open-feature/go-sdk/openfeature"
	"github.com/open-feature/go-sdk/openfeature/isolated"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ticketing/ticketing/edge/httpapi"
	"github.com/ticketing/ticketing/edge/ratelimit"
	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/internal/pause"
	"github.com/ticketing/ticketing/internal/supervisor"
	"github.com/ticketing/ticketing/services/catalog"
	"github.com/ticketing/ticketing/services/flags"
	flagsof "github.com/ticketing/ticketing/services/flags/openfeature"
	"github.com/ticketing/ticketing/services/settings"
	settingskv "github.com/ticketing/ticketing/services/settings/natskv"
)

// FlagSalesEnabled is the edge's sales kill switch: a boolean flag
// evaluated for every hold with the event's organizer, the event, the
// edge's region, the sales channel and the caller. When it answers false
// the hold is refused (503, reason "sales_paused", Retry-After). Not
// defined: sales go on.
const FlagSalesEnabled = "sales.enabled"

// HeaderChannel names the sales channel of a request (web, app,
// box-office, partner, …) for flag targeting; absent or malformed: "web".
const HeaderChannel = "Ticketing-Channel"

// SettingsConfig configures the edge's dynamic settings and feature flags.
type SettingsConfig struct {
	// Region is the region that flag rules target. Default: the edge's
	// name.
	Region string
	// SalesPausedRetryAfter is the Retry-After of a hold refused by the
	// sales kill switch. Default 30s.
	SalesPausedRetryAfter time.Duration
}

// Settings are an edge's live settings and feature flags: it follows the
// core's settings bucket over the leaf node and applies hold limits, drain
// mode and the sales kill switch as they change, within a second. Until
// the bucket is reached (an older core has none) the edge runs on its
// start-up values.
type Settings struct {
	name, region string
	cfg          SettingsConfig
	base         ratelimit.Limit
	live         *settings.Live
	flags        *flags.Set
	of           *of.Client
	log          *slog.Logger
}

// followSettings follows the settings bucket as sup's component
// "settings-follower" (waiting for the bucket while the core has none).
// base is the configured hold limit.
func (e *Edge) followSettings(js jetstream.JetStream, cfg *Config, sup *supervisor.Supervisor, base ratelimit.Limit, reg prometheus.Registerer) (*Settings, error) {
	sc := cfg.Settings
	if sc.Region == "" {
		sc.Region = cfg.Leaf.Name
	}
	if sc.SalesPausedRetryAfter <= 0 {
		sc.SalesPausedRetryAfter = 30 * time.Second
	}
	s := &Settings{name: cfg.Leaf.Name, region: sc.Region, cfg: sc, base: base,
		live: settings.NewLive(nil), flags: flags.NewSet(), log: e.log.With("component", "settings")}
	api := isolated.NewAPI()
	if err := api.SetProviderAndWait(context.Background(), flagsof.New(s.flags)); err != nil {
		return nil, err
	}
	s.of = api.NewClient()
	metrics := settingskv.NewMetrics(reg)
	_, err := sup.Start(supervisor.Component{Name: "settings-follower", Run: func(ctx context.Context) error {
		defer func() { _ = api.Shutdown(context.Background()) }()
		for attempt := 1; ; attempt++ {
			kv, err := js.KeyValue(ctx, settingskv.Bucket)
			if err == nil {
				return settingskv.Watch(ctx, kv, s.live, s.flags, s.log, metrics)
			}
			if attempt == 5 {
				s.log.Warn("settings bucket not reachable yet; running on start-up values", "err", err)
			}
			if !pause.For(ctx, time.Second) {
				return nil
			}
		}
	}})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// Ready is closed once the bucket's values at the start are applied.
func (s *Settings) Ready() <-chan struct{} { return s.live.Ready() }

// Live are the edge's current settings.
func (s *Settings) Live() *settings.Live { return s.live }

// Flags are the edge's current flag definitions.
func (s *Settings) Flags() *flags.Set { return s.flags }

// HoldLimit is the per-client hold limit now: edge.holds.rate and
// edge.holds.burst for this edge or everyone, else the configured limit.
func (s *Settings) HoldLimit() ratelimit.Limit {
	snap := s.live.Snapshot()
	rate := snap.Int(settings.EdgeHoldsRate, s.name, -1)
	burst := snap.Int(settings.EdgeHoldsBurst, s.name, -1)
	if rate < 0 && burst < 0 {
		return s.base
	}
	l := s.base
	if rate >= 0 {
		// The setting is a rate a second: the configured limit's rate is
		// rescaled to a second when it has another period.
		l.Rate, l.Period = int(rate), time.Second
	}
	if burst >= 0 {
		l.Burst = int(burst)
	}
	if l.Validate() != nil {
		return s.base
	}
	return l
}

// Drain answers 503 with Retry-After on every route but /healthz, /readyz
// (and /metrics, served before it) while edge.drain is on for this edge.
func (s *Settings) Drain(c *fiber.Ctx) error {
	snap := s.live.Snapshot()
	if !snap.Bool(settings.EdgeDrain, s.name, false) {
		return c.Next()
	}
	switch c.Path() {
	case "/healthz", "/readyz", "/metrics":
		return c.Next()
	}
	after := snap.Duration(settings.EdgeDrainRetryAfter, s.name, 30*time.Second)
	c.Set(fiber.HeaderRetryAfter, strconv.FormatInt(int64((after+time.Second-1)/time.Second), 10))
	return errs.E("edge.drain", errs.Unavailable, "this edge is draining; try again later").WithReason("draining")
}

// SalesOpen is the hold gate of FlagSalesEnabled.
func (s *Settings) SalesOpen(c *fiber.Ctx, e catalog.Event) error {
	if _, defined := s.flags.Get(FlagSalesEnabled); !defined {
		return nil // the hot path pays nothing for a flag no one defined
	}
	ectx := of.NewEvaluationContext(targetingKey(c), map[string]any{
		flagsof.AttrOrganizer: e.OrganizerID, flagsof.AttrEvent: e.ID,
		flagsof.AttrRegion: s.region, flagsof.AttrChannel: channel(c),
	})
	if s.of.Boolean(c.UserContext(), FlagSalesEnabled, true, ectx) {
		return nil
	}
	c.Set(fiber.HeaderRetryAfter, strconv.FormatInt(int64((s.cfg.SalesPausedRetryAfter+time.Second-1)/time.Second), 10))
	return errs.E("edge.hold", errs.Unavailable, "sales of this event are paused; try again later").WithReason("sales_paused")
}

// targetingKey is who asks: the waiting-room session, else the client
// address (the account id once accounts exist).
func targetingKey(c *fiber.Ctx) string {
	if s := c.Cookies(httpapi.SessionCookie); s != "" && len(s) <= 64 {
		return s
	}
	return c.IP()
}

// channel is the request's sales channel: HeaderChannel when it is 1-32
// lower-case letters, digits and dashes, else "web".
func channel(c *fiber.Ctx) string {
	ch := c.Get(HeaderChannel)
	if ch == "" || len(ch) > 32 {
		return "web"
	}
	for i := 0; i < len(ch); i++ {
		if b := ch[i]; !(b >= 'a' && b <= 'z' || b >= '0' && b <= '9' || b == '-') {
			return "web"
		}
	}
	return ch
}
