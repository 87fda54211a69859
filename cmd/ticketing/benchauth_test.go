package main

import (
	"context"
	"encoding/json"
	"os/exec"
	"testing"
	"time"

	"github.com/ticketing/ticketing/cmd/ticketing/bench"
)

// TestBenchAuth runs `ticketing bench auth --json` briefly and checks what
// it reports: every measure ran, without errors, and its JSON has the keys
// the README and the issue name. Its figures are not asserted: this machine
// is shared.
func TestBenchAuth(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, binPath, "bench", "auth", "--json", "--duration", "1s", "--verify-duration", "500ms",
		"--tokens", "256", "--rotators", "8", "--accounts", "16").Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			t.Fatalf("bench auth: %v\n%s", err, ee.Stderr)
		}
		t.Fatal(err)
	}
	var r bench.AuthReport
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("bench auth --json printed %q: %v", out, err)
	}
	if r.Errors != 0 || r.Checks.PerSec <= 0 || r.Raw.PerSec <= 0 || r.ChecksOverRaw <= 0 ||
		r.SignIns.OK == 0 || r.RawArgon2id.OK == 0 || r.SignInsOverRaw <= 0 || r.Rotations.OK == 0 {
		t.Fatalf("report %+v", r)
	}
	var keys map[string]any
	if err := json.Unmarshal(out, &keys); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"access_token_checks", "raw_ed25519_verify", "signins", "raw_argon2id", "refresh_rotations"} {
		m, ok := keys[k].(map[string]any)
		if !ok || m["per_sec"] == nil {
			t.Errorf("no %s.per_sec in %s", k, out)
		}
	}
	for _, k := range []string{"checks_over_raw", "signins_over_raw"} {
		if keys[k] == nil {
			t.Errorf("no %s in %s", k, out)
		}
	}
}
