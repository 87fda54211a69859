// The card-entry page: posts the card to this origin's tokenization
// endpoint and hands the token (never the number) to the checkout page
// that framed it, at the origin it named (checked by the server).
(function () {
  "use strict";
  const params = new URLSearchParams(location.search);
  const parent = params.get("origin");
  const form = document.getElementById("card-form");
  const err = document.getElementById("card-error");
  const submit = document.getElementById("card-submit");

  function tell(msg) {
    if (window.parent !== window && parent) window.parent.postMessage(msg, parent);
  }

  function digits(s) { return (s || "").replace(/\D/g, ""); }

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    err.textContent = "";
    const exp = digits(document.getElementById("exp").value);
    if (exp.length !== 4 && exp.length !== 6) {
      err.textContent = "Enter the expiry as MM/YY.";
      return;
    }
    const month = parseInt(exp.slice(0, 2), 10);
    let year = parseInt(exp.slice(2), 10);
    if (year < 100) year += 2000;
    const body = {
      number: digits(document.getElementById("number").value),
      exp_month: month,
      exp_year: year,
      cvc: digits(document.getElementById("cvc").value),
    };
    submit.disabled = true;
    try {
      const r = await fetch("/v1/cards", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
      const data = await r.json().catch(() => ({}));
      if (r.status === 201) {
        form.reset();
        tell({ type: "card-token", token: data });
        document.body.dataset.state = "tokenized";
        err.textContent = "";
        return;
      }
      err.textContent = (data.error && data.error.message) || ("The card was not accepted (HTTP " + r.status + ").");
      tell({ type: "card-error", message: err.textContent });
    } catch (x) {
      err.textContent = "Could not reach the payment service: " + x.message;
    } finally {
      submit.disabled = false;
    }
  });
  tell({ type: "card-ready" });
})();
