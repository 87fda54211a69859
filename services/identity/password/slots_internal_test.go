package password

import (
	"runtime"
	"sync"
	"testing"
)

// However many goroutines hash and verify at once, at most one argon2id
// computation a CPU runs.
func TestArgon2RunsOneACPU(t *testing.T) {
	h, err := New(DefaultParams())
	if err != nil {
		t.Fatal(err)
	}
	maxInArgon2.Store(0)
	var wg sync.WaitGroup
	for range 3 * runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			enc, err := h.Hash("correct horse battery")
			if err != nil {
				t.Error(err)
				return
			}
			if ok, _, err := h.Verify("correct horse battery", enc); !ok || err != nil {
				t.Errorf("verify: %v %v", ok, err)
			}
		}()
	}
	wg.Wait()
	if got, limit := maxInArgon2.Load(), int64(runtime.GOMAXPROCS(0)); got < 1 || got > limit {
		t.Fatalf("%d argon2id computations ran at once, want 1 to %d", got, limit)
	}
}
