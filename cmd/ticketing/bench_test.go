package main

import (
	"context"
	"encoding/json"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/ticketing/ticketing/cmd/ticketing/bench"
)

// TestBenchHolds runs `ticketing bench holds --json` briefly, over NATS and
// through HTTP, and checks what it reports: every phase ran without errors,
// and the final state accounts for every acknowledged hold and no more;
// through HTTP the load generator signed in once and renewed its session
// (access tokens of 10 s here) while it held. Its figures are not
// asserted: this machine is shared.
func TestBenchHolds(t *testing.T) {
	for _, path := range []string{"nats", "http"} {
		t.Run(path, func(t *testing.T) {
			args := []string{"bench", "holds", "--json", "--concurrency", "16"}
			if path == "http" {
				// Renewed 5 s after the sign-in: in the second holds phase.
				args = append(args, "--via-http", "--duration", "3s", "--access-token-lifetime", "10s")
			} else {
				args = append(args, "--duration", "500ms")
			}
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			out, err := exec.CommandContext(ctx, binPath, args...).Output()
			if err != nil {
				if ee, ok := err.(*exec.ExitError); ok {
					t.Fatalf("bench holds: %v\n%s", err, ee.Stderr)
				}
				t.Fatal(err)
			}
			var r bench.HoldsReport
			if err := json.Unmarshal(out, &r); err != nil {
				t.Fatalf("bench holds --json printed %q: %v", out, err)
			}
			if r.Path != path {
				t.Errorf("path %q, want %q", r.Path, path)
			}
			for _, ph := range []struct {
				name string
				ops  int64
				errs int64
				wins int
			}{
				{"holds", r.Holds.Ops, r.Holds.Errors, -1},
				{"holds at half peak", r.HalfPeak.Ops, r.HalfPeak.Errors, len(r.HalfPeak.Windows)},
				{"echo", r.Echo.Ops, r.Echo.Errors, -1},
				{"echo at half peak", r.EchoHalf.Ops, r.EchoHalf.Errors, len(r.EchoHalf.Windows)},
				{"publish", r.Publish.Ops, r.Publish.Errors, -1},
			} {
				if ph.ops == 0 || ph.errs != 0 {
					t.Errorf("%s: %d operations, %d errors", ph.name, ph.ops, ph.errs)
				}
				if ph.wins == 0 {
					t.Errorf("%s: no latency windows", ph.name)
				}
			}
			if path == "http" && (r.SignIns != 1 || r.Refreshes < 1) {
				t.Errorf("through HTTP: %d sign-ins and %d refreshes, want one and at least one", r.SignIns, r.Refreshes)
			}
			if r.Oversold != 0 || r.Unaccounted != 0 {
				t.Errorf("oversold %d, unaccounted %d", r.Oversold, r.Unaccounted)
			}
			if r.LogWrites == 0 || r.SystemCPU <= 0 || r.ClientCPU <= 0 {
				t.Errorf("log writes %d, system CPU %v s, client CPU %v s", r.LogWrites, r.SystemCPU, r.ClientCPU)
			}
		})
	}
}

// TestBenchQueue runs `ticketing bench queue --compare 1 --json` with a
// few sockets: a plain run and a secured one (wss:// with the development
// PKI), each holding every socket and checking admission tokens without
// errors. Its figures are not asserted: this machine is shared.
func TestBenchQueue(t *testing.T) {
	const n = 40
	args := []string{"bench", "queue", "--json", "--compare", "1", "-n", strconv.Itoa(n), "--sources", "2",
		"--hold", "1s", "--verify-duration", "100ms"}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, binPath, args...).Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			t.Fatalf("bench queue: %v\n%s", err, ee.Stderr)
		}
		t.Fatal(err)
	}
	var c struct {
		Runs  []bench.QueueReport `json:"runs"`
		Bytes struct {
			Plain      []float64 `json:"plain"`
			Configured []float64 `json:"configured"`
		} `json:"edge_bytes_per_connection"`
	}
	if err := json.Unmarshal(out, &c); err != nil {
		t.Fatalf("bench queue --json printed %q: %v", out, err)
	}
	if len(c.Runs) != 2 || c.Runs[0].TLS || !c.Runs[1].TLS {
		t.Fatalf("runs %+v, want a plain one and a secured one", c.Runs)
	}
	for _, r := range c.Runs {
		if r.Held != n || r.Failed != 0 {
			t.Errorf("TLS %v: held %d, failed %d of %d", r.TLS, r.Held, r.Failed, n)
		}
		if r.EdgeRSSHeldKiB <= 0 || r.JoinsPerSec <= 0 || r.IssuePerSec <= 0 || r.VerifyPerSec <= 0 || r.RawVerifyPerSec <= 0 || r.VerifyErrors != 0 {
			t.Errorf("TLS %v: resident memory held %d KiB, joins/s %v, issued/s %v, checks/s %v, raw/s %v, check errors %d",
				r.TLS, r.EdgeRSSHeldKiB, r.JoinsPerSec, r.IssuePerSec, r.VerifyPerSec, r.RawVerifyPerSec, r.VerifyErrors)
		}
		if r.EdgeBefore.ReadFailure || r.EdgeBefore.Goroutines == 0 {
			t.Errorf("TLS %v: the edge's /metrics not read: %+v", r.TLS, r.EdgeBefore)
		}
	}
	if len(c.Bytes.Plain) != 1 || len(c.Bytes.Configured) != 1 {
		t.Errorf("memory per connection compared over %v and %v, want one run each", c.Bytes.Plain, c.Bytes.Configured)
	}
}
