package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/cookiejar"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/ticketing/ticketing/edge"
	"github.com/ticketing/ticketing/internal/chromiumtest"
	"github.com/ticketing/ticketing/internal/eventually"
	"github.com/ticketing/ticketing/services/catalog"
	maildir "github.com/ticketing/ticketing/services/mail/dir"
)

// TestWaitingRoomPageInBrowser drives the pages in headless Chromium
// (Debian's chromium, installed by `make test`; the test fails without it)
// against a real core process and a real edge, opened as
// http://localhost:<port>, the core's public URL (WebAuthn binds passkeys
// to that domain). A buyer signs up on the sign-up page, confirms the
// address with the link the core mailed (its mail directory), signs in,
// and adds a passkey (a virtual authenticator). Then the waiting room: the
// page joins an event whose waiting room is on before its sale starts and
// shows the pre-queue; a session that joins from another client is in the
// same line; at the sale the draw places everyone and the core's
// controller admits from the inventory; the page hands off to the select
// page with its admission token in sessionStorage, and a hold there with
// the token and the cookie session succeeds, once: the token is single
// use, and the page, having spent it, is refused a second hold. The hold
// is the buyer's: its session reads it, nobody else does. Last, the buyer
// signs out and back in with the passkey alone.
func TestWaitingRoomPageInBrowser(t *testing.T) {
	edgeAddr := freeAddr(t)
	_, port, _ := net.SplitHostPort(edgeAddr)
	site := "http://localhost:" + port
	cores := newCores(t, 1, "--public-url", site, "--demo")
	cores[0].start()
	cores[0].waitReady(60 * time.Second)
	e := startEdgeOn(t, cores, "edge-test", edgeAddr, edge.RateLimitConfig{Disabled: true})
	a := newAPI(t, e)
	ctx := chromiumtest.New(t, 3*time.Minute)
	authenticator := chromiumtest.VirtualAuthenticator(t, ctx)

	// Signed out, the waiting room offers a sign-in that comes back to it
	// (a demo event's room).
	browse(t, ctx, "the waiting room signed out",
		chromedp.Navigate(site+"/queue/arena-onsale"),
		chromedp.WaitVisible(chromedp.CSS(`#account-bar[data-state="signed-out"]`)),
	)
	// The hint's link, read as soon as the hint shows: the room is on
	// sale, and its admission hands the page off to the select page soon
	// after (a later read could find another page).
	hctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	href, err := chromedp.Run(hctx, chromedp.Poll[string](`(() => {
		const hint = document.getElementById("signin-hint"), a = document.getElementById("signin-hint-link");
		return hint && !hint.hidden && a ? a.getAttribute("href") : null;
	})()`))
	cancel()
	if err != nil || href != "/signin?next=%2Fqueue%2Farena-onsale" {
		t.Errorf("the waiting room's sign-in link: %q %v", href, err)
	}

	// Sign up, confirm, sign in. The room above is on sale, so its page
	// is soon admitted and hands off to the select page by itself, a
	// navigation that may overtake the sign-up page's.
	email, _ := signUpInBrowser(t, ctx, site, cores[0])
	browse(t, ctx, "add a passkey",
		fill("#passkey-name", "Virtual"),
		click("#passkey-add"),
		chromedp.WaitVisible(chromedp.CSS(`#passkeys li[data-passkey]`)),
	)
	if creds := chromiumtest.Credentials(t, ctx, authenticator); len(creds) != 1 || creds[0].RpID != "localhost" {
		t.Fatalf("the authenticator holds %+v", creds)
	}

	const event = "page-sale"
	onSale := time.Now().Add(8 * time.Second)
	a.createQueueEvent(event, onSale)

	// Another client in line before the sale, over the JSON join.
	jar, _ := cookiejar.New(nil)
	other := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	resp, err := other.Post(e.URL()+"/v1/events/"+event+"/queue/join", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("join of another client: HTTP %d", resp.StatusCode)
	}

	browse(t, ctx, "open the waiting room", chromedp.Navigate(site+"/queue/"+event))
	// Before the sale: waiting in the pre-queue (unless the sale started
	// while the browser was starting).
	if time.Now().Before(onSale.Add(-2 * time.Second)) {
		browse(t, ctx, "the pre-queue", chromedp.WaitVisible(chromedp.CSS(`#state[data-state="pre_queue"]`)))
	}
	// At the sale the page is placed and admitted; it hands off by itself.
	browse(t, ctx, "the hand-off to the select page", chromedp.WaitVisible(chromedp.CSS(`body[data-page="select"] #token-state[data-token="present"]`)))
	loc, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil || loc != site+"/events/"+event+"/select" {
		t.Fatalf("after admission the page is at %q (%v)", loc, err)
	}
	tok, err := chromedp.Run(ctx, chromedp.Evaluate[string](`JSON.parse(sessionStorage.getItem("tq_admission:`+event+`")).token`))
	if err != nil || strings.Count(tok, ".") != 2 {
		t.Fatalf("admission token in sessionStorage: %q %v", tok, err)
	}
	browse(t, ctx, "signed in on the select page", chromedp.WaitVisible(chromedp.CSS(`#account-bar[data-state="signed-in"]`)))

	hold := func(want string) string {
		t.Helper()
		if err := chromedp.Do(ctx,
			chromedp.WaitVisible(chromedp.CSS(`li[data-zone="ga"] button.hold`)),
			chromedp.Click(chromedp.CSS(`li[data-zone="ga"] button.hold`)),
			chromedp.WaitVisible(chromedp.CSS(`#hold-result[data-status="`+want+`"]`)),
		); err != nil {
			res, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#hold-result")))
			t.Fatalf("hold (want %s): %v; page says %q", want, err, res)
		}
		res, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#hold-result")))
		return res
	}
	t.Logf("first hold: %s", hold("held"))
	av, err := a.availability(event)
	if err != nil {
		t.Fatal(err)
	}
	for _, z := range av.Zones {
		if z.ID == "ga" && z.Held != 1 {
			t.Fatalf("GA held %d after the page's hold, want 1", z.Held)
		}
	}
	// The hold is the buyer's: their session reads it; an anonymous
	// caller may not.
	holdID, err := chromedp.Run(ctx, chromedp.Evaluate[string](`JSON.parse(sessionStorage.getItem("tq_hold:`+event+`")).hold_id`))
	if err != nil || holdID == "" {
		t.Fatalf("hold id in sessionStorage: %q %v", holdID, err)
	}
	status, err := chromedp.Run(ctx, chromedp.Evaluate[int](`tk.call("GET", "/v1/holds/`+holdID+`").then((r) => r.status)`, chromedp.EvalAwaitPromise))
	if err != nil || status != 200 {
		t.Errorf("the buyer reads their hold: HTTP %d %v", status, err)
	}
	if code, err := a.do("GET", "/v1/holds/"+holdID, nil, nil, nil); err != nil || code != http.StatusUnauthorized {
		t.Errorf("an anonymous caller reads the hold: HTTP %d %v", code, err)
	}
	// The admission was spent: the page holds no token any more, and the
	// edge refuses a hold without one on a queue-on event; the page sends
	// the buyer back to the waiting room (not to the sign-in: they are
	// signed in).
	if res := hold("refused"); !strings.Contains(res, "Join the waiting room again") {
		t.Errorf("second hold: the page says %q", res)
	}

	browse(t, ctx, "sign out, and in with the passkey",
		chromedp.Navigate(site+"/account"),
		click("#signout"),
		at("/signin"),
		click("#passkey-button"),
		at("/account"),
		chromedp.WaitVisible(chromedp.CSS(`#account-state[data-state="ready"]`)),
	)
	if got, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#profile-email"))); got != email {
		t.Errorf("signed in with the passkey as %q", got)
	}
}

