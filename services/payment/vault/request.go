package vault

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/services/payment"
)

// Limits of a tokenization request.
const (
	// MaxRequestBytes bounds the body; the HTTP layer is to stop reading
	// there too (a longer body is errs.TooLarge).
	MaxRequestBytes = 1024
	// MaxFieldBytes bounds each field's value.
	MaxFieldBytes = 32
)

// ReasonInvalidRequest refines errs.Invalid from ParseCardRequest: the
// request is malformed, as opposed to the card it carries (CheckCard's
// reasons).
const ReasonInvalidRequest = "invalid_request"

// The fields of a tokenization request.
const (
	fieldNumber   = "number"
	fieldExpMonth = "exp_month"
	fieldExpYear  = "exp_year"
	fieldCVC      = "cvc"
)

var safeFieldName = regexp.MustCompile(`^[a-z_]{1,32}$`)

// ParseCardRequest decodes a tokenization request: the card the buyer's
// browser posts to the payment service, as JSON
//
//	{"number": "4242 4242 4242 4242", "exp_month": 12, "exp_year": 2030, "cvc": "123"}
//
// (exp_month and exp_year a JSON integer or a string of digits) or as an
// application/x-www-form-urlencoded form with the same four fields.
// number, exp_month and exp_year are required, cvc optional. The decoder
// is strict: at most MaxRequestBytes (errs.TooLarge beyond), each value at
// most MaxFieldBytes of UTF-8, no field but those four, none twice, one
// JSON object and nothing after it. A charset parameter other than UTF-8
// is refused. The card is returned as sent (Seal validates it with
// CheckCard).
//
// Errors are errs.Invalid with ReasonInvalidRequest (errs.TooLarge for the
// size) and never repeat a value of the request: they name at most a
// field, and only a field name of lower case letters and '_'.
func ParseCardRequest(contentType string, body []byte) (payment.Card, error) {
	const op = "vault.card_request"
	invalid := func(msg string) error {
		return errs.E(op, errs.Invalid, msg).WithReason(ReasonInvalidRequest)
	}
	if len(body) > MaxRequestBytes {
		return payment.Card{}, errs.Errorf(op, errs.TooLarge, "a card request is at most %d bytes", MaxRequestBytes)
	}
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		return payment.Card{}, invalid("content type malformed")
	}
	for k, v := range params {
		if k != "charset" || !strings.EqualFold(v, "utf-8") {
			return payment.Card{}, invalid("content type parameters other than charset=utf-8 are not accepted")
		}
	}
	var fields map[string]string
	switch mt {
	case "application/json":
		fields, err = jsonFields(body)
	case "application/x-www-form-urlencoded":
		fields, err = formFields(body)
	default:
		return payment.Card{}, errs.E(op, errs.Invalid, "content type must be application/json or application/x-www-form-urlencoded").
			WithReason(ReasonInvalidRequest)
	}
	if err != nil {
		return payment.Card{}, invalid(err.Error())
	}
	var c payment.Card
	for _, f := range []string{fieldNumber, fieldExpMonth, fieldExpYear} {
		if fields[f] == "" {
			return payment.Card{}, invalid(f + " is required")
		}
	}
	c.Number = fields[fieldNumber]
	c.CVC = fields[fieldCVC]
	if c.ExpMonth, err = smallInt(fields[fieldExpMonth]); err != nil {
		return payment.Card{}, invalid("exp_month must be a number")
	}
	if c.ExpYear, err = smallInt(fields[fieldExpYear]); err != nil {
		return payment.Card{}, invalid("exp_year must be a number")
	}
	return c, nil
}

// smallInt reads 1 to 4 ASCII digits.
func smallInt(s string) (int, error) {
	if len(s) < 1 || len(s) > 4 || !digits(s) {
		return 0, errors.New("not 1 to 4 digits")
	}
	return strconv.Atoi(s)
}

func knownField(name string) bool {
	return name == fieldNumber || name == fieldExpMonth || name == fieldExpYear || name == fieldCVC
}

// fieldError names a field that may be named.
func fieldError(name, problem string) error {
	if safeFieldName.MatchString(name) {
		return errors.New("field " + name + " " + problem)
	}
	return errors.New("a field " + problem)
}

func setField(fields map[string]string, name, value string) error {
	if !knownField(name) {
		return fieldError(name, "is not accepted")
	}
	if _, ok := fields[name]; ok {
		return fieldError(name, "appears twice")
	}
	if len(value) > MaxFieldBytes || !utf8.ValidString(value) {
		return fieldError(name, "is too long or not UTF-8")
	}
	fields[name] = value
	return nil
}

// jsonFields reads one flat JSON object of strings (and integers for
// the expiry).
func jsonFields(body []byte) (map[string]string, error) {
	malformed := errors.New("body is not a JSON object of the card's fields")
	d := json.NewDecoder(bytes.NewReader(body))
	d.UseNumber()
	if t, err := d.Token(); err != nil || t != json.Delim('{') {
		return nil, malformed
	}
	fields := map[string]string{}
	for d.More() {
		t, err := d.Token()
		if err != nil {
			return nil, malformed
		}
		name, ok := t.(string)
		if !ok {
			return nil, malformed
		}
		t, err = d.Token()
		if err != nil {
			return nil, malformed
		}
		var value string
		switch v := t.(type) {
		case string:
			value = v
		case json.Number:
			if name != fieldExpMonth && name != fieldExpYear {
				return nil, fieldError(name, "must be a string")
			}
			value = string(v)
		default:
			return nil, fieldError(name, "must be a string or a number")
		}
		if err := setField(fields, name, value); err != nil {
			return nil, err
		}
	}
	if t, err := d.Token(); err != nil || t != json.Delim('}') {
		return nil, malformed
	}
	if _, err := d.Token(); err != io.EOF {
		return nil, errors.New("body has data after the JSON object")
	}
	return fields, nil
}

// formFields reads a form: name=value pairs joined by '&', each name and
// value percent-encoded ('+' for space), each pair with an '='.
func formFields(body []byte) (map[string]string, error) {
	fields := map[string]string{}
	if len(body) == 0 {
		return fields, nil
	}
	for _, pair := range strings.Split(string(body), "&") {
		name, value, ok := strings.Cut(pair, "=")
		if !ok || name == "" {
			return nil, errors.New("body is not a form of name=value pairs")
		}
		n, err1 := url.QueryUnescape(name)
		v, err2 := url.QueryUnescape(value)
		if err1 != nil || err2 != nil {
			return nil, errors.New("body has a malformed percent escape")
		}
		if err := setField(fields, n, v); err != nil {
			return nil, err
		}
	}
	return fields, nil
}

// EncodeCardForm writes a card as ParseCardRequest reads a form, for
// tests and for clients written in Go.
func EncodeCardForm(c payment.Card) []byte {
	v := url.Values{}
	v.Set(fieldNumber, c.Number)
	v.Set(fieldExpMonth, strconv.Itoa(c.ExpMonth))
	v.Set(fieldExpYear, strconv.Itoa(c.ExpYear))
	if c.CVC != "" {
		v.Set(fieldCVC, c.CVC)
	}
	return []byte(v.Encode())
}
