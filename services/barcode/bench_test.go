package barcode_test

import (
	"crypto/ed25519"
	"encoding/base64"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/services/barcode"
)

// texts returns the shown barcodes of n tickets at t0, so that the
// benchmarks verify distinct barcodes (nothing cached per ticket).
func texts(b *testing.B, f *fixture, n int) []string {
	out := make([]string, n)
	for i := range out {
		c := claims()
		c.TicketID = fmt.Sprintf("t_%032x", i)
		c.Device[0], c.Device[1] = byte(i), byte(i>>8)
		out[i] = show(b, f.key, c, t0)
	}
	return out
}

// BenchmarkVerify is a gate's full offline check: decoding, key lookup,
// signature, claims, revocation list and the rotating code. Parallel, a
// different barcode each time. Compare with BenchmarkRawEd25519Verify.
func BenchmarkVerify(b *testing.B) {
	f := newFixture()
	const n = 1024
	txts := texts(b, f, n)
	f.ver.Revoked = revocations(10000)
	b.SetBytes(int64(len(txts[0])))
	var next atomic.Uint64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := f.ver.Verify(txts[next.Add(1)%n]); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkRawEd25519Verify is the ceiling: ed25519.Verify alone over the
// same signed messages ("ticketing-barcode-v1" || payload) and signatures.
func BenchmarkRawEd25519Verify(b *testing.B) {
	f := newFixture()
	const n = 1024
	txts := texts(b, f, n)
	pub := f.key.Public().Key
	msgs, sigs := make([][]byte, n), make([][]byte, n)
	for i, text := range txts {
		static, _, _ := strings.Cut(text, ".")
		raw, err := base64.RawURLEncoding.DecodeString(static)
		if err != nil {
			b.Fatal(err)
		}
		end := len(raw) - ed25519.SignatureSize
		msgs[i] = append([]byte("ticketing-barcode-v1"), raw[:end]...)
		sigs[i] = raw[end:]
	}
	b.SetBytes(int64(len(txts[0])))
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

// BenchmarkVerifyForged is a flood of forged barcodes: one failed
// signature check each, no allocation.
func BenchmarkVerifyForged(b *testing.B) {
	f := newFixture()
	static, code, _ := strings.Cut(texts(b, f, 1)[0], ".")
	raw, err := base64.RawURLEncoding.DecodeString(static)
	if err != nil {
		b.Fatal(err)
	}
	raw[len(raw)-10] ^= 1 // in the signature
	tok := base64.RawURLEncoding.EncodeToString(raw) + "." + code
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := f.ver.Verify(tok); errs.ReasonOf(err) != barcode.ReasonBadSignature {
				b.Fatal(err)
			}
		}
	})
}

// revocations is a list of n other tickets.
func revocations(n int) *barcode.RevocationList {
	l := barcode.NewRevocationList(1)
	for i := range n {
		l.Revoke(fmt.Sprintf("t_revoked_%d", i))
	}
	return l
}
