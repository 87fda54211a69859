package identity_test

import (
	"strings"
	"testing"
	"time"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/services/identity"
)

func TestNormalizeEmail(t *testing.T) {
	for in, want := range map[string]string{
		"a@example.com":                  "a@example.com",
		"  Ada.Lovelace+tix@Example.COM": "ada.lovelace+tix@example.com",
		"o'brien@sub.example.co.uk":      "o'brien@sub.example.co.uk",
	} {
		got, err := identity.NormalizeEmail(in)
		if err != nil || got != want {
			t.Errorf("NormalizeEmail(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{
		"", "   ", "plain", "@example.com", "a@", "a@@example.com", "a@localhost", "a@[127.0.0.1]",
		"Ada <a@example.com>", "a@example.com (comment)", "\"a b\"@example.com", "a\tb@example.com",
		"ü@example.com", strings.Repeat("a", 65) + "@example.com", "a@" + strings.Repeat("b", 250) + ".com",
	} {
		if got, err := identity.NormalizeEmail(in); !errs.Is(errs.Invalid, err) {
			t.Errorf("NormalizeEmail(%q) = %q, %v; want invalid", in, got, err)
		}
	}
}

func TestNormalize(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 6789, time.FixedZone("X", -5*3600))
	u, err := identity.Normalize(identity.User{ID: "u_1", Email: " A@Example.com", DisplayName: " Ada ", CreatedAt: at})
	if err != nil {
		t.Fatal(err)
	}
	if u.Email != "a@example.com" || u.DisplayName != "Ada" || u.CreatedAt.Location() != time.UTC ||
		!u.CreatedAt.Equal(at.Truncate(time.Microsecond)) {
		t.Fatalf("Normalize = %+v", u)
	}
	if id := identity.NewID(); !identity.ValidID(id) || len(id) != 28 {
		t.Fatalf("NewID = %q", id)
	}
}
