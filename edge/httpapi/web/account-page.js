// The account page of the edge (/account): the profile, the sessions
// (each can be signed out), the password, the authenticator app (TOTP:
// set up with the QR code or the key, turn off), the recovery codes (shown
// once), the passkeys (add, remove) and signing out. Plain JavaScript, no
// build step; account.js (window.tk) is loaded first.
//
// Changing the password, turning the app off, new recovery codes and
// removing a passkey each ask for the current password, and the app's code
// when it is on, in the request itself (the API's step_up).
"use strict";

(function () {
  const tk = window.tk;
  const $ = (id) => document.getElementById(id);
  let me = null; // the profile

  function fmt(iso) {
    const d = new Date(iso);
    return !iso || isNaN(d) || d.getFullYear() < 2000 ? "" : d.toLocaleString();
  }

  function alertIn(id, p) {
    const el = $(id);
    tk.showProblem(el, p);
    if (p) el.focus();
  }

  function button(text, label, onClick) {
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = text;
    if (label) b.setAttribute("aria-label", label);
    b.addEventListener("click", onClick);
    return b;
  }

  // stepUp is the step_up of a form with password and code fields.
  function stepUp(form) {
    const v = tk.values(form);
    const s = { password: v.password };
    if (me && me.totp && v.code) s.code = v.code.trim();
    return s;
  }

  // expired handles a 401: the session ended (signed out elsewhere,
  // revoked): go to the sign-in page that returns here.
  function expired(r) {
    if (r.status === 401) {
      location.assign(tk.signInHref("/account"));
      return true;
    }
    return false;
  }

  // ------------------------------------------------------------ profile

  function render() {
    $("profile-email").textContent = me.email;
    $("profile-name").textContent = me.display_name || "—";
    $("profile-created").textContent = fmt(me.created_at);
    for (const el of document.querySelectorAll(".step-code")) el.hidden = !me.totp;

    const st = $("totp-state");
    st.dataset.state = me.totp ? "on" : "off";
    st.textContent = me.totp
      ? "On: signing in asks for a code from your app."
      : "Off. An authenticator app adds a second step to signing in with your password.";
    $("totp-start-line").hidden = me.totp || !$("totp-enrol").hidden;
    $("totp-disable-form").hidden = !me.totp;
    if (me.totp) $("totp-enrol").hidden = true;

    const second = me.totp || (me.passkeys || []).length > 0;
    $("recovery-section").hidden = !second;
    $("recovery-left").textContent = me.recovery_codes_left + (me.recovery_codes_left === 1 ? " recovery code left." : " recovery codes left.");

    const list = $("passkeys");
    list.replaceChildren();
    for (const p of me.passkeys || []) {
      const li = document.createElement("li");
      li.dataset.passkey = p.id;
      const name = document.createElement("span");
      name.className = "item-name";
      name.textContent = p.name || "Passkey";
      const info = document.createElement("span");
      info.className = "small";
      info.textContent = "added " + fmt(p.created_at) + (p.last_used_at ? " · last used " + fmt(p.last_used_at) : "");
      li.append(name, info, button("Remove", "Remove the passkey " + (p.name || ""), () => askRemove(p)));
      list.append(li);
    }
    if (!list.children.length) {
      const li = document.createElement("li");
      li.textContent = "No passkeys yet.";
      list.append(li);
    }
  }

  async function reload() {
    const r = await tk.call("GET", "/v1/account");
    if (expired(r)) return false;
    if (!r.ok) { alertIn("page-error", r.problem); return false; }
    me = r.data;
    render();
    return true;
  }

  // ------------------------------------------------------------ sessions

  async function loadSessions() {
    const r = await tk.call("GET", "/v1/account/sessions");
    if (expired(r)) return;
    tk.showProblem($("sessions-error"), r.ok ? null : r.problem);
    if (!r.ok) return;
    const current = tk.sessionID();
    const list = $("sessions");
    list.replaceChildren();
    const sessions = (r.data.sessions || []).slice().sort((a, b) => (a.id === current ? -1 : b.id === current ? 1 : 0));
    for (const s of sessions) {
      const li = document.createElement("li");
      li.dataset.session = s.id;
      const what = document.createElement("span");
      what.className = "item-name";
      what.textContent = (s.user_agent || "Unknown device") + (s.id === current ? " (this browser)" : "");
      const info = document.createElement("span");
      info.className = "small";
      info.textContent = (s.ip ? s.ip + " · " : "") + "signed in " + fmt(s.created_at) + " · last seen " + fmt(s.last_used_at);
      li.append(what, info);
      if (s.id === current) {
        li.dataset.current = "true";
      } else {
        li.append(button("Sign out", "Sign out the session of " + (s.user_agent || "an unknown device"), async (ev) => {
          ev.target.disabled = true;
          const d = await tk.call("DELETE", "/v1/account/sessions/" + encodeURIComponent(s.id));
          if (expired(d)) return;
          if (!d.ok && d.status !== 404) {
            ev.target.disabled = false;
            tk.showProblem($("sessions-error"), d.problem);
            return;
          }
          loadSessions();
        }));
      }
      list.append(li);
    }
  }

  // ------------------------------------------------------------ password

  function passwordForm() {
    const form = $("password-form");
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const body = { step_up: stepUp(form), new_password: tk.values(form).new_password };
      alertIn("password-error", null);
      $("password-done").textContent = "";
      tk.busy(form, true);
      const r = await tk.call("POST", "/v1/account/password", body);
      tk.busy(form, false);
      if (expired(r)) return;
      if (!r.ok) { alertIn("password-error", r.problem); return; }
      form.reset();
      $("password-done").textContent = "Your password is changed. Your other sessions were signed out.";
      loadSessions();
    });
  }

  // ------------------------------------------------------------ TOTP

  function showCodes(codes) {
    const ul = $("recovery-codes");
    ul.replaceChildren();
    for (const c of codes || []) {
      const li = document.createElement("li");
      const code = document.createElement("code");
      code.textContent = c;
      li.append(code);
      ul.append(li);
    }
    $("recovery-section").hidden = false;
    $("recovery-codes-box").hidden = !ul.children.length;
    if (ul.children.length) $("recovery-codes-box").focus();
  }

  function totp() {
    $("totp-start").addEventListener("click", async (ev) => {
      ev.target.disabled = true;
      alertIn("totp-error", null);
      const r = await tk.call("POST", "/v1/account/totp");
      ev.target.disabled = false;
      if (expired(r)) return;
      if (!r.ok) { alertIn("totp-error", r.problem); return; }
      $("totp-secret").textContent = r.data.secret;
      $("totp-uri").href = r.data.otpauth_uri;
      const img = $("totp-qr");
      img.hidden = !r.data.qr_code;
      if (r.data.qr_code) img.src = r.data.qr_code;
      $("totp-enrol").hidden = false;
      $("totp-start-line").hidden = true;
      $("totp-code").focus();
    });

    const confirm = $("totp-confirm-form");
    confirm.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      alertIn("totp-error", null);
      tk.busy(confirm, true);
      const r = await tk.call("POST", "/v1/account/totp/confirm", { code: tk.values(confirm).code.trim() });
      tk.busy(confirm, false);
      if (expired(r)) return;
      if (!r.ok) { alertIn("totp-error", r.problem); return; }
      confirm.reset();
      $("totp-enrol").hidden = true;
      $("totp-secret").textContent = "";
      $("totp-qr").removeAttribute("src");
      await reload();
      showCodes(r.data && r.data.recovery_codes);
    });

    const off = $("totp-disable-form");
    off.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const v = tk.values(off);
      alertIn("totp-error", null);
      tk.busy(off, true);
      const r = await tk.call("POST", "/v1/account/totp/disable", { step_up: { password: v.password, code: v.code.trim() } });
      tk.busy(off, false);
      if (expired(r)) return;
      if (!r.ok) { alertIn("totp-error", r.problem); return; }
      off.reset();
      $("recovery-codes-box").hidden = true;
      reload();
    });

    const rc = $("recovery-form");
    rc.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      alertIn("recovery-error", null);
      tk.busy(rc, true);
      const r = await tk.call("POST", "/v1/account/recovery-codes", { step_up: stepUp(rc) });
      tk.busy(rc, false);
      if (expired(r)) return;
      if (!r.ok) { alertIn("recovery-error", r.problem); return; }
      rc.reset();
      await reload();
      showCodes(r.data && r.data.recovery_codes);
    });
  }

  // ------------------------------------------------------------ passkeys

  let removing = null; // the passkey being removed

  function askRemove(p) {
    removing = p;
    $("passkey-remove-name").textContent = p.name || "Passkey";
    const f = $("passkey-remove-form");
    f.hidden = false;
    $("pr-password").focus();
  }

  function passkeys() {
    const add = $("passkey-add-form");
    if (!tk.passkeysSupported()) {
      $("passkey-status").textContent = "This browser cannot make passkeys here (it needs HTTPS or localhost).";
      $("passkey-add").disabled = true;
    }
    add.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      alertIn("passkeys-error", null);
      $("passkey-status").textContent = "";
      const name = tk.values(add).name.trim();
      tk.busy(add, true);
      try {
        const begun = await tk.call("POST", "/v1/account/passkeys/begin");
        if (expired(begun)) return;
        if (!begun.ok) { alertIn("passkeys-error", begun.problem); return; }
        let credential;
        try {
          credential = await tk.createPasskey(begun.data.options);
        } catch (p) {
          alertIn("passkeys-error", p);
          return;
        }
        const r = await tk.call("POST", "/v1/account/passkeys", { state: begun.data.state, credential, name: name || undefined });
        if (expired(r)) return;
        if (!r.ok) { alertIn("passkeys-error", r.problem); return; }
        add.reset();
        $("passkey-status").textContent = "Passkey added: you can sign in with it now.";
        reload();
      } finally {
        tk.busy(add, false);
      }
    });

    const rm = $("passkey-remove-form");
    $("passkey-remove-cancel").addEventListener("click", () => { rm.reset(); rm.hidden = true; removing = null; });
    rm.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      if (!removing) return;
      alertIn("passkeys-error", null);
      tk.busy(rm, true);
      const r = await tk.call("POST", "/v1/account/passkeys/" + encodeURIComponent(removing.id) + "/remove", { step_up: stepUp(rm) });
      tk.busy(rm, false);
      if (expired(r)) return;
      if (!r.ok) { alertIn("passkeys-error", r.problem); return; }
      rm.reset();
      rm.hidden = true;
      removing = null;
      $("passkey-status").textContent = "Passkey removed.";
      reload();
    });
  }

  // ------------------------------------------------------------ start

  async function start() {
    const st = $("account-state");
    let p;
    try {
      p = await tk.profile();
    } catch (problem) {
      st.dataset.state = "failed";
      st.textContent = "Your account could not be loaded.";
      alertIn("page-error", problem);
      return;
    }
    if (!p) {
      st.dataset.state = "signed-out";
      st.textContent = "";
      $("signed-out").hidden = false;
      return;
    }
    me = p;
    render();
    st.dataset.state = "ready";
    st.textContent = "Signed in as " + me.email + ".";
    $("account").hidden = false;
    loadSessions();
  }

  $("signout").addEventListener("click", async (ev) => {
    ev.target.disabled = true;
    const r = await tk.call("POST", "/v1/auth/signout");
    if (!r.ok && r.status !== 401) {
      ev.target.disabled = false;
      alertIn("page-error", r.problem);
      return;
    }
    location.assign("/signin");
  });
  passwordForm();
  totp();
  passkeys();
  start();
})();
