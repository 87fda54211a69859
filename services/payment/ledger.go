package payment

import (
	"context"
	"encoding/json"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/ticketing/ticketing/internal/errs"
)

// PaymentStatus is where an order's payment stands.
type PaymentStatus string

// The statuses of a payment. Succeeded, PartiallyRefunded and Refunded
// follow from the ledger entries (Apply sets them); the others are set by
// the caller as the gateway reports the intent.
const (
	StatusPending           PaymentStatus = "pending"            // created, not captured
	StatusRequiresAction    PaymentStatus = "requires_action"    // a 3-D Secure challenge is pending (RedirectURL)
	StatusSucceeded         PaymentStatus = "succeeded"          // captured, nothing refunded
	StatusFailed            PaymentStatus = "failed"             // the last confirm was declined (Decline)
	StatusCanceled          PaymentStatus = "canceled"           // the intent was cancelled (voided) before capture
	StatusRefunded          PaymentStatus = "refunded"           // the whole capture was refunded
	StatusPartiallyRefunded PaymentStatus = "partially_refunded" // part of the capture was refunded
)

func (s PaymentStatus) valid() bool {
	switch s {
	case StatusPending, StatusRequiresAction, StatusSucceeded, StatusFailed, StatusCanceled, StatusRefunded, StatusPartiallyRefunded:
		return true
	}
	return false
}

// captured reports whether the status is one of a captured payment.
func (s PaymentStatus) captured() bool {
	return s == StatusSucceeded || s == StatusRefunded || s == StatusPartiallyRefunded
}

// EntryKind is what a ledger entry records.
type EntryKind string

// The kinds of entries.
const (
	EntryCapture EntryKind = "capture" // money taken: at most one per payment
	EntryRefund  EntryKind = "refund"  // money given back, never more than captured
	EntryVoid    EntryKind = "void"    // an authorization released without capture
)

// Where an entry was learnt (Entry.Source).
const (
	SourceReturn  = "return"  // the buyer's browser came back from the gateway
	SourceWebhook = "webhook" // a gateway webhook
	SourceSync    = "sync"    // reading the intent from the gateway (reconciliation)
	SourceSaga    = "saga"    // the order saga (a refund of a late success)
)

// Reasons refining errs.Conflict from Apply and Ledger.Update.
const (
	ReasonAlreadyCaptured       = "already_captured"        // a second capture, or a void after a capture
	ReasonVoided                = "voided"                  // a capture or a second void after a void
	ReasonRefundExceedsCaptured = "refund_exceeds_captured" // refunds would pass the captured amount
	ReasonExceedsAmount         = "exceeds_amount"          // a capture or void of more than the payment's amount
	ReasonCurrencyMismatch      = "currency_mismatch"       // an entry in another currency
	ReasonEntryIDReused         = "entry_id_reused"         // an entry id with other content than before
	ReasonTooManyEntries        = "too_many_entries"        // MaxEntries reached
)

// Limits.
const (
	MaxEntries     = 256 // ledger entries of one payment
	MaxIDLen       = 64  // order and account ids
	MaxGatewayID   = 255 // intent and entry ids (gateway object ids), event ids
	MaxRedirectURL = 2048
	MaxTextLen     = 500 // decline messages and codes
)

