package psp

import (
	"html/template"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// The 3-D Secure challenge: GET /3ds/{token} is the page the intent's
// next_action sends the buyer's browser to, a form with two buttons; its
// POST answers the challenge, and the browser is redirected to the
// return_url with payment_intent and redirect_status (succeeded or
// failed). The token is the page's only credential (128 random bits).
// Posting the same answer again redirects again, as the first time.

var challengeTmpl = template.Must(template.New("challenge").Parse(`<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>3-D Secure test page</title></head>
<body>
<h1>3-D Secure test page</h1>
<p>Authenticate the payment of <strong>{{.Amount}} {{.Currency}}</strong> with the card ending in {{.Last4}}.</p>
<form method="post" action="/3ds/{{.Token}}">
<button type="submit" name="result" value="complete">Complete</button>
<button type="submit" name="result" value="fail">Fail</button>
</form>
</body>
</html>
`))

var messageTmpl = template.Must(template.New("message").Parse(`<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>3-D Secure test page</title></head>
<body><p>{{.}}</p></body>
</html>
`))

type challengeView struct {
	Amount, Currency, Last4, Token string
}

func (s *Server) challengePage(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	defer func() { s.m.request("challenge_page", outcomeOK, time.Since(start)) }()
	token := r.PathValue("token")
	in := s.st.intentByToken(token)
	switch {
	case in == nil:
		page(w, http.StatusNotFound, messageTmpl, "There is no such challenge.")
	case in.Challenge == nil || in.Challenge.Token != token:
		page(w, http.StatusGone, messageTmpl, "This challenge is no longer valid: the payment was confirmed again.")
	case in.Challenge.Result != "":
		page(w, http.StatusOK, messageTmpl, "This challenge has been answered: "+in.Challenge.Result+".")
	case in.Status != StatusRequiresAction:
		page(w, http.StatusGone, messageTmpl, "This challenge is no longer valid: the payment is "+in.Status+".")
	default:
		page(w, http.StatusOK, challengeTmpl, challengeView{Amount: formatMinor(in.Amount), Currency: strings.ToUpper(in.Currency),
			Last4: in.Challenge.Last4, Token: token})
	}
}

func (s *Server) challengeAnswer(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	label := outcomeOK
	defer func() { s.m.request("challenge", label, time.Since(start)) }()
	token := r.PathValue("token")
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBody))
	var form url.Values
	if err == nil {
		form, err = decodeForm(string(body))
	}
	result := form.Get("result")
	if err != nil || (result != "complete" && result != "fail") {
		label = outcomeRefused
		page(w, http.StatusBadRequest, messageTmpl, "Answer with Complete or Fail.")
		return
	}
	in := s.st.intentByToken(token)
	if in == nil {
		label = outcomeRefused
		page(w, http.StatusNotFound, messageTmpl, "There is no such challenge.")
		return
	}
	unlock := s.locks.lock(in.ID)
	in = s.st.intent(in.ID) // as the lock left it
	if ch := in.Challenge; ch != nil && ch.Token == token && ch.Result != "" {
		unlock()
		s.redirect(w, r, in.ID, ch)
		return
	}
	if in.Challenge == nil || in.Challenge.Token != token || in.Status != StatusRequiresAction {
		unlock()
		label = outcomeRefused
		page(w, http.StatusGone, messageTmpl, "This challenge is no longer valid.")
		return
	}
	now := s.cfg.Clock()
	next := in.clone()
	ch := *in.Challenge
	var o outcome
	switch {
	case result == "fail":
		o, ch.Result = s.decline(next, authenticationFailed, now), "failed"
	case ch.ThenDecline:
		o, ch.Result = s.decline(next, Cards["4000008400001629"], now), "failed"
	default:
		o, ch.Result = s.approve(next, now), "succeeded"
	}
	next.Challenge = &ch
	err = s.commit(&o.rec)
	unlock()
	if err != nil {
		label = outcomeError
		s.log.Error("psp: a challenge's answer could not be made durable", "intent", in.ID, "err", err)
		page(w, http.StatusInternalServerError, messageTmpl, "The answer could not be stored; try again.")
		return
	}
	s.log.Debug("psp: challenge answered", "intent", in.ID, "card_last4", ch.Last4, "result", ch.Result, "status", next.Status)
	s.redirect(w, r, in.ID, &ch)
}

// redirect sends the browser back to the challenge's return_url.
func (s *Server) redirect(w http.ResponseWriter, r *http.Request, intent string, ch *challenge) {
	if ch.ReturnURL == "" {
		page(w, http.StatusOK, messageTmpl, "Authentication "+ch.Result+". You may close this window.")
		return
	}
	u, err := url.Parse(ch.ReturnURL)
	if err != nil { // checked at confirm
		page(w, http.StatusOK, messageTmpl, "Authentication "+ch.Result+".")
		return
	}
	q := u.Query()
	q.Set("payment_intent", intent)
	q.Set("redirect_status", ch.Result)
	u.RawQuery = q.Encode()
	http.Redirect(w, r, u.String(), http.StatusSeeOther)
}

func page(w http.ResponseWriter, status int, t *template.Template, data any) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", "default-src 'none'")
	w.WriteHeader(status)
	_ = t.Execute(w, data)
}

// formatMinor writes minor units with two decimals (the page is for
// people; the amounts of the API stay integers).
func formatMinor(n int64) string {
	neg := n < 0
	if neg {
		n = -n
	}
	s := []byte{byte('0' + n%10), byte('0' + n/10%10), '.'}
	n /= 100
	for {
		s = append(s, byte('0'+n%10))
		if n /= 10; n == 0 {
			break
		}
	}
	if neg {
		s = append(s, '-')
	}
	for i, j := 0, len(s)-1; i < j; i, j = i+1, j-1 {
		s[i], s[j] = s[j], s[i]
	}
	return string(s)
}
