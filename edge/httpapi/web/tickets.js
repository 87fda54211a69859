// The tickets page (/tickets): the signed-in holder's tickets
// (GET /v1/me/tickets), each with its barcode drawn as a QR code on this
// device. The code holds "<barcode>.<code>": the static token the issuer
// signed and an 8-digit RFC 6238 code of the ticket's secret, on a
// 15-second step, computed here (Web Crypto, HMAC-SHA-1) and redrawn at
// every step, so that it keeps changing without the network and a
// screenshot goes stale. The QR code is drawn by the vendored
// qrcode-generator (web/vendor/qrcode.js) as an SVG of rectangles.
"use strict";

(function () {
  const STEP = 15; // seconds
  const DIGITS = 8;
  const $ = (id) => document.getElementById(id);
  const SVG = "http://www.w3.org/2000/svg";

  // base32 decodes RFC 4648 base32 without padding.
  function base32(s) {
    const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    const out = [];
    let bits = 0, value = 0;
    for (const ch of s.replace(/=+$/, "").toUpperCase()) {
      const i = alphabet.indexOf(ch);
      if (i < 0) throw new Error("bad base32");
      value = (value << 5) | i;
      bits += 5;
      if (bits >= 8) {
        out.push((value >>> (bits - 8)) & 0xff);
        bits -= 8;
      }
    }
    return new Uint8Array(out);
  }

  // totp is the RFC 6238 code of key (a CryptoKey for HMAC-SHA-1) at step.
  async function totp(key, step) {
    const msg = new Uint8Array(8);
    let c = step;
    for (let i = 7; i >= 0; i--) {
      msg[i] = c & 0xff;
      c = Math.floor(c / 256);
    }
    const mac = new Uint8Array(await crypto.subtle.sign("HMAC", key, msg));
    const off = mac[mac.length - 1] & 0x0f;
    const bin = ((mac[off] & 0x7f) << 24) | (mac[off + 1] << 16) | (mac[off + 2] << 8) | mac[off + 3];
    return String(bin % 10 ** DIGITS).padStart(DIGITS, "0");
  }

  // draw replaces el's QR code with one of text.
  function draw(el, text) {
    const qr = qrcode(0, "M");
    qr.addData(text, "Byte");
    qr.make();
    const n = qr.getModuleCount(), margin = 4;
    const svg = document.createElementNS(SVG, "svg");
    svg.setAttribute("viewBox", `0 0 ${n + 2 * margin} ${n + 2 * margin}`);
    svg.setAttribute("role", "img");
    svg.setAttribute("aria-label", "Ticket barcode");
    svg.setAttribute("shape-rendering", "crispEdges");
    const bg = document.createElementNS(SVG, "rect");
    bg.setAttribute("width", n + 2 * margin);
    bg.setAttribute("height", n + 2 * margin);
    bg.setAttribute("fill", "#fff");
    svg.appendChild(bg);
    let d = "";
    for (let r = 0; r < n; r++) {
      for (let c = 0; c < n; c++) {
        if (qr.isDark(r, c)) d += `M${c + margin} ${r + margin}h1v1h-1z`;
      }
    }
    const path = document.createElementNS(SVG, "path");
    path.setAttribute("d", d);
    path.setAttribute("fill", "#000");
    svg.appendChild(path);
    el.replaceChildren(svg);
    el.dataset.text = text; // what a scanner reads (the tests read it too)
  }

  function place(t) {
    if (t.seat) return "Seat " + t.seat;
    return "General admission, " + t.zone + " (" + t.index + ")";
  }

  function item(t) {
    const li = document.createElement("li");
    li.className = "ticket";
    li.dataset.ticket = t.id;
    const h = document.createElement("h2");
    h.textContent = t.event_id + ": " + place(t);
    const code = document.createElement("figure");
    code.className = "qr";
    const caption = document.createElement("figcaption");
    caption.className = "countdown";
    const facts = document.createElement("p");
    facts.className = "facts";
    facts.textContent = "Valid " + new Date(t.valid_from).toLocaleString() + " – " + new Date(t.valid_until).toLocaleString() +
      ". Order " + t.order_id + ".";
    li.append(h, code, caption, facts);
    return { li, code, caption };
  }

  async function show(list) {
    const shown = [];
    for (const t of list) {
      const el = item(t);
      $("tickets").appendChild(el.li);
      const key = await crypto.subtle.importKey("raw", base32(t.secret), { name: "HMAC", hash: "SHA-1" }, false, ["sign"]);
      shown.push({ t, el, key });
    }
    let last = -1;
    async function tick() {
      const now = Date.now() / 1000;
      const step = Math.floor(now / STEP);
      if (step !== last) {
        last = step;
        for (const s of shown) {
          draw(s.el.code, s.t.barcode + "." + await totp(s.key, step));
          s.el.code.dataset.step = String(step);
        }
      }
      const left = Math.ceil((step + 1) * STEP - now);
      for (const s of shown) s.el.caption.textContent = "Changes in " + left + " s";
    }
    await tick();
    setInterval(tick, 1000);
  }

  async function load() {
    const me = await tk.accountBar($("account-bar"));
    if (me === null) {
      $("signin-link").href = tk.signInHref(location.pathname);
      $("signin-needed").hidden = false;
      $("tickets-state").dataset.state = "signed-out";
      $("tickets-state").textContent = "You are not signed in.";
      return;
    }
    const r = await tk.call("GET", "/v1/me/tickets");
    if (!r.ok) {
      tk.showProblem($("tickets-error"), r.problem);
      $("tickets-state").dataset.state = "error";
      $("tickets-state").textContent = "Your tickets could not be loaded.";
      return;
    }
    const list = r.data.tickets || [];
    $("tickets-state").dataset.state = list.length ? "shown" : "none";
    $("tickets-state").textContent = list.length ? list.length + (list.length === 1 ? " ticket" : " tickets") : "You have no tickets yet.";
    $("tickets-hint").hidden = !list.length;
    await show(list);
  }

  document.addEventListener("DOMContentLoaded", () => {
    load().catch((err) => {
      $("tickets-state").dataset.state = "error";
      $("tickets-state").textContent = "Your tickets could not be shown: " + (err && err.message ? err.message : err);
    });
  });
})();
