package httpapi

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/internal/jsonr"
	"github.com/ticketing/ticketing/services/catalog"
)

// Limits on what the edge accepts before anything reaches the core.
const (
	maxHoldBody     = 16 << 10
	maxSeatsPerHold = 10
	maxQuantity     = 10
	maxSeatIDLen    = 64
	maxIdemKeyLen   = 255
	// maxTokenLen bounds a bearer token before anything else looks at it:
	// the longest access token a verifier may be configured to take
	// (token.Config.MaxTokenBytes, at most 4096; the verifier applies the
	// configured one). It was 512, the hold tokens' bound, which refused
	// every access token of an account with a role or a longer issuer.
	maxTokenLen = 4096
	// maxTTLSeconds bounds ttl_seconds before it reaches an owner, whose own
	// range (default 30-1800) is checked on a Duration that a larger value
	// overflows: 18446744104 s wrapped to 30 s and was accepted.
	maxTTLSeconds = 24 * 60 * 60
)

// requestBody is the request's body as sent. Compressed bodies are refused:
// Fiber's c.Body() inflates any Content-Encoding without a size limit, so a
// few KiB could become gigabytes before any limit is checked.
func requestBody(c *fiber.Ctx, op string) ([]byte, error) {
	if ce := strings.TrimSpace(c.Get(fiber.HeaderContentEncoding)); ce != "" && !strings.EqualFold(ce, "identity") {
		return nil, errs.E(op, errs.Invalid, "compressed request bodies (Content-Encoding) are not accepted")
	}
	return c.Request().Body(), nil
}

// decodeStrict decodes exactly one JSON value into v, refusing unknown
// fields and trailing data.
func decodeStrict(op string, body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return errs.E(op, errs.Invalid, "a JSON body is required")
	}
	d := json.NewDecoder(bytes.NewReader(body))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		return errs.E(op, errs.Invalid, "malformed JSON body: "+describeJSONError(err))
	}
	if _, err := d.Token(); !errors.Is(err, io.EOF) {
		return errs.E(op, errs.Invalid, "malformed JSON body: data after the JSON value")
	}
	return nil
}

func describeJSONError(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		if te.Field != "" {
			return fmt.Sprintf("field %q must be %s", te.Field, jsonType(te.Type.Kind().String()))
		}
		return "wrong JSON type"
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("syntax error at byte %d", se.Offset)
	}
	msg := err.Error()
	if strings.HasPrefix(msg, "json: unknown field") {
		return strings.TrimPrefix(msg, "json: ")
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return "unexpected end of input"
	}
	return "cannot decode"
}

func jsonType(kind string) string {
	switch kind {
	case "string":
		return "a string"
	case "slice", "array":
		return "an array"
	case "struct", "map":
		return "an object"
	case "bool":
		return "true or false"
	case "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64":
		return "an integer"
	default:
		return "a number"
	}
}

// holdBody is the body of POST /v1/events/{id}/holds.
type holdBody struct {
	Seats      []string `json:"seats"`
	Zone       string   `json:"zone"`
	Quantity   int      `json:"quantity"`
	TTLSeconds int      `json:"ttl_seconds"`
}

// decodePlain decodes the plain bodies clients send without reflection
// (internal/jsonr); false leaves the body to decodeStrict, which agrees with
// it on whatever it takes (FuzzHoldBodyPlain).
func (h *holdBody) decodePlain(body []byte) bool {
	return jsonr.Object(body, func(s *jsonr.Scanner, k []byte) {
		switch string(k) {
		case "seats":
			h.Seats, _ = s.Strings()
		case "zone":
			h.Zone, _ = s.String()
		case "quantity":
			h.Quantity, _ = s.Int()
		case "ttl_seconds":
			h.TTLSeconds, _ = s.Int()
		default:
			s.Fail()
		}
	})
}

