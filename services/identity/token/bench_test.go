package token_test

import (
	"crypto/ed25519"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/ticketing/ticketing/services/identity/token"
)

// tokens issues n tokens for distinct users, so that the benchmarks verify
// fresh tokens (nothing cached per token).
func tokens(b *testing.B, f *fixture, n int) []string {
	toks := make([]string, n)
	for i := range toks {
		toks[i] = f.issue(b, token.Request{Subject: fmt.Sprintf("u-%08d-7f3a9c", i), ClientID: "web", Scope: "openid orders:read tickets:read"}, t0)
	}
	return toks
}

// BenchmarkVerify is the access-token check of an authenticated request:
// parallel, a different fresh token each time. Compare with
// BenchmarkRawEd25519Verify.
func BenchmarkVerify(b *testing.B) {
	f := newFixture(b)
	const n = 4096
	toks := tokens(b, f, n)
	b.SetBytes(int64(len(toks[0])))
	var next atomic.Uint64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := next.Add(1) % n
			if _, err := f.ver.Verify(toks[i], t0); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkRawEd25519Verify is the ceiling: ed25519.Verify alone over
// messages of the tokens' signing-input size, parallel, distinct messages.
func BenchmarkRawEd25519Verify(b *testing.B) {
	f := newFixture(b)
	const n = 4096
	toks := tokens(b, f, n)
	priv := f.privateKey(b)
	pub := priv.Public().(ed25519.PublicKey)
	msgs, sigs := make([][]byte, n), make([][]byte, n)
	for i, tok := range toks {
		msgs[i] = []byte(tok[:len(tok)-87]) // the signing input
		sigs[i] = ed25519.Sign(priv, msgs[i])
	}
	b.SetBytes(int64(len(toks[0])))
	var next atomic.Uint64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := next.Add(1) % n
			if !ed25519.Verify(pub, msgs[i], sigs[i]) {
				b.Fatal("verify failed")
			}
		}
	})
}

// BenchmarkVerifyRefused is a flood of forged tokens: one failed
// signature check each.
func BenchmarkVerifyRefused(b *testing.B) {
	f := newFixture(b)
	forged := []byte(tokens(b, f, 1)[0])
	forged[len(forged)-5] ^= 1
	tok := string(forged)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := f.ver.Verify(tok, t0); err == nil {
				b.Fatal("forged token accepted")
			}
		}
	})
}

func BenchmarkIssue(b *testing.B) {
	f := newFixture(b)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, _, err := f.issuer.Issue(req, t0); err != nil {
				b.Fatal(err)
			}
		}
	})
}
