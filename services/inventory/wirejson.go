package inventory

import (
	"encoding/json"
	"strconv"

	"github.com/ticketing/ticketing/internal/jsonr"
	"github.com/ticketing/ticketing/internal/jsonw"
)

// The JSON of the hold path without reflection: an owner decodes every hold
// request and encodes every answer and log record; an edge decodes every
// answer. Encoders write exactly what encoding/json writes; decoders take
// the plain shapes these encoders and our clients write and hand anything
// else to encoding/json (wirejson_test.go checks both against it).

// DecodeJSON decodes a hold request.
func (r *HoldRequest) DecodeJSON(b []byte) error {
	if r.decodePlain(b) {
		return nil
	}
	*r = HoldRequest{}
	return json.Unmarshal(b, r)
}

func (r *HoldRequest) decodePlain(b []byte) bool {
	*r = HoldRequest{}
	return jsonr.Object(b, func(s *jsonr.Scanner, k []byte) {
		switch string(k) {
		case "seats":
			r.Seats, _ = s.Strings()
		case "zone":
			r.Zone, _ = s.String()
		case "quantity":
			r.Quantity, _ = s.Int()
		case "ttl_seconds":
			r.TTLSeconds, _ = s.Int()
		case "holder":
			r.Holder, _ = s.String()
		case "idempotency_key":
			r.IdempotencyKey, _ = s.String()
		case "fingerprint":
			r.Fingerprint, _ = s.String()
		default:
			s.Fail()
		}
	})
}

// DecodeJSON decodes a hold.
func (h *Hold) DecodeJSON(b []byte) error {
	if h.decodePlain(b) {
		return nil
	}
	*h = Hold{}
	return json.Unmarshal(b, h)
}

func (h *Hold) decodePlain(b []byte) bool {
	*h = Hold{}
	return jsonr.Object(b, func(s *jsonr.Scanner, k []byte) {
		switch string(k) {
		case "hold_id":
			h.HoldID, _ = s.String()
		case "seats":
			h.Seats, _ = s.Strings()
		case "zone":
			h.Zone, _ = s.String()
		case "quantity":
			h.Quantity, _ = s.Int()
		case "holder":
			h.Holder, _ = s.String()
		case "status":
			if q, ok := s.Quoted(); ok {
				_ = h.Status.UnmarshalText(q[1 : len(q)-1]) // never fails
			}
		case "expires_at":
			if q, ok := s.Quoted(); ok && h.ExpiresAt.UnmarshalJSON(q) != nil {
				s.Fail()
			}
		case "order_id":
			h.OrderID, _ = s.String()
		case "hold_token":
			h.HoldToken, _ = s.String()
		default:
			s.Fail()
		}
	})
}

// AppendJSON appends r as encoding/json encodes it.
func (r *HoldRequest) AppendJSON(b []byte) []byte {
	b = append(b, '{')
	first := true
	if len(r.Seats) > 0 {
		b = jsonw.Key(b, "seats", true)
		b = jsonw.Strings(b, r.Seats)
		first = false
	}
	if r.Zone != "" {
		b = jsonw.Key(b, "zone", first)
		b = jsonw.String(b, r.Zone)
		first = false
	}
	if r.Quantity != 0 {
		b = jsonw.Key(b, "quantity", first)
		b = jsonw.Int(b, int64(r.Quantity))
		first = false
	}
	if r.TTLSeconds != 0 {
		b = jsonw.Key(b, "ttl_seconds", first)
		b = jsonw.Int(b, int64(r.TTLSeconds))
		first = false
	}
	if r.Holder != "" {
		b = jsonw.Key(b, "holder", first)
		b = jsonw.String(b, r.Holder)
		first = false
	}
	b = jsonw.Key(b, "idempotency_key", first)
	b = jsonw.String(b, r.IdempotencyKey)
	b = jsonw.Key(b, "fingerprint", false)
	b = jsonw.String(b, r.Fingerprint)
	return append(b, '}')
}

// AppendJSON appends h as encoding/json encodes it.
func (h *Hold) AppendJSON(b []byte) ([]byte, error) {
	b = append(b, '{')
	b = jsonw.Key(b, "hold_id", true)
	b = jsonw.String(b, h.HoldID)
	b = jsonw.Key(b, "seats", false)
	b = jsonw.Strings(b, h.Seats)
	if h.Zone != "" {
		b = jsonw.Key(b, "zone", false)
		b = jsonw.String(b, h.Zone)
	}
	b = jsonw.Key(b, "quantity", false)
	b = jsonw.Int(b, int64(h.Quantity))
	if h.Holder != "" {
		b = jsonw.Key(b, "holder", false)
		b = jsonw.String(b, h.Holder)
	}
	b = jsonw.Key(b, "status", false)
	b = jsonw.String(b, h.Status.String())
	b = jsonw.Key(b, "expires_at", false)
	b, err := jsonw.Time(b, h.ExpiresAt)
	if err != nil {
		return b, err
	}
	if h.OrderID != "" {
		b = jsonw.Key(b, "order_id", false)
		b = jsonw.String(b, h.OrderID)
	}
	if h.HoldToken != "" {
		b = jsonw.Key(b, "hold_token", false)
		b = jsonw.String(b, h.HoldToken)
	}
	return append(b, '}'), nil
}

// AppendJSON appends d as encoding/json encodes it (a log record holds tens
// of them).
func (d *Decision) AppendJSON(b []byte) []byte {
	if d == nil {
		return append(b, "null"...)
	}
	b = append(b, '{')
	b = jsonw.Key(b, "t", true)
	b = jsonw.String(b, string(d.Type))
	b = jsonw.Key(b, "at", false)
	b = jsonw.Int(b, d.At)
	b = strField(b, "hold", d.Hold)
	if len(d.Seats) > 0 {
		b = jsonw.Key(b, "seats", false)
		b = jsonw.Strings(b, d.Seats)
	}
	b = strField(b, "zone", d.Zone)
	if d.Qty != 0 {
		b = jsonw.Key(b, "qty", false)
		b = jsonw.Int(b, int64(d.Qty))
	}
	b = strField(b, "holder", d.Holder)
	if d.Expires != 0 {
		b = jsonw.Key(b, "exp", false)
		b = jsonw.Int(b, d.Expires)
	}
	if d.Key != (IdemKey{}) {
		b = strField(b, "key", d.Key.String()) // never empty: 32 hex digits
	}
	b = strField(b, "fp", d.FP)
	b = strField(b, "reason", d.Reason)
	b = strField(b, "msg", d.Msg)
	b = strField(b, "order", d.Order)
	b = strField(b, "owner", d.Owner)
	if d.Lease != 0 {
		b = jsonw.Key(b, "lease", false)
		b = strconv.AppendUint(b, d.Lease, 10)
	}
	return append(b, '}')
}

// strField appends a member that is not the first, unless v is empty
// (omitempty).
func strField(b []byte, name, v string) []byte {
	if v == "" {
		return b
	}
	b = jsonw.Key(b, name, false)
	return jsonw.String(b, v)
}
