package settings

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/services/flags"
)

// Stored is an entry as the store holds it.
type Stored struct {
	Key      string // the bucket key
	Entry    Entry
	Revision uint64
}

// Store keeps entries by bucket key, with compare-and-set writes. Its
// methods may be called concurrently; a cancelled ctx abandons the call.
type Store interface {
	// Get returns key's entry; errs.NotFound when there is none (or it
	// was deleted).
	Get(ctx context.Context, key string) (Stored, error)
	// List returns the entries whose keys begin with prefix.
	List(ctx context.Context, prefix string) ([]Stored, error)
	// Put writes value under key if key's revision is still last (0: key
	// has no value), and returns the new revision; errs.Conflict when it
	// moved.
	Put(ctx context.Context, key string, value []byte, last uint64) (uint64, error)
	// Delete removes key's value if its revision is still last, and
	// returns the revision of the deletion; errs.Conflict when it moved.
	Delete(ctx context.Context, key string, last uint64) (uint64, error)
}

// Kind tells settings from flags in a Change.
type Kind string

// The kinds of change.
const (
	KindSetting Kind = "setting"
	KindFlag    Kind = "flag"
)

// Change is one accepted change, as audited.
type Change struct {
	Kind Kind
	// Key is the bucket key; Name the setting's name or the flag's key;
	// Scope the setting's scope id ("" for everyone and for flags).
	Key, Name, Scope string
	// Old and New are the values' JSON; nil: none (unset before, deleted
	// now).
	Old, New json.RawMessage
	By, Note string
	At       time.Time
	Revision uint64
	// Reconciled: the event is published late, by Reconcile, for a change
	// whose first publication failed (Old is then unknown).
	Reconciled bool
}

// Auditor records every accepted change as a domain event. Both methods
// may be called concurrently.
type Auditor interface {
	// Audit publishes the change's event. Publishing the same change
	// (key and revision) twice yields one event.
	Audit(ctx context.Context, c Change) error
	// LastAudited returns the revision of key's last audited change, 0
	// when there is none.
	LastAudited(ctx context.Context, key string) (uint64, error)
}

// Service is the one write path of settings and flags (see the package
// doc). Its methods may be called concurrently.
type Service struct {
	Store   Store
	Auditor Auditor
	// Registry is what settings exist; nil: Known.
	Registry *Registry
	// Now is the clock; nil: time.Now.
	Now func() time.Time
}

// Setting is a setting's value as get and set answer it.
type Setting struct {
	Name  string          `json:"name"`
	Scope string          `json:"scope,omitempty"`
	Type  Type            `json:"type"`
	Value json.RawMessage `json:"value,omitempty"` // nil: not set
	// Default is the registry's default; ScopeKind what the setting may
	// be scoped by; Flag the start-up flag it overrides.
	Default   json.RawMessage  `json:"default"`
	ScopeKind Scope            `json:"scope_kind,omitempty"`
	Min       *json.RawMessage `json:"min,omitempty"`
	Max       *json.RawMessage `json:"max,omitempty"`
	Flag      string           `json:"flag,omitempty"`
	Doc       string           `json:"doc"`
	By        string           `json:"by,omitempty"`
	At        *time.Time       `json:"at,omitempty"`
	Note      string           `json:"note,omitempty"`
	Revision  uint64           `json:"revision,omitempty"`
}

// SetRequest changes a setting.
type SetRequest struct {
	Name  string `json:"name"`
	Scope string `json:"scope,omitempty"`
	// Value is the new value's JSON, or Text the value as written on a
	// command line ("true", "5000", "30s"); exactly one.
	Value json.RawMessage `json:"value,omitempty"`
	Text  string          `json:"text,omitempty"`
	By    string          `json:"by"`
	Note  string          `json:"note,omitempty"`
	// Revision, when not 0, is the revision the caller read: the change is
	// refused (errs.Conflict) if the value has changed since.
	Revision uint64 `json:"revision,omitempty"`
}

// UnsetRequest removes a setting's value (for everyone or for a scope).
type UnsetRequest struct {
	Name     string `json:"name"`
	Scope    string `json:"scope,omitempty"`
	By       string `json:"by"`
	Note     string `json:"note,omitempty"`
	Revision uint64 `json:"revision,omitempty"`
}

