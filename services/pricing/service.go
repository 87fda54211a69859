package pricing

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"regexp"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/ticketing/ticketing/internal/errs"
)

// TypeChanged is the CloudEvents type of a price change's event.
const TypeChanged = "ticketing.pricing.changed"

// Changed is the domain event of one zone's price change by a
// repricing: what it was, what it is, why, and the rules version that
// has it. A repricing that moves several zones publishes one each.
type Changed struct {
	// ID is "<event>.<rules version>.<zone>": a repricing writes a rules
	// version once, so the id names the change, and publishing it again
	// (Service.Reprice after a failed publish) is the same event.
	ID           string    `json:"id"`
	Event        string    `json:"event"`
	Zone         string    `json:"zone"`
	Old          Money     `json:"old"`
	New          Money     `json:"new"`
	Target       Money     `json:"target"`
	Reason       string    `json:"reason"`
	RulesVersion int64     `json:"rules_version"`
	At           time.Time `json:"at"`
	// The figures that decided it (see Change).
	MultiplierBP   int `json:"multiplier_bp"`
	SellThroughBP  int `json:"sell_through_bp"`
	HoldsPerMinute int `json:"holds_per_minute"`
}

// ChangedEvents are the events of the repricing that wrote r (none when
// an operator wrote it).
func ChangedEvents(r Rules) []Changed {
	if r.Repricing == nil {
		return nil
	}
	out := make([]Changed, 0, len(r.Repricing.Changes))
	for _, c := range r.Repricing.Changes {
		m := func(a int64) Money { return Money{Amount: a, Currency: r.Currency} }
		out = append(out, Changed{
			ID:    r.Event + "." + strconv.FormatInt(r.Version, 10) + "." + c.Zone,
			Event: r.Event, Zone: c.Zone, Old: m(c.Old), New: m(c.New), Target: m(c.Target), Reason: c.Reason,
			RulesVersion: r.Version, At: r.Repricing.At,
			MultiplierBP: c.MultiplierBP, SellThroughBP: c.SellThroughBP, HoldsPerMinute: c.HoldsPerMinute,
		})
	}
	return out
}

// Publisher publishes price changes for audit and analytics.
//
// Publish returns once the event is stored where consumers read it (or
// fails: errs.Unavailable when trying again may work). It may be called
// by several goroutines at once. Publishing an event again with the same
// ID must not make a second one within the backend's duplicate window
// (services/pricing/natsevents: the stream's). Cancelling ctx abandons
// the publish; it may or may not have been stored.
type Publisher interface {
	Publish(ctx context.Context, ev Changed) error
}

// Discard is a Publisher that drops every event (tests, tools).
type Discard struct{}

// Publish implements Publisher.
func (Discard) Publish(context.Context, Changed) error { return nil }

var quoteIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$`)

// ValidQuoteID reports whether s may be a quote id: 1-64 letters, digits,
// '_' and '-', starting with a letter or digit (NewQuoteID's are "q_"
// and 20 base32 digits).
func ValidQuoteID(s string) bool { return quoteIDPattern.MatchString(s) }

var idEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// NewQuoteID returns a random, unguessable quote id: "q_" and 20 base32
// digits, 100 bits from crypto/rand.
func NewQuoteID() string {
	var b [13]byte
	_, _ = rand.Read(b[:])
	return "q_" + idEncoding.EncodeToString(b[:])[:20]
}

// Service prices carts and reprices events. Its fields are set before
// first use and not changed after; its methods may be called
// concurrently. Use it by pointer.
type Service struct {
	// Store keeps the price lists, vouchers and quotes. Required.
	Store Store
	// Events receives every price change of Reprice. Required for
	// Reprice.
	Events Publisher
	// Clock is the time. Default time.Now.
	Clock func() time.Time
	// NewID makes quote ids; they must be unguessable, as a quote id is
	// all a caller needs to read a quote. Default NewQuoteID.
	NewID func() string

	mu sync.Mutex
	// unpublished are, per event, the changes whose events could not be
	// published: the next Reprice of the event publishes them again.
	unpublished map[string][]Changed
}

func (s *Service) now() time.Time {
	if s.Clock != nil {
		return s.Clock()
	}
	return time.Now()
}

func (s *Service) newID() string {
	if s.NewID != nil {
		return s.NewID()
	}
	return NewQuoteID()
}

// Quote prices the cart with the event's current price list (and its
// voucher), at the Clock's time, and stores the quote under a new id.
// Errors are Price's, and errs.NotFound when the event has no price list
// or the voucher does not exist (ReasonVoucherNotFound); the store's
// otherwise. Redemption limits are not checked here: Redeem, when the
// order is placed, is their arbiter.
func (s *Service) Quote(ctx context.Context, c Cart) (Quote, error) {
	const op = "pricing.quote"
	if err := c.Validate(); err != nil {
		return Quote{}, errs.E(op, err)
	}
	r, err := s.Store.Rules(ctx, c.Event)
	if errs.Is(errs.NotFound, err) {
		return Quote{}, errs.E(op, errs.NotFound, "no prices for this event yet", err)
	}
	if err != nil {
		return Quote{}, errs.E(op, err)
	}
	var v *Voucher
	if c.Voucher != "" {
		got, err := s.Store.Voucher(ctx, NormalizeCode(c.Voucher))
		if err != nil {
			return Quote{}, errs.E(op, err)
		}
		v = &got
	}
	q, err := Price(r, c, v, s.now())
	if err != nil {
		return Quote{}, err
	}
	q.ID = s.newID()
	if err := s.Store.PutQuote(ctx, q); err != nil {
		return Quote{}, errs.E(op, err)
	}
	return q, nil
}

// Reprice applies the event's dynamic pricing (Repriced) for demand d at
// now. When a price moves it writes the next rules version, with
// compare-and-set (a concurrent write makes it read again and start
// over, a few times), then publishes one Changed event per moved zone;
// it reports whether it wrote a version. Quotes are never touched: a
// quote keeps the prices it was made with.
//
// A publish that fails leaves the version written: Reprice returns
// true with the error (errs.Unavailable), and the next Reprice of the
// event by this Service publishes the events not yet published before
// anything else, under the same ids. They are held in memory: a process
// that ends before that loses them from the stream, but each version
// keeps its own changes (Rules.Repricing), so the store has the record
// of the latest one (ChangedEvents) whatever happens to the events.
func (s *Service) Reprice(ctx context.Context, event string, d Demand, now time.Time) (bool, error) {
	const op = "pricing.reprice"
	if s.Events == nil {
		return false, errs.E(op, errs.Other, "the service has no publisher")
	}
	if err := d.Validate(); err != nil {
		return false, errs.E(op, err)
	}
	const attempts = 5
	for range attempts {
		if err := s.republish(ctx, event); err != nil {
			return false, err
		}
		r, err := s.Store.Rules(ctx, event)
		if err != nil {
			return false, errs.E(op, err)
		}
		next, changed, err := Repriced(r, d, now)
		if err != nil || !changed {
			return false, err
		}
		err = s.Store.PutRules(ctx, next)
		if errs.Is(errs.Conflict, err) && errs.ReasonOf(err) == ReasonVersionMismatch {
			continue // another write won: judge again from it
		}
		if err != nil {
			return false, errs.E(op, err)
		}
		return true, s.publish(ctx, event, ChangedEvents(next))
	}
	return false, errs.E(op, errs.Unavailable, "the price list kept changing; try again")
}

// republish publishes again the events whose publishing failed before.
func (s *Service) republish(ctx context.Context, event string) error {
	s.mu.Lock()
	evs := s.unpublished[event]
	s.mu.Unlock()
	if len(evs) == 0 {
		return nil
	}
	return s.publish(ctx, event, evs)
}

// publish publishes evs, of one event, in order. Those it could not
// publish are kept for the next Reprice, and those it published are no
// longer kept.
func (s *Service) publish(ctx context.Context, event string, evs []Changed) error {
	var err error
	done := map[string]bool{}
	var left []Changed
	for i, ev := range evs {
		if err = s.Events.Publish(ctx, ev); err != nil {
			left = evs[i:]
			break
		}
		done[ev.ID] = true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	keep := slices.DeleteFunc(slices.Clone(s.unpublished[event]), func(ev Changed) bool { return done[ev.ID] })
	for _, ev := range left {
		if !slices.ContainsFunc(keep, func(k Changed) bool { return k.ID == ev.ID }) {
			keep = append(keep, ev)
		}
	}
	if len(keep) == 0 {
		delete(s.unpublished, event)
	} else {
		if s.unpublished == nil {
			s.unpublished = map[string][]Changed{}
		}
		s.unpublished[event] = keep
	}
	if err != nil {
		return errs.E("pricing.reprice", errs.Unavailable, "price change written, its event not published; the next repricing of the event publishes it", err)
	}
	return nil
}
