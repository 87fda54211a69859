// Package openfeature serves feature flags (services/flags) to the
// OpenFeature Go SDK: Provider is an OpenFeature provider over a flags.Set,
// the definitions a process's watcher keeps current from the core's
// settings bucket (services/settings/natskv). Code asks for a flag through
// an OpenFeature client:
//
//	api := isolated.NewAPI() // or the SDK's global API
//	_ = api.SetProviderAndWait(ctx, openfeature.New(set))
//	client := api.NewClient()
//	on := client.Boolean(ctx, "sales.enabled", true, of.NewEvaluationContext(account, map[string]any{
//		openfeature.AttrOrganizer: e.OrganizerID, openfeature.AttrEvent: e.ID,
//		openfeature.AttrRegion: region, openfeature.AttrChannel: channel,
//	}))
//
// The targeting key is the account id; the attributes are the ones rules
// target (AttrOrganizer, AttrEvent, AttrRegion, AttrChannel). A flag not
// defined answers the caller's default (FLAG_NOT_FOUND), so code keeps its
// own safe default until an operator defines the flag. Every change of a
// definition is announced as PROVIDER_CONFIGURATION_CHANGED.
package openfeature

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	of "github.com/open-feature/go-sdk/openfeature"

	"github.com/ticketing/ticketing/services/flags"
)

// The evaluation context's attributes that rules target.
const (
	AttrOrganizer = "organizer"
	AttrEvent     = "event"
	AttrRegion    = "region"
	AttrChannel   = "channel"
)

// Name is the provider's name.
const Name = "ticketing-flags"

// Provider is an OpenFeature provider over a flags.Set. Safe for
// concurrent use.
type Provider struct {
	set    *flags.Set
	events chan of.Event
}

var (
	_ of.FeatureProvider = (*Provider)(nil)
	_ of.EventHandler    = (*Provider)(nil)
)

// New returns a provider of set's flags.
func New(set *flags.Set) *Provider {
	p := &Provider{set: set, events: make(chan of.Event, 64)}
	set.OnChange(func(keys []string) {
		select {
		case p.events <- of.Event{ProviderName: Name, EventType: of.ProviderConfigChange,
			ProviderEventDetails: of.ProviderEventDetails{Message: "flag definitions changed", FlagChanges: keys}}:
		default: // the SDK is behind; evaluations read the set itself anyway
		}
	})
	return p
}

// Metadata implements of.FeatureProvider.
func (p *Provider) Metadata() of.Metadata { return of.Metadata{Name: Name} }

// Hooks implements of.FeatureProvider.
func (p *Provider) Hooks() []of.Hook { return nil }

// EventChannel implements of.EventHandler.
func (p *Provider) EventChannel() <-chan of.Event { return p.events }

// Context is the flags.Context of an OpenFeature evaluation context.
func Context(fc of.FlattenedContext) flags.Context {
	str := func(k string) string { s, _ := fc[k].(string); return s }
	return flags.Context{TargetingKey: str(of.TargetingKey), Organizer: str(AttrOrganizer), Event: str(AttrEvent),
		Region: str(AttrRegion), Channel: str(AttrChannel)}
}

// resolve evaluates flag and decodes its value with decode; on any
// failure the detail carries the error and the default stays.
func resolve[T any](p *Provider, flag string, def T, fc of.FlattenedContext, want flags.Type, decode func(json.RawMessage) (T, error)) of.GenericResolutionDetail[T] {
	out := of.GenericResolutionDetail[T]{Value: def}
	fail := func(e of.ResolutionError) of.GenericResolutionDetail[T] {
		out.Reason, out.ResolutionError = of.ErrorReason, e
		return out
	}
	d, ok := p.set.Get(flag)
	if !ok {
		return fail(of.NewFlagNotFoundResolutionError(fmt.Sprintf("no flag %q", flag)))
	}
	if want != "" && d.Type() != want {
		return fail(of.NewTypeMismatchResolutionError(fmt.Sprintf("flag %q is %s, not %s", flag, d.Type(), want)))
	}
	r, err := d.Evaluate(Context(fc))
	switch {
	case errors.Is(err, flags.ErrTargetingKeyMissing):
		return fail(of.NewTargetingKeyMissingResolutionError(err.Error()))
	case err != nil:
		return fail(of.NewGeneralResolutionError(err.Error()))
	}
	out.Reason = of.Reason(r.Reason)
	if r.Reason == flags.ReasonDisabled {
		return out
	}
	v, err := decode(r.Value)
	if err != nil {
		return fail(of.NewTypeMismatchResolutionError(fmt.Sprintf("flag %q variant %q: %v", flag, r.Variant, err)))
	}
	out.Value, out.Variant = v, r.Variant
	return out
}

func decodeJSON[T any](raw json.RawMessage) (T, error) {
	var v T
	err := json.Unmarshal(raw, &v)
	return v, err
}

// BooleanEvaluation implements of.FeatureProvider.
func (p *Provider) BooleanEvaluation(_ context.Context, flag string, def bool, fc of.FlattenedContext) of.BoolResolutionDetail {
	return resolve(p, flag, def, fc, flags.Boolean, decodeJSON[bool])
}

// StringEvaluation implements of.FeatureProvider.
func (p *Provider) StringEvaluation(_ context.Context, flag string, def string, fc of.FlattenedContext) of.StringResolutionDetail {
	return resolve(p, flag, def, fc, flags.String, decodeJSON[string])
}

// FloatEvaluation implements of.FeatureProvider.
func (p *Provider) FloatEvaluation(_ context.Context, flag string, def float64, fc of.FlattenedContext) of.FloatResolutionDetail {
	return resolve(p, flag, def, fc, flags.Number, decodeJSON[float64])
}

// IntEvaluation implements of.FeatureProvider: a number variant that is
// not an integer is a type mismatch.
func (p *Provider) IntEvaluation(_ context.Context, flag string, def int64, fc of.FlattenedContext) of.IntResolutionDetail {
	return resolve(p, flag, def, fc, flags.Number, decodeJSON[int64])
}

// ObjectEvaluation implements of.FeatureProvider: any flag's value, as
// encoding/json decodes it.
func (p *Provider) ObjectEvaluation(_ context.Context, flag string, def any, fc of.FlattenedContext) of.InterfaceResolutionDetail {
	return resolve(p, flag, def, fc, "", decodeJSON[any])
}
