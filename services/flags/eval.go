package flags

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"math/bits"
	"slices"
)

// Context is who and where a flag is evaluated for. Every field is
// optional; a rollout needs TargetingKey.
type Context struct {
	// TargetingKey identifies the subject: the account id (the waiting-room
	// session until accounts exist).
	TargetingKey string
	Organizer    string
	Event        string
	// Region is where the request is served (an edge's region).
	Region string
	// Channel is the sales channel: web, app, box-office, partner, …
	Channel string
}

// Reason says why an evaluation answered what it did (OpenFeature's
// reasons).
type Reason string

// The reasons.
const (
	ReasonDisabled       Reason = "DISABLED"
	ReasonTargetingMatch Reason = "TARGETING_MATCH"
	ReasonSplit          Reason = "SPLIT"
	ReasonDefault        Reason = "DEFAULT"
)

// ErrTargetingKeyMissing: the evaluation reached a rollout and the context
// has no targeting key.
var ErrTargetingKeyMissing = errors.New("flags: a percentage rollout needs a targeting key")

// Result is an evaluation's answer. Variant is empty and Value nil when the
// flag is disabled: the caller's default applies.
type Result struct {
	Variant string
	Value   json.RawMessage
	Reason  Reason
	// Rule is the index of the rule that decided, or -1.
	Rule int
}

// Evaluate answers the flag for c (see the package doc). d must be valid.
func (d *Definition) Evaluate(c Context) (Result, error) {
	if !d.Enabled {
		return Result{Reason: ReasonDisabled, Rule: -1}, nil
	}
	for i := range d.Rules {
		r := &d.Rules[i]
		if !r.matches(c) {
			continue
		}
		if r.Variant != "" {
			return d.result(r.Variant, ReasonTargetingMatch, i), nil
		}
		v, err := d.split(r.Rollout, c.TargetingKey)
		if err != nil {
			return Result{Rule: i}, err
		}
		return d.result(v, ReasonSplit, i), nil
	}
	if len(d.Rollout) > 0 {
		v, err := d.split(d.Rollout, c.TargetingKey)
		if err != nil {
			return Result{Rule: -1}, err
		}
		return d.result(v, ReasonSplit, -1), nil
	}
	return d.result(d.DefaultVariant, ReasonDefault, -1), nil
}

func (d *Definition) result(variant string, reason Reason, rule int) Result {
	return Result{Variant: variant, Value: d.Variants[variant], Reason: reason, Rule: rule}
}

func (r *Rule) matches(c Context) bool {
	return in(r.Organizers, c.Organizer) && in(r.Events, c.Event) && in(r.Regions, c.Region) &&
		in(r.Channels, c.Channel) && in(r.Accounts, c.TargetingKey)
}

// in: an empty list sets no condition; otherwise v must be listed.
func in(list []string, v string) bool { return len(list) == 0 || slices.Contains(list, v) }

// split picks the variant of the rollout whose share covers the account's
// point.
func (d *Definition) split(splits []Split, key string) (string, error) {
	if key == "" {
		return "", ErrTargetingKeyMissing
	}
	total := uint64(0)
	for _, s := range splits {
		total += uint64(s.Weight)
	}
	// x = floor(point × total), point = h / 2^64: uniform over [0, total)
	// without the bias of a modulo.
	x, _ := bits.Mul64(Point(d.Key, key), total)
	for _, s := range splits {
		if x < uint64(s.Weight) {
			return s.Variant, nil
		}
		x -= uint64(s.Weight)
	}
	return splits[len(splits)-1].Variant, nil // not reached: x < total
}

// Point is the account's stable point of flag key, as a 64-bit fraction of
// [0, 1): the first 8 bytes of SHA-256(flag key, 0x00, targeting key),
// big-endian.
func Point(flagKey, targetingKey string) uint64 {
	h := sha256.New()
	h.Write([]byte(flagKey))
	h.Write([]byte{0})
	h.Write([]byte(targetingKey))
	var sum [sha256.Size]byte
	return binary.BigEndian.Uint64(h.Sum(sum[:0]))
}
