package flags

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/ticketing/ticketing/internal/errs"
)

// Bounds on a definition, so that one read from outside (the bucket, the
// CLI) cannot be arbitrarily large or slow to evaluate.
const (
	MaxKeyLen         = 128       // bytes of a flag key
	MaxSize           = 256 << 10 // bytes of a definition's JSON
	MaxVariants       = 16
	MaxVariantSize    = 4 << 10 // bytes of one variant's JSON value
	MaxRules          = 64
	MaxValues         = 1000 // values of one rule attribute
	MaxValueLen       = 128  // bytes of one attribute value
	MaxDescriptionLen = 1024
	MaxWeight         = 1_000_000 // of one split
)

// Type is the JSON type every variant of a flag has.
type Type string

// The types of flag values.
const (
	Boolean Type = "boolean"
	String  Type = "string"
	Number  Type = "number"
	Object  Type = "object"
)

// Definition is a feature flag as stored and as an operator writes it
// (`ticketing config flags set`):
//
//	{"key": "sales.enabled", "enabled": true,
//	 "variants": {"on": true, "off": false}, "default_variant": "on",
//	 "rules": [{"name": "pause org-x", "organizers": ["org-x"], "variant": "off"}],
//	 "rollout": [{"variant": "on", "weight": 90}, {"variant": "off", "weight": 10}]}
type Definition struct {
	Key         string `json:"key"`
	Description string `json:"description,omitempty"`
	// Enabled false: every evaluation answers the caller's default.
	Enabled bool `json:"enabled"`
	// Variants are the values the flag can take, by name; all of one JSON
	// type (boolean, string, number or object).
	Variants map[string]json.RawMessage `json:"variants"`
	// DefaultVariant is the answer when no rule matches and there is no
	// rollout.
	DefaultVariant string `json:"default_variant"`
	// Rules are tried in order; the first that matches decides.
	Rules []Rule `json:"rules,omitempty"`
	// Rollout, when set, splits the contexts no rule matches instead of
	// answering DefaultVariant.
	Rollout []Split `json:"rollout,omitempty"`
}

// Rule targets contexts by attribute: it matches when every non-empty list
// holds the context's value. It answers Variant, or splits by Rollout
// (exactly one of the two).
type Rule struct {
	Name       string   `json:"name,omitempty"`
	Organizers []string `json:"organizers,omitempty"`
	Events     []string `json:"events,omitempty"`
	Regions    []string `json:"regions,omitempty"`
	Channels   []string `json:"channels,omitempty"`
	// Accounts lists targeting keys (account ids).
	Accounts []string `json:"accounts,omitempty"`
	Variant  string   `json:"variant,omitempty"`
	Rollout  []Split  `json:"rollout,omitempty"`
}

// Split is one variant's share of a rollout: Weight over the sum of the
// rollout's weights.
type Split struct {
	Variant string `json:"variant"`
	Weight  int    `json:"weight"`
}

// Decode reads a definition from JSON coming from outside (the bucket, an
// operator): at most MaxSize bytes, no unknown fields, nothing after the
// object, and a definition that Validate accepts. Errors are errs.Invalid.
func Decode(b []byte) (Definition, error) {
	const op = "flags.decode"
	var d Definition
	if len(b) > MaxSize {
		return d, errs.Errorf(op, errs.Invalid, "a flag definition has at most %d bytes, this one %d", MaxSize, len(b))
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&d); err != nil {
		return Definition{}, errs.E(op, errs.Invalid, "malformed flag definition: "+err.Error())
	}
	if _, err := dec.Token(); err != io.EOF {
		return Definition{}, errs.E(op, errs.Invalid, "malformed flag definition: data after the object")
	}
	if err := d.Validate(); err != nil {
		return Definition{}, err
	}
	return d, nil
}

// ValidKey reports whether k can name a flag: 1-128 bytes of lower-case
// letters, digits, '_', '-' and '.', beginning with a letter or digit, no
// empty dot-separated part (keys are bucket keys and subject tokens).
func ValidKey(k string) bool {
	if k == "" || len(k) > MaxKeyLen || strings.HasSuffix(k, ".") || strings.Contains(k, "..") {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case (c == '_' || c == '-' || c == '.') && i > 0:
		default:
			return false
		}
	}
	return true
}