// Payment is the record of one order's payment: what the gateway intent
// is for, where it stands, and the ledger of money that moved (Entries).
// Captured and Refunded are the sums of the entries; they and the
// captured statuses change only through Apply.
type Payment struct {
	OrderID string `json:"order_id"`
	// Event is the catalog event the order is for, for List's filter.
	Event    string        `json:"event,omitempty"`
	Account  string        `json:"account"`
	IntentID string        `json:"intent_id,omitempty"` // the gateway's payment intent, "pi_..."
	Amount   int64         `json:"amount"`              // minor units, > 0
	Currency string        `json:"currency"`            // ISO 4217, upper case
	Status   PaymentStatus `json:"status"`
	Captured int64         `json:"captured"`
	Refunded int64         `json:"refunded"`
	// RedirectURL is the 3-D Secure challenge while Status is
	// StatusRequiresAction.
	RedirectURL string       `json:"redirect_url,omitempty"`
	Decline     *Decline     `json:"decline,omitempty"` // why the last confirm failed
	Card        *CardSummary `json:"card,omitempty"`    // the card of the last confirm
	Attempts    int          `json:"attempts"`          // confirms tried
	// Entries is the ledger, oldest first, append-only; nil when empty
	// (as every Ledger returns it).
	Entries []Entry `json:"entries,omitempty"`
	// Version, Created and Updated are kept by the Ledger: Version grows
	// with every write, Created is the first write's time, Updated the
	// last's.
	Version int64     `json:"version"`
	Created time.Time `json:"created"`
	Updated time.Time `json:"updated"`
}

// Entry is one movement of money, as the gateway reported it. Its ID is
// the gateway object's id (the charge of a capture, the refund of a
// refund, the intent of a void), unique within a payment: the same
// movement learnt twice (the return page and the webhook, a webhook
// delivered twice) has the same id and is recorded once.
type Entry struct {
	ID       string    `json:"id"`
	Kind     EntryKind `json:"kind"`
	Amount   int64     `json:"amount"`   // minor units, > 0
	Currency string    `json:"currency"` // the payment's; Apply fills it in when empty
	At       time.Time `json:"at"`       // when it happened (the gateway's time when known)
	Source   string    `json:"source"`   // SourceReturn, SourceWebhook, SourceSync, SourceSaga
}

// Ledger keeps payments. Implementations are safe for concurrent use, also
// from several processes on one backing store (services/payment/natskv
// for `ticketing dev`, services/payment/postgres in production; both pass
// services/payment/paymenttest). Cancelling the context abandons the
// call; a write abandoned midway may or may not have taken effect (read
// again, or repeat it: entries are idempotent by id).
type Ledger interface {
	// Get returns the payment of an order, or errs.NotFound.
	Get(ctx context.Context, orderID string) (Payment, error)
	// Update reads the order's payment, calls fn on a copy of it
	// (exists false and a Payment with only OrderID set when there is
	// none), and writes the result if it is still at the version read;
	// when another write came first, it reads again and calls fn again,
	// so fn must have no effect but on p. An error from fn is returned as
	// it is, and nothing is written. What fn leaves is checked with
	// Prepare: the entries are append-only (errs.Invalid), an entry whose
	// id is already in the ledger with the same kind, amount and currency
	// is dropped (a no-op: so concurrent appends of one capture record one
	// entry), with other content it is errs.Conflict
	// (ReasonEntryIDReused), and the domain's invariants hold (Apply's
	// errs.Conflict). When fn changes nothing, nothing is written and the
	// stored payment is returned (errs.NotFound when none exists). It
	// returns the payment as stored, with its new Version.
	Update(ctx context.Context, orderID string, fn func(p *Payment, exists bool) error) (Payment, error)
	// UpdateFrom is Update for a caller that holds the order's payment
	// already: from is the payment as this ledger returned it last (Get,
	// Update, UpdateFrom), unchanged, or a Payment with only OrderID set
	// (Version 0) when the ledger had none. It first calls fn on a copy
	// of from and writes the result without reading, if the stored
	// payment is still at from.Version (is still absent, for Version 0).
	// When it is not, or when fn on from changes nothing or fails, it
	// reads and goes on as Update does: its result is always Update's.
	// It saves Update's read (a round trip) when from is current.
	UpdateFrom(ctx context.Context, from Payment, fn func(p *Payment, exists bool) error) (Payment, error)
	// SeenEvent records a gateway event id and reports whether this was
	// the first time: of any number of calls with one id, concurrent or
	// not, exactly one returns true while the id is remembered (at least
	// 7 days, longer than the gateway retries a webhook). An id that
	// cannot be a gateway event id is errs.Invalid. It de-duplicates a
	// webhook's side effects outside the ledger (events, mails); the
	// ledger's entries are idempotent by themselves.
	SeenEvent(ctx context.Context, eventID string) (first bool, err error)
	// List returns payments in order id order, filtered (ListFilter), a
	// page at a time, for the finance export and the checkers.
	List(ctx context.Context, f ListFilter) (Page, error)
}

