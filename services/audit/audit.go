// Package audit keeps every domain event in an immutable, hash-chained log,
// so that an auditor can prove that no event was changed, removed or
// reordered after it was recorded. It is the domain only: the chain, the
// canonical encoding that is hashed, the Store interface and Verify.
// Adapters: services/audit/postgres (production, an append-only table) and
// services/audit/filelog (append-only files for `ticketing dev`); both pass
// the contract suite services/audit/audittest. Feed is how a Kafka consumer
// (bridge/kafka.NewRunner) feeds a store from the topics the bridge writes.
//
// # Chains
//
// There is one chain per Kafka (topic, partition): the records of a
// partition arrive in offset order, so a chain is appended by one consumer
// at a time without coordination with the others. Entry n of a chain
// (Seq n, from 1) carries the hash of entry n-1 (the zero Hash for the
// first), and its own hash is SHA-256 over the canonical encoding of all
// its fields (Entry.ComputeHash). Changing any field of an entry changes
// its hash; re-hashing it breaks the next entry's PrevHash; removing an
// entry leaves a gap in Seq; moving one breaks the order of Seq.
//
// What a chain cannot show by itself is the loss of its newest entries:
// a log cut after entry n verifies. Verify reports each chain's head (Seq
// and hash) so that it can be recorded elsewhere (anchored) and compared
// later.
//
// # Exactly once
//
// An entry records the Kafka offset of its record. A chain's head offset
// plus one is where its consumer resumes (Store.Heads), and Append skips
// records at or below the head offset, so a record delivered again after a
// crash or a rebalance is never appended twice. Append also refuses (skips)
// a record whose event id is already in the log, in any chain: the bridge
// may produce an event again after a crash, and the log keeps the first.
package audit

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"log/slog"
	"time"

	"github.com/ticketing/ticketing/internal/cloudevents"
	"github.com/ticketing/ticketing/internal/errs"
)

// Limits.
const (
	// MaxBodyBytes caps a record body; larger ones are refused (the Kafka
	// producer's batch cap is about as large).
	MaxBodyBytes = 1 << 20
	// MaxIDLen caps an event id and an event type.
	MaxIDLen = 256
)

// Chain names a chain: a Kafka topic partition.
type Chain struct {
	Topic     string
	Partition int32
}

func (c Chain) String() string { return fmt.Sprintf("%s/%d", c.Topic, c.Partition) }

// Less orders chains by topic, then partition.
func (c Chain) Less(d Chain) bool {
	if c.Topic != d.Topic {
		return c.Topic < d.Topic
	}
	return c.Partition < d.Partition
}

// Hash is a SHA-256 digest, written as 64 hex digits.
type Hash [sha256.Size]byte

func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// MarshalText writes the hash in hex.
func (h Hash) MarshalText() ([]byte, error) { return []byte(h.String()), nil }

// UnmarshalText reads 64 hex digits.
func (h *Hash) UnmarshalText(b []byte) error {
	if len(b) != 2*len(h) {
		return fmt.Errorf("audit: hash: want %d hex digits, got %d", 2*len(h), len(b))
	}
	_, err := hex.Decode(h[:], b)
	return err
}

// HashFromBytes copies a stored digest; it fails unless b has 32 bytes.
func HashFromBytes(b []byte) (Hash, error) {
	var h Hash
	if len(b) != len(h) {
		return h, fmt.Errorf("audit: hash has %d bytes, want %d", len(b), len(h))
	}
	copy(h[:], b)
	return h, nil
}

// Record is a Kafka record to append.
type Record struct {
	Topic     string
	Partition int32
	Offset    int64
	// Body is the record value: a CloudEvents structured JSON body.
	Body []byte
}

// Chain returns the record's chain.
func (r *Record) Chain() Chain { return Chain{r.Topic, r.Partition} }

// Entry is one entry of a chain.
type Entry struct {
	Seq       int64 // 1, 2, … within the chain
	Topic     string
	Partition int32
	Offset    int64 // the Kafka offset of the record
	// EventID, Type and Time are the CloudEvents attributes of the body.
	// When the body is not a valid CloudEvent the record is kept all the
	// same, as received, with EventID and Type empty and Time the Unix
	// epoch.
	EventID string
	Type    string
	Time    time.Time // UTC, microseconds (what every store keeps)
	Body    []byte
	// PrevHash is the Hash of entry Seq-1; zero for the first entry.
	PrevHash Hash
	Hash     Hash
}

// Chain returns the entry's chain.
func (e *Entry) Chain() Chain { return Chain{e.Topic, e.Partition} }

// hashDomain prefixes the encoding, so that the hash of an entry cannot be
// the hash of anything else encoded the same way.
const hashDomain = "ticketing.audit.entry.v1\n"

