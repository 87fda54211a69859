package admission

import (
	"container/heap"
	"context"
	"hash/maphash"
	"strings"
	"sync"
	"time"

	"github.com/ticketing/ticketing/internal/errs"
)

// SpentStore remembers the ids of redeemed tokens. Safe for concurrent use
// by many goroutines, and, for a shared implementation, by many processes.
//
// A token is spent by one use, named by the caller (the hold request's
// idempotency key): a retry of that same use is not a replay, so a client
// that lost the answer to its hold can ask again and get the stored answer;
// and a use that did not happen (the core refused the hold) can give the
// token back with Unspend, so the shopper may try other seats.
type SpentStore interface {
	// Spend records jti as spent by use until the time until, which must
	// be in the future (else errs.Invalid). ok reports whether the use may
	// proceed: jti was not spent, or was spent by this same use. Of
	// concurrent and repeated calls with one jti and different uses before
	// until, exactly one gets true. After until the entry may be gone. A
	// cancelled ctx or an unreachable store returns an error (kind
	// Unavailable) and then the caller must treat the token as not
	// admitted.
	Spend(ctx context.Context, jti, use string, until time.Time) (ok bool, err error)
	// Unspend forgets jti if, and only if, it is spent by use; otherwise
	// it does nothing. Errors as for Spend.
	Unspend(ctx context.Context, jti, use string) error
}

// MemorySpentConfig configures a MemorySpentStore.
type MemorySpentConfig struct {
	// MaxEntries bounds the unexpired entries kept. When full, Spend
	// refuses (Unavailable) rather than forget an unexpired id, which
	// would allow a replay. Default 1,000,000 (about 100 MB).
	MaxEntries int
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// Defaults fills zero fields.
func (c *MemorySpentConfig) Defaults() {
	if c.MaxEntries == 0 {
		c.MaxEntries = 1_000_000
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Validate checks the config after Defaults.
func (c *MemorySpentConfig) Validate() error {
	if c.MaxEntries < spentShards {
		return errs.Errorf("admission.spent.config", errs.Invalid, "max entries %d is below %d", c.MaxEntries, spentShards)
	}
	return nil
}

const spentShards = 16

// MemorySpentStore is a SpentStore in one process, for `ticketing dev` and
// single-edge setups: sharded maps whose entries expire, each shard with a
// heap by expiry so that a Spend drops the expired entries it passes.
type MemorySpentStore struct {
	now    func() time.Time
	seed   maphash.Seed
	max    int // per shard
	shards [spentShards]spentShard
}

type spentShard struct {
	mu  sync.Mutex
	m   map[string]spent // by jti
	exp expiryHeap
}

type spent struct {
	until int64 // unix ns
	use   string
}

type expiry struct {
	until int64
	jti   string
}

type expiryHeap []expiry

func (h expiryHeap) Len() int           { return len(h) }
func (h expiryHeap) Less(i, j int) bool { return h[i].until < h[j].until }
func (h expiryHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *expiryHeap) Push(x any)        { *h = append(*h, x.(expiry)) }
func (h *expiryHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}

var _ SpentStore = (*MemorySpentStore)(nil)

// NewMemorySpentStore returns an empty store.
func NewMemorySpentStore(cfg MemorySpentConfig) (*MemorySpentStore, error) {
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &MemorySpentStore{now: cfg.Now, seed: maphash.MakeSeed(), max: cfg.MaxEntries / spentShards}
	for i := range s.shards {
		s.shards[i].m = map[string]spent{}
	}
	return s, nil
}

// Spend implements SpentStore.
func (s *MemorySpentStore) Spend(ctx context.Context, jti, use string, until time.Time) (bool, error) {
	const op = "admission.spend"
	if err := ctx.Err(); err != nil {
		return false, errs.E(op, errs.Unavailable, err)
	}
	now := s.now().UnixNano()
	u := until.UnixNano()
	if jti == "" || use == "" || u <= now {
		return false, errs.E(op, errs.Invalid, "empty id or use, or expiry not in the future")
	}
	sh := s.shard(jti)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	for len(sh.exp) > 0 && sh.exp[0].until <= now {
		e := heap.Pop(&sh.exp).(expiry)
		if sh.m[e.jti].until == e.until {
			delete(sh.m, e.jti)
		}
	}
	if old, ok := sh.m[jti]; ok && old.until > now {
		return old.use == use, nil
	}
	if len(sh.m) >= s.max {
		return false, errs.E(op, errs.Unavailable, "spent token store full")
	}
	// The store keeps the strings: copies, since callers' may point into
	// reused buffers (fasthttp's request headers).
	jti = strings.Clone(jti)
	sh.m[jti] = spent{until: u, use: strings.Clone(use)}
	heap.Push(&sh.exp, expiry{until: u, jti: jti})
	return true, nil
}

// Unspend implements SpentStore. The heap entry stays and is dropped when
// it expires (it no longer matches an entry).
func (s *MemorySpentStore) Unspend(ctx context.Context, jti, use string) error {
	if err := ctx.Err(); err != nil {
		return errs.E("admission.unspend", errs.Unavailable, err)
	}
	sh := s.shard(jti)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if old, ok := sh.m[jti]; ok && old.use == use {
		delete(sh.m, jti)
	}
	return nil
}

func (s *MemorySpentStore) shard(jti string) *spentShard {
	return &s.shards[maphash.String(s.seed, jti)%spentShards]
}

// Len is the number of entries kept, expired ones not yet dropped included.
func (s *MemorySpentStore) Len() int {
	n := 0
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		n += len(sh.m)
		sh.mu.Unlock()
	}
	return n
}
