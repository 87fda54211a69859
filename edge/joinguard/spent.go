package joinguard

import (
	"encoding/binary"
	"sync"
	"time"

	"github.com/ticketing/ticketing/internal/pow"
)

const spentShards = 16

// spentSet remembers accepted challenges (by their random nonce) until they
// expire, at most max of them. A full shard first drops its expired
// entries; when all are live it forgets the one closest to expiry out of a
// small sample, so the set never grows beyond its bound and what it forgets
// is what would have been harmless soonest.
type spentSet struct {
	shards [spentShards]spentShard
}

type spentShard struct {
	mu        sync.Mutex
	m         map[[pow.NonceLen]byte]int64 // nonce → expiry, unix seconds
	max       int
	lastSweep int64 // unix seconds: a full shard scans at most once a second
}

func newSpentSet(max int) *spentSet {
	s := &spentSet{}
	per := max / spentShards
	if per < 1 {
		per = 1
	}
	for i := range s.shards {
		s.shards[i].m = make(map[[pow.NonceLen]byte]int64)
		s.shards[i].max = per
	}
	return s
}

// spend records nonce as used until expiry and reports whether it was not
// used before.
func (s *spentSet) spend(nonce [pow.NonceLen]byte, expiry int64, now time.Time) bool {
	sh := &s.shards[binary.LittleEndian.Uint32(nonce[:4])%spentShards]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	t := now.Unix()
	if exp, ok := sh.m[nonce]; ok && exp > t {
		return false
	}
	if len(sh.m) >= sh.max && t != sh.lastSweep {
		sh.lastSweep = t
		for k, exp := range sh.m {
			if exp <= t {
				delete(sh.m, k)
			}
		}
	}
	if len(sh.m) >= sh.max {
		const sample = 8
		var victim [pow.NonceLen]byte
		first, i := true, 0
		var soonest int64
		for k, exp := range sh.m {
			if first || exp < soonest {
				victim, soonest, first = k, exp, false
			}
			if i++; i == sample {
				break
			}
		}
		delete(sh.m, victim)
	}
	sh.m[nonce] = expiry
	return true
}

func (s *spentSet) len() int {
	n := 0
	for i := range s.shards {
		s.shards[i].mu.Lock()
		n += len(s.shards[i].m)
		s.shards[i].mu.Unlock()
	}
	return n
}
