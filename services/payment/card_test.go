package payment_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/ticketing/ticketing/services/payment"
)

// A card reaches no output: every fmt verb, slog's text and JSON
// handlers, encoding/json, alone or inside a struct, print the redacted
// form, with at most the last four digits.
func TestCardRedacted(t *testing.T) {
	c := payment.Card{Number: "4000002760003184", ExpMonth: 7, ExpYear: 2031, CVC: "737"}
	req := payment.ConfirmRequest{Card: c, ReturnURL: "https://example.com/r", IdempotencyKey: "confirm:o1"}
	var outs []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%10.3v", "%T %v"} {
		outs = append(outs, fmt.Sprintf(verb, c), fmt.Sprintf(verb, req), fmt.Sprintf(verb, &req), fmt.Sprintf(verb, []payment.Card{c}))
	}
	outs = append(outs, fmt.Sprint(c, req), fmt.Sprintln(c, &c), c.String(), c.GoString())
	var buf bytes.Buffer
	for _, h := range []slog.Handler{slog.NewTextHandler(&buf, nil), slog.NewJSONHandler(&buf, nil)} {
		log := slog.New(h)
		log.Info("confirm", "card", c, "req", req, "ptr", &c)
		log.Info("group", slog.Group("g", "card", c), slog.Any("any", c))
	}
	outs = append(outs, buf.String())
	for _, v := range []any{c, req, &req, map[string]payment.Card{"c": c}} {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		outs = append(outs, string(b))
	}
	for _, out := range outs {
		for _, secret := range []string{c.Number, "400000", "27600", "737", "2031"} {
			if strings.Contains(out, secret) {
				t.Fatalf("output contains %q: %s", secret, out)
			}
		}
	}
	if got := c.String(); got != "card ****3184" {
		t.Fatalf("String = %q", got)
	}
}

func TestCardRedactedMalformed(t *testing.T) {
	for _, n := range []string{"", "4242", "4242 4242 4242 4242", "12345678901", "12345678901234567890", "my secret passphrase"} {
		c := payment.Card{Number: n}
		if got := fmt.Sprintf("%+v", c); got != "card ****" {
			t.Errorf("%q prints as %q", n, got)
		}
	}
}
