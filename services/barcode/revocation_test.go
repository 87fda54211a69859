package barcode_test

import (
	"encoding/json"
	"testing"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/services/barcode"
)

func TestRevocationList(t *testing.T) {
	d1, d2 := barcode.DeviceBinding{1}, barcode.DeviceBinding{2}
	l := barcode.NewRevocationList(7)
	l.Revoke("t_b")
	l.Supersede("t_a", d2)
	l.Supersede("t_c", d1)
	l.Revoke("t_c") // replaces the entry

	check := func(l *barcode.RevocationList) {
		t.Helper()
		for _, tc := range []struct {
			ticket string
			device barcode.DeviceBinding
			want   bool
		}{
			{"t_a", d1, true}, {"t_a", d2, false},
			{"t_b", d1, true}, {"t_b", d2, true},
			{"t_c", d1, true},
			{"t_d", d1, false},
		} {
			if got := l.Revoked(tc.ticket, tc.device); got != tc.want {
				t.Errorf("Revoked(%s, %v) = %v, want %v", tc.ticket, tc.device, got, tc.want)
			}
		}
	}
	check(l)

	b, err := json.Marshal(l)
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"sequence":7,"tickets":[{"ticket":"t_a","current":"AgAAAAAAAAA"},{"ticket":"t_b"},{"ticket":"t_c"}]}`
	if string(b) != want {
		t.Fatalf("JSON = %s\nwant   %s", b, want)
	}
	var back barcode.RevocationList
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.Sequence != 7 || back.Len() != 3 {
		t.Fatalf("back: sequence %d, %d tickets", back.Sequence, back.Len())
	}
	check(&back)

	var zero barcode.RevocationList // usable without NewRevocationList
	if zero.Revoked("t_a", d1) {
		t.Fatal("empty list revokes")
	}
	zero.Revoke("t_a")
	if !zero.Revoked("t_a", d1) {
		t.Fatal("zero list: Revoke had no effect")
	}
}

func TestRevocationListJSONRefused(t *testing.T) {
	for _, in := range []string{
		`{`,
		`{"sequence":1,"tickets":[]} x`,
		`{"sequence":-1,"tickets":[]}`,
		`{"sequence":1,"tickets":[],"extra":1}`,
		`{"sequence":1,"tickets":[{"ticket":""}]}`,
		`{"sequence":1,"tickets":[{"ticket":"t\u0000"}]}`,
		`{"sequence":1,"tickets":[{"ticket":"t_a"},{"ticket":"t_a"}]}`,
		`{"sequence":1,"tickets":[{"ticket":"t_a","current":"AAAA"}]}`,
		`{"sequence":1,"tickets":[{"ticket":"t_a","current":"!!!!!!!!!!!"}]}`,
	} {
		l := barcode.NewRevocationList(3)
		l.Revoke("keep")
		err := l.UnmarshalJSON([]byte(in)) // not json.Unmarshal: it checks the syntax first
		if errs.ReasonOf(err) != barcode.ReasonMalformed {
			t.Errorf("Unmarshal(%s): err = %v", in, err)
		}
		if l.Sequence != 3 || !l.Revoked("keep", barcode.DeviceBinding{}) {
			t.Errorf("Unmarshal(%s) changed the list", in)
		}
	}
}
