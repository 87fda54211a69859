package pause

import (
	"context"
	"testing"
	"time"
)

func TestFor(t *testing.T) {
	if !For(context.Background(), time.Millisecond) {
		t.Fatal("a pause with a live context did not run its course")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if For(ctx, time.Hour) {
		t.Fatal("a pause with a done context ran its course")
	}
}

func TestDutyRestsAfterWork(t *testing.T) {
	d := NewDuty(context.Background(), time.Millisecond, 5*time.Millisecond)
	start := time.Now()
	for time.Since(start) < 3*time.Millisecond { // busy past Work
	}
	before := time.Now()
	d.Step()
	if rested := time.Since(before); rested < 5*time.Millisecond {
		t.Fatalf("rested %v after more than Work of work, want at least Rest", rested)
	}
	d.Work = time.Hour
	d.Step() // not an hour of work since the last rest
	if d.rests != 1 {
		t.Fatalf("%d rests, want 1", d.rests)
	}
}
