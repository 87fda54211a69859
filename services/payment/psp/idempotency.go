package psp

import (
	"crypto/sha256"
	"encoding/hex"
	"net/url"
	"sync"
	"time"
)

// idemStore keeps the idempotency keys: those whose first request runs
// (in memory only) and those with a stored answer (from the journal).
type idemStore struct {
	ttl time.Duration
	mu  sync.Mutex
	m   map[string]*idemEntry
}

type idemEntry struct {
	fp      string
	done    bool
	status  int
	body    []byte
	created time.Time
}

func newIdemStore(ttl time.Duration) *idemStore {
	return &idemStore{ttl: ttl, m: map[string]*idemEntry{}}
}

// fingerprint identifies a request's parameters: its method, path and
// form (url.Values.Encode sorts the keys).
func fingerprint(method, path string, form url.Values) string {
	h := sha256.New()
	h.Write([]byte(method))
	h.Write([]byte{0})
	h.Write([]byte(path))
	h.Write([]byte{0})
	h.Write([]byte(form.Encode()))
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// idemVerdict is what begin decided.
type idemVerdict int

const (
	idemProceed  idemVerdict = iota // the key is ours now: run the request
	idemReplay                      // answer with the stored answer
	idemMismatch                    // the key was used with other parameters
	idemInFlight                    // the key's first request still runs
)

// begin claims key for a request of fingerprint fp, or says why not
// (with the stored answer for idemReplay).
func (s *idemStore) begin(key, fp string, now time.Time) (idemVerdict, *idemEntry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.m[key]; e != nil && !(e.done && now.Sub(e.created) >= s.ttl) {
		switch {
		case e.fp != fp:
			return idemMismatch, nil
		case !e.done:
			return idemInFlight, nil
		default:
			return idemReplay, e
		}
	}
	s.m[key] = &idemEntry{fp: fp, created: now}
	return idemProceed, nil
}

// abandon releases a key claimed by begin whose request stored nothing.
func (s *idemStore) abandon(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.m[key]; e != nil && !e.done {
		delete(s.m, key)
	}
}

// store records a key's answer (from a live request or the journal).
func (s *idemStore) store(r *idemRecord) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[r.Key] = &idemEntry{fp: r.Fingerprint, done: true, status: r.Status, body: r.Body, created: time.Unix(r.Created, 0)}
}

// expire forgets the answers older than the TTL.
func (s *idemStore) expire(now time.Time) (n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, e := range s.m {
		if e.done && now.Sub(e.created) >= s.ttl {
			delete(s.m, k)
			n++
		}
	}
	return n
}
