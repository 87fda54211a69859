package psp

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

// The form decoders: the request bodies (application/x-www-form-urlencoded)
// into the parameters of each operation. Each refuses what Stripe would
// refuse with a 400 invalid_request_error; an error is a *paramError
// naming the parameter.

// maxAmount is the largest amount in minor units (Stripe's eight digits).
const maxAmount = 99_999_999

// paramError is a refused parameter.
type paramError struct {
	Param, Code, Msg string
}

func (e *paramError) Error() string { return e.Param + ": " + e.Msg }

func missing(p string) *paramError {
	return &paramError{Param: p, Code: "parameter_missing", Msg: "Missing required param: " + p + "."}
}

func invalid(p, format string, args ...any) *paramError {
	return &paramError{Param: p, Code: "parameter_invalid", Msg: fmt.Sprintf(format, args...)}
}

// decodeForm parses a form body. A key given twice is refused (Stripe
// would take one of them; a simulator should not guess).
func decodeForm(body string) (url.Values, error) {
	v, err := url.ParseQuery(body)
	if err != nil {
		return nil, &paramError{Code: "parameter_invalid", Msg: "The body is not a valid form: " + err.Error()}
	}
	for k, vs := range v {
		if len(vs) > 1 {
			return nil, invalid(k, "The parameter %s is given %d times.", k, len(vs))
		}
	}
	return v, nil
}

// allowOnly refuses parameters other than the allowed ones (and
// metadata[...] when metadata is true).
func allowOnly(f url.Values, metadata bool, allowed ...string) error {
	for k := range f {
		ok := metadata && strings.HasPrefix(k, "metadata[") && strings.HasSuffix(k, "]")
		for _, a := range allowed {
			ok = ok || k == a
		}
		if !ok {
			return &paramError{Param: k, Code: "parameter_unknown", Msg: "Received unknown parameter: " + k}
		}
	}
	return nil
}

