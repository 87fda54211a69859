// What the edge's pages share about accounts (window.tk): calls to the
// API with the session cookies, the CSRF header and one refresh of an
// expired access token; error messages from the API's
// {"error": {"code", "reason", "message"}}; the sign-in link that returns
// to the page (?next=, same-origin relative paths only); the account bar
// of the event and order pages; idempotency keys; and the WebAuthn calls
// of passkeys. Plain JavaScript, no build step: load it before the
// page's own script.
//
// A page signed in by cookie holds three cookies: tk_at (the access token)
// and tk_rt (the refresh token, sent to /v1/auth only), both HttpOnly, and
// tk_csrf, which the page reads and sends back as X-CSRF-Token on every
// write (double submit). tk_sid, readable too, is the session's id.
"use strict";

(function () {
  function cookie(name) {
    for (const part of document.cookie.split(";")) {
      const i = part.indexOf("=");
      if (i > 0 && part.slice(0, i).trim() === name) return decodeURIComponent(part.slice(i + 1).trim());
    }
    return "";
  }

  const safe = (method) => method === "GET" || method === "HEAD" || method === "OPTIONS";

  // headers are the headers of a request of method: the CSRF token on a
  // write when there is a session.
  function headers(method, extra) {
    const h = Object.assign({}, extra || {});
    const token = cookie("tk_csrf");
    if (!safe(method) && token) h["X-CSRF-Token"] = token;
    return h;
  }

  // problem is an error as the pages show it: the API's error detail, the
  // HTTP status, for a refusal by a limit the seconds to wait, and signIn:
  // whether the refusal asks for a (new) sign-in. A 401 does so with a
  // Bearer challenge (WWW-Authenticate); the 401s of an admission token
  // have none.
  function problem(status, detail, retryAfter, signIn) {
    const p = {
      status,
      code: (detail && detail.code) || (status ? "http_" + status : "network"),
      reason: (detail && detail.reason) || "",
      message: (detail && detail.message) || (status ? "The server answered HTTP " + status + "." : ""),
      retryAfter: retryAfter || 0,
      signIn: !!signIn,
    };
    return p;
  }

  const signInAsked = (resp) => resp.status === 401 && /^bearer/i.test(resp.headers.get("WWW-Authenticate") || "");

  async function problemOf(resp) {
    let detail = null;
    try {
      const body = await resp.json();
      if (body && body.error) detail = body.error;
    } catch (e) { /* not JSON */ }
    const s = parseInt(resp.headers.get("Retry-After") || "", 10);
    return problem(resp.status, detail, Number.isFinite(s) && s >= 0 ? Math.max(s, 1) : 0, signInAsked(resp));
  }

  // sentence capitalizes a message of the API and ends it with a full
  // stop.
  function sentence(s) {
    s = String(s || "").trim();
    if (!s) return s;
    s = s.charAt(0).toUpperCase() + s.slice(1);
    return /[.!?:]$/.test(s) ? s : s + ".";
  }

  // describe is the sentence a page shows for a problem.
  function describe(p) {
    if (!p) return "";
    return sentence(describeRaw(p));
  }

  function describeRaw(p) {
    if (p.code === "network") return "Cannot reach the server: check your connection and try again.";
    if (p.status === 429) return "Too many attempts: try again in " + (p.retryAfter || 60) + " seconds.";
    if (p.status === 503) return (p.message ? sentence(p.message) + " " : "") + "The service is unavailable for a moment: try again shortly.";
    if (p.status >= 500) return "Something went wrong on our side (" + p.message + "): try again.";
    if (p.reason === "csrf") return "Your session is out of date: reload the page and try again.";
    return p.message || "The request was refused.";
  }

  let refreshing = null;

  // refresh rotates the cookie session's refresh token (one at a time
  // for the page). It reports whether the session is still good.
  function refresh() {
    if (!cookie("tk_csrf")) return Promise.resolve(false);
    if (!refreshing) {
      refreshing = fetch("/v1/auth/refresh", { method: "POST", credentials: "same-origin", headers: headers("POST") })
        .then((r) => r.ok)
        .catch(() => false)
        .finally(() => { refreshing = null; });
    }
    return refreshing;
  }

  // call sends a request to the API and returns {ok, status, data,
  // problem, response}. body, when given, is sent as JSON. A 401 asking a
  // page with a session to sign in (its access token expired) refreshes
  // the session once and sends the request again. opts.headers adds
  // headers; opts.noRefresh skips the refresh.
  async function call(method, path, body, opts) {
    opts = opts || {};
    const init = () => {
      const h = headers(method, opts.headers);
      const req = { method, credentials: "same-origin", headers: h };
      if (body !== undefined) {
        h["Content-Type"] = "application/json";
        req.body = typeof body === "string" ? body : JSON.stringify(body);
      }
      return req;
    };
    let resp;
    try {
      resp = await fetch(path, init());
      // The sign-in routes' 401 is a wrong password or code, not an
      // expired session.
      const retry = !path.startsWith("/v1/auth/") || path === "/v1/auth/signout";
      if (signInAsked(resp) && retry && !opts.noRefresh && await refresh()) {
        resp = await fetch(path, init());
      }
    } catch (err) {
      return { ok: false, status: 0, data: null, problem: problem(0, null, 0) };
    }
    if (resp.ok) {
      let data = null;
      if (resp.status !== 204) {
        try { data = await resp.json(); } catch (e) { data = null; }
      }
      return { ok: true, status: resp.status, data, problem: null, response: resp };
    }
    return { ok: false, status: resp.status, data: null, problem: await problemOf(resp), response: resp };
  }

  // profile is the signed-in account (GET /v1/account), or null when
  // nobody is signed in. Other failures are thrown as problems.
  async function profile() {
    const r = await call("GET", "/v1/account");
    if (r.ok) return r.data;
    if (r.status === 401) return null;
    throw r.problem;
  }

  // safeNext returns raw when it is a path of this site ("/…", not
  // "//…", no backslash or control character), else fallback.
  function safeNext(raw, fallback) {
    if (typeof raw !== "string" || !raw.startsWith("/") || raw.startsWith("//") || /[\\\u0000-\u001f\u007f]/.test(raw)) {
      return fallback;
    }
    try {
      const u = new URL(raw, location.origin);
      if (u.origin !== location.origin) return fallback;
      return u.pathname + u.search + u.hash;
    } catch (e) {
      return fallback;
    }
  }

  // nextParam is the page's ?next=, checked.
  function nextParam(fallback) {
    return safeNext(new URLSearchParams(location.search).get("next"), fallback);
  }

  // signInHref is the sign-in page's link that returns to next (default:
  // this page).
  function signInHref(next) {
    return "/signin?next=" + encodeURIComponent(next || location.pathname + location.search);
  }

  // accountBar fills a page's account bar (a <nav>): who is signed in,
  // with a link to the account page, or a sign-in that comes back to the
  // page. It returns the profile (null: nobody is signed in; undefined:
  // the accounts service did not answer) and sets the bar's data-state.
  async function accountBar(bar) {
    let me;
    try {
      me = await profile();
    } catch (p) {
      bar.dataset.state = "unknown";
      return undefined;
    }
    bar.replaceChildren();
    const a = document.createElement("a");
    if (me) {
      bar.dataset.state = "signed-in";
      const who = document.createElement("span");
      who.textContent = "Signed in as " + me.email;
      a.href = "/account";
      a.textContent = "Your account";
      bar.append(who, a);
    } else {
      bar.dataset.state = "signed-out";
      a.id = "account-signin";
      a.href = signInHref();
      a.textContent = "Sign in";
      bar.append(a);
    }
    return me;
  }

  // newKey is a fresh idempotency key (a random UUID).
  function newKey() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    const b = new Uint8Array(16);
    crypto.getRandomValues(b);
    return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  }

  // ------------------------------------------------------------ passkeys

  const b64url = {
    decode(s) {
      const b = atob(s.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((s.length + 3) % 4));
      return Uint8Array.from(b, (c) => c.charCodeAt(0)).buffer;
    },
    encode(buf) {
      const b = new Uint8Array(buf);
      let s = "";
      for (const x of b) s += String.fromCharCode(x);
      return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
    },
  };

  function passkeysSupported() {
    return !!(window.PublicKeyCredential && navigator.credentials && window.isSecureContext);
  }

  // The JSON forms of WebAuthn (parse…FromJSON, toJSON) where the browser
  // has them, else the same conversion by hand.
  function creationOptions(json) {
    if (PublicKeyCredential.parseCreationOptionsFromJSON) return PublicKeyCredential.parseCreationOptionsFromJSON(json);
    const o = Object.assign({}, json);
    o.challenge = b64url.decode(json.challenge);
    o.user = Object.assign({}, json.user, { id: b64url.decode(json.user.id) });
    o.excludeCredentials = (json.excludeCredentials || []).map((c) => Object.assign({}, c, { id: b64url.decode(c.id) }));
    return o;
  }

  function requestOptions(json) {
    if (PublicKeyCredential.parseRequestOptionsFromJSON) return PublicKeyCredential.parseRequestOptionsFromJSON(json);
    const o = Object.assign({}, json);
    o.challenge = b64url.decode(json.challenge);
    o.allowCredentials = (json.allowCredentials || []).map((c) => Object.assign({}, c, { id: b64url.decode(c.id) }));
    return o;
  }

  function credentialJSON(cred) {
    if (typeof cred.toJSON === "function") return cred.toJSON();
    const r = cred.response;
    const out = { id: cred.id, rawId: b64url.encode(cred.rawId), type: cred.type,
      clientExtensionResults: cred.getClientExtensionResults ? cred.getClientExtensionResults() : {},
      authenticatorAttachment: cred.authenticatorAttachment || undefined, response: {} };
    out.response.clientDataJSON = b64url.encode(r.clientDataJSON);
    if (r.attestationObject) {
      out.response.attestationObject = b64url.encode(r.attestationObject);
      if (r.getTransports) out.response.transports = r.getTransports();
    } else {
      out.response.authenticatorData = b64url.encode(r.authenticatorData);
      out.response.signature = b64url.encode(r.signature);
      if (r.userHandle) out.response.userHandle = b64url.encode(r.userHandle);
    }
    return out;
  }

  // passkeyProblem turns a refused or failed WebAuthn call into a problem.
  function passkeyProblem(err) {
    const name = err && err.name;
    let message = "The passkey could not be used" + (err && err.message ? ": " + err.message : ".");
    if (name === "NotAllowedError") message = "The passkey request was cancelled or timed out.";
    if (name === "InvalidStateError") message = "This device already holds a passkey for your account.";
    if (name === "SecurityError") message = "Passkeys do not work on this address: open the site by its name (not an IP address) over HTTPS.";
    return problem(0, { code: "passkey", reason: name || "", message }, 0);
  }

  // getPasskey runs navigator.credentials.get with the options a begin
  // answered and returns the credential's JSON, or throws a problem.
  async function getPasskey(options) {
    try {
      const cred = await navigator.credentials.get({ publicKey: requestOptions(options.publicKey) });
      return credentialJSON(cred);
    } catch (err) {
      throw passkeyProblem(err);
    }
  }

  // createPasskey runs navigator.credentials.create likewise.
  async function createPasskey(options) {
    try {
      const cred = await navigator.credentials.create({ publicKey: creationOptions(options.publicKey) });
      return credentialJSON(cred);
    } catch (err) {
      throw passkeyProblem(err);
    }
  }

  // ------------------------------------------------------------ forms

  // showProblem writes a problem (or a sentence) into a page's alert box,
  // or hides it when there is none.
  function showProblem(el, p) {
    const text = typeof p === "string" ? p : describe(p);
    el.textContent = text;
    el.hidden = !text;
    if (p && typeof p === "object") el.dataset.code = p.reason || p.code; else delete el.dataset.code;
  }

  // busy disables a form's controls while its request runs.
  function busy(form, on) {
    for (const el of form.elements) el.disabled = on;
    form.setAttribute("aria-busy", on ? "true" : "false");
  }

  // values returns a form's named fields' values.
  function values(form) {
    const out = {};
    for (const el of form.elements) {
      if (!el.name) continue;
      out[el.name] = el.type === "checkbox" ? el.checked : el.value;
    }
    return out;
  }

  window.tk = {
    cookie, call, describe, profile, refresh, safeNext, nextParam, signInHref, accountBar, newKey,
    passkeysSupported, getPasskey, createPasskey,
    showProblem, busy, values,
    sessionID: () => cookie("tk_sid"),
  };
})();