// Flag is a flag's definition as the flag operations answer it.
type Flag struct {
	Definition json.RawMessage `json:"definition"`
	By         string          `json:"by,omitempty"`
	At         *time.Time      `json:"at,omitempty"`
	Note       string          `json:"note,omitempty"`
	Revision   uint64          `json:"revision,omitempty"`
}

// SetFlagRequest creates or replaces a flag's definition.
type SetFlagRequest struct {
	Definition json.RawMessage `json:"definition"`
	By         string          `json:"by"`
	Note       string          `json:"note,omitempty"`
	Revision   uint64          `json:"revision,omitempty"`
}

// DeleteFlagRequest deletes a flag (evaluations then answer the callers'
// defaults).
type DeleteFlagRequest struct {
	Key      string `json:"key"`
	By       string `json:"by"`
	Note     string `json:"note,omitempty"`
	Revision uint64 `json:"revision,omitempty"`
}

// casAttempts bounds the retries of a write that lost a race it did not
// ask to lose (no Revision given).
const casAttempts = 16

func (s *Service) registry() *Registry {
	if s.Registry == nil {
		return Known
	}
	return s.Registry
}

func (s *Service) now() time.Time {
	if s.Now == nil {
		return time.Now().UTC()
	}
	return s.Now().UTC()
}

// def finds a setting and checks the scope asked for.
func (s *Service) def(op, name, scope string) (Def, error) {
	d, ok := s.registry().Lookup(name)
	if !ok {
		return Def{}, errs.Errorf(op, errs.NotFound, "no setting %q (known: %s)", name, strings.Join(s.registry().Names(), ", "))
	}
	if scope != "" {
		if d.Scope == Global {
			return Def{}, errs.Errorf(op, errs.Invalid, "%s has one value for everyone: it takes no scope", name)
		}
		if !ValidScopeID(scope) {
			return Def{}, errs.Errorf(op, errs.Invalid, "scope %q: the %s's name, 1-64 letters, digits, '_' and '-'", scope, d.Scope)
		}
	}
	return d, nil
}

// Settings lists every known setting with its value for everyone, and
// every scoped value set, in registry order. With name, only that
// setting's.
func (s *Service) Settings(ctx context.Context, name string) ([]Setting, error) {
	const op = "settings.get"
	prefix := SettingPrefix
	if name != "" {
		if _, err := s.def(op, name, ""); err != nil {
			return nil, err
		}
		prefix += name
	}
	stored, err := s.Store.List(ctx, prefix)
	if err != nil {
		return nil, err
	}
	byKey := map[Key]Stored{}
	for _, st := range stored {
		if k, ok := ParseBucketKey(st.Key); ok {
			byKey[k] = st
		}
	}
	var out []Setting
	for _, d := range s.registry().Defs() {
		if name != "" && d.Name != name {
			continue
		}
		out = append(out, view(d, Key{Name: d.Name}, byKey))
		var scoped []Key
		for k := range byKey {
			if k.Name == d.Name && k.Scope != "" {
				scoped = append(scoped, k)
			}
		}
		sortKeys(scoped)
		for _, k := range scoped {
			out = append(out, view(d, k, byKey))
		}
	}
	return out, nil
}

func view(d Def, k Key, byKey map[Key]Stored) Setting {
	def, _ := json.Marshal(d.Default)
	v := Setting{Name: d.Name, Scope: k.Scope, Type: d.Type, Default: def, ScopeKind: d.Scope, Flag: d.Flag, Doc: d.Doc}
	if d.Min != 0 || d.Max != 0 {
		lo, hi := bound(d, d.Min), bound(d, d.Max)
		v.Min, v.Max = &lo, &hi
	}
	if st, ok := byKey[k]; ok {
		v.Value = st.Entry.Value
		if val, err := d.Decode(st.Entry.Value); err == nil {
			v.Value, _ = json.Marshal(val)
		}
		at := st.Entry.At
		v.By, v.At, v.Note, v.Revision = st.Entry.By, &at, st.Entry.Note, st.Revision
	}
	return v
}

func bound(d Def, n int64) json.RawMessage {
	v := IntValue(n)
	if d.Type == Duration {
		v = DurationValue(time.Duration(n))
	}
	b, _ := json.Marshal(v)
	return b
}

func sortKeys(ks []Key) {
	for i := 1; i < len(ks); i++ {
		for j := i; j > 0 && ks[j].Scope < ks[j-1].Scope; j-- {
			ks[j], ks[j-1] = ks[j-1], ks[j]
		}
	}
}

