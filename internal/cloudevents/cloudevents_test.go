package cloudevents

import (
	"encoding/json"
	"testing"
	"time"
)

func TestEncodeMatchesMarshal(t *testing.T) {
	data := map[string]any{"hold_id": "ev.0.abc", "seats": []string{"a-1-1"}, "quantity": 1}
	raw, _ := json.Marshal(data)
	e := Event{SpecVersion: SpecVersion, ID: "ev.0:12:3", Source: "/inventory/ev.0", Type: "ticketing.inventory.hold.placed",
		Subject: "ev.0.abc", Time: time.Date(2026, 11, 25, 12, 0, 0, 123, time.UTC), DataContentType: "application/json", PartitionKey: "ev",
		TraceParent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}
	one, err := Encode(&e, data)
	if err != nil {
		t.Fatal(err)
	}
	e.Data = raw
	two, err := e.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if string(one) != string(two) {
		t.Fatalf("Encode:  %s\nMarshal: %s", one, two)
	}
	back, err := Unmarshal(one)
	if err != nil {
		t.Fatal(err)
	}
	if back.ID != e.ID || back.PartitionKey != "ev" || back.TraceParent != e.TraceParent || string(back.Data) != string(raw) || !back.Time.Equal(e.Time) {
		t.Fatalf("round trip: %+v", back)
	}
}

func TestValidate(t *testing.T) {
	for _, b := range []string{`{}`, `{"specversion":"0.3","id":"a","source":"s","type":"t","time":"2026-01-01T00:00:00Z"}`,
		`{"specversion":"1.0","source":"s","type":"t","time":"2026-01-01T00:00:00Z"}`, `{"specversion":"1.0","id":"a","source":"s","type":"t"}`} {
		if _, err := Unmarshal([]byte(b)); err == nil {
			t.Fatalf("%s: accepted", b)
		}
	}
}
