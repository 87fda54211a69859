package settings

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/ticketing/ticketing/internal/errs"
)

// Type is a setting's value type.
type Type string

// The types. On the wire a bool is a JSON boolean, an int a JSON integer,
// a duration a JSON string in Go's duration syntax ("30s", "1m30s").
const (
	Bool     Type = "bool"
	Int      Type = "int"
	Duration Type = "duration"
)

// Scope is what a setting may be set for besides everyone.
type Scope string

// The scopes.
const (
	Global    Scope = ""      // one value for every process
	EdgeScope Scope = "edge"  // also per edge, by its name
	Event     Scope = "event" // also per event, by its id
)

// Names of the known settings.
const (
	// EdgeDrain: the edge answers 503 with Retry-After on its public API.
	EdgeDrain = "edge.drain"
	// EdgeDrainRetryAfter is the Retry-After of a draining edge's 503s.
	EdgeDrainRetryAfter = "edge.drain.retry_after"
	// EdgeHoldsRate and EdgeHoldsBurst are the per-client hold limit.
	EdgeHoldsRate  = "edge.holds.rate"
	EdgeHoldsBurst = "edge.holds.burst"
	// QueueTargetShoppers is the waiting-room controller's target.
	QueueTargetShoppers = "queue.target_shoppers"
)

// Known is the registry of the settings the system knows.
var Known = MustRegistry(
	Def{Name: EdgeDrain, Type: Bool, Default: BoolValue(false), Scope: EdgeScope,
		Doc: "drain mode: the edge answers 503 with Retry-After on every public API route (/v1/…, the waiting-room pages); /healthz, /readyz and /metrics keep answering"},
	Def{Name: EdgeDrainRetryAfter, Type: Duration, Default: DurationValue(30 * time.Second), Min: int64(time.Second), Max: int64(time.Hour), Scope: EdgeScope,
		Doc: "the Retry-After of a draining edge's 503s (whole seconds)"},
	Def{Name: EdgeHoldsRate, Type: Int, Default: IntValue(10), Min: 1, Max: 100_000, Scope: EdgeScope, Flag: "ticketing edge --hold-rate",
		Doc: "hold requests a second per client address"},
	Def{Name: EdgeHoldsBurst, Type: Int, Default: IntValue(20), Min: 1, Max: 1_000_000, Scope: EdgeScope, Flag: "ticketing edge --hold-burst",
		Doc: "hold requests in a burst per client address"},
	Def{Name: QueueTargetShoppers, Type: Int, Default: IntValue(2000), Min: 1, Max: 10_000_000, Scope: Event, Flag: "ticketing core --queue-target-shoppers",
		Doc: "active shoppers the waiting room admits at once per event (the controller's target)"},
)

// Def defines a setting.
type Def struct {
	Name string
	Type Type
	// Default is the value documented and shown when nothing is set; a
	// process whose start-up flag sets it otherwise keeps its flag's value.
	Default Value
	// Min and Max bound an int, or a duration in nanoseconds (both 0: no
	// bounds).
	Min, Max int64
	Scope    Scope
	Doc      string
	// Flag names the start-up flag the setting overrides, if any.
	Flag string
}

// Value is a setting's value.
type Value struct {
	Type     Type
	Bool     bool
	Int      int64
	Duration time.Duration
}

// BoolValue, IntValue and DurationValue make values.
func BoolValue(b bool) Value { return Value{Type: Bool, Bool: b} }

// IntValue makes an int value.
func IntValue(i int64) Value { return Value{Type: Int, Int: i} }

// DurationValue makes a duration value.
func DurationValue(d time.Duration) Value { return Value{Type: Duration, Duration: d} }

// String is the value as an operator writes it.
func (v Value) String() string {
	switch v.Type {
	case Bool:
		return strconv.FormatBool(v.Bool)
	case Int:
		return strconv.FormatInt(v.Int, 10)
	case Duration:
		return v.Duration.String()
	}
	return ""
}

// MarshalJSON writes the value's canonical JSON.
func (v Value) MarshalJSON() ([]byte, error) {
	if v.Type == Duration {
		return json.Marshal(v.Duration.String())
	}
	if v.Type == "" {
		return []byte("null"), nil
	}
	return []byte(v.String()), nil
}

// Parse reads a value as an operator writes it on the command line
// ("true", "5000", "30s") and checks it.
func (d *Def) Parse(text string) (Value, error) {
	op := "settings.parse"
	text = strings.TrimSpace(text)
	var v Value
	var err error
	switch d.Type {
	case Bool:
		var b bool
		b, err = strconv.ParseBool(text)
		v = BoolValue(b)
	case Int:
		var i int64
		i, err = strconv.ParseInt(text, 10, 64)
		v = IntValue(i)
	case Duration:
		var du time.Duration
		du, err = time.ParseDuration(text)
		v = DurationValue(du)
	}
	if err != nil {
		return Value{}, errs.Errorf(op, errs.Invalid, "%s is a %s: %q is not one", d.Name, d.Type, text)
	}
	return v, d.Check(v)
}

