package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/ticketing/ticketing/edge"
	"github.com/ticketing/ticketing/internal/chromiumtest"
	"github.com/ticketing/ticketing/internal/eventually"
	"github.com/ticketing/ticketing/services/barcode"
	"github.com/ticketing/ticketing/services/fulfillment"
	ticketsapi "github.com/ticketing/ticketing/services/fulfillment/natsapi"
	"github.com/ticketing/ticketing/services/identity/auth"
	"github.com/ticketing/ticketing/services/orders"
	"github.com/ticketing/ticketing/services/pricing"
)

// TestCheckoutPagesInBrowser buys tickets in headless Chromium through the
// pages, against real processes: a core running the payment service
// (--payment-in-process) with its card page on its own origin, the
// gateway simulator (`ticketing psp`) whose webhooks go to that payment
// service, and an edge that knows both (PublicURL, PaymentURL). A fresh
// account holds a ticket of an event without a waiting room, checks out
// (the quote's lines with fees and tax, a voucher refused and one
// applied), enters the card in the payment service's frame and is
// confirmed; then pays with a card whose bank asks for 3-D Secure,
// completes the challenge on the simulator's page and comes back to a
// confirmed order; then fails a challenge, finds the decline and the
// offer to pay again on the order page, is declined once more on the
// checkout page, and pays with another card. Each order is checked
// through the API as well.
func TestCheckoutPagesInBrowser(t *testing.T) {
	edgeAddr, payAddr, pspAddr, pspOps := freeAddr(t), freeAddr(t), freeAddr(t), freeAddr(t)
	_, port, _ := net.SplitHostPort(edgeAddr)
	site := "http://localhost:" + port
	_, payPort, _ := net.SplitHostPort(payAddr)
	payURL := "http://localhost:" + payPort
	const secretKey, webhookSecret = "sk_test_checkout_page", "whsec_checkout_page"

	startProc(t, "psp", nil, "psp", "--addr", pspAddr, "--ops", pspOps, "--data", t.TempDir(), "--log-format", "text",
		"--secret-key", secretKey, "--webhook-url", payURL+"/v1/webhooks/gateway", "--webhook-secret", webhookSecret,
		"--webhook-retry-initial", "50ms")
	cores := newCores(t, 1, "--public-url", site, "--payment-in-process", "--payment-http", payAddr, "--checkout-origin", site,
		"--gateway-url", "http://"+pspAddr, "--gateway-secret-key", secretKey, "--gateway-webhook-secret", webhookSecret)
	cores[0].start()
	eventually.Nil(t, 30*time.Second, func() error {
		resp, err := http.Get("http://" + pspOps + "/readyz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("psp readyz %d", resp.StatusCode)
		}
		return nil
	})
	cores[0].waitReady(60 * time.Second)
	e := startEdgeOn(t, cores, "edge-test", edgeAddr, edge.RateLimitConfig{Disabled: true}, func(c *edge.Config) {
		c.API.PublicURL, c.API.PaymentURL = site, payURL
	})
	a := newAPI(t, e)

	// An event without a waiting room, priced with fees, an exclusive
	// tax and a voucher.
	const event = "checkout-page"
	a.createEvent(event, 40, 100, nil)
	adm := a.asAdmin()
	rules := pricing.Rules{Event: event, Version: 1, Currency: "USD",
		Zones: map[string]int64{"std": 5000, "ga": 3000}, Fees: pricing.Fees{PerTicket: 250, PerOrder: 100},
		Tax: pricing.Tax{Region: "US-NY", RateBP: 800}, OnSaleAt: time.Now().Add(-time.Hour)}
	if code, err := adm.do("PUT", "/v1/admin/events/"+event+"/prices", nil, rules, nil); err != nil || code != 200 {
		t.Fatalf("the price list: HTTP %d %v", code, err)
	}
	voucher := pricing.Voucher{Code: "PAGE10", PercentBP: 1000, Events: []string{event}}
	if code, err := adm.do("PUT", "/v1/admin/vouchers/PAGE10", nil, voucher, nil); err != nil || code != 200 {
		t.Fatalf("the voucher: HTTP %d %v", code, err)
	}
	// One GA ticket: 30.00 + 2.50 + 1.00 in fees, 8% tax on that; with
	// the voucher, 10% off the ticket first.
	const (
		total        = 3000 + 250 + 100 + 268
		totalVoucher = 3000 + 250 + 100 - 300 + 244
	)

	ctx := chromiumtest.New(t, 4*time.Minute)
	email, password := signUpInBrowser(t, ctx, site, cores[0])
	buyer := newAPI(t, e).signIn(auth.SeedAccount{Email: email, Password: password})

	str := func(js string) string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Evaluate[string](js))
		if err != nil {
			t.Fatalf("%s: %v", js, err)
		}
		return v
	}
	// holdAndCheckOut holds a GA ticket on the select page and goes to
	// the checkout, which shows the quote.
	holdAndCheckOut := func(what string) {
		t.Helper()
		browse(t, ctx, what+": hold a ticket",
			navigate(site+"/events/"+event+"/select"),
			chromedp.WaitVisible(chromedp.CSS(`#account-bar[data-state="signed-in"]`)),
			chromedp.WaitVisible(chromedp.CSS(`li[data-zone="ga"] button.hold`)),
		)
		// No waiting room: nothing to be admitted to, and the page does
		// not say otherwise.
		if tok := str(`document.getElementById("token-state").dataset.token`); tok != "not_needed" {
			t.Errorf("the select page's admission state is %q", tok)
		}
		if body := str(`document.body.innerText`); strings.Contains(body, "No admission") || strings.Contains(body, "waiting room") {
			t.Errorf("the select page of an event without a waiting room says:\n%s", body)
		}
		browse(t, ctx, what+": hold and check out",
			chromedp.Click(chromedp.CSS(`li[data-zone="ga"] button.hold`)),
			chromedp.WaitVisible(chromedp.CSS(`#hold-result[data-status="held"]`)),
			click("#checkout-link"),
			at("/checkout/"+event),
			chromedp.WaitVisible(chromedp.CSS(`#checkout-state[data-state="quoted"]`)),
		)
		// The ordered holds are gone from the select page's list: this
		// checkout is of the new hold only.
		if n := str(`String(new URLSearchParams(location.search).getAll("hold").length)`); n != "1" {
			t.Errorf("%s: the checkout has %s holds", what, n)
		}
	}
	summary := func() (kinds, amount, text string) {
		t.Helper()
		return str(`Array.from(document.querySelectorAll("#lines tr"), (r) => r.dataset.kind).join(",")`),
			str(`document.getElementById("total").dataset.amount`), str(`document.getElementById("total").textContent`)
	}
	usd := func(minor int) string {
		return str(fmt.Sprintf(`new Intl.NumberFormat(undefined, {style: "currency", currency: "USD"}).format(%d / 100)`, minor))
	}
	// placeOrder continues to payment and returns the order's id, once
	// the card frame is ready.
	placeOrder := func(what string) string {
		t.Helper()
		browse(t, ctx, what+": place the order",
			click("#place-order"),
			chromedp.WaitVisible(chromedp.CSS(`#card-frame[data-ready="true"]`)),
		)
		id := str(`new URLSearchParams(location.search).get("order") || ""`)
		if !strings.HasPrefix(id, "o_") {
			t.Fatalf("%s: the checkout's address names order %q", what, id)
		}
		return id
	}
	order := func(id string) orders.View {
		t.Helper()
		var v orders.View
		if code, err := buyer.do("GET", "/v1/orders/"+id, nil, nil, &v); err != nil || code != 200 {
			t.Fatalf("GET /v1/orders/%s: HTTP %d %v", id, code, err)
		}
		return v
	}
	// wantOrder waits until the core has the order in state.
	wantOrder := func(id string, state orders.State) orders.View {
		t.Helper()
		var v orders.View
		eventually.True(t, 30*time.Second, "order "+id+" "+string(state), func() bool {
			v = order(id)
			return v.State == state
		})
		return v
	}

	// 1. The quote, a voucher, a frictionless card.
	holdAndCheckOut("first purchase")
	if kinds, amount, text := summary(); kinds != "ticket,fee,fee,tax" || amount != fmt.Sprint(total) || text != usd(total) {
		t.Errorf("the quote: lines %s, total %s %q (want %d, %q)", kinds, amount, text, total, usd(total))
	}
	browse(t, ctx, "a voucher that does not exist",
		fill("#voucher", "NO-SUCH-CODE"),
		click("#voucher-apply"),
		chromedp.WaitVisible(chromedp.CSS(`#voucher-error[data-code="voucher_not_found"]`)),
	)
	if _, amount, _ := summary(); amount != fmt.Sprint(total) {
		t.Errorf("after a refused voucher the total is %s", amount)
	}
	browse(t, ctx, "a voucher",
		fill("#voucher", "page10"),
		click("#voucher-apply"),
		until(fmt.Sprintf(`document.getElementById("total").dataset.amount === "%d"`, totalVoucher)),
		chromedp.WaitNotVisible(chromedp.CSS("#voucher-error")),
	)
	if kinds, _, text := summary(); kinds != "ticket,fee,fee,discount,tax" || text != usd(totalVoucher) {
		t.Errorf("with the voucher: lines %s, total %q", kinds, text)
	}
	first := placeOrder("first purchase")
	if frame := str(`document.getElementById("card-frame").src`); frame != payURL+"/card?origin="+url.QueryEscape(site) {
		t.Errorf("the card frame is %s", frame)
	}
	browse(t, ctx, "pay with a card",
		payWithCard("4242424242424242"),
		at("/orders/"+first),
		chromedp.WaitVisible(chromedp.CSS(`#order-state[data-state="confirmed"], #order-state[data-state="fulfilled"]`)),
	)
	if v := order(first); !v.State.SeatsSold() || v.Amounts.Total != totalVoucher || v.Payment.Captured != totalVoucher ||
		v.Voucher != "PAGE10" || v.Payment.Last4 != "4242" || v.Tickets != 1 {
		t.Errorf("the first order: %+v", v)
	}
	if text := str(`document.getElementById("total").textContent`); text != usd(totalVoucher) {
		t.Errorf("the order page's total: %q", text)
	}

	// 2. 3-D Secure, completed on the simulator's page.
	holdAndCheckOut("second purchase")
	second := placeOrder("second purchase")
	browse(t, ctx, "pay with a card that asks for 3-D Secure",
		payWithCard("4000000000003220"),
		chromedp.WaitVisible(chromedp.CSS(`button[value="complete"]`)),
	)
	if loc := str(`location.origin`); loc != "http://"+pspAddr {
		t.Errorf("the challenge is at %s", loc)
	}
	browse(t, ctx, "complete the challenge",
		chromedp.Click(chromedp.CSS(`button[value="complete"]`)),
		at("/orders/"+second),
		chromedp.WaitVisible(chromedp.CSS(`#order-state[data-state="confirmed"], #order-state[data-state="fulfilled"]`)),
	)
	v := order(second)
	if !v.State.SeatsSold() || v.Payment.Captured != total || !passedThrough(v, orders.RequiresAction) {
		t.Errorf("the second order: %+v", v)
	}

	// 3. A failed challenge: the order may be paid again. A decline on
	// the checkout page, then another card.
	holdAndCheckOut("third purchase")
	third := placeOrder("third purchase")
	browse(t, ctx, "pay with a card whose challenge fails",
		payWithCard("4000008400001629"),
		chromedp.WaitVisible(chromedp.CSS(`button[value="fail"]`)),
		chromedp.Click(chromedp.CSS(`button[value="fail"]`)),
		at("/orders/"+third),
		chromedp.WaitVisible(chromedp.CSS(`#order-state[data-state="awaiting_payment"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#order-decline`)),
		chromedp.WaitVisible(chromedp.CSS(`#pay-link`)),
	)
	v = wantOrder(third, orders.AwaitingPayment)
	if v.Payment.Status != string(orders.PaymentDeclined) || v.Payment.DeclineCode == "" || v.Payment.Captured != 0 {
		t.Errorf("the third order after the failed challenge: %+v", v.Payment)
	}
	browse(t, ctx, "pay again: declined",
		click("#pay-link"),
		at("/checkout/"+event),
		chromedp.WaitVisible(chromedp.CSS(`#card-frame[data-ready="true"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#pay-problem`)),
		payWithCard("4000000000000002"),
		chromedp.WaitVisible(chromedp.CSS(`#pay-problem[data-code="generic_decline"]`)),
	)
	if msg := str(`document.getElementById("pay-problem").textContent`); !strings.Contains(msg, "declined") || !strings.Contains(msg, "another card") {
		t.Errorf("the decline says %q", msg)
	}
	if v := order(third); v.State != orders.AwaitingPayment || v.Payment.DeclineCode != "generic_decline" || v.Payment.Attempts != 2 {
		t.Errorf("the third order after a decline: %s %+v", v.State, v.Payment)
	}
	browse(t, ctx, "pay again: another card",
		payWithCard("4242424242424242"),
		at("/orders/"+third),
		chromedp.WaitVisible(chromedp.CSS(`#order-state[data-state="confirmed"], #order-state[data-state="fulfilled"]`)),
	)
	if v := order(third); !v.State.SeatsSold() || v.Payment.Captured != total || v.Payment.Attempts != 3 || v.Payment.DeclineCode != "" {
		t.Errorf("the third order: %s %+v", v.State, v.Payment)
	}

	// A hold that ended is no longer offered for checkout.
	browse(t, ctx, "a fourth hold",
		navigate(site+"/events/"+event+"/select"),
		chromedp.WaitVisible(chromedp.CSS(`li[data-zone="ga"] button.hold`)),
		chromedp.Click(chromedp.CSS(`li[data-zone="ga"] button.hold`)),
		chromedp.WaitVisible(chromedp.CSS(`#checkout-link`)),
	)
	held := str(`new URL(document.getElementById("checkout-link").href).searchParams.get("hold")`)
	if code, err := buyer.do("DELETE", "/v1/holds/"+held, nil, nil, nil); err != nil || code != 200 {
		t.Fatalf("release %s: HTTP %d %v", held, code, err)
	}
	browse(t, ctx, "the released hold is not offered",
		navigate(site+"/events/"+event+"/select"),
		chromedp.WaitReady(chromedp.CSS(`#checkout-step[data-state="checked"]`)),
		chromedp.WaitNotVisible(chromedp.CSS(`#checkout-link`)),
	)

	// The buyer's tickets page: the three tickets, each drawn as a QR
	// code whose text is the ticket's barcode and the current code of its
	// secret (computed in the page, as the gates' download computes it),
	// and the code changes at the next step.
	var mine ticketsapi.Tickets
	eventually.Nil(t, 30*time.Second, func() error {
		if code, err := buyer.do("GET", "/v1/me/tickets", nil, nil, &mine); err != nil || code != 200 {
			return fmt.Errorf("HTTP %d %v", code, err)
		}
		if len(mine.Tickets) != 3 {
			return fmt.Errorf("%d tickets", len(mine.Tickets))
		}
		return nil
	})
	browse(t, ctx, "the tickets page",
		navigate(site+"/tickets"),
		chromedp.WaitVisible(chromedp.CSS(`#tickets-state[data-state="shown"]`)),
		chromedp.WaitVisible(chromedp.CSS(`li.ticket figure.qr svg path`)),
	)
	if n := str(`String(document.querySelectorAll("li.ticket figure.qr svg").length)`); n != "3" {
		t.Fatalf("%s QR codes on the page", n)
	}
	var gate ticketsapi.Gate
	if code, err := adm.do("GET", "/v1/admin/events/"+event+"/gate", nil, nil, &gate); err != nil || code != 200 {
		t.Fatalf("the gate's download: HTTP %d %v", code, err)
	}
	shown := func() (static, code string) {
		t.Helper()
		text := str(`document.querySelector("li.ticket figure.qr").dataset.text`)
		static, code, _ = strings.Cut(text, ".")
		c, err := barcode.Parse(text)
		if err != nil {
			t.Fatalf("the page's barcode %q: %v", text, err)
		}
		i := slices.IndexFunc(mine.Tickets, func(v fulfillment.View) bool { return v.ID == c.TicketID })
		if i < 0 || mine.Tickets[i].Barcode != static {
			t.Fatalf("the page shows ticket %s, not one of the buyer's as issued", c.TicketID)
		}
		secret, err := barcode.DeviceSecret(gate.RotationSecret, c)
		if err != nil {
			t.Fatal(err)
		}
		now := time.Now()
		var want []string
		for _, at := range []time.Time{now.Add(-barcode.CodePeriod), now, now.Add(barcode.CodePeriod)} {
			w, _ := barcode.Code(secret, at)
			want = append(want, w)
		}
		if !slices.Contains(want, code) {
			t.Fatalf("the page's code %s is none of the gates' %v", code, want)
		}
		return static, code
	}
	static, first := shown()
	eventually.True(t, 2*barcode.CodePeriod, "the code to change", func() bool {
		s, code := shown()
		return s == static && code != first
	})

	// The inventory sold the three tickets.
	eventually.Nil(t, 30*time.Second, func() error {
		av, err := a.availability(event)
		if err != nil {
			return err
		}
		for _, z := range av.Zones {
			if z.ID == "ga" && (z.Sold != 3 || z.Held != 0) {
				return fmt.Errorf("GA: %d sold, %d held", z.Sold, z.Held)
			}
		}
		return nil
	})
}

