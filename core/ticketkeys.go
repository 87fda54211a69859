package core

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"encoding/json"
	"strings"
	"time"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/internal/keyring"
	"github.com/ticketing/ticketing/services/barcode"
	"github.com/ticketing/ticketing/services/fulfillment"
	ticketsapi "github.com/ticketing/ticketing/services/fulfillment/natsapi"
)

// TicketKeyRing is how the ticket barcodes' signing keys rotate: a new key
// signs every 30 days, and a retired key is kept (to show and verify the
// barcodes it signed) for 400 days, longer than a ticket is sold ahead.
var TicketKeyRing = keyring.KeyRingConfig{RotateEvery: 30 * 24 * time.Hour, VerifyFor: 400 * 24 * time.Hour}

// barcodeKID is a keyring key's id in barcodes: the first
// barcode.MaxKeyIDLen characters of its thumbprint (96 bits).
func barcodeKID(kid string) string { return kid[:min(len(kid), barcode.MaxKeyIDLen)] }

// ticketSigner signs tickets' barcodes with the ring's keys and derives
// their rotating codes' secrets.
type ticketSigner struct {
	ring *keyring.KeyRing
	// rotation is the core's rotation master secret: an event's is
	// HMAC-SHA256 of it and the event id (eventRotation).
	rotation []byte
}

// eventRotation is an event's rotation master secret (barcode.Verifier's
// RotationSecret): the gates of that event get it, no other's.
func (s ticketSigner) eventRotation(event string) []byte {
	mac := hmac.New(sha256.New, s.rotation)
	mac.Write([]byte("ticket-rotation\x00" + event))
	return mac.Sum(nil)
}

// claims are the barcode claims of t.
func claims(t fulfillment.Ticket) (barcode.Claims, error) {
	c := barcode.Claims{TicketID: t.ID, EventID: t.EventID, Holder: t.Holder, ValidFrom: t.ValidFrom, ValidUntil: t.ValidUntil}
	if t.Seat != "" {
		c.PlaceKind, c.Place = barcode.Seat, t.Seat
	} else {
		c.PlaceKind, c.Place = barcode.GeneralAdmission, t.Zone
	}
	if n, err := hex.Decode(c.Device[:], []byte(t.Device)); err != nil || n != len(c.Device) {
		return c, errs.Errorf("core.ticket_claims", errs.Invalid, "ticket %s: device %q is not %d hex bytes", t.ID, t.Device, len(c.Device))
	}
	return c, nil
}

// Sign implements fulfillment.Signer: the ticket's static barcode, its
// text as the token.
func (s ticketSigner) Sign(t fulfillment.Ticket) (string, []byte, error) {
	const op = "core.sign_ticket"
	priv, kid, ok := s.ring.Private(t.KeyID)
	if !ok {
		return "", nil, errs.Errorf(op, errs.Gone, "the key %s that signed ticket %s is no longer kept", t.KeyID, t.ID)
	}
	c, err := claims(t)
	if err != nil {
		return "", nil, err
	}
	text, err := barcode.Sign(barcode.Key{Event: t.EventID, ID: barcodeKID(kid), Private: priv}, c)
	if err != nil {
		return "", nil, errs.E(op, err)
	}
	return kid, []byte(text), nil
}

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// show is t's view for its holder: its token signed again by its key
// (which must hash to the issued one) and its rotating code's secret.
func (s ticketSigner) show(t fulfillment.Ticket) (fulfillment.View, error) {
	const op = "core.show_ticket"
	_, token, err := s.Sign(t)
	if err != nil {
		return fulfillment.View{}, err
	}
	if !t.Matches(token) {
		return fulfillment.View{}, errs.Errorf(op, errs.Other, "ticket %s: its token signed again is not the issued one", t.ID)
	}
	c, err := claims(t)
	if err != nil {
		return fulfillment.View{}, err
	}
	secret, err := barcode.DeviceSecret(s.eventRotation(t.EventID), c)
	if err != nil {
		return fulfillment.View{}, errs.E(op, err)
	}
	return fulfillment.View{ID: t.ID, Order: t.OrderID, Event: t.EventID, Seat: t.Seat, Zone: t.Zone, Index: t.Index,
		IssuedAt: t.IssuedAt, ValidFrom: t.ValidFrom, ValidUntil: t.ValidUntil,
		Barcode: string(token), Secret: b32.EncodeToString(secret)}, nil
}

// keySet is the ring's public keys as the event's.
func (s ticketSigner) keySet(event string) barcode.KeySet {
	var set barcode.KeySet
	pub := s.ring.PublicKeys()
	for _, kid := range pub.KIDs() {
		k, _ := pub.Lookup(kid)
		set.Keys = append(set.Keys, barcode.PublicKey{Event: event, ID: barcodeKID(kid), Key: k})
	}
	return set
}

