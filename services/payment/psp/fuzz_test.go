package psp

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// FuzzDecodeForm feeds any body to the form decoder and every
// operation's parameter parser: none panics, what they accept is in
// bounds, and no error repeats a card number.
func FuzzDecodeForm(f *testing.F) {
	for _, s := range []string{
		"amount=1000&currency=eur&metadata[order_id]=o1",
		"amount=1000&currency=EUR&capture_method=manual&confirm=true&payment_method_data[type]=card&payment_method_data[card][number]=4242424242424242&payment_method_data[card][exp_month]=12&payment_method_data[card][exp_year]=30&payment_method_data[card][cvc]=123&return_url=https://shop.example/r",
		"payment_method_data%5Btype%5D=card&payment_method_data%5Bcard%5D%5Bnumber%5D=4000000000003220&payment_method_data%5Bcard%5D%5Bexp_month%5D=1&payment_method_data%5Bcard%5D%5Bexp_year%5D=2031&payment_method_data%5Bcard%5D%5Bcvc%5D=1234",
		"amount_to_capture=500",
		"cancellation_reason=requested_by_customer",
		"payment_intent=pi_123&amount=1",
		"amount=1&amount=2",
		"amount=%zz",
		"payment_method_data[card][number]=4242424242424242%zz",
		"metadata[]=x",
		"result=complete",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		form, err := decodeForm(body)
		if err != nil {
			return
		}
		// The card number, when no other parameter holds it (an
		// amount's error repeats the amount).
		number := form.Get("payment_method_data[card][number]")
		for k, v := range form {
			if k != "payment_method_data[card][number]" && (strings.Contains(v[0], number) || strings.Contains(k, number)) {
				number = ""
			}
		}
		check := func(err error) {
			if err != nil && len(number) >= 6 && strings.Contains(err.Error(), number) {
				t.Fatalf("an error repeats the card number: %v", err)
			}
		}
		if p, err := parseCreate(form); err == nil {
			if p.Amount < 1 || p.Amount > maxAmount || len(p.Currency) != 3 || p.Currency != strings.ToLower(p.Currency) ||
				(p.CaptureMethod != "automatic" && p.CaptureMethod != "manual") || p.Confirm != (p.Card != nil) || len(p.Metadata) > 50 {
				t.Fatalf("accepted %+v", p)
			}
			if p.Card != nil {
				checkCard(t, p.Card)
			}
		} else {
			check(err)
		}
		if c, ret, err := parseConfirm(form); err == nil {
			checkCard(t, c)
			if ret != "" && checkURL(ret) != nil {
				t.Fatalf("accepted return_url %q", ret)
			}
			judge(c, time.Now()) // any card has an outcome
		} else {
			check(err)
		}
		if n, err := parseCapture(form); err == nil && (n < 0 || n > maxAmount) {
			t.Fatalf("capture %d", n)
		}
		if r, err := parseCancel(form); err == nil && r != "" && !strings.Contains(strings.Join(cancellationReasons, ","), r) {
			t.Fatalf("reason %q", r)
		}
		if p, err := parseRefund(form); err == nil && (p.Intent == "" || p.Amount < 0 || p.Amount > maxAmount) {
			t.Fatalf("refund %+v", p)
		}
	})
}

func checkCard(t *testing.T, c *cardParams) {
	if c.Number == "" || c.ExpMonth < 1 || c.ExpMonth > 12 || c.ExpYear < 2000 || c.CVC == "" {
		t.Fatalf("accepted card exp %d/%d", c.ExpMonth, c.ExpYear)
	}
	if l := c.Last4(); len(l) > 4 {
		t.Fatalf("last4 %q", l)
	}
}

// FuzzDecodeFaults feeds any body to POST /_sim/faults's decoder: what it
// accepts validates and survives a round trip.
func FuzzDecodeFaults(f *testing.F) {
	for _, s := range []string{
		`{"seed":3,"error_after":0.25,"timeout":0.1,"timeout_hold":"5s","ops":["confirm"]}`,
		`{"webhook_duplicate":1,"webhook_reorder":0.5,"webhook_reorder_window":"1s","webhook_delay":0.2,"webhook_delay_by":"100ms"}`,
		`{"slow":1,"slow_latency":"2h"}`,
		`{"error_before":NaN}`,
		`{}`,
		`{} {}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		fs, err := DecodeFaults(bytes.NewReader(body))
		if err != nil {
			return
		}
		if err := fs.Validate(); err != nil {
			t.Fatalf("accepted invalid faults: %v", err)
		}
		enc := mustMarshal(t, fs)
		again, err := DecodeFaults(bytes.NewReader(enc))
		if err != nil || string(mustMarshal(t, again)) != string(enc) {
			t.Fatalf("round trip of %s: %v", enc, err)
		}
	})
}

func mustMarshal(t *testing.T, f Faults) []byte {
	b, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
