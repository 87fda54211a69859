package pow_test

import (
	"strings"
	"testing"
	"time"

	"github.com/ticketing/ticketing/internal/pow"
)

func TestIssueVerify(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	p := pow.Issuer{Secret: []byte("0123456789abcdef0123456789abcdef"), TTL: time.Minute}
	ch := p.Issue(6, now, "signin:a@example.com")
	if len(ch) != pow.ChallengeLen {
		t.Fatalf("challenge length %d", len(ch))
	}
	sol := pow.Solve(ch, 6)
	got, err := p.Verify(sol, now, "signin:a@example.com")
	if err != nil || got.Difficulty != 6 || got.Expiry != now.Add(time.Minute).Unix() {
		t.Fatalf("verify: %+v %v", got, err)
	}
	for name, f := range map[string]func() error{
		"other binding": func() error { _, err := p.Verify(sol, now, "signin:b@example.com"); return err },
		"other secret": func() error {
			_, err := pow.Issuer{Secret: []byte("another secret of thirty-two bytes!"), TTL: time.Minute}.Verify(sol, now, "signin:a@example.com")
			return err
		},
		"expired":  func() error { _, err := p.Verify(sol, now.Add(time.Minute), "signin:a@example.com"); return err },
		"unsolved": func() error { _, err := p.Verify(unsolved(ch, 6), now, "signin:a@example.com"); return err },
		"garbage": func() error {
			_, err := p.Verify(strings.Repeat("A", pow.ChallengeLen)+".1", now, "signin:a@example.com")
			return err
		},
	} {
		if f() == nil {
			t.Errorf("%s: verified", name)
		}
	}
}

// unsolved is a syntactically good solution of ch that does not reach
// the difficulty.
func unsolved(ch string, difficulty int) string {
	for n := 0; ; n++ {
		s := ch + "." + strings.Repeat("x", 1+n%5) + string(rune('a'+n%26))
		if pow.LeadingZeroBits(s) < difficulty {
			return s
		}
	}
}