// ComputeHash returns SHA-256 over the canonical encoding of every field
// but Hash: the domain string, then Seq, Topic, Partition, Offset, EventID,
// Type, Time (Unix microseconds), Body and PrevHash, integers big-endian
// and strings and the body preceded by their length (so no two field
// sequences encode alike).
func (e *Entry) ComputeHash() Hash {
	h := sha256.New()
	var b [8]byte
	u64 := func(v uint64) {
		binary.BigEndian.PutUint64(b[:], v)
		h.Write(b[:])
	}
	bytes := func(s []byte) {
		u64(uint64(len(s)))
		h.Write(s)
	}
	h.Write([]byte(hashDomain))
	u64(uint64(e.Seq))
	bytes([]byte(e.Topic))
	u64(uint64(int64(e.Partition)))
	u64(uint64(e.Offset))
	bytes([]byte(e.EventID))
	bytes([]byte(e.Type))
	u64(uint64(e.Time.UnixMicro()))
	bytes(e.Body)
	h.Write(e.PrevHash[:])
	var out Hash
	h.Sum(out[:0])
	return out
}

// Head is the newest entry of a chain, as far as appending is concerned.
// The zero Head (Seq 0) is an empty chain, whose next offset is
// unknown (NextOffset reports false).
type Head struct {
	Seq    int64
	Offset int64
	Hash   Hash
}

// NextOffset is the offset of the first record not yet appended; ok is
// false for an empty chain.
func (h Head) NextOffset() (int64, bool) {
	if h.Seq == 0 {
		return 0, false
	}
	return h.Offset + 1, true
}

// Attributes are the CloudEvents attributes an entry keeps.
type Attributes struct {
	ID   string
	Type string
	Time time.Time
}

// ParseBody decodes the CloudEvents attributes of a record body. A body
// that is not a valid CloudEvent is errs.Invalid.
func ParseBody(body []byte) (Attributes, error) {
	const op = "audit.parse"
	if len(body) > MaxBodyBytes {
		return Attributes{}, errs.Errorf(op, errs.TooLarge, "body of %d bytes is over %d", len(body), MaxBodyBytes)
	}
	ev, err := cloudevents.Unmarshal(body)
	if err != nil {
		return Attributes{}, errs.E(op, errs.Invalid, err)
	}
	if len(ev.ID) > MaxIDLen || len(ev.Type) > MaxIDLen {
		return Attributes{}, errs.Errorf(op, errs.Invalid, "event id or type longer than %d bytes", MaxIDLen)
	}
	return Attributes{ID: ev.ID, Type: ev.Type, Time: NormalizeTime(ev.Time)}, nil
}

