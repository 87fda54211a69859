package main

import (
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/ticketing/ticketing/internal/chromiumtest"
	"github.com/ticketing/ticketing/internal/eventually"
	"github.com/ticketing/ticketing/services/catalog"
)

// TestWaitingRoomPageInBrowser drives the waiting-room page in headless
// Chromium (Debian's chromium, installed by `make test`; the test fails
// without it) against a real core process and a real edge: the page joins
// an event whose waiting room is on before its sale starts and shows the
// pre-queue; a session that joins from another client is in the same line;
// at the sale the draw places everyone and the core's controller admits
// from the inventory; the page hands off to the select page with its
// admission token in sessionStorage, and a hold there with the token
// succeeds, once: the token is single use, and the page, having spent it,
// is refused a second hold.
func TestWaitingRoomPageInBrowser(t *testing.T) {
	cores := newCores(t, 1)
	cores[0].start()
	cores[0].waitReady(60 * time.Second)
	e := startEdge(t, cores)
	a := newAPI(t, e)
	const event = "page-sale"
	onSale := time.Now().Add(8 * time.Second)
	a.createQueueEvent(event, onSale)
	ctx := chromiumtest.New(t, 3*time.Minute)

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

	if err := chromedp.Do(ctx, chromedp.Navigate(e.URL()+"/queue/"+event)); err != nil {
		t.Fatal(err)
	}
	// Before the sale: waiting in the pre-queue (unless the sale started
	// while the browser was starting).
	if time.Now().Before(onSale.Add(-2 * time.Second)) {
		if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS(`#state[data-state="pre_queue"]`))); err != nil {
			t.Fatalf("pre-queue not shown: %v", err)
		}
	}
	// At the sale the page is placed and admitted; it hands off by itself.
	if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS(`body[data-page="select"] #token-state[data-token="present"]`))); err != nil {
		state, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("body")))
		t.Fatalf("no hand-off to the select page: %v; page: %q", err, state)
	}
	loc, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil || loc != e.URL()+"/events/"+event+"/select" {
		t.Fatalf("after admission the page is at %q (%v)", loc, err)
	}
	tok, err := chromedp.Run(ctx, chromedp.Evaluate[string](`JSON.parse(sessionStorage.getItem("tq_admission:`+event+`")).token`))
	if err != nil || strings.Count(tok, ".") != 2 {
		t.Fatalf("admission token in sessionStorage: %q %v", tok, err)
	}

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
	// The admission was spent: the page holds no token any more, and the
	// edge refuses a hold without one on a queue-on event.
	t.Logf("second hold: %s", hold("refused"))
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
	auth := map[string]string{"Authorization": "Bearer " + testAdminToken}
	if code, err := a.do("POST", "/v1/admin/venues", auth, v, nil); err != nil || code != 201 {
		a.t.Fatalf("create venue: %d %v", code, err)
	}
	ev := map[string]any{"id": id, "name": "Event " + id, "venue_id": v.ID, "queue": true,
		"on_sale_at": onSale.UTC().Format(time.RFC3339Nano), "starts_at": time.Now().Add(30 * 24 * time.Hour).UTC().Format(time.RFC3339)}
	if code, err := a.do("POST", "/v1/admin/events", auth, ev, nil); err != nil || code != 201 {
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
