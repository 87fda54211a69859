package jsonr

import (
	"reflect"
	"testing"
)

// scan reads an object of string, int and string-array members (by the
// key's first letter: s, i, a) into a map; ok is Done.
func scan(b string) (map[string]any, bool) {
	s := New([]byte(b))
	out := map[string]any{}
	if !s.Begin() {
		return nil, false
	}
	for {
		k, ok := s.Next()
		if !ok {
			break
		}
		var v any
		switch k[0] {
		case 's':
			v, ok = s.String()
		case 'i':
			v, ok = s.Int()
		case 'a':
			v, ok = s.Strings()
		default:
			s.Fail()
		}
		if ok {
			out[string(k)] = v
		}
	}
	return out, s.Done()
}

func TestScanner(t *testing.T) {
	good := map[string]map[string]any{
		`{}`:                                {},
		` { "s" : "x" , "i" : -12 } `:       {"s": "x", "i": -12},
		`{"a":[],"a2":null,"a3":["p","q"]}`: {"a": []string{}, "a2": []string(nil), "a3": []string{"p", "q"}},
		`{"i":0,"i2":9223372036854775807}`:  {"i": 0, "i2": 9223372036854775807},
	}
	for b, want := range good {
		got, ok := scan(b)
		if !ok || !reflect.DeepEqual(got, want) {
			t.Errorf("%s: %v %v, want %v", b, got, ok, want)
		}
	}
	for _, b := range []string{``, `[]`, `null`, `{`, `{"s":"x"`, `{"s":"x"}x`, `{"s":"x",}`, `{"s":"x","s":"y"}`,
		`{"s":"\n"}`, `{"s":"\u0041"}`, `{"s":"é"}`, `{"s":1}`, `{"i":01}`, `{"i":1.5}`, `{"i":1e2}`, `{"i":-}`,
		`{"i":9223372036854775808}`, `{"a":[1]}`, `{"a":["x",]}`, `{"x":1}`, `{"s":null}`,
		`{"s1":"","s2":"","s3":"","s4":"","s5":"","s6":"","s7":"","s8":"","s9":"","s10":"","s11":""}`} {
		if got, ok := scan(b); ok {
			t.Errorf("%s: accepted as %v", b, got)
		}
	}
}