func parseAmount(f url.Values, p string, required bool) (int64, error) {
	s := f.Get(p)
	if s == "" {
		if required {
			return 0, missing(p)
		}
		return 0, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 1 || n > maxAmount || strconv.FormatInt(n, 10) != s {
		return 0, invalid(p, "Invalid integer: %q: an amount is a whole number of minor units from 1 to %d.", s, maxAmount)
	}
	return n, nil
}

// createParams are POST /v1/payment_intents'.
type createParams struct {
	Amount        int64
	Currency      string
	CaptureMethod string
	Metadata      map[string]string
	Confirm       bool
	Card          *cardParams // with Confirm
	ReturnURL     string
}

// cardParams are payment_method_data's. Number never leaves the request.
type cardParams struct {
	Number            string
	ExpMonth, ExpYear int
	CVC               string
}

// Last4 is what may be logged and kept of the number.
func (c *cardParams) Last4() string {
	if len(c.Number) < 4 {
		return c.Number
	}
	return c.Number[len(c.Number)-4:]
}

var cardKeys = []string{"payment_method_data[type]", "payment_method_data[card][number]",
	"payment_method_data[card][exp_month]", "payment_method_data[card][exp_year]", "payment_method_data[card][cvc]"}

func parseCreate(f url.Values) (createParams, error) {
	var p createParams
	if err := allowOnly(f, true, append([]string{"amount", "currency", "capture_method", "confirm", "return_url"}, cardKeys...)...); err != nil {
		return p, err
	}
	var err error
	if p.Amount, err = parseAmount(f, "amount", true); err != nil {
		return p, err
	}
	cur := f.Get("currency")
	if cur == "" {
		return p, missing("currency")
	}
	if len(cur) != 3 || !isLetters(cur) {
		return p, invalid("currency", "Invalid currency: %q: a currency is an ISO 4217 code.", cur)
	}
	p.Currency = strings.ToLower(cur)
	switch p.CaptureMethod = f.Get("capture_method"); p.CaptureMethod {
	case "":
		p.CaptureMethod = "automatic"
	case "automatic", "manual":
	default:
		return p, invalid("capture_method", "Invalid capture_method: must be one of automatic, manual.")
	}
	p.Metadata = map[string]string{}
	for k, vs := range f {
		if name, ok := strings.CutPrefix(k, "metadata["); ok {
			name = strings.TrimSuffix(name, "]")
			if name == "" || len(name) > 40 || len(vs[0]) > 500 || strings.ContainsAny(name, "[]") {
				return p, invalid(k, "Metadata keys are 1 to 40 characters without brackets, values at most 500.")
			}
			p.Metadata[name] = vs[0]
		}
	}
	if len(p.Metadata) > 50 {
		return p, invalid("metadata", "At most 50 metadata keys.")
	}
	switch f.Get("confirm") {
	case "", "false":
	case "true":
		p.Confirm = true
	default:
		return p, invalid("confirm", "Invalid boolean: %q.", f.Get("confirm"))
	}
	hasCard := false
	for _, k := range cardKeys {
		hasCard = hasCard || f.Has(k)
	}
	if hasCard && !p.Confirm {
		return p, invalid("payment_method_data", "payment_method_data needs confirm=true here: the simulator keeps no card.")
	}
	if p.Confirm {
		if p.Card, p.ReturnURL, err = parseCardAndReturn(f); err != nil {
			return p, err
		}
	} else if f.Has("return_url") {
		return p, invalid("return_url", "return_url needs confirm=true.")
	}
	return p, nil
}

// parseConfirm reads POST /v1/payment_intents/{id}/confirm's form.
func parseConfirm(f url.Values) (*cardParams, string, error) {
	if err := allowOnly(f, false, append([]string{"return_url"}, cardKeys...)...); err != nil {
		return nil, "", err
	}
	return parseCardAndReturn(f)
}

func parseCardAndReturn(f url.Values) (*cardParams, string, error) {
	if t := f.Get("payment_method_data[type]"); t != "card" {
		if t == "" {
			return nil, "", missing("payment_method_data[type]")
		}
		return nil, "", invalid("payment_method_data[type]", "Only card payment methods are simulated.")
	}
	c := &cardParams{Number: f.Get("payment_method_data[card][number]"), CVC: f.Get("payment_method_data[card][cvc]")}
	if c.Number == "" {
		return nil, "", missing("payment_method_data[card][number]")
	}
	if c.CVC == "" {
		return nil, "", missing("payment_method_data[card][cvc]")
	}
	var err error
	if c.ExpMonth, err = parseSmallInt(f, "payment_method_data[card][exp_month]", 1, 12); err != nil {
		return nil, "", err
	}
	if c.ExpYear, err = parseSmallInt(f, "payment_method_data[card][exp_year]", 0, 9999); err != nil {
		return nil, "", err
	}
	if c.ExpYear < 100 {
		c.ExpYear += 2000
	}
	ret := f.Get("return_url")
	if ret != "" {
		if err := checkURL(ret); err != nil {
			return nil, "", invalid("return_url", "Invalid return_url: an absolute http(s) URL.")
		}
	}
	return c, ret, nil
}

func parseSmallInt(f url.Values, p string, lo, hi int) (int, error) {
	s := f.Get(p)
	if s == "" {
		return 0, missing(p)
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < lo || n > hi || len(s) > 4 {
		return 0, invalid(p, "Invalid integer %q for %s.", s, p)
	}
	return n, nil
}

// parseCapture reads POST /v1/payment_intents/{id}/capture's form: the
// amount to capture, 0 for all.
func parseCapture(f url.Values) (int64, error) {
	if err := allowOnly(f, false, "amount_to_capture"); err != nil {
		return 0, err
	}
	return parseAmount(f, "amount_to_capture", false)
}

// cancellationReasons are Stripe's.
var cancellationReasons = []string{"duplicate", "fraudulent", "requested_by_customer", "abandoned"}

func parseCancel(f url.Values) (string, error) {
	if err := allowOnly(f, false, "cancellation_reason"); err != nil {
		return "", err
	}
	r := f.Get("cancellation_reason")
	if r == "" {
		return "", nil
	}
	for _, c := range cancellationReasons {
		if r == c {
			return r, nil
		}
	}
	return "", invalid("cancellation_reason", "Invalid cancellation_reason: must be one of %s.", strings.Join(cancellationReasons, ", "))
}

// refundParams are POST /v1/refunds'. Amount 0 refunds what is left.
type refundParams struct {
	Intent string
	Amount int64
}

func parseRefund(f url.Values) (refundParams, error) {
	var p refundParams
	if err := allowOnly(f, false, "payment_intent", "amount"); err != nil {
		return p, err
	}
	if p.Intent = f.Get("payment_intent"); p.Intent == "" {
		return p, missing("payment_intent")
	}
	var err error
	p.Amount, err = parseAmount(f, "amount", false)
	return p, err
}

func isLetters(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i] | 0x20; c < 'a' || c > 'z' {
			return false
		}
	}
	return true
}