// Decode reads a value from its JSON (from the bucket or a request) and
// checks it: a bool is a JSON boolean, an int a JSON integer, a duration a
// JSON string of a Go duration.
func (d *Def) Decode(raw json.RawMessage) (Value, error) {
	op := "settings.decode"
	bad := func() error {
		return errs.Errorf(op, errs.Invalid, "%s is a %s: %.64q is not one", d.Name, d.Type, raw)
	}
	raw = bytes.TrimSpace(raw)
	if len(raw) > 64 || !json.Valid(raw) {
		return Value{}, bad()
	}
	var v Value
	switch d.Type {
	case Bool:
		var b bool
		if json.Unmarshal(raw, &b) != nil {
			return Value{}, bad()
		}
		v = BoolValue(b)
	case Int:
		// A JSON integer: digits with an optional minus (json.Valid
		// checked the rest), no fraction or exponent, not a string.
		if raw[0] != '-' && (raw[0] < '0' || raw[0] > '9') {
			return Value{}, bad()
		}
		i, err := strconv.ParseInt(string(raw), 10, 64)
		if err != nil {
			return Value{}, bad()
		}
		v = IntValue(i)
	case Duration:
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return Value{}, bad()
		}
		du, err := time.ParseDuration(s)
		if err != nil {
			return Value{}, bad()
		}
		v = DurationValue(du)
	default:
		return Value{}, bad()
	}
	return v, d.Check(v)
}

// Check checks a value against the setting's type and bounds.
func (d *Def) Check(v Value) error {
	op := "settings.check"
	if v.Type != d.Type {
		return errs.Errorf(op, errs.Invalid, "%s is a %s, not a %s", d.Name, d.Type, v.Type)
	}
	if d.Min == 0 && d.Max == 0 {
		return nil
	}
	switch d.Type {
	case Int:
		if v.Int < d.Min || v.Int > d.Max {
			return errs.Errorf(op, errs.Invalid, "%s must be within [%d, %d], not %d", d.Name, d.Min, d.Max, v.Int)
		}
	case Duration:
		if int64(v.Duration) < d.Min || int64(v.Duration) > d.Max {
			return errs.Errorf(op, errs.Invalid, "%s must be within [%v, %v], not %v", d.Name, time.Duration(d.Min), time.Duration(d.Max), v.Duration)
		}
	}
	return nil
}

// Registry is a set of setting definitions.
type Registry struct {
	defs  map[string]Def
	order []string
}

// NewRegistry checks and indexes defs: valid names, known types and
// scopes, defaults within their bounds, no name twice.
func NewRegistry(defs ...Def) (*Registry, error) {
	r := &Registry{defs: map[string]Def{}}
	for _, d := range defs {
		if !validName(d.Name) {
			return nil, fmt.Errorf("settings: name %q: lower-case letters, digits, '_' and '.'", d.Name)
		}
		if _, dup := r.defs[d.Name]; dup {
			return nil, fmt.Errorf("settings: %s defined twice", d.Name)
		}
		switch d.Type {
		case Bool, Int, Duration:
		default:
			return nil, fmt.Errorf("settings: %s: unknown type %q", d.Name, d.Type)
		}
		switch d.Scope {
		case Global, EdgeScope, Event:
		default:
			return nil, fmt.Errorf("settings: %s: unknown scope %q", d.Name, d.Scope)
		}
		if err := d.Check(d.Default); err != nil {
			return nil, fmt.Errorf("settings: %s: default: %w", d.Name, err)
		}
		r.defs[d.Name] = d
		r.order = append(r.order, d.Name)
	}
	return r, nil
}

// MustRegistry is NewRegistry for package-level registries.
func MustRegistry(defs ...Def) *Registry {
	r, err := NewRegistry(defs...)
	if err != nil {
		panic(err)
	}
	return r
}

// Lookup returns the definition of name.
func (r *Registry) Lookup(name string) (Def, bool) {
	d, ok := r.defs[name]
	return d, ok
}

// Defs returns the definitions in the order they were given.
func (r *Registry) Defs() []Def {
	out := make([]Def, 0, len(r.order))
	for _, n := range r.order {
		out = append(out, r.defs[n])
	}
	return out
}

// Names lists the settings' names.
func (r *Registry) Names() []string { return append([]string(nil), r.order...) }

// validName: 1-64 bytes of [a-z0-9_.], dot-separated parts not empty.
func validName(n string) bool {
	if n == "" || len(n) > 64 || n[0] == '.' || strings.HasSuffix(n, ".") || strings.Contains(n, "..") {
		return false
	}
	for i := 0; i < len(n); i++ {
		c := n[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// ValidScopeID reports whether id can name an edge or an event in a key:
// 1-64 bytes of letters, digits, '_' and '-'.
func ValidScopeID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}
