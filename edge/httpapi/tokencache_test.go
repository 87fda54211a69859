package httpapi

import (
	"testing"
	"time"
	"unsafe"

	"github.com/ticketing/ticketing/services/identity/token"
)

func TestVerifiedTokens(t *testing.T) {
	var v verifiedTokens
	now := time.Unix(1_800_000_000, 0)
	// The token as fasthttp hands it: a string over a buffer it reuses.
	buf := []byte("header.payload.signature")
	at := unsafe.String(&buf[0], len(buf))
	v.put(at, token.Claims{Subject: "u_1", Expiry: now.Add(time.Minute)})
	copy(buf, "XXXXXX") // the buffer is reused for the next request
	if c, ok := v.get("header.payload.signature", now); !ok || c.Subject != "u_1" {
		t.Fatalf("hit: %+v %v", c, ok)
	}
	if _, ok := v.get("header.payload.signature", now.Add(time.Minute)); ok {
		t.Fatal("an expired token was served from the cache")
	}
	v.put("later", token.Claims{Expiry: now.Add(time.Hour), NotBefore: now.Add(time.Minute)})
	if _, ok := v.get("later", now); ok {
		t.Fatal("a token not valid yet was served from the cache")
	}
	if _, ok := v.get("other", now); ok {
		t.Fatal("a token never verified was served")
	}
	for i := range maxVerified + 1 {
		v.put(string(rune(i))+"x", token.Claims{Expiry: now.Add(time.Hour)})
	}
	if n := len(v.m); n > maxVerified {
		t.Fatalf("%d tokens remembered, bound %d", n, maxVerified)
	}
}
