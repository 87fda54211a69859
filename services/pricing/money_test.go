package pricing

import (
	"math"
	"testing"

	"github.com/ticketing/ticketing/internal/errs"
)

func TestMoneyString(t *testing.T) {
	for _, tc := range []struct {
		m    Money
		want string
	}{
		{Money{18900, "USD"}, "$189.00"},
		{Money{1250, "EUR"}, "€12.50"},
		{Money{5, "USD"}, "$0.05"},
		{Money{0, "GBP"}, "£0.00"},
		{Money{-305, "GBP"}, "-£3.05"},
		{Money{123456789, "USD"}, "$1,234,567.89"},
		{Money{1200, "JPY"}, "¥1,200"},
		{Money{7, "JPY"}, "¥7"},
		{Money{1234, "KWD"}, "KWD 1.234"},
		{Money{125000, "CHF"}, "CHF 1,250.00"},
		{Money{100000, "CLF"}, "CLF 10.0000"},
		{Money{math.MinInt64, "USD"}, "-$92,233,720,368,547,758.08"},
		{Money{math.MaxInt64, "JPY"}, "¥9,223,372,036,854,775,807"},
	} {
		if got := tc.m.String(); got != tc.want {
			t.Errorf("%+v: %q, want %q", tc.m, got, tc.want)
		}
	}
}

func TestMoneyArithmetic(t *testing.T) {
	a, b := Money{150, "EUR"}, Money{-50, "EUR"}
	if s, err := a.Add(b); err != nil || s != (Money{100, "EUR"}) {
		t.Fatalf("Add = %v, %v", s, err)
	}
	if _, err := a.Add(Money{1, "USD"}); !errs.Is(errs.Invalid, err) {
		t.Fatalf("Add of another currency: %v", err)
	}
	if _, err := (Money{math.MaxInt64, "EUR"}).Add(Money{1, "EUR"}); !errs.Is(errs.Invalid, err) {
		t.Fatalf("Add overflowing: %v", err)
	}
	if _, err := (Money{math.MinInt64, "EUR"}).Add(Money{-1, "EUR"}); !errs.Is(errs.Invalid, err) {
		t.Fatalf("Add underflowing: %v", err)
	}
	for _, tc := range []struct {
		a, b Money
		want int
	}{{a, b, 1}, {b, a, -1}, {a, a, 0}} {
		if got, err := tc.a.Compare(tc.b); err != nil || got != tc.want {
			t.Errorf("Compare(%v, %v) = %d, %v", tc.a, tc.b, got, err)
		}
	}
	if _, err := a.Compare(Money{1, "USD"}); !errs.Is(errs.Invalid, err) {
		t.Fatalf("Compare of another currency: %v", err)
	}
	if (Money{1, "usd"}).Validate() == nil || (Money{1, "USD"}).Validate() != nil {
		t.Fatal("Validate")
	}
}

func TestExponent(t *testing.T) {
	for c, want := range map[string]int{"USD": 2, "EUR": 2, "JPY": 0, "KRW": 0, "KWD": 3, "XYZ": 2} {
		if got := Exponent(c); got != want {
			t.Errorf("Exponent(%s) = %d, want %d", c, got, want)
		}
	}
}

func TestDivRound(t *testing.T) {
	for _, tc := range []struct{ n, d, want int64 }{
		{0, 7, 0}, {10, 4, 2}, {14, 4, 4}, {6, 4, 2}, {5, 2, 2}, {7, 2, 4}, {9, 2, 4}, {11, 10, 1}, {16, 10, 2},
		{15, 10, 2}, {25, 10, 2}, {35, 10, 4},
	} {
		if got := divRound(tc.n, tc.d); got != tc.want {
			t.Errorf("divRound(%d, %d) = %d, want %d", tc.n, tc.d, got, tc.want)
		}
	}
}

func TestFormat(t *testing.T) {
	for bp, want := range map[int]string{2000: "20%", 1250: "12.5%", 5: "0.05%", 0: "0%", 10000: "100%", 1: "0.01%"} {
		if got := formatBP(bp); got != want {
			t.Errorf("formatBP(%d) = %q, want %q", bp, got, want)
		}
	}
	for bp, want := range map[int]string{12500: "x1.25", 10000: "x1", 9000: "x0.9", 13750: "x1.375", 1: "x0.0001"} {
		if got := formatMult(bp); got != want {
			t.Errorf("formatMult(%d) = %q, want %q", bp, got, want)
		}
	}
}
