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
	"github.com/ticketing/ticketing/internal/testservers"
)

// TestBenchPurchase runs `ticketing bench purchase --json` for about two
// seconds, with everything in JetStream (GA tickets) and with orders and
// payments in PostgreSQL (reserved seats), and checks its last line: one
// JSON object with the keys the issue names, some purchases confirmed,
// and the checker's verdicts 0. Its figures are not asserted: this
// machine is shared.
func TestBenchPurchase(t *testing.T) {
	for _, tc := range []struct {
		name string
		args func(t *testing.T) []string
	}{
		// --pg-url given empty: not read from $TICKETING_PG_URL.
		{"jetstream", func(*testing.T) []string { return []string{"--pg-url", ""} }},
		{"postgres", func(t *testing.T) []string { return []string{"--pg-url", testservers.PostgresURL(t), "--seats"} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"bench", "purchase", "--json", "--duration", "2s", "--concurrency", "16", "--buyers", "4"}, tc.args(t)...)
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, binPath, args...)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			lines := strings.Split(strings.TrimSpace(string(out)), "\n")
			last := []byte(lines[len(lines)-1])
			var r bench.PurchaseReport
			if jerr := json.Unmarshal(last, &r); jerr != nil {
				t.Fatalf("bench purchase --json: %v; its last line %q: %v\n%s", err, last, jerr, stderr.Bytes())
			}
			if err != nil {
				t.Errorf("bench purchase: %v\n%s", err, stderr.Bytes())
			}
			if r.DoubleCaptures != 0 || r.LedgerMismatches != 0 || r.Oversold != 0 {
				t.Errorf("double captures %d, ledger mismatches %d, oversold %d: %s", r.DoubleCaptures, r.LedgerMismatches, r.Oversold, r.Check.FirstProblem)
			}
			if r.Check.TicketMismatches != 0 || r.Check.Fulfilled != r.Check.Confirmed || r.Check.Tickets != r.Check.ConfirmedTickets {
				t.Errorf("tickets: %d fulfilled of %d confirmed, %d issued of %d, %d mismatches: %s", r.Check.Fulfilled, r.Check.Confirmed,
					r.Check.Tickets, r.Check.ConfirmedTickets, r.Check.TicketMismatches, r.Check.FirstProblem)
			}
			if r.Purchases.Confirmed == 0 || r.Check.Confirmed < int(r.Purchases.Confirmed) || r.Ceiling.OK == 0 {
				t.Errorf("%d purchases confirmed (first error %q), %d confirmed orders found, %d holds in the ceiling",
					r.Purchases.Confirmed, r.Purchases.FirstErr, r.Check.Confirmed, r.Ceiling.OK)
			}
			// Every purchase stores at least its order's creation and
			// its events; on JetStream the orders bucket's writes too.
			want := []string{"EVENTS"}
			if tc.name == "jetstream" {
				want = append(want, "KV_orders", "KV_payments")
			}
			for _, name := range want {
				if r.StreamWrites[name] < 1 {
					t.Errorf("%s: %.2f messages a purchase, want ≥ 1 (%v)", name, r.StreamWrites[name], r.StreamWrites)
				}
			}
			var keys map[string]any
			if err := json.Unmarshal(last, &keys); err != nil {
				t.Fatal(err)
			}
			for _, path := range []string{"purchases.per_sec", "purchases.p50_ms", "purchases.p99_ms",
				"steps.hold.p50_ms", "steps.hold.p99_ms", "steps.order.p50_ms", "steps.order.p99_ms", "steps.pay.p50_ms", "steps.pay.p99_ms",
				"ceiling_http_holds.per_sec", "purchases_over_holds", "double_captures", "ledger_mismatches", "oversold"} {
				if _, ok := lookupKey(keys, path); !ok {
					t.Errorf("no %s in %s", path, last)
				}
			}
		})
	}
}

// lookupKey finds a dotted path in decoded JSON.
func lookupKey(m map[string]any, path string) (any, bool) {
	var v any = m
	for k := range strings.SplitSeq(path, ".") {
		obj, ok := v.(map[string]any)
		if !ok {
			return nil, false
		}
		if v, ok = obj[k]; !ok {
			return nil, false
		}
	}
	return v, true
}
