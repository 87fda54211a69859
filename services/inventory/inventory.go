// Package inventory is the seat and general-admission inventory of one event
// partition: a deterministic state machine that decides holds, releases,
// confirmations, sale cancellations and expiries, and records every decision
// as a Decision. The partition owner (core/owner) logs decisions durably
// before it answers; recovery applies the same decisions to a snapshot.
//
// The package knows nothing of NATS or storage; it holds the domain rules:
// no seat is held or sold by two holds, held + sold never exceeds capacity, a
// hold is confirmed only while it is live, and idempotency keys replay their
// first answer.
package inventory

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"hash"
	"strconv"
	"strings"
	"time"

	"github.com/ticketing/ticketing/internal/errs"
)

// Status of a seat or a hold.
type Status uint8

const (
	Free Status = iota
	Held
	Sold
	Released  // a hold released by its holder
	Expired   // a hold whose time ran out
	Cancelled // a sale cancelled (refund); its seats are free again
)

var statusNames = [...]string{"free", "held", "sold", "released", "expired", "cancelled"}

func (s Status) String() string {
	if int(s) < len(statusNames) {
		return statusNames[s]
	}
	return "unknown"
}

// MarshalText makes statuses appear as words in JSON.
func (s Status) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText parses a status word.
func (s *Status) UnmarshalText(b []byte) error {
	for i, n := range statusNames {
		if n == string(b) {
			*s = Status(i)
			return nil
		}
	}
	*s = Free
	return nil
}

// SeatDef is one reserved seat of a partition.
type SeatDef struct {
	ID   string `json:"id"`
	Zone string `json:"zone"`
}

// ZoneDef is a price zone of a partition. GA zones carry a capacity; the
// capacity of a reserved zone is the number of its seats.
type ZoneDef struct {
	ID       string `json:"id"`
	GA       bool   `json:"ga"`
	Capacity int    `json:"capacity,omitempty"`
	// PriceCents and Currency are the zone's face value, stamped on domain
	// events; they play no part in decisions.
	PriceCents int64  `json:"price_cents,omitempty"`
	Currency   string `json:"currency,omitempty"`
}

// Layout is the shape of a partition's inventory. It never changes.
type Layout struct {
	Seats []SeatDef `json:"seats"`
	Zones []ZoneDef `json:"zones"`
	// Event is what the partition knows of its event, for domain events.
	Event EventFacts `json:"event"`
}

// EventFacts are the facts of an event that its partitions stamp on their
// domain events.
type EventFacts struct {
	OrganizerID string    `json:"organizer_id,omitempty"`
	OnSaleAt    time.Time `json:"on_sale_at"`
	// Capacity is the tickets of the whole event, over every partition.
	Capacity int `json:"capacity"`
}

// Limits bound what one request may ask for.
type Limits struct {
	MaxSeatsPerHold  int           // default 10
	MaxQuantity      int           // GA quantity per hold, default 10
	DefaultTTL       time.Duration // default 10m
	MinTTL, MaxTTL   time.Duration // defaults 30s and 30m
	IdempotencyTTL   time.Duration // how long keys and ended holds are kept, default and minimum 24h
	MaxHolderLen     int           // default 128
	MaxOrderIDLen    int           // default 128
	MaxIdempotentKey int           // default 255
}

// DefaultLimits are the limits used when none are configured.
func DefaultLimits() Limits {
	return Limits{
		MaxSeatsPerHold:  10,
		MaxQuantity:      10,
		DefaultTTL:       10 * time.Minute,
		MinTTL:           30 * time.Second,
		MaxTTL:           30 * time.Minute,
		IdempotencyTTL:   24 * time.Hour,
		MaxHolderLen:     128,
		MaxOrderIDLen:    128,
		MaxIdempotentKey: 255,
	}
}

// HoldRequest asks for seats (all or nothing) or a quantity in a GA zone.
type HoldRequest struct {
	Seats    []string `json:"seats,omitempty"`
	Zone     string   `json:"zone,omitempty"`
	Quantity int      `json:"quantity,omitempty"`
	// TTL in seconds; 0 means the default.
	TTLSeconds int    `json:"ttl_seconds,omitempty"`
	Holder     string `json:"holder,omitempty"`
	// IdempotencyKey is the caller's key, already scoped to the caller
	// ("<scope>:<key>"); Fingerprint identifies the request body, so that the
	// same key with another body is refused.
	IdempotencyKey string `json:"idempotency_key"`
	Fingerprint    string `json:"fingerprint"`
}

// HoldRef names a hold for a caller, who proves it is theirs by one of: the
// hold's bearer token (Token, checked by the owner), or being its holder
// (Holder, the account or partner client the edge authenticated: a hold of
// another holder is errs.NotFound, as if it did not exist).
type HoldRef struct {
	HoldID string `json:"hold_id"`
	Token  string `json:"token,omitempty"`
	Holder string `json:"holder,omitempty"`
}

