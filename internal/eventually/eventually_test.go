package eventually

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestWaitReturnsOnceTheConditionHolds(t *testing.T) {
	n := 0
	err := Wait(context.Background(), time.Second, func() error {
		if n++; n < 3 {
			return errors.New("not yet")
		}
		return nil
	})
	if err != nil || n != 3 {
		t.Fatalf("err %v after %d polls, want nil after 3", err, n)
	}
}

func TestWaitNamesTheLastErrorAtTheDeadline(t *testing.T) {
	err := Wait(context.Background(), 30*time.Millisecond, func() error { return errors.New("seats still held") })
	if err == nil || !strings.Contains(err.Error(), "seats still held") {
		t.Fatalf("err %v, want the condition's last error", err)
	}
}

func TestWaitEndsWithItsContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Wait(ctx, time.Hour, func() error { return errors.New("never") }); err == nil {
		t.Fatal("a cancelled context did not end the wait")
	}
}