// signUpInBrowser signs up a fresh account on the sign-up page, confirms
// its address with the link core c mailed, and signs in; the browser is
// left on the account page. It returns the account's e-mail address and
// password.
func signUpInBrowser(t *testing.T, ctx context.Context, site string, c *coreProc) (email, password string) {
	t.Helper()
	email = fmt.Sprintf("page-buyer-%d@example.com", time.Now().UnixNano())
	password = "page buyer password"
	browse(t, ctx, "sign up",
		navigate(site+"/signup"),
		fill("#email", email, "#password", password),
		click(`#signup-form button[type="submit"]`),
		chromedp.WaitVisible(chromedp.CSS("#done")),
	)
	link := mailedLink(t, filepath.Join(c.dir, "mail"), email, regexp.MustCompile(regexp.QuoteMeta(site)+`(/verify#[A-Za-z0-9_-]+)`))
	browse(t, ctx, "confirm the address and sign in",
		chromedp.Navigate(site+link),
		chromedp.WaitVisible(chromedp.CSS(`#verify-state[data-state="verified"]`)),
		chromedp.Navigate(site+"/signin?next=%2Faccount"),
		fill("#email", email, "#password", password),
		click(`#signin-form button[type="submit"]`),
		at("/account"),
		chromedp.WaitVisible(chromedp.CSS(`#account-state[data-state="ready"]`)),
	)
	return email, password
}

// mailedLink waits for a mail to addr in the core's mail directory whose
// text matches re, and returns re's first group.
func mailedLink(t *testing.T, dir, addr string, re *regexp.Regexp) string {
	t.Helper()
	box, err := maildir.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	var link string
	eventually.True(t, 30*time.Second, "a mail to "+addr, func() bool {
		list, err := box.List()
		if err != nil {
			return false
		}
		for _, e := range list {
			if len(e.Message.To) == 1 && e.Message.To[0] == addr {
				if m := re.FindStringSubmatch(e.Message.Text); m != nil {
					link = m[1]
					return true
				}
			}
		}
		return false
	})
	return link
}

