package natskv

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ticketing/ticketing/internal/cloudevents"
	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/internal/pause"
	"github.com/ticketing/ticketing/services/settings"
)

// Domain event types of accepted changes.
const (
	TypeSettingsChanged = "ticketing.settings.changed"
	TypeFlagsChanged    = "ticketing.flags.changed"
)

// HeaderRevision carries the change's bucket revision on its event, so
// that LastAudited reads it without decoding the body.
const HeaderRevision = "Ticketing-Settings-Revision"

// ChangeData is the data of a change event.
type ChangeData struct {
	Kind  settings.Kind `json:"kind"`
	Key   string        `json:"key"`
	Name  string        `json:"name"`
	Scope string        `json:"scope,omitempty"`
	// Old and New are the values before and after (absent: unset).
	Old        json.RawMessage `json:"old,omitempty"`
	New        json.RawMessage `json:"new,omitempty"`
	By         string          `json:"by"`
	Note       string          `json:"note,omitempty"`
	At         time.Time       `json:"at"`
	Revision   uint64          `json:"revision"`
	Reconciled bool            `json:"reconciled,omitempty"`
}

// Auditor is a settings.Auditor publishing into the EVENTS stream: subject
// <prefix>settings.<name>[/<scope>] for settings and <prefix>flags.<key>
// for flags, type TypeSettingsChanged or TypeFlagsChanged, the bucket key
// as partition key, and an id derived from the key and revision (also the
// Nats-Msg-Id), so that a change published twice is one event.
type Auditor struct {
	JS jetstream.JetStream
	// Events is the EVENTS stream (LastAudited reads its last message of a
	// subject).
	Events jetstream.Stream
	// Prefix is the EVENTS subjects' prefix (internal/jsnames.EventsSubjPx).
	// Default "events.".
	Prefix string
	// Source is the events' CloudEvents source, e.g. "/core/core-1/config".
	Source string
}

var _ settings.Auditor = (*Auditor)(nil)

// Subject is the EVENTS subject of a change of key ("setting.…" or
// "flag.…") under prefix.
func Subject(prefix, key string) string {
	if prefix == "" {
		prefix = "events."
	}
	if k, ok := settings.ParseBucketKey(key); ok {
		return prefix + "settings." + k.String()
	}
	return prefix + "flags." + key[len(settings.FlagPrefix):]
}

// EventID is the event id of key's change at revision.
func EventID(key string, revision uint64) string {
	h := sha256.Sum256([]byte(key + "\x00" + strconv.FormatUint(revision, 10)))
	return hex.EncodeToString(h[:16])
}

// Audit implements settings.Auditor, trying again for up to three
// attempts while the stream does not answer.
func (a *Auditor) Audit(ctx context.Context, c settings.Change) error {
	const op = "settings.audit"
	typ := TypeSettingsChanged
	if c.Kind == settings.KindFlag {
		typ = TypeFlagsChanged
	}
	subject := c.Name
	if c.Scope != "" {
		subject += "/" + c.Scope
	}
	ev := cloudevents.Event{SpecVersion: cloudevents.SpecVersion, ID: EventID(c.Key, c.Revision), Source: a.Source, Type: typ,
		Subject: subject, Time: c.At.UTC(), DataContentType: "application/json", PartitionKey: c.Key}
	body, err := cloudevents.Encode(&ev, ChangeData{Kind: c.Kind, Key: c.Key, Name: c.Name, Scope: c.Scope, Old: c.Old, New: c.New,
		By: c.By, Note: c.Note, At: c.At.UTC(), Revision: c.Revision, Reconciled: c.Reconciled})
	if err != nil {
		return errs.E(op, errs.Other, err)
	}
	m := nats.NewMsg(Subject(a.Prefix, c.Key))
	for _, kv := range ev.Headers() {
		m.Header.Set(kv[0], kv[1])
	}
	m.Header.Set(HeaderRevision, strconv.FormatUint(c.Revision, 10))
	m.Data = body
	for attempt := 1; ; attempt++ {
		_, err = a.JS.PublishMsg(ctx, m, jetstream.WithMsgID(ev.ID))
		if err == nil {
			return nil
		}
		if attempt == 3 || !pause.For(ctx, 200*time.Millisecond) {
			return errs.E(op, errs.Unavailable, "the EVENTS stream is unavailable", err)
		}
	}
}

// LastAudited implements settings.Auditor.
func (a *Auditor) LastAudited(ctx context.Context, key string) (uint64, error) {
	m, err := a.Events.GetLastMsgForSubject(ctx, Subject(a.Prefix, key))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, errs.E("settings.last_audited", errs.Unavailable, err)
	}
	rev, err := strconv.ParseUint(m.Header.Get(HeaderRevision), 10, 64)
	if err != nil {
		return 0, errs.E("settings.last_audited", errs.Other, "an event without its revision", err)
	}
	return rev, nil
}
