package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ticketing/ticketing/internal/eventually"
	"github.com/ticketing/ticketing/internal/testservers"
	"github.com/ticketing/ticketing/services/catalog"
	catalogapi "github.com/ticketing/ticketing/services/catalog/natsapi"
	"github.com/ticketing/ticketing/services/identity/totp"
)

// TestAccountsAsProcesses runs a core and an edge as processes, the core
// sending mail through the SMTP server of the test command (Mailpit): an
// account signs up, reads its verification mail from the SMTP server,
// verifies, turns on TOTP, signs in with it and holds seats; another
// account cannot see the hold. Then the core and the edge are killed
// (SIGKILL) and started again: the account, its session (a refresh), its
// second factor and its hold are all still there.
func TestAccountsAsProcesses(t *testing.T) {
	smtpAddr, mailpitURL := testservers.SMTPAddr(t), testservers.MailpitURL(t)
	edgeAddr := freeAddr(t)
	// The public URL names localhost, a domain (passkeys need one); the
	// test reaches the same edge at 127.0.0.1.
	public := "https://" + strings.Replace(edgeAddr, "127.0.0.1:", "localhost:", 1)
	core := newCores(t, 1, "--smtp", smtpAddr, "--smtp-tls", "none", "--public-url", public)[0]
	core.start()
	core.waitReady(60 * time.Second)
	createVenueEvent(t, core, "acct")
	startAcctEdge := func() *proc {
		p := startProc(t, "edge", nil, "edge", "--name", "edge-acct", "--http", edgeAddr,
			"--hubs", "nats-leaf://"+core.leafAddr, "--secrets", testSecrets.Dir, "--log-format", "text")
		waitReadyz(t, p.cmd, "https://"+edgeAddr+"/readyz", testSecrets)
		return p
	}
	edgeProc := startAcctEdge()
	h := &acctClient{t: t, base: "https://" + edgeAddr, hc: httpsClient(testSecrets)}
	mp := &mailpitClient{t: t, base: mailpitURL}

	run := time.Now().UnixNano()
	ada := fmt.Sprintf("ada-%d@example.com", run)
	bob := fmt.Sprintf("bob-%d@example.com", run)
	const adaPW, bobPW = "analytical engine 1843", "difference engine 1822"
	for _, who := range []struct{ email, pw string }{{ada, adaPW}, {bob, bobPW}} {
		h.want(202, "POST", "/v1/auth/signup", "", map[string]string{"email": who.email, "password": who.pw}, nil)
		secret := mp.link(who.email, public+"/verify")
		h.want(200, "POST", "/v1/auth/verify", "", map[string]string{"token": secret}, nil)
	}
	var adaTok tokenAnswer
	h.want(200, "POST", "/v1/auth/signin", "", map[string]string{"email": ada, "password": adaPW}, &adaTok)

	// TOTP on, then a sign-in takes a code.
	var enr struct{ Secret string }
	h.want(200, "POST", "/v1/account/totp", adaTok.AccessToken, nil, &enr)
	code, _ := totp.Code(enr.Secret, time.Now())
	var rc struct {
		Codes []string `json:"recovery_codes"`
	}
	h.want(200, "POST", "/v1/account/totp/confirm", adaTok.AccessToken, map[string]string{"code": code}, &rc)
	if len(rc.Codes) == 0 {
		t.Fatal("no recovery codes")
	}
	var mfa struct {
		MFARequired bool   `json:"mfa_required"`
		Token       string `json:"mfa_token"`
	}
	h.want(200, "POST", "/v1/auth/signin", "", map[string]string{"email": ada, "password": adaPW}, &mfa)
	if !mfa.MFARequired || mfa.Token == "" {
		t.Fatalf("TOTP on, yet no second step: %+v", mfa)
	}
	// The code that confirmed the app is spent; the next step's is not.
	next, _ := totp.Code(enr.Secret, time.Now().Add(30*time.Second))
	h.want(200, "POST", "/v1/auth/signin/second-factor", "", map[string]string{"mfa_token": mfa.Token, "code": next}, &adaTok)

	var hold struct {
		HoldID string `json:"hold_id"`
	}
	h.do("POST", "/v1/events/acct/holds", adaTok.AccessToken, map[string]any{"seats": []string{"s0-r0-1", "s0-r0-2"}},
		&hold, "Idempotency-Key", fmt.Sprintf("acct-%d", run))
	if hold.HoldID == "" {
		t.Fatal("no hold")
	}
	var bobTok tokenAnswer
	h.want(200, "POST", "/v1/auth/signin", "", map[string]string{"email": bob, "password": bobPW}, &bobTok)
	h.want(404, "GET", "/v1/holds/"+hold.HoldID, bobTok.AccessToken, nil, nil)
	h.want(404, "DELETE", "/v1/holds/"+hold.HoldID, bobTok.AccessToken, nil, nil)
	h.want(200, "GET", "/v1/holds/"+hold.HoldID, adaTok.AccessToken, nil, nil)

	// kill -9 the core and the edge; start both again.
	core.kill9()
	edgeProc.kill9()
	core.start()
	core.waitReady(90 * time.Second)
	startAcctEdge()

	// The access token issued before still verifies (the keys are kept),
	// the session refreshes, the hold is Ada's alone, TOTP is still on.
	var prof struct{ Email string }
	eventually.Nil(t, 30*time.Second, func() error {
		code, err := h.do("GET", "/v1/account", adaTok.AccessToken, nil, &prof)
		if err == nil && code != 200 {
			err = fmt.Errorf("HTTP %d", code)
		}
		return err
	})
	if prof.Email != ada {
		t.Fatalf("profile %+v", prof)
	}
	var refreshed tokenAnswer
	if code := h.form("/v1/auth/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {adaTok.RefreshToken}}, &refreshed); code != 200 || refreshed.AccessToken == "" {
		t.Fatalf("refresh after the restarts: HTTP %d %+v", code, refreshed)
	}
	h.want(200, "GET", "/v1/holds/"+hold.HoldID, refreshed.AccessToken, nil, nil)
	h.want(404, "GET", "/v1/holds/"+hold.HoldID, bobTok.AccessToken, nil, nil)
	h.want(200, "POST", "/v1/auth/signin", "", map[string]string{"email": ada, "password": adaPW}, &mfa)
	if !mfa.MFARequired {
		t.Fatal("TOTP lost in the restarts")
	}
	h.want(200, "POST", "/v1/auth/signin", "", map[string]string{"email": bob, "password": bobPW}, &bobTok)
	// A spent refresh token is a replay: the session is revoked. (The token
	// spent by the last rotation obtains its successor again for 30 s, a
	// client's retry; the one spent a rotation before is a replay at once.)
	var again tokenAnswer
	if code := h.form("/v1/auth/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refreshed.RefreshToken}}, &again); code != 200 || again.RefreshToken == "" {
		t.Fatalf("second refresh: HTTP %d %+v", code, again)
	}
	if code := h.form("/v1/auth/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {adaTok.RefreshToken}}, nil); code != 400 {
		t.Fatalf("a refresh token spent two rotations ago: HTTP %d, want 400", code)
	}
	if code := h.form("/v1/auth/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {again.RefreshToken}}, nil); code != 400 {
		t.Fatalf("the family survived a replay: HTTP %d", code)
	}
}

