package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/ticketing/ticketing/cmd/ticketing/bench"
)

// TestBenchScan runs `ticketing bench scan --json` briefly and checks its
// last line: one JSON object with the keys the README and the issue name,
// every measure above zero, and verdicts that agree: every valid barcode
// accepted offline, every ticket issued found in the store, every
// check-in admitted once and stored once, every second scan of a ticket
// refused with the first and every repeated scan answered with it. Its
// figures are not asserted: this machine is shared.
func TestBenchScan(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binPath, "bench", "scan", "--json", "--duration", "500ms",
		"--barcodes", "256", "--revoked", "1000", "--issuers", "4", "--concurrency", "16")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	last := []byte(lines[len(lines)-1])
	var r bench.ScanReport
	if jerr := json.Unmarshal(last, &r); jerr != nil {
		t.Fatalf("bench scan --json: %v; its last line %q: %v\n%s", err, last, jerr, stderr.Bytes())
	}
	if err != nil {
		t.Errorf("bench scan: %v\n%s", err, stderr.Bytes())
	}

	var keys map[string]any
	if err := json.Unmarshal(last, &keys); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"offline_verifications.per_sec", "raw_ed25519_verify.per_sec", "verifications_over_raw",
		"issuance.per_sec", "issuance.p50_ms", "issuance.p99_ms", "raw_kv_create_at_issuers.per_sec", "issuance_writes_over_raw",
		"online_checkins.per_sec", "online_checkins.p50_ms", "online_checkins.p99_ms", "raw_kv_create.per_sec", "checkins_over_raw",
		"disk_synced_appends.per_sec"} {
		v, ok := lookupKey(keys, path)
		if !ok {
			t.Errorf("no %s in %s", path, last)
			continue
		}
		if f, _ := v.(float64); f <= 0 {
			t.Errorf("%s = %v, want > 0", path, v)
		}
	}

	v := r.Verdicts
	if r.Problems != 0 || v.Errors != 0 {
		t.Errorf("%d problems (first: %s), %d errors", r.Problems, r.FirstProblem, v.Errors)
	}
	if v.OfflineAccepted == 0 || v.OfflineRefused != 0 {
		t.Errorf("offline: %d accepted, %d refused", v.OfflineAccepted, v.OfflineRefused)
	}
	if v.Issued == 0 || v.Issued != 2*r.Issuance.Sales || int64(v.TicketsStored) != v.Issued || r.Issuance.Tickets != v.Issued {
		t.Errorf("issuance: %d sales, %d tickets issued (report %d), %d stored", r.Issuance.Sales, v.Issued, r.Issuance.Tickets, v.TicketsStored)
	}
	if r.Issuance.WritesPerTicket < 4 {
		t.Errorf("%.2f stored writes a ticket, want ≥ 4 (slot, id, order, holder)", r.Issuance.WritesPerTicket)
	}
	if v.Admitted == 0 || v.AlreadyCheckedIn != 0 || int64(v.CheckInsStored) != v.Admitted ||
		r.CheckIns.OK != v.Admitted || r.CheckIns.Ops != v.Admitted {
		t.Errorf("check-ins: %d operations, %d admitted (report %d), %d already checked in, %d stored",
			r.CheckIns.Ops, v.Admitted, r.CheckIns.OK, v.AlreadyCheckedIn, v.CheckInsStored)
	}
	if v.Rescans == 0 || v.RescansRefused != v.Rescans || v.Replays == 0 || v.ReplaysFirst != v.Replays ||
		v.Rescans+v.Replays > v.Admitted {
		t.Errorf("second scans: %d of %d rescans refused, %d of %d replays answered with the first, of %d admitted",
			v.RescansRefused, v.Rescans, v.ReplaysFirst, v.Replays, v.Admitted)
	}
}
