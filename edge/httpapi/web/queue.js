// The waiting-room page (/queue/{id}) and the seat-selection hand-off page
// (/events/{id}/select) of the edge. Plain JavaScript, no build step: the
// edge embeds this file as it is.
//
// Queue page: ask for a proof-of-work challenge and solve it when its
// difficulty is above 0 (SHA-256 of "<challenge>.<nonce>" with that many
// leading zero bits), join (POST .../queue/join, header Queue-PoW), then
// hold the WebSocket .../queue open, reconnecting with backoff, and show
// each status it pushes. When admitted with a token, keep the token in
// sessionStorage and go to the select page.
//
// Select page: list the event's zones and hold tickets with the admission
// token (header Admission-Token) and a fresh Idempotency-Key per attempt;
// then offer the checkout (/checkout/{id}?hold=…) of the holds made.
// A hold needs a signed-in account: the page sends the cookie session
// (with its X-CSRF-Token, account.js) and, when nobody is signed in, shows
// a sign-in link that comes back here. The admission token waits in
// sessionStorage meanwhile.
//
// Both pages say who is signed in (account.js, loaded first: window.tk).
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const page = document.body.dataset.page;
  const tokenKey = (ev) => "tq_admission:" + ev;
  const api = (ev, rest) => "/v1/events/" + encodeURIComponent(ev) + (rest || "");

  // eventFromPath reads the event id from /queue/{id} or /events/{id}/select.
  function eventFromPath() {
    const parts = location.pathname.split("/").filter(Boolean);
    if (page === "queue" && parts[0] === "queue") return decodeURIComponent(parts[1] || "");
    if (page === "select" && parts[0] === "events") return decodeURIComponent(parts[1] || "");
    return "";
  }

  const tk = window.tk;

  function show(el, on) { el.hidden = !on; }
  function say(el, text) { if (el.textContent !== text) el.textContent = text; }
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  // backoff is the wait before retry n (0, 1, …): exponential from 500 ms,
  // capped, with jitter so that a crowd that lost its edge at once does not
  // come back at once.
  const backoff = (n) => Math.min(15000, 500 * 2 ** Math.min(n, 6)) * (0.5 + Math.random() / 2);

  function retryAfterMs(resp, fallback) {
    const s = parseInt(resp.headers.get("Retry-After") || "", 10);
    return Number.isFinite(s) && s >= 0 ? Math.max(s, 1) * 1000 : fallback;
  }

  async function errorOf(resp) {
    try {
      const body = await resp.json();
      if (body && body.error) return body.error;
    } catch (e) { /* not JSON */ }
    return { code: "http_" + resp.status, message: "HTTP " + resp.status };
  }

  function fmtTime(iso) {
    const d = new Date(iso);
    return isNaN(d) ? "" : d.toLocaleString();
  }

  function fmtWait(seconds) {
    if (seconds < 60) return "less than a minute";
    const m = Math.round(seconds / 60);
    if (m < 60) return "about " + m + (m === 1 ? " minute" : " minutes");
    const h = Math.floor(m / 60), rest = m % 60;
    return "about " + h + (h === 1 ? " hour" : " hours") + (rest ? " " + rest + " min" : "");
  }

  async function showEvent(ev) {
    try {
      const r = await fetch(api(ev), { credentials: "same-origin" });
      if (!r.ok) return null;
      const e = await r.json();
      say($("title"), (page === "queue" ? "Waiting room: " : "Choose your tickets: ") + e.name);
      document.title = $("title").textContent;
      const where = e.venue ? e.venue.name + (e.venue.city ? ", " + e.venue.city : "") : "";
      say($("event-info"), [where, e.starts_at ? fmtTime(e.starts_at) : ""].filter(Boolean).join(" · "));
      return e;
    } catch (err) {
      return null;
    }
  }

  // accountBar fills the page's account bar (account.js).
  const accountBar = () => tk.accountBar($("account-bar"));

  // ------------------------------------------------------------ SHA-256

  // sha256 is a plain implementation for pages served without a secure
  // context (http on a LAN address), where crypto.subtle does not exist.
  const K = new Uint32Array([
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2]);
  function sha256(bytes) {
    const n = bytes.length, blocks = ((n + 9 + 63) >> 6) << 6;
    const m = new Uint8Array(blocks);
    m.set(bytes);
    m[n] = 0x80;
    const dv = new DataView(m.buffer);
    dv.setUint32(blocks - 4, n * 8);
    dv.setUint32(blocks - 8, Math.floor(n / 0x20000000));
    const H = new Uint32Array([0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19]);
    const W = new Uint32Array(64);
    const ror = (x, r) => (x >>> r) | (x << (32 - r));
    for (let off = 0; off < blocks; off += 64) {
      for (let i = 0; i < 16; i++) W[i] = dv.getUint32(off + i * 4);
      for (let i = 16; i < 64; i++) {
        const s0 = ror(W[i - 15], 7) ^ ror(W[i - 15], 18) ^ (W[i - 15] >>> 3);
        const s1 = ror(W[i - 2], 17) ^ ror(W[i - 2], 19) ^ (W[i - 2] >>> 10);
        W[i] = W[i - 16] + s0 + W[i - 7] + s1;
      }
      let [a, b, c, d, e, f, g, h] = H;
      for (let i = 0; i < 64; i++) {
        const t1 = (h + (ror(e, 6) ^ ror(e, 11) ^ ror(e, 25)) + ((e & f) ^ (~e & g)) + K[i] + W[i]) >>> 0;
        const t2 = ((ror(a, 2) ^ ror(a, 13) ^ ror(a, 22)) + ((a & b) ^ (a & c) ^ (b & c))) >>> 0;
        h = g; g = f; f = e; e = (d + t1) >>> 0; d = c; c = b; b = a; a = (t1 + t2) >>> 0;
      }
      H[0] += a; H[1] += b; H[2] += c; H[3] += d; H[4] += e; H[5] += f; H[6] += g; H[7] += h;
    }
    const out = new Uint8Array(32);
    const ov = new DataView(out.buffer);
    for (let i = 0; i < 8; i++) ov.setUint32(i * 4, H[i]);
    return out;
  }

  const subtle = window.crypto && window.crypto.subtle;
  const digest = subtle
    ? (bytes) => subtle.digest("SHA-256", bytes).then((b) => new Uint8Array(b))
    : (bytes) => Promise.resolve(sha256(bytes));

  function zeroBits(h) {
    let n = 0;
    for (const b of h) {
      if (b === 0) { n += 8; continue; }
      return n + Math.clz32(b) - 24;
    }
    return n;
  }

  // solve finds a nonce such that SHA-256("<challenge>.<nonce>") has
  // difficulty leading zero bits, hashing in batches so that the page stays
  // responsive. It returns the solution "<challenge>.<nonce>".
  async function solve(challenge, difficulty, progress) {
    const enc = new TextEncoder();
    const prefix = challenge + ".";
    const batch = 256;
    for (let n = 0; ; n += batch) {
      const sols = [], hashes = [];
      for (let i = 0; i < batch; i++) {
        const s = prefix + (n + i);
        sols.push(s);
        hashes.push(digest(enc.encode(s)));
      }
      const hs = await Promise.all(hashes);
      for (let i = 0; i < batch; i++) {
        if (zeroBits(hs[i]) >= difficulty) return sols[i];
      }
      if (progress) progress(n + batch);
    }
  }
  window.tqSolve = solve; // for tests and the curious
  window.tqSHA256 = sha256;

  // ------------------------------------------------------------ queue page

  function queuePage(ev) {
    let done = false; // handed off: stop reconnecting
    let maxAhead = 0;
    let ws = null;
    let failures = 0;

    $("draw-link").href = api(ev, "/queue/draw");

    function problem(text) {
      say($("problem"), text || "");
      show($("problem"), !!text);
    }

    function render(st) {
      if (!st || st.type && st.type !== "status") return;
      const state = st.state || "";
      $("state").dataset.state = state;
      const ahead = Number.isFinite(st.ahead) ? st.ahead : 0;
      const position = Number.isFinite(st.position) ? st.position : 0;
      switch (state) {
        case "pre_queue":
          say($("state"), "You are in the pre-queue. When the sale starts" +
            (st.on_sale_at ? " (" + fmtTime(st.on_sale_at) + ")" : "") +
            ", everyone in the pre-queue gets a place in a random draw: arriving early gives no advantage.");
          break;
        case "queued":
          say($("state"), "You are in line.");
          break;
        case "admitted":
          say($("state"), "It is your turn! Taking you to seat selection…");
          break;
        case "sold_out":
          say($("state"), "Sold out.");
          break;
        default:
          say($("state"), "Waiting for the waiting room…");
      }
      const inLine = state === "queued" || (state === "pre_queue" && position > 0);
      show($("position-line"), inLine);
      say($("position"), position > 0 ? String(position) : "–");
      show($("ahead-line"), inLine);
      say($("ahead"), String(ahead));
      say($("ahead-label"), ahead === 1 ? "person ahead of you" : "people ahead of you");
      const wait = st.estimated_wait_seconds;
      show($("wait-line"), inLine && Number.isFinite(wait));
      if (Number.isFinite(wait)) say($("wait"), fmtWait(wait));

      maxAhead = Math.max(maxAhead, ahead);
      const bar = $("progress");
      if (state === "admitted") {
        bar.max = 1; bar.value = 1;
      } else {
        bar.max = Math.max(maxAhead, 1);
        bar.value = maxAhead - ahead;
      }
      say(bar, Math.round((100 * bar.value) / bar.max) + "%");

      show($("likely-sold-out"), !!st.likely_sold_out && state !== "sold_out" && state !== "admitted");
      show($("sold-out"), state === "sold_out");

      if (state === "admitted") {
        if (st.token) handOff(st);
        else fetchStatus(); // the token comes with the status
      }
    }

    function handOff(st) {
      if (done) return;
      done = true;
      try {
        sessionStorage.setItem(tokenKey(ev), JSON.stringify({ token: st.token, expires_at: st.token_expires_at || "" }));
      } catch (e) { /* storage full or off: the select page says so */ }
      if (ws) ws.close(1000, "admitted");
      location.assign("/events/" + encodeURIComponent(ev) + "/select");
    }

    async function fetchStatus() {
      try {
        const r = await fetch(api(ev, "/queue/status"), { credentials: "same-origin" });
        if (r.ok) render(await r.json());
      } catch (e) { /* the socket or the next poll will do */ }
    }

    // join joins over HTTP, solving a challenge first when one is needed.
    // It returns false when there is no waiting room to join.
    async function join() {
      let challenge = null; // {c, d}: from a refused join
      for (let attempt = 0; ; attempt++) {
        let solution = "";
        try {
          if (!challenge) {
            const r = await fetch(api(ev, "/queue/challenge"), { credentials: "same-origin" });
            if (r.status === 404) { problem("This event has no waiting room."); return false; }
            if (r.status === 429) { const ms = retryAfterMs(r, backoff(attempt)); problem("Too many attempts: trying again in " + Math.ceil(ms / 1000) + " s."); await sleep(ms); continue; }
            if (!r.ok) throw new Error("challenge: HTTP " + r.status);
            const c = await r.json();
            challenge = { c: c.challenge, d: c.difficulty };
          }
          if (challenge.d > 0) {
            show($("work"), true);
            say($("work-progress"), "");
            solution = await solve(challenge.c, challenge.d, (n) => say($("work-progress"), "(" + n.toLocaleString() + " tries)"));
            show($("work"), false);
          }
          challenge = null;
          const headers = {};
          if (solution) headers["Queue-PoW"] = solution;
          // A signed-in page's POST carries the CSRF token (double submit).
          const csrf = tk.cookie("tk_csrf");
          if (csrf) headers["X-CSRF-Token"] = csrf;
          const r = await fetch(api(ev, "/queue/join"), { method: "POST", headers, credentials: "same-origin" });
          if (r.ok) {
            problem("");
            render(await r.json());
            return true;
          }
          if (r.status === 404) { problem("This event has no waiting room."); return false; }
          if (r.status === 429) {
            const ms = retryAfterMs(r, backoff(attempt));
            problem("Too many attempts from your connection: trying again in " + Math.ceil(ms / 1000) + " s.");
            await sleep(ms);
            continue;
          }
          if (r.status === 403) {
            const c = r.headers.get("Queue-PoW-Challenge");
            const d = parseInt(r.headers.get("Queue-PoW-Difficulty") || "", 10);
            if (c && Number.isFinite(d)) challenge = { c, d };
            const e = await errorOf(r);
            if (e.reason === "pow_required" || e.reason === "pow_invalid") continue;
            problem(e.message);
            await sleep(backoff(attempt));
            continue;
          }
          throw new Error("join: HTTP " + r.status);
        } catch (err) {
          show($("work"), false);
          const ms = backoff(attempt);
          problem("Cannot reach the waiting room (" + err.message + "): trying again in " + Math.ceil(ms / 1000) + " s.");
          await sleep(ms);
        }
      }
    }

    function connect() {
      if (done) return;
      const url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + api(ev, "/queue");
      let opened = false;
      ws = new WebSocket(url);
      ws.onopen = () => { opened = true; };
      ws.onmessage = (m) => {
        failures = 0;
        problem("");
        let st;
        try { st = JSON.parse(m.data); } catch (e) { return; }
        render(st);
      };
      ws.onclose = () => {
        ws = null;
        if (done) return;
        const ms = backoff(failures++);
        problem((opened ? "Connection lost" : "Cannot connect") + ": reconnecting in " + Math.ceil(ms / 1000) +
          " s. You keep your place.");
        if (failures >= 3) fetchStatus(); // a proxy may refuse WebSockets: keep the numbers fresh
        setTimeout(connect, ms);
      };
    }

    accountBar().then((me) => show($("signin-hint"), me === null));
    $("signin-hint-link").href = tk.signInHref();
    join().then((ok) => { if (ok) connect(); });
  }

  // ------------------------------------------------------------ select page

  function selectPage(ev) {
    $("queue-link").href = "/queue/" + encodeURIComponent(ev);
    $("signin-link").href = tk.signInHref();
    // signedIn: true, false, or null until known (or when the accounts
    // service does not answer: the hold will tell).
    let signedIn = null;
    accountBar().then((me) => {
      if (me === undefined) return;
      signedIn = !!me;
      show($("signin-needed"), !me);
    });
    let admission = null;
    try { admission = JSON.parse(sessionStorage.getItem(tokenKey(ev)) || "null"); } catch (e) { admission = null; }
    if (admission && admission.expires_at && new Date(admission.expires_at) <= new Date()) admission = null;

    // queued: whether the event has a waiting room (its holds need an
    // admission), null until the event is loaded.
    let queued = null;

    function showToken() {
      const st = $("token-state");
      if (queued === false) {
        // No waiting room: nothing to be admitted to.
        st.dataset.token = "not_needed";
        say(st, "");
        show(st, false);
        show($("no-token"), false);
        return;
      }
      if (queued === null && !(admission && admission.token)) return; // wait for the event
      if (admission && admission.token) {
        st.dataset.token = "present";
        say(st, "You have been admitted" + (admission.expires_at ? ": choose your tickets before " + fmtTime(admission.expires_at) + "." : "."));
        show($("no-token"), false);
      } else {
        st.dataset.token = "absent";
        say(st, "No admission for this event.");
        show($("no-token"), true);
      }
    }
    showToken();

    function result(kind, text) {
      const el = $("hold-result");
      el.dataset.status = kind;
      say(el, text);
    }

    // The holds this tab made for the event and has not ordered yet
    // (sessionStorage "tq_holds:<event>", which the checkout page updates
    // when it places an order): the checkout step offers them all.
    const heldKey = "tq_holds:" + ev;
    function liveHolds() {
      let list;
      try { list = JSON.parse(sessionStorage.getItem(heldKey) || "[]"); } catch (e) { list = []; }
      if (!Array.isArray(list)) return [];
      const now = new Date();
      return list.filter((h) => h && h.hold_id && new Date(h.expires_at) > now);
    }
    function keepHold(h) {
      const list = liveHolds().filter((x) => x.hold_id !== h.hold_id);
      list.push({ hold_id: h.hold_id, expires_at: h.expires_at, seats: h.seats || [], zone: h.zone || "", quantity: h.quantity || 0 });
      try { sessionStorage.setItem(heldKey, JSON.stringify(list)); } catch (e) { /* the link below still works */ }
    }
    // checkHolds drops from the list the holds that ended since (sold,
    // released, expired), then offers the checkout of the others. A hold
    // that cannot be read now stays.
    async function checkHolds() {
      const dropped = [];
      for (const h of liveHolds()) {
        const r = await tk.call("GET", "/v1/holds/" + encodeURIComponent(h.hold_id));
        if (r.ok ? r.data.status !== "held" : r.status === 404) dropped.push(h.hold_id);
      }
      // Holds made meanwhile are in the list as it is now.
      const list = liveHolds().filter((h) => !dropped.includes(h.hold_id));
      try { sessionStorage.setItem(heldKey, JSON.stringify(list)); } catch (e) { /* nothing to keep */ }
      showCheckout();
      $("checkout-step").dataset.state = "checked";
    }
    // showCheckout offers the checkout of the live holds, or nothing.
    function showCheckout() {
      const list = liveHolds();
      show($("checkout-step"), list.length > 0);
      if (!list.length) return;
      const q = new URLSearchParams();
      for (const h of list) q.append("hold", h.hold_id);
      $("checkout-link").href = "/checkout/" + encodeURIComponent(ev) + "?" + q.toString();
      const n = list.reduce((sum, h) => sum + (h.seats.length || h.quantity || 0), 0);
      say($("checkout-count"), "You hold " + n + (n === 1 ? " ticket." : " tickets."));
    }
    showCheckout();
    checkHolds();

    async function pickSeats(event, zone, n) {
      const r = await fetch(api(ev, "/availability"), { credentials: "same-origin" });
      if (!r.ok) throw new Error((await errorOf(r)).message);
      const av = await r.json();
      const seats = [];
      for (const s of event.sections || []) {
        for (const row of s.rows || []) {
          if (row.zone !== zone) continue;
          for (const seat of row.seats || []) {
            if (av.seats[seat] === undefined || av.seats[seat] === "free") seats.push(seat);
            if (seats.length === n) return seats;
          }
        }
      }
      return null;
    }

    async function hold(event, zone, n, buttons) {
      if (signedIn === false) {
        result("refused", "Sign in to hold tickets.");
        show($("signin-needed"), true);
        $("signin-link").focus();
        return;
      }
      buttons.forEach((b) => { b.disabled = true; });
      result("pending", "Holding…");
      try {
        const body = zone.kind === "ga" ? { zone: zone.id, quantity: n } : { seats: await pickSeats(event, zone.id, n) };
        if (!body.zone && !body.seats) { result("refused", "Not enough seats left in " + zone.name + "."); return; }
        const headers = { "Idempotency-Key": tk.newKey() };
        if (admission && admission.token) headers["Admission-Token"] = admission.token;
        const payload = JSON.stringify(body);
        let r;
        for (let attempt = 0; ; attempt++) {
          // With the session's cookies and CSRF token; a retry after a
          // network failure reuses the key: it is the same request.
          r = await tk.call("POST", api(ev, "/holds"), payload, { headers });
          if (r.status !== 0) break;
          if (attempt >= 3) throw new Error(tk.describe(r.problem));
          await sleep(backoff(attempt));
        }
        if (r.status === 201) {
          const h = r.data;
          try {
            sessionStorage.setItem("tq_hold:" + ev, JSON.stringify(h));
            sessionStorage.removeItem(tokenKey(ev)); // an admission is good for one hold
            // … and the checkout's order shows it again (it is not spent
            // twice: the edge checks it admitted this session).
            if (admission && admission.token) sessionStorage.setItem("tq_admitted:" + ev, JSON.stringify(admission.token));
          } catch (e) { /* nothing to keep it in */ }
          admission = null;
          keepHold(h);
          const what = h.seats && h.seats.length ? "seats " + h.seats.join(", ") : h.quantity + " × " + zone.name;
          result("held", "Held " + what + " until " + fmtTime(h.expires_at) + ".");
          showCheckout();
          if (queued) {
            $("token-state").dataset.token = "used";
            say($("token-state"), "Your admission was used for this hold.");
          }
          return;
        }
        const e = r.problem;
        if (e.signIn) {
          signedIn = false;
          result("refused", "Sign in to hold tickets: " + e.message);
          show($("signin-needed"), true);
          return;
        }
        if (r.status === 403 && e.reason === "csrf") {
          result("refused", tk.describe(e));
          return;
        }
        if (r.status === 401 || r.status === 403 || r.status === 410) {
          if (!queued) {
            result("refused", tk.describe(e));
            return;
          }
          result("refused", e.message + " Join the waiting room again to get a new admission.");
          show($("no-token"), true);
          return;
        }
        result("refused", tk.describe(e));
      } catch (err) {
        result("refused", "Could not hold: " + err.message);
      } finally {
        buttons.forEach((b) => { b.disabled = false; });
      }
    }

    function price(z) {
      try {
        return new Intl.NumberFormat(undefined, { style: "currency", currency: z.currency || "USD" }).format(z.price_cents / 100);
      } catch (e) {
        return (z.price_cents / 100).toFixed(2) + " " + (z.currency || "");
      }
    }

    showEvent(ev).then((event) => {
      const list = $("zones");
      show($("zones-loading"), false);
      if (!event) {
        result("refused", "This event could not be loaded.");
        return;
      }
      queued = !!event.queue;
      showToken();
      const buttons = [];
      for (const z of event.zones || []) {
        const li = document.createElement("li");
        li.dataset.zone = z.id;
        const name = document.createElement("span");
        name.className = "zone-name";
        name.textContent = z.name;
        const info = document.createElement("span");
        info.textContent = price(z) + (z.kind === "ga" ? " · standing" : " · reserved seat");
        const label = document.createElement("label");
        const qid = "qty-" + z.id;
        label.htmlFor = qid;
        label.textContent = "Tickets ";
        const qty = document.createElement("select");
        qty.id = qid;
        for (let i = 1; i <= 4; i++) {
          const o = document.createElement("option");
          o.value = String(i);
          o.textContent = String(i);
          qty.append(o);
        }
        label.append(qty);
        const btn = document.createElement("button");
        btn.type = "button";
        btn.className = "hold";
        btn.textContent = "Hold";
        btn.setAttribute("aria-label", "Hold tickets in " + z.name);
        btn.addEventListener("click", () => hold(event, z, parseInt(qty.value, 10), buttons));
        buttons.push(btn);
        li.append(name, info, label, btn);
        list.append(li);
      }
      if (!buttons.length) result("refused", "This event has no zones.");
    });
  }

  const ev = eventFromPath();
  if (!ev) return;
  if (page === "queue") {
    showEvent(ev);
    queuePage(ev);
  } else if (page === "select") {
    selectPage(ev);
  }
})();