type tokenAnswer struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
}

// createVenueEvent creates, over the core's NATS with the admin token (as
// an operator inside the core's network), a venue of 40 reserved seats
// ("s0-r0-1" …) and an event id at it on sale now.
func createVenueEvent(t *testing.T, c *coreProc, id string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin := &catalogapi.Client{NC: c.conn()}
	v := catalog.Venue{ID: id + "-venue", Name: "Venue " + id, City: "Testville",
		Zones:    []catalog.Zone{{ID: "std", Name: "Standard", Kind: catalog.Reserved, PriceCents: 5000, Currency: "USD"}},
		Sections: []catalog.Section{{ID: "s0", Name: "Section 0", Rows: []catalog.Row{{ID: "r0", Seats: 20, Zone: "std"}, {ID: "r1", Seats: 20, Zone: "std"}}}}}
	if err := admin.CreateVenue(ctx, testAdminToken, v); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	if err := admin.CreateEvent(ctx, testAdminToken, catalog.Event{ID: id, Name: "Event " + id, VenueID: v.ID,
		OnSaleAt: now.Add(-time.Hour), StartsAt: now.Add(30 * 24 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
}

// acctClient calls an edge's API.
type acctClient struct {
	t    *testing.T
	base string
	hc   *http.Client
}

// do sends a JSON request (with the access token, when not empty) and
// decodes a JSON answer into out.
func (h *acctClient) do(method, path, token string, body, out any, headers ...string) (int, error) {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, h.base+path, rd)
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := h.hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode < 300 && len(b) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			return resp.StatusCode, fmt.Errorf("decoding %q: %w", b, err)
		}
	}
	if resp.StatusCode >= 300 {
		h.t.Logf("%s %s: HTTP %d %s", method, path, resp.StatusCode, b)
	}
	return resp.StatusCode, nil
}

// want is do, failing the test unless the answer has status code.
func (h *acctClient) want(code int, method, path, token string, body, out any) {
	h.t.Helper()
	got, err := h.do(method, path, token, body, out)
	if err != nil || got != code {
		h.t.Fatalf("%s %s: HTTP %d (%v), want %d", method, path, got, err, code)
	}
}

// form posts a form to the token endpoint and returns the status.
func (h *acctClient) form(path string, v url.Values, out any) int {
	h.t.Helper()
	resp, err := h.hc.Post(h.base+path, "application/x-www-form-urlencoded", strings.NewReader(v.Encode()))
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	if out != nil && resp.StatusCode == 200 {
		_ = json.NewDecoder(resp.Body).Decode(out)
	}
	return resp.StatusCode
}

// mailpitClient reads what the SMTP server of the test command received.
type mailpitClient struct {
	t    *testing.T
	base string
}

// link waits for a mail to addr with a link to prefix#<secret> and
// returns the secret.
func (m *mailpitClient) link(addr, prefix string) string {
	m.t.Helper()
	re := regexp.MustCompile(regexp.QuoteMeta(prefix) + `#([A-Za-z0-9_-]+)`)
	var secret string
	eventually.Nil(m.t, 30*time.Second, func() error {
		var list struct{ Messages []struct{ ID string } }
		if err := m.get("/api/v1/search?query="+url.QueryEscape(`to:"`+addr+`"`), &list); err != nil {
			return err
		}
		for _, s := range list.Messages {
			var msg struct{ Text string }
			if err := m.get("/api/v1/message/"+url.PathEscape(s.ID), &msg); err != nil {
				return err
			}
			if g := re.FindStringSubmatch(msg.Text); g != nil {
				secret = g[1]
				return nil
			}
		}
		return fmt.Errorf("no mail to %s with a link to %s among %d", addr, prefix, len(list.Messages))
	})
	return secret
}

func (m *mailpitClient) get(path string, out any) error {
	resp, err := http.Get(m.base + path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("mailpit %s: %s", path, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(out)
}
