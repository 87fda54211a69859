package inventory

import (
	"strings"
	"time"
)

// EventTypePrefix prefixes the CloudEvents type of inventory domain events.
const EventTypePrefix = "ticketing.inventory."

// EventData is the data of an inventory domain event.
type EventData struct {
	EventID   string     `json:"event_id"`
	Partition string     `json:"partition"`
	HoldID    string     `json:"hold_id"`
	Seats     []string   `json:"seats,omitempty"`
	Zone      string     `json:"zone,omitempty"`
	Quantity  int        `json:"quantity,omitempty"`
	Holder    string     `json:"holder,omitempty"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
	OrderID   string     `json:"order_id,omitempty"`
	At        time.Time  `json:"at"`
}

// EventOf returns the domain event of a decision of partition key: its
// CloudEvents type and data. ok is false for decisions that are not domain
// events. Every decision carries the seats or zone and quantity it concerns.
func EventOf(key string, d *Decision) (typ string, data EventData, ok bool) {
	if !d.Type.IsDomainEvent() {
		return "", EventData{}, false
	}
	event := key
	if i := strings.LastIndexByte(key, '.'); i > 0 {
		event = key[:i]
	}
	data = EventData{EventID: event, Partition: key, HoldID: d.Hold, Seats: d.Seats, Zone: d.Zone,
		Quantity: d.Qty, Holder: d.Holder, OrderID: d.Order, At: d.Time()}
	if d.Type == HoldPlaced {
		t := time.Unix(0, d.Expires).UTC()
		data.ExpiresAt = &t
	}
	return EventTypePrefix + string(d.Type), data, true
}
