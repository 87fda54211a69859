package psp_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/net/html"

	"github.com/ticketing/ticketing/services/payment"
)

// browser opens challenge pages and presses their buttons as a browser
// does: it reads the form, posts the button's name and value to the
// form's action, and follows the redirect to the return URL.
type browser struct {
	t      *testing.T
	client *http.Client
}

func newBrowser(t *testing.T) *browser {
	return &browser{t: t, client: &http.Client{}}
}

// press opens page and presses the button labelled label; it returns the
// URL the browser ends on and its status.
func (b *browser) press(page, label string) (*url.URL, int) {
	b.t.Helper()
	resp, err := b.client.Get(page)
	if err != nil {
		b.t.Fatal(err)
	}
	doc, err := html.Parse(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		b.t.Fatalf("challenge page: %d %v", resp.StatusCode, err)
	}
	var action, method, name, value string
	var walk func(n *html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode {
			switch n.Data {
			case "form":
				action, method = attr(n, "action"), attr(n, "method")
			case "button":
				if n.FirstChild != nil && strings.TrimSpace(n.FirstChild.Data) == label {
					name, value = attr(n, "name"), attr(n, "value")
				}
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	if action == "" || !strings.EqualFold(method, "post") || name == "" {
		b.t.Fatalf("no form with a %q button: action %q method %q", label, action, method)
	}
	base, _ := url.Parse(page)
	target := base.ResolveReference(&url.URL{Path: action})
	resp, err = b.client.PostForm(target.String(), url.Values{name: {value}})
	if err != nil {
		b.t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.Request.URL, resp.StatusCode
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

func TestThreeDSecure(t *testing.T) {
	s := startSim(t)
	shop := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	t.Cleanup(shop.Close)
	cases := []struct {
		number, button string
		manual         bool
		redirect       string
		want           payment.IntentStatus
		code           string
	}{
		{"4000002760003184", "Complete", false, "succeeded", payment.Succeeded, ""},
		{"4000000000003220", "Complete", false, "succeeded", payment.Succeeded, ""},
		{"4000000000003220", "Complete", true, "succeeded", payment.RequiresCapture, ""},
		{"4000008400001629", "Complete", false, "failed", payment.RequiresPaymentMethod, "card_declined"},
		{"4000000000003220", "Fail", false, "failed", payment.RequiresPaymentMethod, "payment_intent_authentication_failure"},
	}
	for _, c := range cases {
		t.Run(c.number+"/"+c.button, func(t *testing.T) {
			ctx := t.Context()
			in, err := s.gw.CreateIntent(ctx, payment.IntentRequest{Amount: 999, Currency: "eur", OrderID: "o", CaptureManual: c.manual, IdempotencyKey: t.Name()})
			if err != nil {
				t.Fatal(err)
			}
			in, err = s.gw.ConfirmIntent(ctx, in.ID, payment.ConfirmRequest{Card: card(c.number), ReturnURL: shop.URL + "/back?cart=7", IdempotencyKey: t.Name() + "c"})
			if err != nil || in.Status != payment.RequiresAction {
				t.Fatalf("%+v %v", in, err)
			}
			b := newBrowser(t)
			end, code := b.press(in.RedirectURL, c.button)
			q := end.Query()
			if code != 200 || end.Host != strings.TrimPrefix(shop.URL, "http://") || end.Path != "/back" || q.Get("cart") != "7" ||
				q.Get("payment_intent") != in.ID || q.Get("redirect_status") != c.redirect {
				t.Fatalf("ended on %s (%d)", end, code)
			}
			got, err := s.gw.GetIntent(ctx, in.ID)
			if err != nil || got.Status != c.want || got.RedirectURL != "" {
				t.Fatalf("after the challenge: %+v %v", got, err)
			}
			if c.code != "" && (got.LastError == nil || got.LastError.Code != c.code) {
				t.Errorf("last error %+v, want %s", got.LastError, c.code)
			}
			// Posting the answer again redirects the same way and changes nothing.
			resp, err := b.client.PostForm(in.RedirectURL, url.Values{"result": {"fail"}})
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if q := resp.Request.URL.Query(); q.Get("redirect_status") != c.redirect {
				t.Errorf("second answer ended on %s", resp.Request.URL)
			}
			if again, _ := s.gw.GetIntent(ctx, in.ID); again.Status != c.want {
				t.Errorf("the second answer changed the intent: %s", again.Status)
			}
		})
	}
}

// TestChallengeOfAReconfirmedIntent: confirming again makes the old
// challenge page invalid.
func TestChallengeOfAReconfirmedIntent(t *testing.T) {
	s := startSim(t)
	in := s.pay("o1", 100, false, "4000000000003220")
	old := in.RedirectURL
	in2, err := s.gw.ConfirmIntent(t.Context(), in.ID, payment.ConfirmRequest{Card: card("4000002760003184"), IdempotencyKey: "again"})
	if err != nil || in2.RedirectURL == old || in2.Status != payment.RequiresAction {
		t.Fatalf("%+v %v", in2, err)
	}
	for _, do := range []func() (*http.Response, error){
		func() (*http.Response, error) { return http.Get(old) },
		func() (*http.Response, error) { return http.PostForm(old, url.Values{"result": {"complete"}}) },
	} {
		resp, err := do()
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusGone {
			t.Errorf("old challenge: %d", resp.StatusCode)
		}
	}
	resp, err := http.Get(s.ts.URL + "/3ds/0123")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("unknown challenge: %d", resp.StatusCode)
	}
	// The new one works; without a return URL the page says so.
	end, code := newBrowser(t).press(in2.RedirectURL, "Complete")
	if code != 200 || !strings.HasPrefix(end.String(), s.ts.URL+"/3ds/") {
		t.Errorf("ended on %s (%d)", end, code)
	}
	if got, _ := s.gw.GetIntent(t.Context(), in.ID); got.Status != payment.Succeeded {
		t.Errorf("status %s", got.Status)
	}
}