// Validate checks a definition: its key, variants of one type, a default
// variant that exists, rules with one outcome each, rollouts over existing
// variants with a positive total weight, and the bounds.
func (d *Definition) Validate() error {
	const op = "flags.validate"
	bad := func(format string, args ...any) error { return errs.Errorf(op, errs.Invalid, format, args...) }
	if !ValidKey(d.Key) {
		return bad("flag key %q: use 1-%d lower-case letters, digits, '_', '-' and '.'", d.Key, MaxKeyLen)
	}
	if len(d.Description) > MaxDescriptionLen || !utf8.ValidString(d.Description) {
		return bad("description: at most %d bytes of UTF-8", MaxDescriptionLen)
	}
	if len(d.Variants) == 0 || len(d.Variants) > MaxVariants {
		return bad("a flag has 1-%d variants, this one %d", MaxVariants, len(d.Variants))
	}
	var typ Type
	for _, name := range d.variantNames() {
		if !validValue(name) {
			return bad("variant name %q: 1-%d bytes of printable UTF-8", name, MaxValueLen)
		}
		raw := d.Variants[name]
		if len(raw) > MaxVariantSize {
			return bad("variant %q: at most %d bytes", name, MaxVariantSize)
		}
		t, err := typeOf(raw)
		if err != nil {
			return bad("variant %q: %v", name, err)
		}
		if typ == "" {
			typ = t
		} else if t != typ {
			return bad("variant %q is %s, others are %s: every variant of a flag has one type", name, t, typ)
		}
	}
	if _, ok := d.Variants[d.DefaultVariant]; !ok {
		return bad("default_variant %q is not one of the variants", d.DefaultVariant)
	}
	if len(d.Rules) > MaxRules {
		return bad("at most %d rules", MaxRules)
	}
	for i, r := range d.Rules {
		where := fmt.Sprintf("rule %d", i+1)
		if r.Name != "" {
			where += fmt.Sprintf(" (%s)", r.Name)
		}
		if len(r.Name) > MaxValueLen || !utf8.ValidString(r.Name) {
			return bad("%s: a name has at most %d bytes of UTF-8", where, MaxValueLen)
		}
		for _, l := range []struct {
			name string
			vals []string
		}{{"organizers", r.Organizers}, {"events", r.Events}, {"regions", r.Regions}, {"channels", r.Channels}, {"accounts", r.Accounts}} {
			if len(l.vals) > MaxValues {
				return bad("%s: at most %d %s", where, MaxValues, l.name)
			}
			for _, v := range l.vals {
				if !validValue(v) {
					return bad("%s: %s value %q: 1-%d bytes of printable UTF-8", where, l.name, v, MaxValueLen)
				}
			}
		}
		switch {
		case (r.Variant == "") == (len(r.Rollout) == 0):
			return bad("%s: give either a variant or a rollout", where)
		case r.Variant != "":
			if _, ok := d.Variants[r.Variant]; !ok {
				return bad("%s: variant %q is not one of the variants", where, r.Variant)
			}
		default:
			if err := d.checkRollout(r.Rollout); err != nil {
				return bad("%s: %v", where, err)
			}
		}
	}
	if len(d.Rollout) > 0 {
		if err := d.checkRollout(d.Rollout); err != nil {
			return bad("rollout: %v", err)
		}
	}
	return nil
}

// Type is the type of the flag's values (of a valid definition).
func (d *Definition) Type() Type {
	for _, raw := range d.Variants {
		t, _ := typeOf(raw)
		return t
	}
	return ""
}

func (d *Definition) checkRollout(splits []Split) error {
	if len(splits) > MaxVariants {
		return fmt.Errorf("at most %d splits", MaxVariants)
	}
	total := 0
	for _, s := range splits {
		if _, ok := d.Variants[s.Variant]; !ok {
			return fmt.Errorf("variant %q is not one of the variants", s.Variant)
		}
		if s.Weight < 0 || s.Weight > MaxWeight {
			return fmt.Errorf("variant %q: a weight is 0-%d, not %d", s.Variant, MaxWeight, s.Weight)
		}
		total += s.Weight
	}
	if total == 0 {
		return fmt.Errorf("the weights add up to 0")
	}
	return nil
}

func (d *Definition) variantNames() []string {
	names := make([]string, 0, len(d.Variants))
	for n := range d.Variants {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// typeOf is the JSON type of a variant's value.
func typeOf(raw json.RawMessage) (Type, error) {
	if !json.Valid(raw) {
		return "", fmt.Errorf("not a JSON value")
	}
	switch b := bytes.TrimLeft(raw, " \t\r\n"); {
	case len(b) == 0:
		return "", fmt.Errorf("empty")
	case b[0] == 't' || b[0] == 'f':
		return Boolean, nil
	case b[0] == '"':
		return String, nil
	case b[0] == '{':
		return Object, nil
	case b[0] == '-' || (b[0] >= '0' && b[0] <= '9'):
		return Number, nil
	}
	return "", fmt.Errorf("a variant is a boolean, a string, a number or an object")
}

// validValue reports whether v is 1-MaxValueLen bytes of UTF-8 without
// control characters.
func validValue(v string) bool {
	if v == "" || len(v) > MaxValueLen || !utf8.ValidString(v) {
		return false
	}
	for _, r := range v {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}

func errKeyMismatch(key, got string) error {
	return errs.Errorf("flags.apply", errs.Invalid, "the definition stored as %q names flag %q", key, got)
}
