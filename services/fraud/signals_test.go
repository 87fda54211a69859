package fraud_test

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/services/fraud"
)

func TestParseAddress(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"192.0.2.1", "192.0.2.1"},
		{"192.0.2.1:443", "192.0.2.1"},
		{"[2001:db8::1]:443", "2001:db8::1"},
		{"[2001:db8::1]", "2001:db8::1"},
		{"2001:db8::1", "2001:db8::1"},
		{"::ffff:192.0.2.1", "192.0.2.1"},
		{"[::ffff:192.0.2.1]:80", "192.0.2.1"},
		{"fe80::1%eth0", "fe80::1"},
		{"[fe80::1%eth0]:80", "fe80::1"},
	} {
		a, err := fraud.ParseAddress(c.in)
		if err != nil || a.String() != c.want {
			t.Errorf("ParseAddress(%q) = %v, %v; want %s", c.in, a, err, c.want)
		}
	}
	for _, in := range []string{"", "localhost", "192.0.2.1:", "192.0.2", "[192.0.2.1", "1.2.3.4:99999", " 192.0.2.1", strings.Repeat("1", 65)} {
		if a, err := fraud.ParseAddress(in); !errs.Is(errs.Invalid, err) {
			t.Errorf("ParseAddress(%q) = %v, %v; want kind %v", in, a, err, errs.Invalid)
		}
	}
}

func TestParseDevice(t *testing.T) {
	for _, in := range []string{"", "abc", "A-z_0.9~+/=", strings.Repeat("x", fraud.MaxDeviceLen)} {
		if got, err := fraud.ParseDevice(in); err != nil || got != in {
			t.Errorf("ParseDevice(%q) = %q, %v", in, got, err)
		}
	}
	for _, in := range []string{"a b", "a;b", "é", "a\x00", strings.Repeat("x", fraud.MaxDeviceLen+1)} {
		if _, err := fraud.ParseDevice(in); !errs.Is(errs.Invalid, err) {
			t.Errorf("ParseDevice(%q): %v, want kind %v", in, err, errs.Invalid)
		}
	}
}

func TestNetwork(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"192.0.2.77", "192.0.2.0/24"},
		{"::ffff:192.0.2.77", "192.0.2.0/24"},
		{"2001:db8:aa:bb:1:2:3:4", "2001:db8:aa:bb::/64"},
	} {
		if got := fraud.Network(netip.MustParseAddr(c.in), 24, 64); got.String() != c.want {
			t.Errorf("Network(%s) = %s, want %s", c.in, got, c.want)
		}
	}
	if got := fraud.Network(netip.Addr{}, 24, 64); got.IsValid() {
		t.Errorf("Network of no address = %s", got)
	}
}