// Set validates and writes a setting's value, and audits the change. A
// value equal to the one set changes nothing (no write, no event). Errors:
// errs.NotFound for an unknown setting, errs.Invalid for a bad value or
// scope, errs.Conflict when Revision is given and the value moved since,
// errs.Unavailable when the store or the audit is.
func (s *Service) Set(ctx context.Context, r SetRequest) (Setting, error) {
	const op = "settings.set"
	d, err := s.def(op, r.Name, r.Scope)
	if err != nil {
		return Setting{}, err
	}
	if err := checkWho(op, r.By, r.Note); err != nil {
		return Setting{}, err
	}
	var v Value
	switch {
	case len(r.Value) > 0 && r.Text != "":
		return Setting{}, errs.E(op, errs.Invalid, "give the value as JSON or as text, not both")
	case len(r.Value) > 0:
		v, err = d.Decode(r.Value)
	case r.Text != "":
		v, err = d.Parse(r.Text)
	default:
		return Setting{}, errs.E(op, errs.Invalid, "a value is required (unset removes one)")
	}
	if err != nil {
		return Setting{}, err
	}
	val, _ := json.Marshal(v)
	k := Key{Name: r.Name, Scope: r.Scope}
	if _, err := s.write(ctx, op, KindSetting, k.BucketKey(), r.Name, r.Scope, val, r.By, r.Note, r.Revision); err != nil {
		return Setting{}, err
	}
	return s.one(ctx, d, k)
}

// Unset removes a setting's value and audits the change; a setting not set
// changes nothing.
func (s *Service) Unset(ctx context.Context, r UnsetRequest) (Setting, error) {
	const op = "settings.unset"
	d, err := s.def(op, r.Name, r.Scope)
	if err != nil {
		return Setting{}, err
	}
	if err := checkWho(op, r.By, r.Note); err != nil {
		return Setting{}, err
	}
	k := Key{Name: r.Name, Scope: r.Scope}
	if _, err := s.write(ctx, op, KindSetting, k.BucketKey(), r.Name, r.Scope, nil, r.By, r.Note, r.Revision); err != nil {
		return Setting{}, err
	}
	return s.one(ctx, d, k)
}

func (s *Service) one(ctx context.Context, d Def, k Key) (Setting, error) {
	byKey := map[Key]Stored{}
	st, err := s.Store.Get(ctx, k.BucketKey())
	switch {
	case err == nil:
		byKey[k] = st
	case !errs.Is(errs.NotFound, err):
		return Setting{}, err
	}
	return view(d, k, byKey), nil
}

// Flags lists the flags' definitions, by key; with key, only that flag's
// (errs.NotFound when it has none).
func (s *Service) Flags(ctx context.Context, key string) ([]Flag, error) {
	if key != "" {
		st, err := s.Store.Get(ctx, FlagBucketKey(key))
		if err != nil {
			if errs.Is(errs.NotFound, err) {
				return nil, errs.Errorf("flags.get", errs.NotFound, "no flag %q", key)
			}
			return nil, err
		}
		return []Flag{flagView(st)}, nil
	}
	stored, err := s.Store.List(ctx, FlagPrefix)
	if err != nil {
		return nil, err
	}
	out := make([]Flag, 0, len(stored))
	for _, st := range stored {
		out = append(out, flagView(st))
	}
	return out, nil
}

func flagView(st Stored) Flag {
	at := st.Entry.At
	return Flag{Definition: st.Entry.Value, By: st.Entry.By, At: &at, Note: st.Entry.Note, Revision: st.Revision}
}

// SetFlag validates a flag's definition (services/flags) and writes it,
// and audits the change. Errors as Set's.
func (s *Service) SetFlag(ctx context.Context, r SetFlagRequest) (Flag, error) {
	const op = "flags.set"
	if err := checkWho(op, r.By, r.Note); err != nil {
		return Flag{}, err
	}
	d, err := flags.Decode(r.Definition)
	if err != nil {
		return Flag{}, err
	}
	val, err := json.Marshal(d)
	if err != nil {
		return Flag{}, errs.E(op, errs.Invalid, err)
	}
	if _, err := s.write(ctx, op, KindFlag, FlagBucketKey(d.Key), d.Key, "", val, r.By, r.Note, r.Revision); err != nil {
		return Flag{}, err
	}
	fs, err := s.Flags(ctx, d.Key)
	if err != nil {
		return Flag{}, err
	}
	return fs[0], nil
}

