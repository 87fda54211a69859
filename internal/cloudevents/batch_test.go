package cloudevents

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

type rawData string

func (r rawData) AppendJSON(b []byte) ([]byte, error) { return append(b, r...), nil }

func TestBatchRoundTrip(t *testing.T) {
	b := []byte{'['}
	var want [][9]string
	for i, sub := range []string{"h-1", "", "h-\"3\" é"} {
		e := Event{SpecVersion: SpecVersion, ID: "ev.0:7:" + string(rune('0'+i)), Source: "/inventory/ev.0",
			Type: "ticketing.inventory.hold.placed", Subject: sub, Time: time.Date(2026, 12, 1, 10, 0, 0, 5, time.UTC),
			DataContentType: "application/json", PartitionKey: "ev"}
		if i == 1 {
			e.TraceParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
		}
		if i > 0 {
			b = append(b, ',')
		}
		var err error
		if b, err = AppendEncode(b, &e, rawData(`{"seats":["a","b"],"n":{"x":[1,2.5e3,-0.1,true,null]}}`)); err != nil {
			t.Fatal(err)
		}
		want = append(want, [9]string{"1.0", e.ID, e.Source, e.Type, sub, "2026-12-01T10:00:00.000000005Z", "application/json", "ev", e.TraceParent})
	}
	b = append(b, ']')
	els, err := SplitBatch(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(els) != len(want) {
		t.Fatalf("%d elements, want %d", len(els), len(want))
	}
	for i, el := range els {
		if got := strs(el.Attrs); got != want[i] {
			t.Fatalf("element %d: %q, want %q", i, got, want[i])
		}
		ev, err := Unmarshal(el.Raw)
		if err != nil || ev.ID != want[i][1] {
			t.Fatalf("element %d does not decode on its own: %v", i, err)
		}
	}
}

func TestSplitBatchRefuses(t *testing.T) {
	for _, b := range []string{``, `{}`, `null`, `[1]`, `[{}, 2]`, `[{}`, `[{}]x`, `[{"a":}]`, `[{"a":"\x01"}]`,
		`[{"a":"\q"}]`, `[{"a":01}]`, `[{"a":1.}]`, `[{"a":tru}]`, `[{},]`, `[{"a" 1}]`, `["x"]`,
		strings.Repeat("[", 3) + "]]]", `[{"a":` + strings.Repeat("[", maxDepth) + strings.Repeat("]", maxDepth) + `}]`} {
		if _, err := SplitBatch([]byte(b)); err == nil {
			t.Errorf("%.60q: accepted", b)
		}
	}
	if els, err := SplitBatch([]byte(" [ ] ")); err != nil || len(els) != 0 {
		t.Fatalf("empty batch: %v, %v", els, err)
	}
}

func strs(a Attributes) [9]string {
	return [9]string{string(a.SpecVersion), string(a.ID), string(a.Source), string(a.Type), string(a.Subject),
		string(a.Time), string(a.DataContentType), string(a.PartitionKey), string(a.TraceParent)}
}

type refElement struct {
	raw   []byte
	attrs [9]string
}

// referenceSplit is SplitBatch by encoding/json.
func referenceSplit(body []byte) ([]refElement, bool) {
	if !json.Valid(body) || bytes.TrimLeft(body, " \t\r\n")[0] != '[' {
		return nil, false
	}
	var arr []json.RawMessage
	if err := json.Unmarshal(body, &arr); err != nil {
		return nil, false
	}
	out := make([]refElement, 0, len(arr))
	for _, raw := range arr {
		if raw[0] != '{' {
			return nil, false
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal(raw, &m); err != nil {
			return nil, false
		}
		str := func(k string) string {
			var s string
			if v, ok := m[k]; ok && v[0] == '"' {
				_ = json.Unmarshal(v, &s)
			}
			return s
		}
		out = append(out, refElement{raw, [9]string{str("specversion"), str("id"), str("source"), str("type"),
			str("subject"), str("time"), str("datacontenttype"), str("partitionkey"), str("traceparent")}})
	}
	return out, true
}

func FuzzSplitBatch(f *testing.F) {
	for _, s := range []string{
		`[{"specversion":"1.0","id":"ev.0:1:0","source":"/inventory/ev.0","type":"t","time":"2026-12-01T10:00:00Z","data":{"a":[1,2]}}]`,
		`[]`, ` [ {} , {"id":"a","id":5} ] `, `[{"ty\u0070e":"x\ny","subject":"\ud800"}]`, `[{"type":"\xff\xfe"}]`,
		`[{"a":-0.5e+10,"b":[true,false,null,"s",{}]}]`, `{"id":"x"}`, `[{"id":"x"},]`, `[{"a":1e}]`, "[{\"a\":\"\x7f\"}]",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		got, err := SplitBatch(body)
		want, ok := referenceSplit(body)
		if (err == nil) != ok {
			t.Fatalf("SplitBatch(%q): err %v, encoding/json accepts: %v", body, err, ok)
		}
		if !ok {
			return
		}
		if len(got) != len(want) {
			t.Fatalf("SplitBatch(%q): %d elements, encoding/json %d", body, len(got), len(want))
		}
		for i := range got {
			if !bytes.Equal(got[i].Raw, want[i].raw) || strs(got[i].Attrs) != want[i].attrs {
				t.Fatalf("SplitBatch(%q) element %d: %q %q, encoding/json %q %q", body, i, got[i].Raw, strs(got[i].Attrs), want[i].raw, want[i].attrs)
			}
		}
	})
}

func BenchmarkSplitBatch(b *testing.B) {
	body := []byte{'['}
	for i := 0; i < 25; i++ {
		if i > 0 {
			body = append(body, ',')
		}
		e := Event{SpecVersion: SpecVersion, ID: "ev.0:7:1", Source: "/inventory/ev.0", Type: "ticketing.inventory.hold.placed",
			Subject: "ev.0.0123456789abcdef", Time: time.Now().UTC(), DataContentType: "application/json", PartitionKey: "ev"}
		body, _ = AppendEncode(body, &e, rawData(`{"hold_id":"ev.0.0123456789abcdef","event_id":"ev","partition":"ev.0","zone":"ga","quantity":1,"tickets":[{"zone":"ga","count":1,"face_value":{"amount":4500,"currency":"EUR"}}],"expires_at":"2026-12-01T10:10:00Z","organizer_id":"org-1","capacity":5000,"on_sale_at":"2026-11-01T10:00:00Z"}`))
	}
	body = append(body, ']')
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := SplitBatch(body); err != nil {
			b.Fatal(err)
		}
	}
}
