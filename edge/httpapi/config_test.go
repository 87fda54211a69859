package httpapi

import "testing"

// The public and payment URLs are http(s) URLs with a host, nothing after
// the path: the payment URL's origin goes into the checkout page's CSP.
func TestConfigValidateURLs(t *testing.T) {
	for _, tc := range []struct {
		public, payment string
		ok              bool
	}{
		{"", "", true},
		{"https://tickets.example", "https://pay.example", true},
		{"http://localhost:8080", "http://localhost:8081/", true},
		{"", "https://pay.example/prefix", true},
		{"tickets.example", "", false},
		{"", "javascript:alert(1)", false},
		{"", "https://pay.example/?x=1", false},
		{"", "https://user@pay.example", false},
		{"", "https://pay.example/#card", false},
		{"", "ftp://pay.example", false},
		{"", "https://", false},
	} {
		c := Config{PublicURL: tc.public, PaymentURL: tc.payment}
		if err := c.Validate(); (err == nil) != tc.ok {
			t.Errorf("public %q payment %q: %v, want ok %v", tc.public, tc.payment, err, tc.ok)
		}
	}
}
