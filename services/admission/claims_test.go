package admission

import (
	"encoding/json"
	"testing"
)

func TestParseClaims(t *testing.T) {
	const base = `"iss":"i","aud":"a","sub":"s","evt":"e","iat":1,"nbf":1,"exp":2,"jti":"j"`
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{`{` + base + `}`, true},
		{` { ` + base + ` } `, true},
		{`{` + base + `,"iss":"x"}`, false}, // duplicate
		{`{` + base + `,"x":1}`, false},     // unknown member
		{`{"iss":"i"}`, false},              // missing claims
		{`{}`, false},
		{`{` + base + `}x`, false},
		{`{` + base + `,}`, false},
		{`[` + base + `]`, false},
		{`{"iss":"i","aud":"a","sub":"s","evt":"e","iat":1.5,"nbf":1,"exp":2,"jti":"j"}`, false},
		{`{"iss":"i","aud":"a","sub":"s","evt":"e","iat":-1,"nbf":1,"exp":2,"jti":"j"}`, false},
		{`{"iss":"i","aud":"a","sub":"s","evt":"e","iat":01,"nbf":1,"exp":2,"jti":"j"}`, false},
		{`{"iss":"i","aud":"a","sub":"s","evt":"e","iat":1e3,"nbf":1,"exp":2,"jti":"j"}`, false},
		{`{"iss":"i","aud":"a","sub":"s","evt":"e","iat":1234567890123,"nbf":1,"exp":2,"jti":"j"}`, false},
		{`{"iss":"i","aud":["a"],"sub":"s","evt":"e","iat":1,"nbf":1,"exp":2,"jti":"j"}`, false},
		{`{"iss":"i","aud":"a","sub":"s` + "\n" + `","evt":"e","iat":1,"nbf":1,"exp":2,"jti":"j"}`, false},
		{`{"iss":"i","aud":"a","sub":"s\"","evt":"e","iat":1,"nbf":1,"exp":2,"jti":"j"`, false},
		{`{"iss":"i","aud":"a","sub":"s` + "\xd3" + `","evt":"e","iat":1,"nbf":1,"exp":2,"jti":"j"}`, false}, // invalid UTF-8 (found by FuzzVerify)
	} {
		if _, got := parseClaims([]byte(tc.in)); got != tc.ok {
			t.Errorf("parseClaims(%s) = %v, want %v", tc.in, got, tc.ok)
		}
	}
	// What json.Marshal writes, escapes included, reads back the same.
	w := map[string]any{"iss": "i", "aud": "a", "sub": `q"\<&>é`, "evt": "e\u2028", "iat": 1, "nbf": 1, "exp": 99, "jti": "j"}
	b, _ := json.Marshal(w)
	c, ok := parseClaims(b)
	if !ok || string(c.sub) != `q"\<&>é` || string(c.evt) != "e\u2028" || c.exp != 99 {
		t.Fatalf("parseClaims(%s) = %+v", b, c)
	}
}