// browse runs browser actions within a step's deadline and, on failure,
// reports what the page shows.
func browse(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := chromedp.Do(sctx, steps...); err != nil {
		loc, _ := chromedp.Run(ctx, chromedp.Location())
		body, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
		t.Fatalf("%s: %v\nat %s the page shows:\n%s", what, err, loc, body)
	}
}

// navigate opens url and waits until the page is there, loaded; it opens
// url again when a navigation the previous page started overtook it.
func navigate(url string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		for {
			if _, err := chromedp.Navigate(url)(ctx, t); err != nil {
				return err
			}
			// A navigation under way ends the poll with an error: poll the
			// page it brings.
			href, err := chromedp.Poll[string](`document.readyState === "complete" && location.href`)(ctx, t)
			for err != nil && ctx.Err() == nil {
				href, err = chromedp.Poll[string](`document.readyState === "complete" && location.href`)(ctx, t)
			}
			if err != nil || href == url {
				return err
			}
		}
	})
}

// fill sets form fields (selector, value pairs).
func fill(pairs ...string) chromedp.Action[chromedp.Void] {
	var steps []chromedp.Action[chromedp.Void]
	for i := 0; i+1 < len(pairs); i += 2 {
		steps = append(steps, chromedp.WaitVisible(chromedp.CSS(pairs[i])), chromedp.SetValue(chromedp.CSS(pairs[i]), pairs[i+1]))
	}
	return chromedp.Steps(steps...)
}

func click(sel string) chromedp.Action[chromedp.Void] {
	return chromedp.Steps(chromedp.WaitVisible(chromedp.CSS(sel)), chromedp.Click(chromedp.CSS(sel)))
}

// at waits until the page's path is path, through the navigations on the
// way (each ends a poll of the page it started on).
func at(path string) chromedp.Action[chromedp.Void] {
	js, _ := json.Marshal(path)
	wait := chromedp.Poll[bool](`location.pathname === ` + string(js) + ` && document.readyState === "complete"`)
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		for {
			_, err := wait(ctx, t)
			if err == nil || ctx.Err() != nil {
				return err
			}
		}
	})
}

// createQueueEvent creates a venue with 40 reserved seats and a GA zone of
// 100, and an event at it with its waiting room on, on sale at onSale.
func (a *api) createQueueEvent(id string, onSale time.Time) {
	a.t.Helper()
	a.createQueueEventSized(id, onSale, 2, 100)
}

// createQueueEventSized creates a venue with rows of 20 reserved seats
// (zone "std", section "s0", rows "r0", "r1", …) and a GA zone "ga" of
// gaCap, and an event at it with its waiting room on, on sale at onSale.
func (a *api) createQueueEventSized(id string, onSale time.Time, rows, gaCap int) {
	a.t.Helper()
	v := catalog.Venue{ID: id + "-venue", Name: "Venue " + id, City: "Testville",
		Zones: []catalog.Zone{{ID: "std", Name: "Standard", Kind: catalog.Reserved, PriceCents: 5000, Currency: "USD"},
			{ID: "ga", Name: "Floor", Kind: catalog.GA, Capacity: gaCap, PriceCents: 3000, Currency: "USD"}},
		Sections: []catalog.Section{{ID: "s0", Name: "Section 0"}}}
	for r := 0; r < rows; r++ {
		v.Sections[0].Rows = append(v.Sections[0].Rows, catalog.Row{ID: fmt.Sprintf("r%d", r), Seats: 20, Zone: "std"})
	}
	adm := a.asAdmin()
	var out json.RawMessage
	if code, err := adm.do("POST", "/v1/admin/venues", nil, v, &out); err != nil || code != 201 {
		a.t.Fatalf("create venue: %d %v %s", code, err, out)
	}
	ev := map[string]any{"id": id, "name": "Event " + id, "venue_id": v.ID, "queue": true,
		"on_sale_at": onSale.UTC().Format(time.RFC3339Nano), "starts_at": time.Now().Add(30 * 24 * time.Hour).UTC().Format(time.RFC3339)}
	if code, err := adm.do("POST", "/v1/admin/events", nil, ev, nil); err != nil || code != 201 {
		a.t.Fatalf("create event: %d %v", code, err)
	}
	eventually.Nil(a.t, 30*time.Second, func() error {
		if _, err := a.availability(id); err != nil {
			return err
		}
		code, err := a.do("GET", "/queue/"+id, nil, nil, nil)
		if err == nil && code != 200 {
			err = fmt.Errorf("GET /queue/%s: HTTP %d", id, code)
		}
		return err
	})
}
