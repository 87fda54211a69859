package notification_test

import (
	"strings"
	"testing"

	"golang.org/x/text/language"

	"github.com/ticketing/ticketing/services/notification"
	"github.com/ticketing/ticketing/services/pricing"
)

func TestLanguage(t *testing.T) {
	for locale, want := range map[string]language.Tag{
		"": language.English, "en": language.English, "en-GB": language.English, "de": language.German,
		"de-AT": language.German, "de-CH": language.German, "fr": language.English, "not a tag": language.English,
	} {
		if got := notification.Language(locale); got != want {
			t.Errorf("Language(%q) = %v, want %v", locale, got, want)
		}
	}
}

func TestConfirmationRender(t *testing.T) {
	c := notification.Confirmation{Name: "Ada <script>", Order: "o_1", EventName: "Club Night",
		Places: []notification.Place{{Seat: "s-A-5"}, {Zone: "floor", Index: 2}},
		Total:  pricing.Money{Amount: 4550, Currency: "EUR"}, TicketsURL: "https://tickets.example/tickets"}
	for _, tc := range []struct {
		lang    language.Tag
		subject string
		says    []string
	}{
		{language.English, "Your tickets for Club Night", []string{"Hello Ada <script>,", "Your order o_1 for Club Night is confirmed",
			"Seat s-A-5", "General admission, floor (2)", "Total paid: €45.50", "https://tickets.example/tickets"}},
		{language.German, "Ihre Tickets für Club Night", []string{"Hallo Ada <script>,", "Ihre Bestellung o_1 für Club Night ist bestätigt",
			"Platz s-A-5", "Stehplatz, floor (2)", "Bezahlt: €45.50"}},
	} {
		subject, text, html, err := c.Render(tc.lang)
		if err != nil {
			t.Fatal(err)
		}
		if subject != tc.subject {
			t.Errorf("%v subject %q", tc.lang, subject)
		}
		for _, s := range tc.says {
			if !strings.Contains(text, s) {
				t.Errorf("%v text lacks %q:\n%s", tc.lang, s, text)
			}
		}
		if strings.Contains(html, "<script>") || !strings.Contains(html, "Ada &lt;script&gt;") || !strings.Contains(html, `lang="`+tc.lang.String()+`"`) {
			t.Errorf("%v HTML not escaped or without its language:\n%s", tc.lang, html)
		}
	}
}

func TestKey(t *testing.T) {
	a, b := notification.Key("e1", "email", "a@example.com"), notification.Key("e1", "email", "b@example.com")
	if a == b || !notification.ValidKey(a) || notification.Key("e1", "email", "a@example.com") != a {
		t.Fatalf("keys %s, %s", a, b)
	}
}
