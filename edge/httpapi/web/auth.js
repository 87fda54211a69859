// The accounts pages of the edge before a session: sign-up (/signup),
// sign-in (/signin: password, then a TOTP code, a recovery code or a
// passkey when the account has a second factor; or a passkey alone),
// e-mail confirmation (/verify#<token>), and password reset (/forgot,
// /reset#<token>). Plain JavaScript, no build step; account.js (window.tk)
// is loaded first.
//
// The mailed links carry their token after '#', which browsers never send
// to a server: the page reads it, takes it out of the address bar and
// history, and posts it.
"use strict";

(function () {
  const tk = window.tk;
  const $ = (id) => document.getElementById(id);
  const page = document.body.dataset.page;

  function fail(p) {
    const el = $("form-error");
    tk.showProblem(el, p);
    if (p) el.focus();
  }

  function done(id) {
    const el = $(id);
    el.hidden = false;
    el.focus();
  }

  // tokenFromHash reads the mailed link's token and drops it from the
  // address bar, so that it is neither kept in history nor shown.
  function tokenFromHash() {
    const t = decodeURIComponent(location.hash.replace(/^#/, ""));
    if (t) history.replaceState(null, "", location.pathname + location.search);
    return t;
  }

  // withNext carries the page's ?next= over to another accounts page.
  function withNext(href) {
    const next = tk.nextParam("");
    return next ? href + "?next=" + encodeURIComponent(next) : href;
  }

  // ------------------------------------------------------------ sign-up

  function signUpPage() {
    $("signin-link").href = withNext("/signin");
    const form = $("signup-form");
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const v = tk.values(form);
      fail(null);
      tk.busy(form, true);
      const r = await tk.call("POST", "/v1/auth/signup", { email: v.email.trim(), password: v.password, display_name: v.display_name.trim() || undefined });
      tk.busy(form, false);
      if (!r.ok) { fail(r.problem); return; }
      $("done-email").textContent = v.email.trim();
      form.hidden = true;
      done("done");
    });
  }

  // ------------------------------------------------------------ sign-in

  function signInPage() {
    const next = tk.nextParam("/account");
    $("signup-link").href = withNext("/signup");
    $("start-over").href = withNext("/signin");
    const form = $("signin-form");
    let mfa = null; // {token, methods}

    function signedIn() {
      location.assign(next);
    }

    // restart goes back to the password step: an MFA ticket is good for
    // one try.
    function restart(p) {
      mfa = null;
      $("mfa-step").hidden = true;
      $("password-step").hidden = false;
      $("password").value = "";
      fail(p);
    }

    function secondStep(data) {
      mfa = { token: data.mfa_token, methods: data.methods || [] };
      const has = (m) => mfa.methods.includes(m);
      $("password-step").hidden = true;
      $("mfa-step").hidden = false;
      const codes = has("totp") || has("recovery");
      $("totp-form").hidden = !codes;
      $("code").value = "";
      // With an app the code is the app's unless ticked; without one only
      // a recovery code can stand in.
      $("recovery-choice").hidden = !(has("totp") && has("recovery"));
      $("recovery").checked = !has("totp") && has("recovery");
      $("code-label").textContent = has("totp") ? "Code from your authenticator app" : "Recovery code";
      $("code-help").textContent = has("totp") ? "The 6-digit code the app shows now" + (has("recovery") ? ", or one of your recovery codes." : ".") : "One of the recovery codes you saved.";
      $("mfa-passkey").hidden = !(has("passkey") && tk.passkeysSupported());
      $("mfa-heading").focus();
      if (codes) $("code").focus();
    }

    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const v = tk.values(form);
      fail(null);
      $("resend").hidden = true;
      tk.busy(form, true);
      const r = await tk.call("POST", "/v1/auth/signin", { email: v.email.trim(), password: v.password, cookie: true });
      tk.busy(form, false);
      if (!r.ok) {
        if (r.problem.reason === "email_unverified") $("resend").hidden = false;
        fail(r.problem);
        return;
      }
      if (r.data && r.data.mfa_required) { secondStep(r.data); return; }
      signedIn();
    });

    $("resend-button").addEventListener("click", async () => {
      const r = await tk.call("POST", "/v1/auth/verify/resend", { email: $("email").value.trim() });
      $("resend-status").textContent = r.ok ? "Sent: check your e-mail." : tk.describe(r.problem);
    });

    $("totp-form").addEventListener("submit", async (ev) => {
      ev.preventDefault();
      if (!mfa) return;
      const f = $("totp-form");
      const v = tk.values(f);
      fail(null);
      tk.busy(f, true);
      const r = await tk.call("POST", "/v1/auth/signin/second-factor",
        { mfa_token: mfa.token, code: v.code.trim(), recovery: !!v.recovery, cookie: true });
      tk.busy(f, false);
      if (r.ok) { signedIn(); return; }
      if (r.status === 401) {
        restart("That code is not right, or was used already. Sign in again with your password and a new code.");
        return;
      }
      fail(r.problem);
    });

    $("mfa-passkey-button").addEventListener("click", async () => {
      if (!mfa) return;
      const b = $("mfa-passkey-button");
      fail(null);
      b.disabled = true;
      try {
        const begun = await tk.call("POST", "/v1/auth/signin/passkey/begin", { mfa_token: mfa.token });
        if (!begun.ok) { restart(begun.problem); return; }
        mfa.token = begun.data.mfa_token || mfa.token;
        let credential;
        try {
          credential = await tk.getPasskey(begun.data.options);
        } catch (p) {
          restart(p);
          return;
        }
        const r = await tk.call("POST", "/v1/auth/signin/passkey/finish",
          { mfa_token: mfa.token, state: begun.data.state, credential, cookie: true });
        if (r.ok) { signedIn(); return; }
        restart(r.status === 401 ? "The passkey was not accepted. Sign in again with your password." : r.problem);
      } finally {
        b.disabled = false;
      }
    });

    if (tk.passkeysSupported()) {
      $("passkey-signin").hidden = false;
      $("passkey-button").addEventListener("click", async () => {
        const b = $("passkey-button");
        fail(null);
        b.disabled = true;
        try {
          const begun = await tk.call("POST", "/v1/auth/passkey/begin");
          if (!begun.ok) { fail(begun.problem); return; }
          let credential;
          try {
            credential = await tk.getPasskey(begun.data.options);
          } catch (p) {
            fail(p);
            return;
          }
          const r = await tk.call("POST", "/v1/auth/passkey/finish", { state: begun.data.state, credential, cookie: true });
          if (r.ok) { signedIn(); return; }
          fail(r.status === 401 ? "That passkey is not known here: sign in with your password, then add it on your account page." : r.problem);
        } finally {
          b.disabled = false;
        }
      });
    }
  }

  // ------------------------------------------------------------ verify

  async function verifyPage() {
    const token = tokenFromHash();
    const state = $("verify-state");
    state.dataset.state = "working";
    state.textContent = "Confirming…";
    $("verified").hidden = true;
    $("retry").hidden = true;
    fail(null);
    if (!token) {
      state.dataset.state = "failed";
      state.textContent = "This page needs the link from the e-mail we sent.";
      $("retry").hidden = false;
      return;
    }
    const r = await tk.call("POST", "/v1/auth/verify", { token });
    if (r.ok) {
      state.dataset.state = "verified";
      state.textContent = "Done.";
      $("verified").hidden = false;
      return;
    }
    state.dataset.state = "failed";
    state.textContent = "Your address could not be confirmed.";
    fail(r.problem);
    $("retry").hidden = false;
  }

  // ------------------------------------------------------------ forgot

  function forgotPage() {
    const form = $("forgot-form");
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      fail(null);
      tk.busy(form, true);
      const r = await tk.call("POST", "/v1/auth/password/forgot", { email: tk.values(form).email.trim() });
      tk.busy(form, false);
      if (!r.ok) { fail(r.problem); return; }
      form.hidden = true;
      done("done");
    });
  }

  // ------------------------------------------------------------ reset

  function resetPage() {
    const token = tokenFromHash();
    const form = $("reset-form");
    if (!token) {
      fail("This page needs the link from the e-mail we sent.");
      form.hidden = true;
      $("retry").hidden = false;
      return;
    }
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const v = tk.values(form);
      fail(null);
      if (v.password !== v.confirm) {
        fail("The two passwords differ: type the same one twice.");
        return;
      }
      tk.busy(form, true);
      const r = await tk.call("POST", "/v1/auth/password/reset", { token, password: v.password });
      tk.busy(form, false);
      if (!r.ok) {
        fail(r.problem);
        if (r.status === 404) $("retry").hidden = false;
        return;
      }
      form.hidden = true;
      done("done");
    });
  }

  switch (page) {
    case "signup": signUpPage(); break;
    case "signin": signInPage(); break;
    case "verify":
      verifyPage();
      // Another link opened in this tab changes only the hash.
      window.addEventListener("hashchange", () => { if (location.hash) verifyPage(); });
      break;
    case "forgot": forgotPage(); break;
    case "reset": resetPage(); break;
  }
})();
