package session

import (
	"bytes"
	"strings"
	"testing"
)

func TestTokenShape(t *testing.T) {
	id := NewID()
	tok := newToken(id)
	got, ok := parseToken(tok)
	if !ok || got != id {
		t.Fatalf("parseToken(%q) = %q, %v", tok, got, ok)
	}
	secret := strings.TrimPrefix(tok, id+".")
	if len(secret) != 43 || strings.ContainsAny(secret, "+/=") {
		t.Fatalf("secret %q is not 32 bytes of unpadded base64url", secret)
	}
	if newToken(id) == tok {
		t.Fatal("two tokens alike")
	}
	for _, bad := range []string{"", id, id + ".", "." + secret, id + "." + secret + "=", id + "." + secret[:42], "a/b." + secret, id + "." + strings.Repeat("A", 44)} {
		if _, ok := parseToken(bad); ok {
			t.Errorf("parseToken(%q) accepted", bad)
		}
	}
}

// What a store keeps (the hashes and the sealed successor) does not give
// the successor: only the previous token opens it, for its own session.
func TestSealNeedsThePreviousToken(t *testing.T) {
	id := NewID()
	prev, next := newToken(id), newToken(id)
	sealed := seal(id, prev, next)
	if bytes.Contains(sealed, []byte(next)) || bytes.Contains(sealed, []byte(strings.TrimPrefix(next, id+"."))) {
		t.Fatal("the sealed value holds the token in clear")
	}
	if got, ok := open(id, prev, sealed); !ok || got != next {
		t.Fatalf("open with the previous token = %q, %v", got, ok)
	}
	if bytes.Equal(sealKey(prev), HashToken(prev)) {
		t.Fatal("the seal key is the stored hash")
	}
	for name, try := range map[string]func() (string, bool){
		"other token":   func() (string, bool) { return open(id, newToken(id), sealed) },
		"other session": func() (string, bool) { return open(NewID(), prev, sealed) },
		"the hash":      func() (string, bool) { return open(id, string(HashToken(prev)), sealed) },
		"truncated":     func() (string, bool) { return open(id, prev, sealed[:5]) },
		"tampered": func() (string, bool) {
			c := bytes.Clone(sealed)
			c[len(c)-1] ^= 1
			return open(id, prev, c)
		},
	} {
		if got, ok := try(); ok {
			t.Errorf("%s opened the sealed token: %q", name, got)
		}
	}
}

func TestSeenCleaned(t *testing.T) {
	for in, want := range map[string]string{
		" Firefox/140 ":                "Firefox/140",
		"a\x00b\nc":                    "abc",
		"\xffx":                        "\uFFFDx",
		strings.Repeat("é", 200):       strings.Repeat("é", 128),
		strings.Repeat("a", 1000):      strings.Repeat("a", 256),
		"a" + strings.Repeat("é", 200): "a" + strings.Repeat("é", 127),
	} {
		if got := cleanUserAgent(in); got != want {
			t.Errorf("cleanUserAgent(%q) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[string]string{
		"192.0.2.1":        "192.0.2.1",
		" 2001:db8::1 ":    "2001:db8::1",
		"::ffff:192.0.2.1": "192.0.2.1",
		"fe80::1%eth0":     "fe80::1",
		"example.com":      "",
		"":                 "",
	} {
		if got := cleanIP(in); got != want {
			t.Errorf("cleanIP(%q) = %q, want %q", in, got, want)
		}
	}
}