// ListFilter selects payments for List. Zero fields select everything.
type ListFilter struct {
	// Event keeps the payments of one catalog event.
	Event string
	// From and To keep the payments with an entry whose At is in
	// [From, To): money moved in that period. Payments without entries
	// never match a time range. Zero means open on that side.
	From, To time.Time
	// After is the cursor: Page.Next of the previous page; "" from the
	// start.
	After string
	// Limit bounds the page: default 100, at most MaxListLimit.
	Limit int
}

// MaxListLimit bounds ListFilter.Limit.
const MaxListLimit = 1000

// Page is one page of List: Next is the cursor of the next page, "" when
// this is the last.
type Page struct {
	Payments []Payment
	Next     string
}

// Normalize returns f with its Limit defaulted, or errs.Invalid.
func (f ListFilter) Normalize() (ListFilter, error) {
	const op = "payment.list"
	if f.Limit == 0 {
		f.Limit = 100
	}
	if f.Limit < 0 || f.Limit > MaxListLimit {
		return f, errs.Errorf(op, errs.Invalid, "limit must be 1 to %d", MaxListLimit)
	}
	if !f.From.IsZero() && !f.To.IsZero() && !f.From.Before(f.To) {
		return f, errs.E(op, errs.Invalid, "the time range is empty: from must be before to")
	}
	if f.After != "" && !ValidOrderID(f.After) {
		return f, errs.E(op, errs.Invalid, "the cursor is not an order id")
	}
	if f.Event != "" && !ValidOrderID(f.Event) {
		return f, errs.E(op, errs.Invalid, "the event is not an event id")
	}
	f.From, f.To = Timestamp(f.From), Timestamp(f.To)
	return f, nil
}

// Match reports whether p passes the filter's event and time range (not
// its cursor).
func (f ListFilter) Match(p Payment) bool {
	if f.Event != "" && p.Event != f.Event {
		return false
	}
	if f.From.IsZero() && f.To.IsZero() {
		return true
	}
	for _, e := range p.Entries {
		if (f.From.IsZero() || !e.At.Before(f.From)) && (f.To.IsZero() || e.At.Before(f.To)) {
			return true
		}
	}
	return false
}

