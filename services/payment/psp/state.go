package psp

import (
	"crypto/rand"
	"encoding/json"
	"sort"
	"sync"
)

// Intent is a payment intent as the API answers it.
type Intent struct {
	ID                 string            `json:"id"`
	Object             string            `json:"object"` // "payment_intent"
	Amount             int64             `json:"amount"`
	AmountCapturable   int64             `json:"amount_capturable"`
	AmountReceived     int64             `json:"amount_received"`
	AmountRefunded     int64             `json:"amount_refunded"` // our extension
	Currency           string            `json:"currency"`
	Status             string            `json:"status"`
	CaptureMethod      string            `json:"capture_method"`
	Metadata           map[string]string `json:"metadata"`
	LastPaymentError   *PaymentError     `json:"last_payment_error"`
	NextAction         *NextAction       `json:"next_action"`
	LatestCharge       string            `json:"latest_charge,omitempty"`
	CanceledAt         int64             `json:"canceled_at,omitempty"`
	CancellationReason string            `json:"cancellation_reason,omitempty"`
	Created            int64             `json:"created"`
	Livemode           bool              `json:"livemode"`
}

// The statuses of an intent.
const (
	StatusRequiresPaymentMethod = "requires_payment_method"
	StatusRequiresConfirmation  = "requires_confirmation"
	StatusRequiresAction        = "requires_action"
	StatusProcessing            = "processing"
	StatusRequiresCapture       = "requires_capture"
	StatusSucceeded             = "succeeded"
	StatusCanceled              = "canceled"
)

// PaymentError is why an intent's last confirm failed.
type PaymentError struct {
	Type        string `json:"type"` // card_error
	Code        string `json:"code"`
	DeclineCode string `json:"decline_code,omitempty"`
	Message     string `json:"message"`
}

// NextAction is what the buyer must do: follow RedirectToURL.URL (the
// 3-D Secure challenge).
type NextAction struct {
	Type          string         `json:"type"` // redirect_to_url
	RedirectToURL *RedirectToURL `json:"redirect_to_url,omitempty"`
}

// RedirectToURL is a redirect next action.
type RedirectToURL struct {
	URL       string `json:"url"`
	ReturnURL string `json:"return_url"`
}

// Refund is a refund as the API answers it.
type Refund struct {
	ID            string `json:"id"`
	Object        string `json:"object"` // "refund"
	Amount        int64  `json:"amount"`
	Currency      string `json:"currency"`
	PaymentIntent string `json:"payment_intent"`
	Charge        string `json:"charge"`
	Status        string `json:"status"` // succeeded
	Created       int64  `json:"created"`
}

// intentState is an intent as the journal keeps it: the answer and what
// only the simulator knows.
type intentState struct {
	Intent
	Seq       uint64     `json:"seq"` // creation order
	Challenge *challenge `json:"challenge,omitempty"`
}

// challenge is an intent's 3-D Secure challenge: the page's token, what
// completing it does, and, once answered, the redirect status.
type challenge struct {
	Token       string `json:"token"`
	ThenDecline bool   `json:"then_decline,omitempty"`
	ReturnURL   string `json:"return_url,omitempty"`
	Last4       string `json:"last4"`
	Result      string `json:"result,omitempty"` // succeeded | failed once answered
}

// record is one journal record: a state change with everything it
// brings, applied whole or not at all.
type record struct {
	Intents   []*intentState `json:"intents,omitempty"`
	Refunds   []*Refund      `json:"refunds,omitempty"`
	Idem      *idemRecord    `json:"idem,omitempty"`
	Events    []*eventRecord `json:"events,omitempty"`
	Delivered []delivered    `json:"delivered,omitempty"`
}

func (r *record) empty() bool {
	return len(r.Intents) == 0 && len(r.Refunds) == 0 && r.Idem == nil && len(r.Events) == 0 && len(r.Delivered) == 0
}

// idemRecord is an idempotency key's stored answer.
type idemRecord struct {
	Key         string          `json:"key"`
	Fingerprint string          `json:"fp"`
	Status      int             `json:"status"`
	Body        json.RawMessage `json:"body"`
	Created     int64           `json:"created"` // unix seconds
}

