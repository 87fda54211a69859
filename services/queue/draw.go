package queue

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"sort"

	"github.com/ticketing/ticketing/internal/errs"
)

// SeedSize is the size in bytes of a draw seed from NewSeed.
const SeedSize = 32

// NewSeed returns a fresh random 32-byte draw seed from crypto/rand. Keep it
// secret until the pre-queue has been drawn; publish Commitment(seed) before
// the sale and the seed itself after it.
func NewSeed() []byte {
	s := make([]byte, SeedSize)
	_, _ = rand.Read(s) // never fails (crypto/rand, Go 1.24+)
	return s
}

// Commitment is the published commitment to a seed: SHA-256 of the seed
// bytes as 64 lowercase hex digits.
func Commitment(seed []byte) string {
	sum := sha256.Sum256(seed)
	return hex.EncodeToString(sum[:])
}

// VerifyCommitment checks that seed is the one committed to (the hex
// commitment may be in either case). It returns nil when it is, and an
// errs.Invalid error otherwise.
func VerifyCommitment(commitment string, seed []byte) error {
	want, err := hex.DecodeString(commitment)
	if err != nil || len(want) != sha256.Size {
		return errs.E("queue.verify_commitment", errs.Invalid, "commitment is not 64 hex digits").WithReason("bad_commitment")
	}
	got := sha256.Sum256(seed)
	if subtle.ConstantTimeCompare(want, got[:]) != 1 {
		return errs.E("queue.verify_commitment", errs.Invalid, "seed does not match the commitment").WithReason("commitment_mismatch")
	}
	return nil
}

// DrawKey is the sort key of one ticket in the draw:
// HMAC-SHA256(key = seed, message = the 16 bytes of the ticket id).
func DrawKey(seed []byte, t TicketID) [sha256.Size]byte {
	m := hmac.New(sha256.New, seed)
	m.Write(t[:])
	var k [sha256.Size]byte
	m.Sum(k[:0])
	return k
}

// Draw orders the pre-queue: it returns a new slice with the tickets sorted
// by DrawKey(seed, ticket) ascending, comparing keys as unsigned big-endian
// 256-bit numbers (bytewise); equal keys, which only equal ids produce, keep
// their ids' bytewise order. The input is not modified; duplicates are kept,
// so the result is always a permutation of the input. See the package doc
// for why this is unbiased and how to check it.
func Draw(seed []byte, tickets []TicketID) []TicketID {
	type keyed struct {
		key [sha256.Size]byte
		id  TicketID
	}
	ks := make([]keyed, len(tickets))
	m := hmac.New(sha256.New, seed)
	for i, t := range tickets {
		m.Reset()
		m.Write(t[:])
		m.Sum(ks[i].key[:0])
		ks[i].id = t
	}
	sort.Slice(ks, func(i, j int) bool {
		if c := bytes.Compare(ks[i].key[:], ks[j].key[:]); c != 0 {
			return c < 0
		}
		return bytes.Compare(ks[i].id[:], ks[j].id[:]) < 0
	})
	out := make([]TicketID, len(ks))
	for i := range ks {
		out[i] = ks[i].id
	}
	return out
}