var (
	idPattern       = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$`)
	gatewayIDChars  = regexp.MustCompile(`^[A-Za-z0-9_-]{1,255}$`)
	currencyPattern = regexp.MustCompile(`^[A-Z]{3}$`)
)

// ValidOrderID reports whether s may be an order (or event, or account)
// id: letters, digits, '_' and '-', starting with a letter or digit, at
// most MaxIDLen bytes. Ids appear in storage keys.
func ValidOrderID(s string) bool { return idPattern.MatchString(s) }

// ValidGatewayID reports whether s may be a gateway object or event id
// ("pi_...", "ch_...", "re_...", "evt_..."): 1 to MaxGatewayID letters,
// digits, '_' and '-'.
func ValidGatewayID(s string) bool { return gatewayIDChars.MatchString(s) }

// Timestamp is t as every ledger keeps it: UTC, truncated to
// microseconds; the zero time stays zero.
func Timestamp(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC().Truncate(time.Microsecond)
}

// normalizeEntry checks e for a payment in currency and fills in its
// currency (upper case) and time (Timestamp).
func normalizeEntry(e Entry, currency string) (Entry, error) {
	const op = "payment.entry"
	switch {
	case !ValidGatewayID(e.ID):
		return e, errs.Errorf(op, errs.Invalid, "entry id must be 1-%d letters, digits, '_' or '-'", MaxGatewayID)
	case e.Kind != EntryCapture && e.Kind != EntryRefund && e.Kind != EntryVoid:
		return e, errs.E(op, errs.Invalid, "entry kind must be capture, refund or void")
	case e.Amount <= 0:
		return e, errs.E(op, errs.Invalid, "entry amount must be positive")
	case e.At.IsZero():
		return e, errs.E(op, errs.Invalid, "entry time is required")
	}
	switch e.Source {
	case SourceReturn, SourceWebhook, SourceSync, SourceSaga:
	default:
		return e, errs.E(op, errs.Invalid, "entry source must be return, webhook, sync or saga")
	}
	if e.Currency == "" {
		e.Currency = currency
	}
	e.Currency = strings.ToUpper(e.Currency)
	if e.Currency != currency {
		return e, errs.E(op, errs.Conflict, "the entry's currency is not the payment's").WithReason(ReasonCurrencyMismatch)
	}
	e.At = Timestamp(e.At)
	return e, nil
}

// same reports whether two entries with one id record the same movement:
// kind, amount and currency. When and how it was learnt may differ.
func (e Entry) same(o Entry) bool {
	return e.Kind == o.Kind && e.Amount == o.Amount && e.Currency == o.Currency
}

func (p *Payment) voided() bool {
	for _, e := range p.Entries {
		if e.Kind == EntryVoid {
			return true
		}
	}
	return false
}

// Apply appends e to the ledger, keeping the invariants, and updates
// Captured, Refunded and Status. It reports whether e was appended: an
// entry whose id is in the ledger already with the same kind, amount and
// currency is a no-op (false, nil). It is errs.Invalid for a malformed
// entry (no id, amount not positive, unknown kind or source, no time)
// and errs.Conflict when the entry breaks an invariant, with a reason:
// ReasonEntryIDReused (same id, other content), ReasonAlreadyCaptured (a
// second capture, or a void after the capture), ReasonVoided,
// ReasonRefundExceedsCaptured, ReasonExceedsAmount (capture or void of
// more than Amount), ReasonCurrencyMismatch, ReasonTooManyEntries. On an
// error p is unchanged.
//
// A capture sets StatusSucceeded and clears RedirectURL; refunds set
// StatusPartiallyRefunded, then StatusRefunded once all is refunded; a
// void sets StatusCanceled.
func (p *Payment) Apply(e Entry) (bool, error) {
	const op = "payment.apply"
	e, err := normalizeEntry(e, strings.ToUpper(p.Currency))
	if err != nil {
		return false, err
	}
	for _, old := range p.Entries {
		if old.ID == e.ID {
			if old.same(e) {
				return false, nil
			}
			return false, errs.E(op, errs.Conflict, "an entry with this id records another movement").WithReason(ReasonEntryIDReused)
		}
	}
	if len(p.Entries) >= MaxEntries {
		return false, errs.Errorf(op, errs.Conflict, "a payment has at most %d entries", MaxEntries).WithReason(ReasonTooManyEntries)
	}
	switch e.Kind {
	case EntryCapture, EntryVoid:
		switch {
		case p.Captured > 0:
			return false, errs.E(op, errs.Conflict, "the payment is captured already").WithReason(ReasonAlreadyCaptured)
		case p.voided():
			return false, errs.E(op, errs.Conflict, "the payment was voided").WithReason(ReasonVoided)
		case e.Amount > p.Amount:
			return false, errs.E(op, errs.Conflict, "more than the payment's amount").WithReason(ReasonExceedsAmount)
		}
	case EntryRefund:
		if e.Amount > p.Captured-p.Refunded {
			return false, errs.E(op, errs.Conflict, "refunds would exceed the captured amount").WithReason(ReasonRefundExceedsCaptured)
		}
	}
	p.Entries = append(p.Entries, e)
	switch e.Kind {
	case EntryCapture:
		p.Captured = e.Amount
		p.Status = StatusSucceeded
		p.RedirectURL = ""
	case EntryRefund:
		p.Refunded += e.Amount
		p.Status = StatusPartiallyRefunded
		if p.Refunded == p.Captured {
			p.Status = StatusRefunded
		}
	case EntryVoid:
		p.Status = StatusCanceled
	}
	return true, nil
}

// Check reports whether p is a valid payment: ids, amount, currency and
// status well-formed (errs.Invalid), its entries a ledger that Apply
// could have written, in order, from an empty one (Apply's errs.Conflict
// and errs.Invalid; a repeated id is errs.Invalid), Captured and Refunded
// their sums and the status one that the entries allow (errs.Invalid).
// Currency must be upper case and times as Timestamp leaves them
// (Normalize does both).
func (p Payment) Check() error {
	const op = "payment.check"
	bad := func(msg string) error { return errs.E(op, errs.Invalid, msg) }
	switch {
	case !ValidOrderID(p.OrderID):
		return bad("order id must be 1-64 letters, digits, '_' or '-'")
	case p.Event != "" && !ValidOrderID(p.Event):
		return bad("event id must be 1-64 letters, digits, '_' or '-'")
	case p.Account != "" && !ValidOrderID(p.Account):
		return bad("account id must be 1-64 letters, digits, '_' or '-'")
	case p.IntentID != "" && !ValidGatewayID(p.IntentID):
		return bad("intent id must be 1-255 letters, digits, '_' or '-'")
	case p.Amount <= 0:
		return bad("amount must be positive")
	case !currencyPattern.MatchString(p.Currency):
		return bad("currency must be an ISO 4217 code in upper case")
	case !p.Status.valid():
		return bad("unknown payment status")
	case p.Attempts < 0:
		return bad("attempts cannot be negative")
	case len(p.RedirectURL) > MaxRedirectURL || !utf8.ValidString(p.RedirectURL):
		return bad("redirect url too long or not UTF-8")
	case len(p.Entries) > MaxEntries:
		return errs.Errorf(op, errs.Conflict, "a payment has at most %d entries", MaxEntries).WithReason(ReasonTooManyEntries)
	}
	if d := p.Decline; d != nil && (len(d.Code) > MaxTextLen || len(d.DeclineCode) > MaxTextLen || len(d.Message) > MaxTextLen ||
		!utf8.ValidString(d.Code+d.DeclineCode+d.Message)) {
		return bad("decline too long or not UTF-8")
	}
	if c := p.Card; c != nil && (len(c.Brand) > 32 || (c.Last4 != "" && !fourDigits(c.Last4)) || len(c.Fingerprint) > 128 ||
		!utf8.ValidString(string(c.Brand)+c.Fingerprint)) {
		return bad("card summary malformed")
	}
	replay := Payment{Amount: p.Amount, Currency: p.Currency}
	for _, e := range p.Entries {
		// Another currency is Apply's conflict; the payment's in another
		// case, or none, is an entry Normalize did not see.
		if (e.Currency != p.Currency && (e.Currency == "" || strings.EqualFold(e.Currency, p.Currency))) ||
			!e.At.Equal(Timestamp(e.At)) || e.At.Location() != time.UTC {
			return bad("entries are not normalized")
		}
		applied, err := replay.Apply(e)
		if err != nil {
			return err
		}
		if !applied {
			return bad("an entry id appears twice in the ledger")
		}
	}
	if replay.Captured != p.Captured || replay.Refunded != p.Refunded {
		return bad("captured and refunded are not the sums of the entries")
	}
	if replay.Status != "" && replay.Status != p.Status {
		return bad("the status does not match the ledger (" + string(replay.Status) + ")")
	}
	if replay.Status == "" && p.Status.captured() {
		return bad("a captured status without a capture in the ledger")
	}
	return nil
}

func fourDigits(s string) bool {
	if len(s) != 4 {
		return false
	}
	for i := 0; i < 4; i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// Normalize returns p ready to check and store: currency upper case,
// times as Timestamp leaves them (entries' currencies filled in), an
// empty ledger nil, and Check's verdict.
func Normalize(p Payment) (Payment, error) {
	p = normalize(p)
	return p, p.Check()
}

func normalize(p Payment) Payment {
	p.Currency = strings.ToUpper(p.Currency)
	p.Created, p.Updated = Timestamp(p.Created), Timestamp(p.Updated)
	if len(p.Entries) == 0 {
		p.Entries = nil
		return p
	}
	es := make([]Entry, len(p.Entries))
	for i, e := range p.Entries {
		if e.Currency == "" {
			e.Currency = p.Currency
		}
		e.Currency = strings.ToUpper(e.Currency)
		e.At = Timestamp(e.At)
		es[i] = e
	}
	p.Entries = es
	return p
}

// Clone returns a deep copy of p (entries, decline, card).
func (p Payment) Clone() Payment {
	if p.Entries != nil {
		p.Entries = append([]Entry(nil), p.Entries...)
	}
	if p.Decline != nil {
		d := *p.Decline
		p.Decline = &d
	}
	if p.Card != nil {
		c := *p.Card
		p.Card = &c
	}
	return p
}

// Prepare is the part of Ledger.Update that every adapter shares: given
// the stored payment (before, exists) and what fn left (after), it
// returns the payment to write, the entries it appends to before's, and
// whether anything changed. The identity fields are kept: OrderID must
// stay (errs.Invalid), Version and Created are before's (Created is now
// for a new payment), Updated is now. Before's entries must be a prefix
// of after's, unchanged (errs.Invalid: the ledger is append-only).
// Appended entries whose id is in before's ledger are dropped when they
// record the same movement (errs.Conflict, ReasonEntryIDReused, when
// not). When the result, normalized, is before, changed is false and the
// result is before; otherwise it is checked (Check's errors).
func Prepare(before Payment, exists bool, after Payment, now time.Time) (p Payment, appended []Entry, changed bool, err error) {
	const op = "payment.update"
	if after.OrderID != before.OrderID {
		return Payment{}, nil, false, errs.E(op, errs.Invalid, "an update cannot change the order id")
	}
	if len(after.Entries) < len(before.Entries) {
		return Payment{}, nil, false, errs.E(op, errs.Invalid, "ledger entries are append-only")
	}
	for i, e := range before.Entries {
		a := after.Entries[i]
		if a.ID != e.ID || a.Kind != e.Kind || a.Amount != e.Amount || !strings.EqualFold(a.Currency, e.Currency) ||
			!Timestamp(a.At).Equal(e.At) || a.Source != e.Source {
			return Payment{}, nil, false, errs.E(op, errs.Invalid, "ledger entries are append-only")
		}
	}
	entries := append([]Entry(nil), before.Entries...)
	for _, a := range after.Entries[len(before.Entries):] {
		if a.Currency == "" {
			a.Currency = after.Currency
		}
		a.Currency = strings.ToUpper(a.Currency)
		dup := false
		for _, e := range entries {
			if e.ID != a.ID {
				continue
			}
			if !e.same(a) {
				return Payment{}, nil, false, errs.E(op, errs.Conflict, "an entry with this id records another movement").WithReason(ReasonEntryIDReused)
			}
			dup = true
			break
		}
		if !dup {
			entries = append(entries, a)
		}
	}
	after.Entries = entries
	after.Version, after.Created, after.Updated = before.Version, before.Created, before.Updated
	after = normalize(after)
	was := before
	if !exists {
		was = Payment{OrderID: before.OrderID}
	}
	if sameJSON(was, after) {
		return before, nil, false, nil
	}
	if !exists {
		after.Created = Timestamp(now)
	}
	after.Updated = Timestamp(now)
	if err := after.Check(); err != nil {
		return Payment{}, nil, false, errs.E(op, err)
	}
	return after, after.Entries[len(before.Entries):], true, nil
}

func sameJSON(a, b Payment) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}
