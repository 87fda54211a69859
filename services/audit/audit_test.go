package audit_test

import (
	"testing"
	"time"

	"github.com/ticketing/ticketing/services/audit"
)

func TestSealChains(t *testing.T) {
	body := []byte(`{"specversion":"1.0","id":"e1","source":"/s","type":"ticketing.inventory.hold.placed","time":"2026-03-14T15:09:26.535897932+01:00"}`)
	e1, err := audit.Seal(audit.Head{}, audit.Record{Topic: "t", Partition: 1, Offset: 7, Body: body})
	if err != nil {
		t.Fatal(err)
	}
	if e1.Seq != 1 || e1.PrevHash != (audit.Hash{}) || e1.EventID != "e1" || e1.Hash != e1.ComputeHash() ||
		!e1.Time.Equal(time.Date(2026, 3, 14, 14, 9, 26, 535897000, time.UTC)) {
		t.Fatalf("%+v", e1)
	}
	e2, _ := audit.Seal(audit.Head{Seq: 1, Offset: 7, Hash: e1.Hash}, audit.Record{Topic: "t", Partition: 1, Offset: 9, Body: body})
	if e2.Seq != 2 || e2.PrevHash != e1.Hash || e2.Hash == e1.Hash {
		t.Fatalf("%+v", e2)
	}
	// Every field is in the hash.
	for name, edit := range map[string]func(e *audit.Entry){
		"seq": func(e *audit.Entry) { e.Seq++ }, "topic": func(e *audit.Entry) { e.Topic += "x" },
		"partition": func(e *audit.Entry) { e.Partition++ }, "offset": func(e *audit.Entry) { e.Offset++ },
		"id": func(e *audit.Entry) { e.EventID += "x" }, "type": func(e *audit.Entry) { e.Type += "x" },
		"time": func(e *audit.Entry) { e.Time = e.Time.Add(time.Microsecond) }, "body": func(e *audit.Entry) { e.Body = append([]byte{}, e.Body[1:]...) },
		"prev": func(e *audit.Entry) { e.PrevHash[31] ^= 1 },
		// Moving a byte between adjacent fields changes the hash too.
		"boundary": func(e *audit.Entry) { e.EventID, e.Type = e.EventID+e.Type[:1], e.Type[1:] },
	} {
		c := e2
		edit(&c)
		if c.ComputeHash() == e2.Hash {
			t.Errorf("%s: not covered by the hash", name)
		}
	}
}

// FuzzSeal: any record body seals without panicking into an entry whose
// hash verifies and whose attributes are those ParseBody finds.
func FuzzSeal(f *testing.F) {
	f.Add([]byte(`{"specversion":"1.0","id":"e1","source":"/s","type":"t","time":"2026-03-14T15:09:26Z","data":{"event_id":"arena"}}`))
	f.Add([]byte(`not json`))
	f.Fuzz(func(t *testing.T, body []byte) {
		e, err := audit.Seal(audit.Head{Seq: 4, Offset: 10}, audit.Record{Topic: "t", Partition: 0, Offset: 11, Body: body})
		if err != nil {
			if len(body) <= audit.MaxBodyBytes {
				t.Fatalf("seal refused a body of %d bytes: %v", len(body), err)
			}
			return
		}
		if e.Seq != 5 || e.Hash != e.ComputeHash() || string(e.Body) != string(body) {
			t.Fatalf("%+v", e)
		}
		a, err := audit.ParseBody(body)
		if err == nil && (a.ID != e.EventID || a.Type != e.Type || !a.Time.Equal(e.Time)) {
			t.Fatalf("attributes %+v, entry %+v", a, e)
		}
		if err != nil && (e.EventID != "" || e.Type != "") {
			t.Fatalf("entry of an invalid body has attributes: %+v", e)
		}
	})
}
