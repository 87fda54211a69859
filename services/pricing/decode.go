package pricing

import (
	"bytes"
	"encoding/json"
	"io"
	"time"

	"github.com/ticketing/ticketing/internal/errs"
)

// Size limits of the documents the decoders read: twice the largest
// valid document written with two-space indentation (the tests check it).
const (
	MaxRulesDoc   = 128 << 10
	MaxVoucherDoc = 32 << 10
	MaxCartDoc    = 64 << 10
)

// decode reads one JSON object of at most limit bytes into v: no unknown
// fields, nothing after it. Errors are errs.Invalid, or errs.TooLarge.
func decode(op string, b []byte, limit int, v any) error {
	if len(b) > limit {
		return errs.Errorf(op, errs.TooLarge, "the document has %d bytes, at most %d are read", len(b), limit)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return errs.E(op, errs.Invalid, "malformed document: "+err.Error())
	}
	if _, err := dec.Token(); err != io.EOF {
		return errs.E(op, errs.Invalid, "malformed document: data after the object")
	}
	return nil
}

// DecodeRules reads a price list an operator writes (JSON, the field
// names of Rules' tags): at most MaxRulesDoc bytes, no unknown fields,
// no repricing record (only Reprice writes one), and a list that
// Validate accepts. It returns it normalized (Rules.Normalize).
func DecodeRules(b []byte) (Rules, error) {
	const op = "pricing.decode_rules"
	var r Rules
	if err := decode(op, b, MaxRulesDoc, &r); err != nil {
		return Rules{}, err
	}
	if r.Repricing != nil {
		return Rules{}, errs.E(op, errs.Invalid, "repricing is written by repricing only")
	}
	r, err := r.Normalize()
	if err != nil {
		return Rules{}, errs.E(op, err)
	}
	return r, nil
}

// DecodeVoucher reads a voucher an operator writes (JSON): at most
// MaxVoucherDoc bytes, no unknown fields, and a voucher that Validate
// accepts once its code is normalized. It returns it normalized
// (Voucher.Normalize).
func DecodeVoucher(b []byte) (Voucher, error) {
	const op = "pricing.decode_voucher"
	var v Voucher
	if err := decode(op, b, MaxVoucherDoc, &v); err != nil {
		return Voucher{}, err
	}
	v, err := v.Normalize()
	if err != nil {
		return Voucher{}, errs.E(op, err)
	}
	return v, nil
}

// cartRequest is what a buyer sends: a cart without its account and
// expiry.
type cartRequest struct {
	Event   string      `json:"event"`
	Holds   []string    `json:"holds"`
	Tickets []Item      `json:"tickets"`
	AddOns  []AddOnItem `json:"add_ons,omitempty"`
	Voucher string      `json:"voucher,omitempty"`
}

// DecodeCart reads a buyer's cart request (JSON): the event, holds,
// tickets, add-ons and voucher code, at most MaxCartDoc bytes, no other
// fields, within the limits of Cart.Validate. The account and the expiry
// are not the buyer's to say: the caller sets them, from the session and
// the holds, on the cart returned (with Account and ExpiresAt empty).
func DecodeCart(b []byte) (Cart, error) {
	const op = "pricing.decode_cart"
	var req cartRequest
	if err := decode(op, b, MaxCartDoc, &req); err != nil {
		return Cart{}, err
	}
	c := Cart{Event: req.Event, Holds: req.Holds, Tickets: req.Tickets, AddOns: nilIfEmpty(req.AddOns),
		Voucher: req.Voucher, ExpiresAt: time.Time{}}
	if err := c.validateRequest(); err != nil {
		return Cart{}, errs.E(op, err)
	}
	return c, nil
}