// gate is what an event's gates verify its barcodes with: the ring's
// public keys as the event's, the event's rotation secret and its
// revoked tickets.
func (g *gateKeeper) gate(ctx context.Context, event string) (ticketsapi.Gate, error) {
	const op = "core.ticket_gate"
	keys, err := json.Marshal(g.signer.keySet(event))
	if err != nil {
		return ticketsapi.Gate{}, errs.E(op, errs.Other, err)
	}
	revs, err := g.store.Revocations(ctx, event)
	if err != nil {
		return ticketsapi.Gate{}, err
	}
	list := barcode.NewRevocationList(uint64(len(revs)))
	for _, r := range revs {
		list.Revoke(r.TicketID)
	}
	revoked, err := json.Marshal(list)
	if err != nil {
		return ticketsapi.Gate{}, errs.E(op, errs.Other, err)
	}
	return ticketsapi.Gate{Event: event, Keys: keys, RotationSecret: g.signer.eventRotation(event), Revoked: revoked}, nil
}

// ReasonUnknownTicket and ReasonSuperseded refuse a scan whose barcode is
// well signed but names no ticket of ours, or not the ticket's current
// barcode (re-issued since).
const (
	ReasonUnknownTicket = "unknown_ticket"
	ReasonSuperseded    = "superseded"
)

// gateKeeper judges scans at the gates, online.
type gateKeeper struct {
	signer ticketSigner
	store  fulfillment.Store
	now    func() time.Time
}

// scan verifies a scanned barcode as of its scan time (the key, the
// signature, the event, the validity, the rotating code), finds its
// ticket and checks that the barcode is the ticket's current one, then
// checks it in: the first check-in of a ticket admits, a later one is
// refused with the first.
func (g *gateKeeper) scan(ctx context.Context, r ticketsapi.ScanRequest) (ticketsapi.Scan, error) {
	const op = "core.scan"
	now := g.now()
	at := r.At
	if at.IsZero() {
		at = now
	}
	if at.After(now.Add(time.Minute)) {
		return ticketsapi.Scan{}, errs.E(op, errs.Invalid, "the scan time is in the future")
	}
	refuse := func(reason, msg string) (ticketsapi.Scan, error) {
		return ticketsapi.Scan{Reason: reason, Message: msg}, nil
	}
	// The keys of the event it claims too, when another (online, every
	// event's keys are at hand): a well-signed ticket of another event is
	// told apart from a forgery (wrong_event, not unknown_key).
	keys := g.signer.keySet(r.Event)
	if c, err := barcode.Parse(r.Barcode); err == nil && c.EventID != r.Event {
		keys.Keys = append(keys.Keys, g.signer.keySet(c.EventID).Keys...)
	}
	v := barcode.Verifier{Keys: keys, Event: r.Event, RotationSecret: g.signer.eventRotation(r.Event),
		Now: func() time.Time { return at }}
	c, err := v.Verify(r.Barcode)
	if err != nil {
		if reason := errs.ReasonOf(err); reason != "" {
			return refuse(reason, err.Error())
		}
		return ticketsapi.Scan{}, err
	}
	t, err := g.store.ByID(ctx, c.TicketID)
	if errs.Is(errs.NotFound, err) {
		return refuse(ReasonUnknownTicket, "the barcode names no ticket of this system")
	}
	if err != nil {
		return ticketsapi.Scan{}, err
	}
	static, _, _ := strings.Cut(r.Barcode, ".")
	if !t.Matches([]byte(static)) || t.EventID != r.Event {
		return refuse(ReasonSuperseded, "the barcode is not the ticket's current one")
	}
	switch rev, err := g.store.Revoked(ctx, t.EventID, t.ID); {
	case err == nil:
		return refuse(barcode.ReasonRevoked, "the ticket was revoked ("+rev.Reason+")")
	case !errs.Is(errs.NotFound, err):
		return ticketsapi.Scan{}, err
	}
	view := &fulfillment.View{ID: t.ID, Order: t.OrderID, Event: t.EventID, Seat: t.Seat, Zone: t.Zone, Index: t.Index,
		IssuedAt: t.IssuedAt, ValidFrom: t.ValidFrom, ValidUntil: t.ValidUntil}
	in, err := g.store.CheckIn(ctx, fulfillment.CheckIn{TicketID: t.ID, EventID: t.EventID, Gate: r.Gate, Nonce: r.Nonce, At: at})
	switch {
	case errs.ReasonOf(err) == fulfillment.ReasonCheckedIn:
		return ticketsapi.Scan{Reason: fulfillment.ReasonCheckedIn, Message: err.Error(), Ticket: view, CheckIn: &in}, nil
	case err != nil:
		return ticketsapi.Scan{}, err
	}
	return ticketsapi.Scan{Admitted: true, Ticket: view, CheckIn: &in}, nil
}