// payWithCard enters a card in the checkout page's card frame (the
// payment service's page, of the same site: its document is reachable
// from the page's) and submits it.
func payWithCard(number string) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		if _, err := chromedp.WaitVisible(chromedp.CSS(`#card-frame[data-ready="true"]`))(ctx, t); err != nil {
			return chromedp.Void{}, err
		}
		frames, err := chromedp.Nodes(chromedp.CSS("#card-frame"))(ctx, t)
		if err != nil {
			return chromedp.Void{}, err
		}
		in := chromedp.FromNode(frames[0])
		return chromedp.Steps(
			chromedp.WaitVisible(chromedp.CSS("#number"), in),
			chromedp.SetValue(chromedp.CSS("#number"), number, in),
			chromedp.SetValue(chromedp.CSS("#exp"), "12/"+fmt.Sprint(time.Now().Year()%100+3), in),
			chromedp.SetValue(chromedp.CSS("#cvc"), "123", in),
			chromedp.Click(chromedp.CSS("#card-submit"), in),
		)(ctx, t)
	}
}

// until waits until the JavaScript expression js is true on the page.
func until(js string) chromedp.Action[chromedp.Void] {
	poll := chromedp.Poll[bool](js)
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		_, err := poll(ctx, t)
		return chromedp.Void{}, err
	}
}

// passedThrough reports whether the order was in state at some point.
func passedThrough(v orders.View, state orders.State) bool {
	return slices.ContainsFunc(v.History, func(tr orders.Transition) bool { return tr.To == state })
}
