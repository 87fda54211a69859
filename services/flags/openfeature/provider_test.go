package openfeature_test

import (
	"context"
	"fmt"
	"math"
	"testing"

	of "github.com/open-feature/go-sdk/openfeature"
	"github.com/open-feature/go-sdk/openfeature/isolated"

	"github.com/ticketing/ticketing/internal/eventually"
	"github.com/ticketing/ticketing/services/flags"
	flagsof "github.com/ticketing/ticketing/services/flags/openfeature"
)

func client(t *testing.T, set *flags.Set) *of.Client {
	t.Helper()
	api := isolated.NewAPI()
	t.Cleanup(func() { _ = api.Shutdown(context.Background()) })
	if err := api.SetProviderAndWait(t.Context(), flagsof.New(set)); err != nil {
		t.Fatal(err)
	}
	return api.NewClient()
}

func apply(t *testing.T, set *flags.Set, key, def string) {
	t.Helper()
	if err := set.Apply(key, []byte(def)); err != nil {
		t.Fatal(err)
	}
}

// A 10% rollout through the OpenFeature SDK reaches 10% ± 2 points of
// 100,000 accounts, with reason SPLIT.
func TestRolloutThroughTheSDK(t *testing.T) {
	set := flags.NewSet()
	apply(t, set, "checkout.new-flow", `{"key":"checkout.new-flow","enabled":true,"variants":{"new":true,"old":false},
		"default_variant":"old","rollout":[{"variant":"new","weight":10},{"variant":"old","weight":90}]}`)
	c := client(t, set)
	ctx := t.Context()
	const accounts = 100_000
	n := 0
	for i := range accounts {
		d, err := c.BooleanValueDetails(ctx, "checkout.new-flow", false, of.NewEvaluationContext(fmt.Sprintf("acct-%07d", i), nil))
		if err != nil || d.Reason != of.SplitReason {
			t.Fatalf("account %d: %+v %v", i, d, err)
		}
		if d.Value {
			n++
		}
	}
	got := 100 * float64(n) / accounts
	t.Logf("10%% rollout through the SDK: %.2f%% of %d accounts", got, accounts)
	if math.Abs(got-10) > 2 {
		t.Fatalf("10%% rollout reached %.2f%%", got)
	}
}

func TestProviderAnswers(t *testing.T) {
	set := flags.NewSet()
	c := client(t, set)
	ctx := t.Context()
	changed := make(chan []string, 4)
	h := func(d of.EventDetails) { changed <- d.FlagChanges }
	c.AddHandler(of.ProviderConfigChange, &h)

	// Not defined: the caller's default.
	d, err := c.BooleanValueDetails(ctx, "sales.enabled", true, of.EvaluationContext{})
	if err == nil || !d.Value || d.ErrorCode != of.FlagNotFoundCode {
		t.Fatalf("undefined flag: %+v %v", d, err)
	}
	apply(t, set, "sales.enabled", `{"key":"sales.enabled","enabled":true,"variants":{"on":true,"off":false},"default_variant":"on",
		"rules":[{"organizers":["org-x"],"regions":["edge-eu"],"channels":["app"],"variant":"off"},
		         {"events":["half"],"rollout":[{"variant":"on","weight":1},{"variant":"off","weight":1}]}]}`)
	eventually.True(t, 0, "the change announced", func() bool {
		select {
		case keys := <-changed:
			return len(keys) == 1 && keys[0] == "sales.enabled"
		default:
			return false
		}
	})
	attrs := map[string]any{flagsof.AttrOrganizer: "org-x", flagsof.AttrRegion: "edge-eu", flagsof.AttrChannel: "app"}
	if d, err := c.BooleanValueDetails(ctx, "sales.enabled", true, of.NewEvaluationContext("acct-1", attrs)); err != nil || d.Value || d.Reason != of.TargetingMatchReason || d.Variant != "off" {
		t.Fatalf("targeted: %+v %v", d, err)
	}
	attrs[flagsof.AttrChannel] = "web"
	if d, err := c.BooleanValueDetails(ctx, "sales.enabled", false, of.NewEvaluationContext("acct-1", attrs)); err != nil || !d.Value || d.Reason != of.DefaultReason {
		t.Fatalf("another channel: %+v %v", d, err)
	}
	// A rollout without a targeting key: the default, with the error.
	half := of.NewTargetlessEvaluationContext(map[string]any{flagsof.AttrEvent: "half"})
	if d, err := c.BooleanValueDetails(ctx, "sales.enabled", true, half); err == nil || !d.Value || d.ErrorCode != of.TargetingKeyMissingCode {
		t.Fatalf("no targeting key: %+v %v", d, err)
	}
	// Asked as another type: the default, with the error.
	if d, err := c.StringValueDetails(ctx, "sales.enabled", "x", of.EvaluationContext{}); err == nil || d.Value != "x" || d.ErrorCode != of.TypeMismatchCode {
		t.Fatalf("as a string: %+v %v", d, err)
	}
	// Disabled: the caller's default, reason DISABLED.
	apply(t, set, "sales.enabled", `{"key":"sales.enabled","enabled":false,"variants":{"on":true,"off":false},"default_variant":"off"}`)
	if d, err := c.BooleanValueDetails(ctx, "sales.enabled", true, of.EvaluationContext{}); err != nil || !d.Value || d.Reason != of.DisabledReason {
		t.Fatalf("disabled: %+v %v", d, err)
	}
	// Numbers and objects.
	apply(t, set, "limits.max", `{"key":"limits.max","enabled":true,"variants":{"low":4,"high":10.5,"obj":4},"default_variant":"low",
		"rules":[{"regions":["r"],"variant":"high"}]}`)
	if v := c.Int(ctx, "limits.max", 0, of.EvaluationContext{}); v != 4 {
		t.Fatalf("int: %d", v)
	}
	r := of.NewTargetlessEvaluationContext(map[string]any{flagsof.AttrRegion: "r"})
	if v := c.Float(ctx, "limits.max", 0, r); v != 10.5 {
		t.Fatalf("float: %v", v)
	}
	if d, err := c.IntValueDetails(ctx, "limits.max", 1, r); err == nil || d.Value != 1 {
		t.Fatalf("10.5 as an int: %+v %v", d, err)
	}
	if v := c.Object(ctx, "limits.max", nil, of.EvaluationContext{}); v != float64(4) {
		t.Fatalf("object: %v", v)
	}
}