// eventRecord is a webhook event and the endpoints it is for.
type eventRecord struct {
	ID        string          `json:"id"`
	Seq       uint64          `json:"seq"`
	Created   int64           `json:"created"`
	Body      json.RawMessage `json:"body"`
	Endpoints []string        `json:"endpoints"`
}

// delivered says an endpoint acknowledged an event (or it was abandoned).
type delivered struct {
	Event     string `json:"event"`
	Endpoint  string `json:"endpoint"`
	Abandoned bool   `json:"abandoned,omitempty"`
}

// state is the durable state in memory: only what the journal holds.
// Values are replaced, never changed in place, so a reader may keep one.
type state struct {
	mu         sync.RWMutex
	intents    map[string]*intentState
	refunds    map[string]*Refund
	challenges map[string]string // token → intent id
	seq        uint64            // the highest intent or event seq seen
}

func newState() *state {
	return &state{intents: map[string]*intentState{}, refunds: map[string]*Refund{}, challenges: map[string]string{}}
}

// install applies a record's intents and refunds.
func (s *state) install(r *record) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, in := range r.Intents {
		s.intents[in.ID] = in
		if in.Challenge != nil {
			s.challenges[in.Challenge.Token] = in.ID
		}
		s.seq = max(s.seq, in.Seq)
	}
	for _, rf := range r.Refunds {
		s.refunds[rf.ID] = rf
	}
	for _, e := range r.Events {
		s.seq = max(s.seq, e.Seq)
	}
}

func (s *state) intent(id string) *intentState {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.intents[id]
}

func (s *state) refund(id string) *Refund {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.refunds[id]
}

func (s *state) intentByToken(token string) *intentState {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.intents[s.challenges[token]]
}

// Records is every intent and refund the simulator holds, for checkers
// (GET /_sim/records).
type Records struct {
	Intents []RecordIntent `json:"intents"`
	Refunds []Refund       `json:"refunds"`
	// PendingDeliveries counts the webhook deliveries not yet
	// acknowledged.
	PendingDeliveries int `json:"pending_deliveries"`
}

// RecordIntent is an intent with its order (metadata[order_id]).
type RecordIntent struct {
	Intent
	OrderID string `json:"order_id"`
}

func (s *state) records() Records {
	s.mu.RLock()
	all := make([]*intentState, 0, len(s.intents))
	for _, in := range s.intents {
		all = append(all, in)
	}
	refunds := make([]Refund, 0, len(s.refunds))
	for _, rf := range s.refunds {
		refunds = append(refunds, *rf)
	}
	s.mu.RUnlock()
	sort.Slice(all, func(i, j int) bool { return all[i].Seq < all[j].Seq })
	sort.Slice(refunds, func(i, j int) bool {
		if refunds[i].Created != refunds[j].Created {
			return refunds[i].Created < refunds[j].Created
		}
		return refunds[i].ID < refunds[j].ID
	})
	out := Records{Intents: make([]RecordIntent, len(all)), Refunds: refunds}
	for i, in := range all {
		out.Intents[i] = RecordIntent{Intent: in.Intent, OrderID: in.Metadata["order_id"]}
	}
	return out
}

// keyedMutex serialises the operations on one key (an intent).
type keyedMutex struct {
	mu sync.Mutex
	m  map[string]*keyedEntry
}

type keyedEntry struct {
	mu sync.Mutex
	n  int
}

func (k *keyedMutex) lock(key string) (unlock func()) {
	k.mu.Lock()
	if k.m == nil {
		k.m = map[string]*keyedEntry{}
	}
	e := k.m[key]
	if e == nil {
		e = &keyedEntry{}
		k.m[key] = e
	}
	e.n++
	k.mu.Unlock()
	e.mu.Lock()
	return func() {
		e.mu.Unlock()
		k.mu.Lock()
		if e.n--; e.n == 0 {
			delete(k.m, key)
		}
		k.mu.Unlock()
	}
}

const idAlphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// newID is prefix_ and 24 random base-62 characters.
func newID(prefix string) string {
	var b [24]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	out := make([]byte, 0, len(prefix)+1+len(b))
	out = append(out, prefix...)
	out = append(out, '_')
	for _, c := range b {
		out = append(out, idAlphabet[int(c)%len(idAlphabet)])
	}
	return string(out)
}
