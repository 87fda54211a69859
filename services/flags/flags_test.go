package flags_test

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/services/flags"
)

const salesFlag = `{
  "key": "sales.enabled", "enabled": true,
  "variants": {"on": true, "off": false}, "default_variant": "on",
  "rules": [
    {"name": "pause org-x", "organizers": ["org-x"], "variant": "off"},
    {"name": "app in eu", "regions": ["edge-eu"], "channels": ["app"], "variant": "off"},
    {"name": "beta accounts", "accounts": ["acct-7"], "variant": "on"},
    {"name": "half of arena", "events": ["arena"], "rollout": [{"variant": "on", "weight": 50}, {"variant": "off", "weight": 50}]}
  ]
}`

func mustDecode(t testing.TB, s string) flags.Definition {
	t.Helper()
	d, err := flags.Decode([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestDecodeRefusesBadDefinitions(t *testing.T) {
	for _, c := range []struct{ name, json, want string }{
		{"not JSON", `{`, "malformed"},
		{"unknown field", `{"key":"a","enabled":true,"variants":{"on":true},"default_variant":"on","percent":5}`, "unknown field"},
		{"trailing data", `{"key":"a","variants":{"on":true},"default_variant":"on"} {}`, "after the object"},
		{"bad key", `{"key":"A B","variants":{"on":true},"default_variant":"on"}`, "flag key"},
		{"key with empty part", `{"key":"a..b","variants":{"on":true},"default_variant":"on"}`, "flag key"},
		{"no variants", `{"key":"a","variants":{},"default_variant":"on"}`, "1-16 variants"},
		{"mixed types", `{"key":"a","variants":{"on":true,"x":"s"},"default_variant":"on"}`, "one type"},
		{"null variant", `{"key":"a","variants":{"on":null},"default_variant":"on"}`, "boolean, a string"},
		{"unknown default", `{"key":"a","variants":{"on":true},"default_variant":"off"}`, "default_variant"},
		{"rule without outcome", `{"key":"a","variants":{"on":true},"default_variant":"on","rules":[{"events":["e"]}]}`, "either a variant or a rollout"},
		{"rule with both", `{"key":"a","variants":{"on":true},"default_variant":"on","rules":[{"variant":"on","rollout":[{"variant":"on","weight":1}]}]}`, "either"},
		{"rule names unknown variant", `{"key":"a","variants":{"on":true},"default_variant":"on","rules":[{"variant":"off"}]}`, "not one of the variants"},
		{"rollout of nothing", `{"key":"a","variants":{"on":true},"default_variant":"on","rollout":[{"variant":"on","weight":0}]}`, "add up to 0"},
		{"negative weight", `{"key":"a","variants":{"on":true,"off":false},"default_variant":"on","rollout":[{"variant":"on","weight":-1},{"variant":"off","weight":2}]}`, "weight"},
		{"control character", `{"key":"a","variants":{"on":true},"default_variant":"on","rules":[{"events":["a\u0000"],"variant":"on"}]}`, "printable"},
		{"empty value", `{"key":"a","variants":{"on":true},"default_variant":"on","rules":[{"events":[""],"variant":"on"}]}`, "printable"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := flags.Decode([]byte(c.json))
			if !errs.Is(errs.Invalid, err) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Decode = %v, want an invalid error mentioning %q", err, c.want)
			}
		})
	}
	if _, err := flags.Decode([]byte(strings.Repeat(" ", flags.MaxSize+1))); !errs.Is(errs.Invalid, err) {
		t.Fatalf("oversized: %v", err)
	}
}

func TestTargeting(t *testing.T) {
	d := mustDecode(t, salesFlag)
	for _, c := range []struct {
		name    string
		ctx     flags.Context
		variant string
		reason  flags.Reason
		rule    int
	}{
		{"nothing matches: the default", flags.Context{Event: "club", Region: "edge-us", Channel: "web"}, "on", flags.ReasonDefault, -1},
		{"organizer paused", flags.Context{Organizer: "org-x", Event: "club"}, "off", flags.ReasonTargetingMatch, 0},
		{"region and channel both hold", flags.Context{Region: "edge-eu", Channel: "app"}, "off", flags.ReasonTargetingMatch, 1},
		{"region alone is not enough", flags.Context{Region: "edge-eu", Channel: "web"}, "on", flags.ReasonDefault, -1},
		{"an account", flags.Context{TargetingKey: "acct-7", Event: "arena"}, "on", flags.ReasonTargetingMatch, 2},
		{"first rule wins", flags.Context{Organizer: "org-x", TargetingKey: "acct-7"}, "off", flags.ReasonTargetingMatch, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			r, err := d.Evaluate(c.ctx)
			if err != nil || r.Variant != c.variant || r.Reason != c.reason || r.Rule != c.rule {
				t.Fatalf("Evaluate = %+v, %v; want variant %s reason %s rule %d", r, err, c.variant, c.reason, c.rule)
			}
		})
	}
	// A rollout rule: the account's point decides; without an account the
	// evaluation fails (the caller gets its default).
	r, err := d.Evaluate(flags.Context{Event: "arena", TargetingKey: "acct-1"})
	if err != nil || r.Reason != flags.ReasonSplit || r.Rule != 3 {
		t.Fatalf("rollout rule: %+v %v", r, err)
	}
	if _, err := d.Evaluate(flags.Context{Event: "arena"}); err != flags.ErrTargetingKeyMissing {
		t.Fatalf("rollout without a targeting key: %v", err)
	}
	d.Enabled = false
	if r, err := d.Evaluate(flags.Context{Organizer: "org-x"}); err != nil || r.Reason != flags.ReasonDisabled || r.Value != nil {
		t.Fatalf("disabled flag: %+v %v", r, err)
	}
}