// decodeHold decodes and checks a hold request body. It checks shape and
// bounds; whether seats and zones exist is for the router and the owner.
func decodeHold(body []byte) (holdBody, error) {
	const op = "edge.hold"
	var h holdBody
	if len(body) > maxHoldBody {
		return h, errs.Errorf(op, errs.TooLarge, "the body is larger than %d bytes", maxHoldBody)
	}
	if !h.decodePlain(body) {
		h = holdBody{}
		if err := decodeStrict(op, body, &h); err != nil {
			return h, err
		}
	}
	switch {
	case len(h.Seats) > 0 && (h.Zone != "" || h.Quantity != 0):
		return h, errs.E(op, errs.Invalid, "ask for seats, or for a zone and a quantity, not both")
	case len(h.Seats) > 0:
		if len(h.Seats) > maxSeatsPerHold {
			return h, errs.Errorf(op, errs.Invalid, "at most %d seats per hold", maxSeatsPerHold)
		}
		seen := map[string]bool{}
		for _, s := range h.Seats {
			if s == "" || len(s) > maxSeatIDLen {
				return h, errs.Errorf(op, errs.Invalid, "seat ids are 1-%d characters", maxSeatIDLen)
			}
			if seen[s] {
				return h, errs.Errorf(op, errs.Invalid, "seat %q is listed twice", s)
			}
			seen[s] = true
		}
	case h.Zone != "":
		if !catalog.ValidID(h.Zone) {
			return h, errs.Errorf(op, errs.Invalid, "zone %q is not a valid zone id", h.Zone)
		}
		if h.Quantity < 1 || h.Quantity > maxQuantity {
			return h, errs.Errorf(op, errs.Invalid, "quantity must be between 1 and %d", maxQuantity)
		}
	default:
		return h, errs.E(op, errs.Invalid, `ask for "seats", or for a "zone" and a "quantity"`)
	}
	if h.TTLSeconds < 0 || h.TTLSeconds > maxTTLSeconds {
		return h, errs.Errorf(op, errs.Invalid, "ttl_seconds must be between 0 (the default) and %d", maxTTLSeconds)
	}
	return h, nil
}

// fingerprint identifies a hold request regardless of JSON formatting and
// seat order, so that a retry with the same key matches and another request
// with the same key does not.
func (h holdBody) fingerprint(eventID string) string {
	seats := slices.Clone(h.Seats)
	slices.Sort(seats)
	if len(seats) == 0 {
		seats = nil // "seats": [] and null are the same request as no seats
	}
	canon, _ := json.Marshal(struct {
		Event    string   `json:"e"`
		Seats    []string `json:"s"`
		Zone     string   `json:"z"`
		Quantity int      `json:"q"`
		TTL      int      `json:"t"`
	}{eventID, seats, h.Zone, h.Quantity, h.TTLSeconds})
	sum := sha256.Sum256(canon)
	return hex.EncodeToString(sum[:16])
}

// idempotencyKey parses the Idempotency-Key header: an RFC 8941 string
// ("…") or a bare token of visible ASCII, 1-255 characters.
func idempotencyKey(raw string) (string, error) {
	const op = "edge.idempotency_key"
	if raw == "" {
		return "", errs.E(op, errs.Invalid, "the Idempotency-Key header is required").WithReason("idempotency_key_missing")
	}
	k := raw
	if len(k) >= 2 && k[0] == '"' && k[len(k)-1] == '"' {
		k = k[1 : len(k)-1]
	}
	if k == "" || len(k) > maxIdemKeyLen {
		return "", errs.Errorf(op, errs.Invalid, "the Idempotency-Key must be 1-%d characters", maxIdemKeyLen)
	}
	for i := 0; i < len(k); i++ {
		if k[i] < 0x21 || k[i] > 0x7e || k[i] == '"' || k[i] == '\\' {
			return "", errs.E(op, errs.Invalid, "the Idempotency-Key must be visible ASCII without quotes or backslashes")
		}
	}
	return k, nil
}

// bearer extracts the token of an "Authorization: Bearer <token>" header.
func bearer(op, header string) (string, error) {
	const prefix = "bearer "
	if header == "" {
		return "", errs.E(op, errs.Unauthorized, "an Authorization: Bearer token is required")
	}
	if len(header) <= len(prefix) || !strings.EqualFold(header[:len(prefix)], prefix) {
		return "", errs.E(op, errs.Unauthorized, "the Authorization header must be \"Bearer <token>\"")
	}
	t := strings.TrimSpace(header[len(prefix):])
	if t == "" || len(t) > maxTokenLen {
		return "", errs.E(op, errs.Unauthorized, "the bearer token is empty or too long")
	}
	return t, nil
}

// decodeVenue decodes an admin venue body; Validate is the catalog's.
func decodeVenue(body []byte) (catalog.Venue, error) {
	var v catalog.Venue
	err := decodeStrict("edge.create_venue", body, &v)
	if err == nil {
		err = v.Validate()
	}
	return v, err
}

// decodeEvent decodes an admin event body; it is validated against its venue
// by the catalog service.
func decodeEvent(body []byte) (catalog.Event, error) {
	var e catalog.Event
	err := decodeStrict("edge.create_event", body, &e)
	if err == nil && !catalog.ValidID(e.ID) {
		err = errs.Errorf("edge.create_event", errs.Invalid, "event id %q: use 1-63 lower-case letters, digits and dashes", e.ID)
	}
	return e, err
}
