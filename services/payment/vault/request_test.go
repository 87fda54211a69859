package vault_test

import (
	"strings"
	"testing"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/services/payment"
	"github.com/ticketing/ticketing/services/payment/vault"
)

const (
	ctJSON = "application/json"
	ctForm = "application/x-www-form-urlencoded"
)

func TestParseCardRequest(t *testing.T) {
	want := payment.Card{Number: "4242 4242 4242 4242", ExpMonth: 12, ExpYear: 2030, CVC: "123"}
	for name, tc := range map[string]struct{ ct, body string }{
		"json":            {ctJSON, `{"number":"4242 4242 4242 4242","exp_month":12,"exp_year":2030,"cvc":"123"}`},
		"json strings":    {ctJSON, `{"cvc":"123","exp_year":"2030","exp_month":"12","number":"4242 4242 4242 4242"}`},
		"json charset":    {"application/json; charset=UTF-8", " {\"number\":\"4242 4242 4242 4242\",\n\"exp_month\":12,\"exp_year\":2030,\"cvc\":\"123\"}\n"},
		"json escapes":    {ctJSON, `{"number":"4242\u00204242 4242 4242","exp_month":12,"exp_year":2030,"cvc":"\u0031\u00323"}`},
		"form":            {ctForm, `number=4242+4242+4242+4242&exp_month=12&exp_year=2030&cvc=123`},
		"form escaped":    {ctForm, `number=4242%204242%204242%204242&exp_month=12&exp_year=2030&cvc=123`},
		"form charset":    {"application/x-www-form-urlencoded; charset=utf-8", `cvc=123&exp_year=2030&exp_month=12&number=4242+4242+4242+4242`},
		"form leading 0s": {ctForm, `number=4242+4242+4242+4242&exp_month=0012&exp_year=2030&cvc=123`},
	} {
		got, err := vault.ParseCardRequest(tc.ct, []byte(tc.body))
		if err != nil || got != want {
			t.Errorf("%s: %v, %v", name, got, err)
		}
	}
	// The CVC is optional.
	got, err := vault.ParseCardRequest(ctForm, []byte(`number=4242424242424242&exp_month=1&exp_year=30`))
	if err != nil || got != (payment.Card{Number: "4242424242424242", ExpMonth: 1, ExpYear: 30}) {
		t.Fatalf("without cvc: %v, %v", got, err)
	}
	// EncodeCardForm writes what it reads.
	back, err := vault.ParseCardRequest(ctForm, vault.EncodeCardForm(want))
	if err != nil || back != want {
		t.Fatalf("EncodeCardForm: %v, %v", back, err)
	}
}

func TestParseCardRequestInvalid(t *testing.T) {
	const pan = "4242424242424242"
	for name, tc := range map[string]struct{ ct, body string }{
		"content type":       {"text/plain", `number=` + pan},
		"no content type":    {"", `number=` + pan},
		"charset":            {"application/json; charset=latin1", `{}`},
		"other param":        {"application/json; boundary=x", `{}`},
		"empty json":         {ctJSON, ``},
		"json array":         {ctJSON, `["` + pan + `"]`},
		"json null":          {ctJSON, `null`},
		"json missing":       {ctJSON, `{"number":"` + pan + `","exp_month":12}`},
		"json number pan":    {ctJSON, `{"number":` + pan + `,"exp_month":12,"exp_year":2030}`},
		"json float":         {ctJSON, `{"number":"` + pan + `","exp_month":12.0,"exp_year":2030}`},
		"json exponent":      {ctJSON, `{"number":"` + pan + `","exp_month":1e1,"exp_year":2030}`},
		"json negative":      {ctJSON, `{"number":"` + pan + `","exp_month":-1,"exp_year":2030}`},
		"json big":           {ctJSON, `{"number":"` + pan + `","exp_month":12,"exp_year":20300}`},
		"json duplicate":     {ctJSON, `{"number":"4000000000000002","number":"` + pan + `","exp_month":12,"exp_year":2030}`},
		"json unknown":       {ctJSON, `{"number":"` + pan + `","exp_month":12,"exp_year":2030,"name":"x"}`},
		"json pan as field":  {ctJSON, `{"` + pan + `":"x","exp_month":12,"exp_year":2030}`},
		"json nested":        {ctJSON, `{"number":{"n":"` + pan + `"},"exp_month":12,"exp_year":2030}`},
		"json bool":          {ctJSON, `{"number":"` + pan + `","exp_month":true,"exp_year":2030}`},
		"json null value":    {ctJSON, `{"number":null,"exp_month":12,"exp_year":2030}`},
		"json trailing":      {ctJSON, `{"number":"` + pan + `","exp_month":12,"exp_year":2030} {}`},
		"json trailing junk": {ctJSON, `{"number":"` + pan + `","exp_month":12,"exp_year":2030}x`},
		"json unclosed":      {ctJSON, `{"number":"` + pan + `","exp_month":12,"exp_year":2030`},
		"json long value":    {ctJSON, `{"number":"` + strings.Repeat("4", 33) + `","exp_month":12,"exp_year":2030}`},
		"json empty number":  {ctJSON, `{"number":"","exp_month":12,"exp_year":2030}`},
		"json numeric cvc":   {ctJSON, `{"number":"` + pan + `","exp_month":12,"exp_year":2030,"cvc":123}`},
		"form duplicate":     {ctForm, `number=` + pan + `&number=` + pan + `&exp_month=12&exp_year=2030`},
		"form unknown":       {ctForm, `number=` + pan + `&exp_month=12&exp_year=2030&x=1`},
		"form pan as name":   {ctForm, pan + `=1&exp_month=12&exp_year=2030`},
		"form no equals":     {ctForm, `number&exp_month=12&exp_year=2030`},
		"form empty pair":    {ctForm, `number=` + pan + `&&exp_month=12&exp_year=2030`},
		"form semicolon":     {ctForm, `number=` + pan + `;exp_month=12&exp_year=2030`},
		"form bad escape":    {ctForm, `number=` + pan + `%zz&exp_month=12&exp_year=2030`},
		"form bad utf8":      {ctForm, `number=` + pan + `%ff&exp_month=12&exp_year=2030`},
		"form month text":    {ctForm, `number=` + pan + `&exp_month=dec&exp_year=2030`},
		"form empty":         {ctForm, ``},
		"form missing":       {ctForm, `number=` + pan},
		"form long value":    {ctForm, `number=` + strings.Repeat("4", 33) + `&exp_month=12&exp_year=2030`},
	} {
		_, err := vault.ParseCardRequest(tc.ct, []byte(tc.body))
		if !errs.Is(errs.Invalid, err) || errs.ReasonOf(err) != vault.ReasonInvalidRequest {
			t.Errorf("%s: %v (reason %q)", name, err, errs.ReasonOf(err))
			continue
		}
		if strings.Contains(err.Error(), "4242") || strings.Contains(err.Error(), "0002") {
			t.Errorf("%s: error %q repeats the number", name, err)
		}
	}
	_, err := vault.ParseCardRequest(ctJSON, []byte(`{"number":"`+pan+`"}`+strings.Repeat(" ", vault.MaxRequestBytes)))
	if !errs.Is(errs.TooLarge, err) {
		t.Fatalf("large body: %v", err)
	}
}