// rollout is a boolean flag rolled out to pct percent of the accounts.
func rollout(t testing.TB, key string, pct int) flags.Definition {
	return mustDecode(t, fmt.Sprintf(`{"key":%q,"enabled":true,"variants":{"on":true,"off":false},"default_variant":"off",
		"rollout":[{"variant":"on","weight":%d},{"variant":"off","weight":%d}]}`, key, pct, 100-pct))
}

const accounts = 100_000

func account(i int) string { return fmt.Sprintf("acct-%07d", i) }

func on(t testing.TB, d *flags.Definition, acct string) bool {
	r, err := d.Evaluate(flags.Context{TargetingKey: acct})
	if err != nil {
		t.Fatal(err)
	}
	return string(r.Value) == "true"
}

// A rollout hits its percentage within ±2 points over 100,000 accounts,
// keeps every account's answer, and keeps the accounts of a smaller
// percentage when it grows.
func TestRolloutPercentages(t *testing.T) {
	var before []bool
	for _, pct := range []int{10, 25, 50} {
		d := rollout(t, "checkout.new-flow", pct)
		n := 0
		now := make([]bool, accounts)
		for i := range accounts {
			now[i] = on(t, &d, account(i))
			if now[i] {
				n++
			}
			if before != nil && before[i] && !now[i] {
				t.Fatalf("%s left the rollout when it grew to %d%%", account(i), pct)
			}
		}
		got := 100 * float64(n) / accounts
		t.Logf("%d%% rollout: %.2f%% of %d accounts", pct, got, accounts)
		if math.Abs(got-float64(pct)) > 2 {
			t.Fatalf("%d%% rollout reached %.2f%% of the accounts", pct, got)
		}
		// Stable: the same account, asked again (a fresh decode, as on
		// another process), answers the same.
		again := rollout(t, "checkout.new-flow", pct)
		for i := 0; i < accounts; i += 97 {
			if on(t, &again, account(i)) != now[i] {
				t.Fatalf("%s changed its answer", account(i))
			}
		}
		before = now
	}
}

// Two flags at 50% split the accounts independently: about a quarter are
// in both.
func TestRolloutsAreIndependent(t *testing.T) {
	a, b := rollout(t, "flag-a", 50), rollout(t, "flag-b", 50)
	both, onlyA := 0, 0
	for i := range accounts {
		inA, inB := on(t, &a, account(i)), on(t, &b, account(i))
		switch {
		case inA && inB:
			both++
		case inA:
			onlyA++
		}
	}
	if got := 100 * float64(both) / accounts; math.Abs(got-25) > 2 {
		t.Fatalf("%.2f%% of the accounts are in both 50%% rollouts, want about 25%%", got)
	}
	if got := 100 * float64(onlyA) / accounts; math.Abs(got-25) > 2 {
		t.Fatalf("%.2f%% of the accounts are in the first only, want about 25%%", got)
	}
}

// The point is SHA-256 of the flag key, a zero byte and the account: a
// fixed vector, so that any other implementation can reproduce a rollout.
func TestPointVector(t *testing.T) {
	// Computed apart from this code: printf 'sales.enabled\0acct-1' | sha256sum.
	if got := fmt.Sprintf("%016x", flags.Point("sales.enabled", "acct-1")); got != pointVector {
		t.Fatalf("Point = %s, want %s", got, pointVector)
	}
}

func TestSetKeepsTheLastGoodDefinition(t *testing.T) {
	s := flags.NewSet()
	var changed []string
	s.OnChange(func(keys []string) { changed = append(changed, keys...) })
	good := rollout(t, "a", 10)
	b, _ := json.Marshal(good)
	if err := s.Apply("a", b); err != nil {
		t.Fatal(err)
	}
	if err := s.Apply("a", []byte(`{"key":"a","variants":{}}`)); !errs.Is(errs.Invalid, err) {
		t.Fatalf("invalid definition: %v", err)
	}
	if err := s.Apply("b", b); !errs.Is(errs.Invalid, err) {
		t.Fatalf("a definition stored under another key: %v", err)
	}
	d, ok := s.Get("a")
	if !ok || d.Rollout[0].Weight != 10 {
		t.Fatalf("the good definition is gone: %+v %v", d, ok)
	}
	s.Remove("a")
	if _, ok := s.Get("a"); ok || len(s.All()) != 0 {
		t.Fatal("removed flag still there")
	}
	if strings.Join(changed, ",") != "a,a" {
		t.Fatalf("changes announced: %v", changed)
	}
}

const pointVector = "fba4ce09172f9470"