// ConfirmRequest turns a live hold into a sale.
type ConfirmRequest struct {
	HoldID  string `json:"hold_id"`
	OrderID string `json:"order_id,omitempty"`
	// Reclaim sells a hold that expired or was released, if every one of
	// its seats (its GA quantity) is still free, in the same decision:
	// a payment that succeeded after its hold ended gets the same seats
	// or nothing. Ignored by CancelSale.
	Reclaim bool `json:"reclaim,omitempty"`
}

// Hold is the public view of a hold.
type Hold struct {
	HoldID    string    `json:"hold_id"`
	Seats     []string  `json:"seats"`
	Zone      string    `json:"zone,omitempty"`
	Quantity  int       `json:"quantity"`
	Holder    string    `json:"holder,omitempty"`
	Status    Status    `json:"status"`
	ExpiresAt time.Time `json:"expires_at"`
	OrderID   string    `json:"order_id,omitempty"`
	HoldToken string    `json:"hold_token,omitempty"`
}

// ZoneCount is a zone's capacity and what is held and sold in it.
type ZoneCount struct {
	ID       string `json:"id"`
	GA       bool   `json:"ga"`
	Capacity int    `json:"capacity"`
	Held     int    `json:"held"`
	Sold     int    `json:"sold"`
	// Expiring: of Held, the seats (GA: the quantity) whose hold expires
	// within the horizon the request asked about
	// (AvailabilityRequest.ExpiringWithinMS); 0 when it asked none.
	Expiring int `json:"expiring,omitempty"`
}

// AvailabilityRequest is the body of an availability request. Every field
// is optional: an empty body ({}) asks for the plain availability.
type AvailabilityRequest struct {
	// ExpiringWithinMS asks ZoneCount.Expiring for holds that expire
	// within this many milliseconds (0..MaxExpiringWithin).
	ExpiringWithinMS int64 `json:"expiring_within_ms,omitempty"`
}

// MaxExpiringWithin bounds AvailabilityRequest.ExpiringWithinMS.
const MaxExpiringWithin = 24 * time.Hour

// Within is the horizon asked, checked: an errs.Invalid error when it is
// negative or above MaxExpiringWithin.
func (r AvailabilityRequest) Within() (time.Duration, error) {
	if r.ExpiringWithinMS < 0 || r.ExpiringWithinMS > MaxExpiringWithin.Milliseconds() {
		return 0, errs.Errorf("inventory.availability", errs.Invalid, "expiring_within_ms %d is not within 0..%d", r.ExpiringWithinMS, MaxExpiringWithin.Milliseconds())
	}
	return time.Duration(r.ExpiringWithinMS) * time.Millisecond, nil
}

// Availability is a partition's state: each seat's status and each zone's
// counts.
type Availability struct {
	Partition string            `json:"partition"`
	Seats     map[string]Status `json:"seats"`
	Zones     []ZoneCount       `json:"zones"`
}

// IdemKey is the fixed-size digest under which an idempotency key is kept;
// keys themselves are not stored.
type IdemKey [16]byte

// HashIdempotencyKey digests a caller-scoped idempotency key.
func HashIdempotencyKey(scoped string) IdemKey {
	sum := sha256.Sum256([]byte(scoped))
	var k IdemKey
	copy(k[:], sum[:16])
	return k
}

func (k IdemKey) String() string { return hex.EncodeToString(k[:]) }

// MarshalText encodes the key as hex.
func (k IdemKey) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// UnmarshalText decodes a hex key.
func (k *IdemKey) UnmarshalText(b []byte) error {
	_, err := hex.Decode(k[:], b)
	return err
}

// HoldToken is the bearer token for a hold: an HMAC of its id under the
// core's secret. It is never stored; it is derived again when checked.
func HoldToken(secret []byte, holdID string) string {
	return NewTokenSigner(secret).Sign(holdID)
}

// TokenSigner makes hold tokens with one reusable HMAC; it is not safe for
// concurrent use (an owner's loop keeps one).
type TokenSigner struct {
	mac hash.Hash
	buf [sha256.Size]byte
}

// NewTokenSigner makes a signer for secret.
func NewTokenSigner(secret []byte) *TokenSigner {
	return &TokenSigner{mac: hmac.New(sha256.New, secret)}
}

// Sign returns holdID's token.
func (s *TokenSigner) Sign(holdID string) string {
	s.mac.Reset()
	s.mac.Write([]byte(holdID))
	return base64.RawURLEncoding.EncodeToString(s.mac.Sum(s.buf[:0]))
}

// CheckHoldToken reports, in constant time, whether token is holdID's.
func CheckHoldToken(secret []byte, holdID, token string) bool {
	want := HoldToken(secret, holdID)
	return hmac.Equal([]byte(want), []byte(token))
}

// PartitionOfHold returns the partition key ("<event>.<i>") a hold id belongs
// to: hold ids are "<event>.<i>.<nonce>".
func PartitionOfHold(holdID string) (string, bool) {
	i := strings.LastIndexByte(holdID, '.')
	if i <= 0 || i == len(holdID)-1 {
		return "", false
	}
	key := holdID[:i]
	j := strings.LastIndexByte(key, '.')
	if j <= 0 {
		return "", false
	}
	if _, err := strconv.Atoi(key[j+1:]); err != nil {
		return "", false
	}
	return key, true
}
