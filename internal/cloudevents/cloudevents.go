// Package cloudevents is the envelope of our domain events: a CloudEvents 1.0
// structured JSON body, with the same attributes repeated as headers
// ("ce-id", "ce-type", …) so that NATS and Kafka consumers can route without
// parsing bodies. The event id is also the NATS Nats-Msg-Id and the Kafka
// dedupe key.
package cloudevents

import (
	"encoding/json"
	"errors"
	"time"

	"github.com/ticketing/ticketing/internal/jsonw"
)

// SpecVersion is the CloudEvents version we write.
const SpecVersion = "1.0"

// Header names (binary content mode attribute names).
const (
	HeaderSpecVersion  = "ce-specversion"
	HeaderID           = "ce-id"
	HeaderSource       = "ce-source"
	HeaderType         = "ce-type"
	HeaderSubject      = "ce-subject"
	HeaderTime         = "ce-time"
	HeaderPartitionKey = "ce-partitionkey"
	HeaderContentType  = "content-type"
	ContentType        = "application/cloudevents+json"
)

// Event is one domain event.
type Event struct {
	SpecVersion     string    `json:"specversion"`
	ID              string    `json:"id"`
	Source          string    `json:"source"`
	Type            string    `json:"type"`
	Subject         string    `json:"subject,omitempty"`
	Time            time.Time `json:"time"`
	DataContentType string    `json:"datacontenttype,omitempty"`
	// PartitionKey (the CloudEvents partitioning extension) names the
	// aggregate that orders events: the Kafka record key.
	PartitionKey string `json:"partitionkey,omitempty"`
	// TraceParent (the distributed-tracing extension) is the W3C trace
	// context of the operation that produced the event, set only when that
	// operation was traced (sampled).
	TraceParent string          `json:"traceparent,omitempty"`
	Data        json.RawMessage `json:"data,omitempty"`
}

// Validate checks the required attributes.
func (e *Event) Validate() error {
	switch {
	case e.SpecVersion != SpecVersion:
		return errors.New("cloudevents: specversion must be 1.0")
	case e.ID == "" || e.Source == "" || e.Type == "":
		return errors.New("cloudevents: id, source and type are required")
	case e.Time.IsZero():
		return errors.New("cloudevents: time is required")
	}
	return nil
}

// Headers returns the attributes as header pairs.
func (e *Event) Headers() [][2]string {
	h := [][2]string{
		{HeaderSpecVersion, e.SpecVersion},
		{HeaderID, e.ID},
		{HeaderSource, e.Source},
		{HeaderType, e.Type},
		{HeaderTime, e.Time.UTC().Format(time.RFC3339Nano)},
		{HeaderContentType, ContentType},
	}
	if e.Subject != "" {
		h = append(h, [2]string{HeaderSubject, e.Subject})
	}
	if e.PartitionKey != "" {
		h = append(h, [2]string{HeaderPartitionKey, e.PartitionKey})
	}
	return h
}

// Marshal encodes the structured-mode body.
func (e *Event) Marshal() ([]byte, error) { return json.Marshal(e) }

// JSONAppender is data that appends its own JSON encoding (exactly as
// encoding/json would write it), for events on hot paths.
type JSONAppender interface {
	AppendJSON(b []byte) ([]byte, error)
}

// Encode encodes the structured-mode body of e with data in place of
// e.Data, in one pass (no intermediate encoding of the data). Data that is
// a JSONAppender is encoded without reflection, and so is the envelope.
func Encode(e *Event, data any) ([]byte, error) {
	if a, ok := data.(JSONAppender); ok && a != nil {
		return AppendEncode(make([]byte, 0, 1024), e, a)
	}
	return json.Marshal(struct {
		SpecVersion     string    `json:"specversion"`
		ID              string    `json:"id"`
		Source          string    `json:"source"`
		Type            string    `json:"type"`
		Subject         string    `json:"subject,omitempty"`
		Time            time.Time `json:"time"`
		DataContentType string    `json:"datacontenttype,omitempty"`
		PartitionKey    string    `json:"partitionkey,omitempty"`
		TraceParent     string    `json:"traceparent,omitempty"`
		Data            any       `json:"data,omitempty"`
	}{e.SpecVersion, e.ID, e.Source, e.Type, e.Subject, e.Time, e.DataContentType, e.PartitionKey, e.TraceParent, data})
}

// AppendEncode appends to b what Encode writes for e with data, field by
// field, without reflection.
func AppendEncode(b []byte, e *Event, data JSONAppender) ([]byte, error) {
	b = append(b, '{')
	b = jsonw.Key(b, "specversion", true)
	b = jsonw.String(b, e.SpecVersion)
	b = jsonw.Key(b, "id", false)
	b = jsonw.String(b, e.ID)
	b = jsonw.Key(b, "source", false)
	b = jsonw.String(b, e.Source)
	b = jsonw.Key(b, "type", false)
	b = jsonw.String(b, e.Type)
	if e.Subject != "" {
		b = jsonw.Key(b, "subject", false)
		b = jsonw.String(b, e.Subject)
	}
	b = jsonw.Key(b, "time", false)
	b, err := jsonw.Time(b, e.Time)
	if err != nil {
		return nil, err
	}
	if e.DataContentType != "" {
		b = jsonw.Key(b, "datacontenttype", false)
		b = jsonw.String(b, e.DataContentType)
	}
	if e.PartitionKey != "" {
		b = jsonw.Key(b, "partitionkey", false)
		b = jsonw.String(b, e.PartitionKey)
	}
	if e.TraceParent != "" {
		b = jsonw.Key(b, "traceparent", false)
		b = jsonw.String(b, e.TraceParent)
	}
	b = jsonw.Key(b, "data", false)
	if b, err = data.AppendJSON(b); err != nil {
		return nil, err
	}
	return append(b, '}'), nil
}

// Unmarshal decodes and validates a structured-mode body.
func Unmarshal(b []byte) (*Event, error) {
	var e Event
	if err := json.Unmarshal(b, &e); err != nil {
		return nil, err
	}
	return &e, e.Validate()
}
