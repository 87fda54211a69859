// The checkout page (/checkout/{event}) and the order page (/orders/{id})
// of the edge. Plain JavaScript, no build step: the edge embeds this file
// as it is. account.js comes first (window.tk).
//
// Checkout page: the holds to buy come in the address
// (?hold=<id>&hold=<id>, from the select page). The page prices them
// (POST /v1/quotes) and shows the quote's lines and total, formatted from
// minor units with Intl.NumberFormat; a voucher prices them again. It
// places the order (POST /v1/orders) with the quote, under an
// Idempotency-Key made once per attempt (per cart: the holds, the quote
// and the voucher) and kept in sessionStorage, so that a retry after a
// lost answer, or a reload, finds the same order; then the address names
// the order (?order=<id>), and a reload resumes paying it.
//
// The card is entered in a frame of the payment service's own page
// (<meta name="payment-url">, the edge's PaymentURL: /card?origin=<this
// origin>), never on this page: the frame posts a card token to this
// window, and the page takes messages from that origin and that frame
// only. It pays with the token (POST /v1/orders/{id}/pay): confirmed, the
// buyer goes to the order page; a 3-D Secure challenge, to the bank's
// page (payment.redirect_url), which comes back to
// /v1/orders/{id}/return and from there to the order page; a decline is
// shown here, and the frame takes another card.
//
// Order page: reads the order (GET /v1/orders/{id}) and reads it again
// until its state is final (confirmed, fulfilled, refunded, expired,
// cancelled, payment_failed), and shows the state, what happened to a
// late payment (the seats held again, or the money refunded), a decline,
// the lines and total; an order that may still be paid links back to the
// checkout page.
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const tk = window.tk;
  const page = document.body.dataset.page;

  // FINAL are the states an order does not leave by itself.
  const FINAL = ["confirmed", "fulfilled", "refunded", "expired", "cancelled", "payment_failed"];
  // OPEN are the states in which it may be paid.
  const OPEN = ["awaiting_payment", "requires_action"];

  function show(el, on) { el.hidden = !on; }
  function say(el, text) { if (el.textContent !== text) el.textContent = text; }
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  const backoff = (n) => Math.min(8000, 500 * 2 ** n) * (0.5 + Math.random() / 2);

  function fmtTime(iso) {
    const d = new Date(iso);
    return isNaN(d) || d.getFullYear() < 2000 ? "" : d.toLocaleString();
  }

  // money formats an amount in minor units of an ISO 4217 currency: the
  // currency's own number of decimals, as Intl knows it.
  function money(minor, currency) {
    try {
      const f = new Intl.NumberFormat(undefined, { style: "currency", currency });
      return f.format(minor / 10 ** f.resolvedOptions().maximumFractionDigits);
    } catch (e) {
      return (minor / 100).toFixed(2) + " " + (currency || "");
    }
  }

  // segment is the path's second segment: /checkout/{event}, /orders/{id}.
  function segment() {
    const parts = location.pathname.split("/").filter(Boolean);
    try { return decodeURIComponent(parts[1] || ""); } catch (e) { return ""; }
  }

  // safeRedirect is u when it is an http(s) URL, else "".
  function safeRedirect(u) {
    try {
      const url = new URL(u);
      return url.protocol === "https:" || url.protocol === "http:" ? url.href : "";
    } catch (e) {
      return "";
    }
  }

  async function eventName(ev) {
    const r = await tk.call("GET", "/v1/events/" + encodeURIComponent(ev));
    return r.ok && r.data ? r.data.name : "";
  }

  // renderSummary fills the summary table: one row per line (its kind
  // and amount in data-kind and data-amount), and the total.
  function renderSummary(lines, currency, total) {
    const body = $("lines");
    body.replaceChildren();
    for (const l of lines || []) {
      const tr = document.createElement("tr");
      tr.dataset.kind = l.kind;
      tr.dataset.amount = String(l.amount);
      const name = document.createElement("th");
      name.scope = "row";
      name.textContent = l.description || l.kind;
      const qty = document.createElement("td");
      qty.className = "num";
      qty.textContent = (l.kind === "ticket" || l.kind === "addon" || l.kind === "fee") && l.quantity ? String(l.quantity) : "";
      const amount = document.createElement("td");
      amount.className = "num";
      // A tax included in the prices adds nothing: its amount is shown
      // as included.
      amount.textContent = l.kind === "tax" && !l.amount && l.unit ? "(" + money(l.unit, currency) + " included)" : money(l.amount, currency);
      tr.append(name, qty, amount);
      body.append(tr);
    }
    const t = $("total");
    t.dataset.amount = String(total);
    t.dataset.currency = currency;
    say(t, money(total, currency));
    show($("summary-section"), true);
  }

  function load(key) {
    try { return JSON.parse(sessionStorage.getItem(key) || "null"); } catch (e) { return null; }
  }
  function save(key, v) {
    try {
      if (v === null) sessionStorage.removeItem(key); else sessionStorage.setItem(key, JSON.stringify(v));
    } catch (e) { /* no storage: a reload starts again */ }
  }

  // ------------------------------------------------------------ checkout

  function checkoutPage(ev) {
    const params = new URLSearchParams(location.search);
    const holds = [...new Set(params.getAll("hold").filter(Boolean))];
    const meta = document.querySelector('meta[name="payment-url"]');
    const paymentURL = meta ? meta.content.replace(/\/+$/, "") : "";
    let paymentOrigin = "";
    try { if (paymentURL) paymentOrigin = new URL(paymentURL).origin; } catch (e) { paymentOrigin = ""; }
    const selectPage = "/events/" + encodeURIComponent(ev) + "/select";
    $("signin-link").href = tk.signInHref();
    $("back-link").href = selectPage;

    let quote = null; // the quote shown, before the order exists
    let order = null; // the order, once placed
    let paying = false;

    function state(s, text) {
      const el = $("checkout-state");
      el.dataset.state = s;
      say(el, text);
    }
    // fail shows a problem (or a sentence) in the page's alert and moves
    // the focus there; back offers the select page.
    function fail(p, back) {
      tk.showProblem($("checkout-error"), p);
      show($("back-step"), !!back);
      if (p) $("checkout-error").focus();
    }
    function payState(s, text) {
      const el = $("pay-state");
      el.dataset.state = s;
      say(el, text);
    }
    function payProblem(text, code) {
      const el = $("pay-problem");
      tk.showProblem(el, text);
      if (code) el.dataset.code = code;
      if (text) el.focus();
    }
    const orderPage = (id) => "/orders/" + encodeURIComponent(id);

    // A hold that ended, or that is not the buyer's, cannot be bought:
    // back to the select page.
    const holdGone = (p) => p.reason === "hold_not_live" || p.reason === "holds_expired" || p.status === 404;

    // price asks a quote of the holds with voucher; it shows it and
    // returns null, or returns the problem (the quote shown stays).
    async function price(voucher) {
      const r = await tk.call("POST", "/v1/quotes", { holds, add_ons: [], voucher });
      if (!r.ok) return r.problem;
      quote = r.data;
      renderSummary(quote.lines, quote.total.currency, quote.total.amount);
      const v = quote.voucher || "";
      $("voucher").value = v;
      show($("voucher-remove"), !!v);
      say($("summary-note"), quote.expires_at ? "Your tickets are held, at these prices, until " + fmtTime(quote.expires_at) + "." : "");
      show($("voucher-form"), true);
      show($("place-step"), true);
      state("quoted", "Check your order, then continue to payment.");
      return null;
    }

    async function start() {
      const id = params.get("order");
      if (id) return resume(id);
      if (!holds.length) {
        state("empty", "You hold no tickets to buy.");
        show($("back-step"), true);
        return;
      }
      const p = await price("");
      if (p) {
        state("failed", "Your tickets could not be priced.");
        fail(p, holdGone(p));
      }
    }

    $("voucher-form").addEventListener("submit", async (e) => {
      e.preventDefault();
      if (!quote || order) return;
      const form = $("voucher-form");
      tk.showProblem($("voucher-error"), null);
      tk.busy(form, true);
      const p = await price($("voucher").value.trim());
      tk.busy(form, false);
      if (p) {
        tk.showProblem($("voucher-error"), p);
        $("voucher").focus();
      }
    });
    $("voucher-remove").addEventListener("click", async () => {
      if (!quote || order) return;
      tk.showProblem($("voucher-error"), null);
      const p = await price("");
      if (p) tk.showProblem($("voucher-error"), p);
      $("voucher").focus();
    });

    // placeOrder creates the order of the quote shown. The attempt's
    // key is kept per cart: the same cart (a retry, a reload) sends the
    // same key and gets the same order; another quote or voucher is
    // another attempt with a new key.
    async function placeOrder() {
      if (!quote || order) return;
      const body = JSON.stringify({ holds, quote_id: quote.id, voucher: quote.voucher || "", add_ons: [] });
      const attemptKey = "tq_attempt:" + ev;
      let attempt = load(attemptKey);
      if (!attempt || attempt.cart !== body || !attempt.key) {
        attempt = { cart: body, key: tk.newKey() };
        save(attemptKey, attempt);
      }
      const button = $("place-order");
      button.disabled = true;
      fail(null);
      state("ordering", "Placing your order…");
      let r;
      for (let n = 0; ; n++) {
        // On an event with a waiting room the order shows the admission
        // that let its holds be placed (the select page keeps it).
        const headers = { "Idempotency-Key": attempt.key };
        const admitted = load("tq_admitted:" + ev);
        if (admitted) headers["Admission-Token"] = admitted;
        r = await tk.call("POST", "/v1/orders", body, { headers });
        // No answer, or the service was away: the same request again.
        const again = r.status === 0 || r.status === 502 || r.status === 503 || r.status === 504;
        if (!again || n >= 3) break;
        await sleep(backoff(n));
      }
      button.disabled = false;
      if (r.ok) {
        save(attemptKey, null);
        forgetHolds();
        history.replaceState(null, "", location.pathname + "?order=" + encodeURIComponent(r.data.id));
        showPayment(r.data);
        return;
      }
      const p = r.problem;
      if (p.reason === "quote_expired" || p.reason === "unknown_quote") {
        // Price again: the buyer sees the new total before going on.
        const again = await price(quote.voucher || "");
        state("quoted", "The prices were quoted again: check your order, then continue to payment.");
        if (again) fail(again, holdGone(again));
        return;
      }
      state("quoted", "Your order was not placed.");
      fail(p, holdGone(p));
    }
    $("place-order").addEventListener("click", placeOrder);

    // forgetHolds drops the ordered holds from the select page's list.
    function forgetHolds() {
      const key = "tq_holds:" + ev;
      const list = load(key);
      if (Array.isArray(list)) save(key, list.filter((h) => h && !holds.includes(h.hold_id)));
    }

    // resume shows an order placed earlier: to pay, if it is open, else
    // on its own page.
    async function resume(id) {
      const r = await tk.call("GET", "/v1/orders/" + encodeURIComponent(id));
      if (!r.ok) {
        state("failed", "This order could not be loaded.");
        fail(r.problem, r.status === 404);
        return;
      }
      if (!OPEN.includes(r.data.state)) {
        location.replace(orderPage(id));
        return;
      }
      showPayment(r.data);
    }

    function showPayment(o) {
      order = o;
      quote = null;
      renderSummary(o.lines, o.amounts.currency, o.amounts.total);
      say($("summary-note"), o.voucher ? "With the voucher " + o.voucher + "." : "");
      show($("voucher-form"), false);
      show($("place-step"), false);
      show($("payment-section"), true);
      $("order-link").href = orderPage(o.id);
      say($("pay-by"), "Pay before " + fmtTime(o.pay_by) + ": your seats are held until then.");
      state("ordered", "Your order is placed: pay with your card to confirm your seats.");
      if (o.payment && o.payment.status === "failed") declined(o);
      else payState("card", "");
      mountCard();
    }

    function mountCard() {
      if (!paymentOrigin) {
        show($("no-card"), true);
        return;
      }
      if ($("card-frame")) return;
      const f = document.createElement("iframe");
      f.id = "card-frame";
      f.className = "card-frame";
      f.title = "Card details, entered on our payment service's page";
      f.src = paymentURL + "/card?origin=" + encodeURIComponent(location.origin);
      $("card-slot").append(f);
    }

    // The card page's messages: from the payment service's origin and the
    // frame this page made, nothing else.
    window.addEventListener("message", (e) => {
      const f = $("card-frame");
      if (!f || !paymentOrigin || e.origin !== paymentOrigin || e.source !== f.contentWindow) return;
      const m = e.data;
      if (!m || typeof m !== "object") return;
      if (m.type === "card-ready") {
        f.dataset.ready = "true";
      } else if (m.type === "card-token" && m.token && typeof m.token.id === "string" && m.token.id) {
        pay(m.token);
      }
    });

    function declined(o) {
      const p = o.payment || {};
      const msg = (p.decline_message || "Your card was declined.").trim();
      payProblem(msg + (/[.!?]$/.test(msg) ? "" : ".") + " Try another card.", p.decline_code || "declined");
      payState("declined", "");
    }

    // pay pays the order with a card token. A payment is not sent again
    // by itself: its outcome, when no answer came, is the order's.
    async function pay(token) {
      if (paying || !order) return;
      paying = true;
      payProblem(null);
      const card = (token.brand ? token.brand + " card" : "card") + (token.last4 ? " ending in " + token.last4 : "");
      payState("paying", "Paying " + money(order.amounts.total, order.amounts.currency) + " with your " + card + "…");
      const r = await tk.call("POST", "/v1/orders/" + encodeURIComponent(order.id) + "/pay", { method: token.id });
      paying = false;
      if (r.status === 0 || r.status >= 500) {
        payState("unknown", "We did not hear back about your payment: taking you to your order…");
        location.assign(orderPage(order.id));
        return;
      }
      if (!r.ok) {
        if (r.problem.reason === "order_not_open") {
          location.assign(orderPage(order.id));
          return;
        }
        payState("card", "");
        payProblem(tk.describe(r.problem), r.problem.reason || r.problem.code);
        return;
      }
      const v = r.data;
      order = v;
      if (v.state === "requires_action") {
        const u = safeRedirect(v.payment && v.payment.redirect_url);
        if (u) {
          payState("redirecting", "Your bank asks you to confirm the payment: taking you to its page…");
          location.assign(u);
          return;
        }
      }
      if (v.state === "awaiting_payment" && v.payment && v.payment.status === "failed") {
        declined(v);
        return;
      }
      payState("paid", "Taking you to your order…");
      location.assign(orderPage(v.id));
    }

    eventName(ev).then((name) => {
      if (!name) return;
      say($("title"), "Checkout: " + name);
      document.title = $("title").textContent;
    });
    tk.accountBar($("account-bar")).then((me) => {
      if (me === null) {
        state("signed-out", "Sign in to buy tickets.");
        show($("signin-needed"), true);
        return;
      }
      start();
    });
  }

  // ------------------------------------------------------------ order

  const STATES = {
    awaiting_payment: "Waiting for your payment.",
    requires_action: "Waiting for your bank to confirm the payment.",
    paid: "Payment received: confirming your seats…",
    confirmed: "Confirmed: your seats are booked.",
    fulfilled: "Confirmed: your tickets are ready.",
    refunding: "Being refunded.",
    refunded: "Refunded.",
    expired: "Expired: the order was not paid in time, and its seats were released.",
    cancelled: "Cancelled: its seats were released.",
    payment_failed: "The payment failed: this order can no longer be paid, and its seats were released.",
  };

  function orderPage(id) {
    $("signin-link").href = tk.signInHref();
    let polls = 0;
    let named = false;

    function state(s, text) {
      const el = $("order-state");
      el.dataset.state = s;
      say(el, text);
    }

    function render(o) {
      const open = OPEN.includes(o.state);
      const p = o.payment || {};
      let text = STATES[o.state] || "The order is " + o.state + ".";
      if (o.state === "awaiting_payment" && o.pay_by) text += " Pay before " + fmtTime(o.pay_by) + ".";
      state(o.state, text);

      // A payment that came after the order ended or its holds expired.
      const late = $("order-late");
      let lateText = "";
      if (o.late === "reheld") {
        lateText = "Your payment arrived after your seats' hold had ended; the same seats were still free, and they are yours.";
      } else if (o.late === "refunded") {
        lateText = o.state === "refunding" || o.state === "refunded"
          ? "Your payment arrived after your seats' hold had ended, and the seats had gone: the money is refunded to your card."
          : "Your payment arrived after your seats' hold had ended: checking whether the seats are still free…";
      }
      late.dataset.late = o.late || "";
      say(late, lateText);
      show(late, !!lateText);

      const decline = $("order-decline");
      const declinedNow = open && p.status === "failed";
      if (declinedNow) {
        const msg = (p.decline_message || "Your card was declined.").trim();
        say(decline, "Your last payment was declined: " + msg);
        decline.dataset.code = p.decline_code || "declined";
      }
      show(decline, declinedNow);

      const redirect = o.state === "requires_action" ? safeRedirect(p.redirect_url) : "";
      $("action-link").href = redirect || "#";
      show($("order-action"), !!redirect);
      $("pay-link").href = "/checkout/" + encodeURIComponent(o.event) + "?order=" + encodeURIComponent(o.id);
      say($("pay-link"), declinedNow || o.state === "requires_action" ? "Pay with another card" : "Pay for this order");
      show($("order-pay"), open);
      show($("order-tickets-link"), o.state === "confirmed" || o.state === "fulfilled");

      renderSummary(o.lines, o.amounts.currency, o.amounts.total);
      say($("order-id"), o.id);
      say($("order-tickets"), String(o.tickets));
      say($("order-card"), p.last4 ? (p.brand || "Card") + " ending in " + p.last4 : "–");
      say($("order-created"), fmtTime(o.created));
      const ev = $("order-event");
      ev.href = "/events/" + encodeURIComponent(o.event) + "/select";
      if (!named) {
        named = true;
        say(ev, o.event);
        eventName(o.event).then((name) => { if (name) say(ev, name); });
      }
    }

    // read reads the order, and again later until it is final.
    async function read() {
      const r = await tk.call("GET", "/v1/orders/" + encodeURIComponent(id));
      if (r.ok) {
        tk.showProblem($("order-error"), null);
        render(r.data);
        if (!FINAL.includes(r.data.state)) later();
        return;
      }
      if (r.problem.signIn) {
        state("signed-out", "Sign in to see this order.");
        show($("signin-needed"), true);
        return;
      }
      if (r.status === 404) {
        state("not_found", "There is no such order among yours.");
        return;
      }
      tk.showProblem($("order-error"), r.problem);
      later();
    }
    // later reads again: every second for half a minute, then less often.
    function later() {
      polls++;
      setTimeout(read, polls < 30 ? 1000 : polls < 60 ? 3000 : 10000);
    }

    tk.accountBar($("account-bar"));
    read();
  }

  const id = segment();
  if (!id) return;
  if (page === "checkout") checkoutPage(id);
  else if (page === "order") orderPage(id);
})();