// NormalizeTime returns t in UTC truncated to microseconds, the precision
// that every store keeps and that is hashed.
func NormalizeTime(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

// Seal returns the entry that follows head in r's chain. A body that is
// not a valid CloudEvent gives an entry without attributes; only a body
// over MaxBodyBytes is refused (errs.TooLarge).
func Seal(head Head, r Record) (Entry, error) {
	if len(r.Body) > MaxBodyBytes {
		return Entry{}, errs.Errorf("audit.seal", errs.TooLarge, "record %s@%d: body of %d bytes is over %d",
			r.Chain(), r.Offset, len(r.Body), MaxBodyBytes)
	}
	a, err := ParseBody(r.Body)
	if err != nil {
		a = Attributes{}
	}
	e := Entry{
		Seq: head.Seq + 1, Topic: r.Topic, Partition: r.Partition, Offset: r.Offset,
		EventID: a.ID, Type: a.Type, Time: a.Time, Body: r.Body, PrevHash: head.Hash,
	}
	if a.Time.IsZero() {
		e.Time = time.Unix(0, 0).UTC()
	}
	e.Hash = e.ComputeHash()
	return e, nil
}

// AppendResult counts what Append did with the records it was given.
type AppendResult struct {
	Appended int
	// Redelivered records were at or below their chain's head offset:
	// appended before.
	Redelivered int
	// Duplicates had an event id already in the log (or earlier in the
	// same call) and were not appended.
	Duplicates int
}

// Store keeps the chains. Implementations are safe for concurrent use;
// appends to one chain are serialized, also between processes sharing the
// backing store (PostgreSQL) — the embedded file store is for one process.
// Cancelling the context abandons a call; an abandoned Append may or may
// not have taken effect (Heads tells).
type Store interface {
	// Append seals recs (Seal) and appends them to their chains. The
	// records of one chain must be in increasing offset order (a consumer
	// batch is), else the call fails with errs.Invalid and appends
	// nothing. Records at or below their chain's head offset are skipped
	// (Redelivered), and so are records whose event id is in the log
	// already (Duplicates). A body over MaxBodyBytes fails the call
	// (errs.TooLarge) before anything is written.
	//
	// The PostgreSQL store appends all or nothing. The file store appends
	// chain by chain; a crash may leave a chain with a prefix of its
	// records of the call, never with a gap, and the consumer resumes
	// after that prefix.
	Append(ctx context.Context, recs []Record) (AppendResult, error)
	// Heads returns the heads of the chains named; an empty chain is
	// missing from the map.
	Heads(ctx context.Context, chains []Chain) (map[Chain]Head, error)
	Reader
}

// Reader reads the raw chains, for Verify.
type Reader interface {
	// Chains lists the chains that have entries, sorted (Chain.Less).
	Chains(ctx context.Context) ([]Chain, error)
	// Entries calls fn with the entries of chain c in stored order
	// (append order unless someone tampered with storage), exactly as
	// stored, until fn returns an error, which Entries returns. A stored
	// entry that cannot be decoded at all is reported as a *MalformedError.
	Entries(ctx context.Context, c Chain, fn func(Entry) error) error
}

// MalformedError is an entry that a store cannot decode: its Position in
// stored order (from 1) and why.
type MalformedError struct {
	Chain    Chain
	Position int64
	Err      error
}

func (e *MalformedError) Error() string {
	return fmt.Sprintf("audit: chain %s: stored entry %d is malformed: %v", e.Chain, e.Position, e.Err)
}

func (e *MalformedError) Unwrap() error { return e.Err }

// CheckOrder fails with errs.Invalid unless the records of each chain are
// in increasing offset order.
func CheckOrder(recs []Record) error {
	last := map[Chain]int64{}
	for _, r := range recs {
		c := r.Chain()
		if at, ok := last[c]; ok && r.Offset <= at {
			return errs.Errorf("audit.append", errs.Invalid, "chain %s: offset %d after %d: records must be in increasing offset order", c, r.Offset, at)
		}
		if r.Offset < 0 || r.Topic == "" {
			return errs.Errorf("audit.append", errs.Invalid, "record %s@%d: a topic and an offset ≥ 0 are required", c, r.Offset)
		}
		last[c] = r.Offset
	}
	return nil
}

// IDs returns the distinct non-empty event ids of recs' bodies, for a
// store to look up before Plan.
func IDs(recs []Record) []string {
	seen := map[string]bool{}
	var ids []string
	for _, r := range recs {
		if a, err := ParseBody(r.Body); err == nil && !seen[a.ID] {
			seen[a.ID] = true
			ids = append(ids, a.ID)
		}
	}
	return ids
}

// Plan decides what one Append call writes, given the heads of the
// records' chains (an empty chain may be missing) and which of their event
// ids (IDs) the log has already. It returns the sealed entries in the order
// of recs, chained per chain from its head, and the counts. Stores call it
// while they hold their chains' append locks.
func Plan(heads map[Chain]Head, known map[string]bool, recs []Record) ([]Entry, AppendResult, error) {
	var res AppendResult
	if err := CheckOrder(recs); err != nil {
		return nil, res, err
	}
	cur := make(map[Chain]Head, len(heads))
	for c, h := range heads {
		cur[c] = h
	}
	ids := make(map[string]bool, len(known))
	for id, ok := range known {
		ids[id] = ok
	}
	var out []Entry
	for _, r := range recs {
		h := cur[r.Chain()]
		if h.Seq > 0 && r.Offset <= h.Offset {
			res.Redelivered++
			continue
		}
		e, err := Seal(h, r)
		if err != nil {
			return nil, AppendResult{}, err
		}
		if e.EventID != "" && ids[e.EventID] {
			res.Duplicates++
			continue
		}
		if e.EventID != "" {
			ids[e.EventID] = true
		}
		cur[r.Chain()] = Head{Seq: e.Seq, Offset: e.Offset, Hash: e.Hash}
		out = append(out, e)
		res.Appended++
	}
	return out, res, nil
}

// Feed is how a consumer of the topics the bridge writes
// (bridge/kafka.NewRunner) feeds a Store: a partition is a Chain, which
// resumes after its head, and each batch is one Append, whose outcome it
// logs to Log (default slog.Default()).
type Feed struct {
	Store Store
	Log   *slog.Logger
}

// Offsets are the chains' head offsets plus one; an empty chain has none.
func (f Feed) Offsets(ctx context.Context, chains []Chain) (map[Chain]int64, error) {
	heads, err := f.Store.Heads(ctx, chains)
	if err != nil {
		return nil, err
	}
	next := make(map[Chain]int64, len(heads))
	for c, h := range heads {
		if n, ok := h.NextOffset(); ok {
			next[c] = n
		}
	}
	return next, nil
}

// Apply appends a batch.
func (f Feed) Apply(ctx context.Context, recs []Record) error {
	res, err := f.Store.Append(ctx, recs)
	if err != nil {
		return err
	}
	log := cmp.Or(f.Log, slog.Default())
	if res.Duplicates > 0 {
		log.Warn("audit: records with an event id already in the log were not appended", "count", res.Duplicates)
	}
	log.Debug("audit: batch appended", "appended", res.Appended, "redelivered", res.Redelivered, "duplicates", res.Duplicates)
	return nil
}

// Record is the record at offset of chain c.
func (Feed) Record(c Chain, offset int64, value []byte) Record {
	return Record{Topic: c.Topic, Partition: c.Partition, Offset: offset, Body: value}
}