// DeleteFlag deletes a flag's definition and audits the change; a flag
// not defined changes nothing.
func (s *Service) DeleteFlag(ctx context.Context, r DeleteFlagRequest) error {
	const op = "flags.delete"
	if !flags.ValidKey(r.Key) {
		return errs.Errorf(op, errs.Invalid, "flag key %q is not one", r.Key)
	}
	if err := checkWho(op, r.By, r.Note); err != nil {
		return err
	}
	_, err := s.write(ctx, op, KindFlag, FlagBucketKey(r.Key), r.Key, "", nil, r.By, r.Note, r.Revision)
	return err
}

// write puts val (nil: deletes) under key with compare-and-set against the
// current revision (or the caller's), and audits the change. Nothing
// changes when val equals what is stored. It returns the new revision (0:
// nothing written).
func (s *Service) write(ctx context.Context, op string, kind Kind, key, name, scope string, val json.RawMessage, by, note string, want uint64) (uint64, error) {
	for attempt := 1; ; attempt++ {
		cur, err := s.Store.Get(ctx, key)
		exists := err == nil
		if err != nil && !errs.Is(errs.NotFound, err) {
			return 0, err
		}
		if want != 0 && cur.Revision != want {
			return 0, errs.Errorf(op, errs.Conflict, "%s changed since revision %d (now %d): read it again", key, want, cur.Revision)
		}
		if (val == nil && !exists) || (val != nil && exists && bytes.Equal(cur.Entry.Value, val)) {
			return 0, nil // nothing to change
		}
		at := s.now()
		var rev uint64
		if val == nil {
			rev, err = s.Store.Delete(ctx, key, cur.Revision)
		} else {
			e := Entry{Value: val, By: by, At: at, Note: note}
			rev, err = s.Store.Put(ctx, key, e.Encode(), cur.Revision)
		}
		if errs.Is(errs.Conflict, err) && want == 0 && attempt < casAttempts {
			continue // another writer came first: decide again on its value
		}
		if err != nil {
			return 0, err
		}
		var old json.RawMessage
		if exists {
			old = cur.Entry.Value
		}
		c := Change{Kind: kind, Key: key, Name: name, Scope: scope, Old: old, New: val, By: by, Note: note, At: at, Revision: rev}
		if err := s.Auditor.Audit(ctx, c); err != nil {
			return rev, errs.E(op, errs.Unavailable,
				fmt.Sprintf("%s is changed (revision %d) but its audit event is not published yet; the config service publishes it when it next starts", key, rev), err)
		}
		return rev, nil
	}
}

// Reconcile publishes the audit event of every stored value whose last
// change has none (its publication failed, or the process stopped between
// the write and the event): each key's last audited revision is compared
// with its entry's. Only entries written since since are looked at: the
// events stream keeps events for a limited time, and an older change whose
// event has expired must not be published again. Deletions are not
// reconciled.
func (s *Service) Reconcile(ctx context.Context, since time.Time) (published int, err error) {
	var bad []error
	for _, prefix := range []string{SettingPrefix, FlagPrefix} {
		stored, err := s.Store.List(ctx, prefix)
		if err != nil {
			return published, err
		}
		for _, st := range stored {
			if st.Entry.At.Before(since) {
				continue
			}
			last, err := s.Auditor.LastAudited(ctx, st.Key)
			if err != nil {
				bad = append(bad, err)
				continue
			}
			if last >= st.Revision {
				continue
			}
			c := Change{Key: st.Key, New: st.Entry.Value, By: st.Entry.By, Note: st.Entry.Note, At: st.Entry.At, Revision: st.Revision, Reconciled: true}
			if k, ok := ParseBucketKey(st.Key); ok {
				c.Kind, c.Name, c.Scope = KindSetting, k.Name, k.Scope
			} else {
				c.Kind, c.Name = KindFlag, strings.TrimPrefix(st.Key, FlagPrefix)
			}
			if err := s.Auditor.Audit(ctx, c); err != nil {
				bad = append(bad, err)
				continue
			}
			published++
		}
	}
	return published, errors.Join(bad...)
}
