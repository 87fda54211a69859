package psp_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ticketing/ticketing/services/payment"
	"github.com/ticketing/ticketing/services/payment/gateway"
	"github.com/ticketing/ticketing/services/payment/psp"
)

// serveDirEnv makes the test binary a simulator on that directory
// (TestMain): the process the kill test kills.
const serveDirEnv = "PSP_TEST_SERVE_DIR"

func TestMain(m *testing.M) {
	if dir := os.Getenv(serveDirEnv); dir != "" {
		serve(dir)
		return
	}
	os.Exit(m.Run())
}

// serve runs a simulator on dir and 127.0.0.1:0, says its address on
// stdout, and serves until killed.
func serve(dir string) {
	srv, err := psp.New(psp.Config{DataDir: dir, SecretKey: testKey, Log: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("listening http://%s\n", ln.Addr())
	err = http.Serve(ln, srv)
	fmt.Fprintln(os.Stderr, err)
	os.Exit(1)
}

// child is a simulator process.
type child struct {
	cmd *exec.Cmd
	url string
}

func startChild(t *testing.T, dir string) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), serveDirEnv+"="+dir)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("the simulator did not start: %v", err)
	}
	return &child{cmd: cmd, url: strings.TrimSpace(strings.TrimPrefix(line, "listening "))}
}

func (c *child) kill(t *testing.T) {
	t.Helper()
	if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = c.cmd.Wait()
}

// acked is what the simulator acknowledged for one order.
type acked struct {
	intent    string
	amount    int64
	manual    bool
	confirmed bool
	captured  bool
	refund    string
}

// TestKill9KeepsEveryAcknowledgedRecord drives concurrent payments at a
// simulator process, kills it with SIGKILL while requests are in flight,
// starts it again on the same directory, and checks that every intent,
// capture and refund it acknowledged is there, exactly once, and that the
// idempotency keys still answer as before.
func TestKill9KeepsEveryAcknowledgedRecord(t *testing.T) {
	dir := t.TempDir()
	p := startChild(t, dir)
	gw, err := gateway.New(gateway.Config{BaseURL: p.url, SecretKey: testKey, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer gw.Close()

	var mu sync.Mutex
	acks := map[string]*acked{}
	enough := make(chan struct{})
	var once sync.Once
	count := func() {
		if len(acks) >= 150 {
			once.Do(func() { close(enough) })
		}
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var wg sync.WaitGroup
	for w := range 24 {
		wg.Go(func() {
			for i := 0; ctx.Err() == nil; i++ {
				order := fmt.Sprintf("w%d-%d", w, i)
				a := &acked{amount: int64(1000 + i), manual: i%3 == 0}
				in, err := gw.CreateIntent(ctx, payment.IntentRequest{Amount: a.amount, Currency: "eur", OrderID: order, CaptureManual: a.manual, IdempotencyKey: "order:" + order})
				if err != nil {
					return
				}
				a.intent = in.ID
				mu.Lock()
				acks[order] = a
				count()
				mu.Unlock()
				// Each step is recorded once acknowledged; the first error
				// (the kill) ends the worker.
				if _, err := gw.ConfirmIntent(ctx, a.intent, payment.ConfirmRequest{Card: card("4242424242424242"), IdempotencyKey: "confirm:" + order}); err != nil {
					return
				}
				mu.Lock()
				a.confirmed = true
				mu.Unlock()
				if a.manual {
					if _, err := gw.CaptureIntent(ctx, a.intent, "capture:"+order); err != nil {
						return
					}
					mu.Lock()
					a.captured = true
					mu.Unlock()
				}
				if i%2 == 0 {
					rf, err := gw.Refund(ctx, payment.RefundRequest{IntentID: a.intent, Amount: 100, IdempotencyKey: "refund:" + order})
					if err != nil {
						return
					}
					mu.Lock()
					a.refund = rf.ID
					mu.Unlock()
				}
			}
		})
	}
	select {
	case <-enough:
	case <-time.After(60 * time.Second):
		t.Fatal("150 orders were not acknowledged within a minute")
	}
	p.kill(t)
	wg.Wait()
	cancel()

	p = startChild(t, dir)
	gw2, err := gateway.New(gateway.Config{BaseURL: p.url, SecretKey: testKey})
	if err != nil {
		t.Fatal(err)
	}
	defer gw2.Close()
	req, _ := http.NewRequest(http.MethodGet, p.url+"/_sim/records", nil)
	req.Header.Set("Authorization", "Bearer "+testKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var rec psp.Records
	err = json.NewDecoder(resp.Body).Decode(&rec)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	byOrder := map[string][]psp.RecordIntent{}
	for _, in := range rec.Intents {
		byOrder[in.OrderID] = append(byOrder[in.OrderID], in)
	}
	refunds := map[string][]psp.Refund{}
	for _, rf := range rec.Refunds {
		refunds[rf.PaymentIntent] = append(refunds[rf.PaymentIntent], rf)
	}
	nConfirmed, nCaptured, nRefunds := 0, 0, 0
	for order, a := range acks {
		ins := byOrder[order]
		if len(ins) != 1 || ins[0].ID != a.intent || ins[0].Amount != a.amount {
			t.Errorf("order %s: acknowledged intent %s, the records hold %+v", order, a.intent, ins)
			continue
		}
		in := ins[0]
		switch {
		case a.captured || a.confirmed && !a.manual:
			nConfirmed++
			if in.Status != psp.StatusSucceeded || in.AmountReceived != a.amount {
				t.Errorf("order %s: acknowledged as captured, the record is %s with %d received", order, in.Status, in.AmountReceived)
			}
		case a.confirmed:
			nConfirmed++
			if in.Status != psp.StatusRequiresCapture && in.Status != psp.StatusSucceeded {
				t.Errorf("order %s: acknowledged as authorized, the record is %s", order, in.Status)
			}
		}
		if a.captured {
			nCaptured++
		}
		var sum int64
		for _, rf := range refunds[in.ID] {
			sum += rf.Amount
		}
		if len(refunds[in.ID]) > 1 || sum != in.AmountRefunded || in.AmountRefunded > in.AmountReceived {
			t.Errorf("order %s: refunds %+v, intent refunded %d of %d", order, refunds[in.ID], in.AmountRefunded, in.AmountReceived)
		}
		if a.refund != "" {
			nRefunds++
			if len(refunds[in.ID]) != 1 || refunds[in.ID][0].ID != a.refund {
				t.Errorf("order %s: acknowledged refund %s, the records hold %+v", order, a.refund, refunds[in.ID])
			}
		}
		// The keys answer as before.
		again, err := gw2.CreateIntent(t.Context(), payment.IntentRequest{Amount: a.amount, Currency: "eur", OrderID: order, CaptureManual: a.manual, IdempotencyKey: "order:" + order})
		if err != nil || again.ID != a.intent {
			t.Errorf("order %s: create again: %s %v, want %s", order, again.ID, err, a.intent)
		}
		if a.refund != "" {
			rf, err := gw2.Refund(t.Context(), payment.RefundRequest{IntentID: a.intent, Amount: 100, IdempotencyKey: "refund:" + order})
			if err != nil || rf.ID != a.refund {
				t.Errorf("order %s: refund again: %s %v, want %s", order, rf.ID, err, a.refund)
			}
		}
	}
	for order, ins := range byOrder {
		if len(ins) != 1 {
			t.Errorf("order %s has %d intents", order, len(ins))
		}
	}
	t.Logf("killed after %d orders acknowledged (%d confirmed, %d captured, %d refunds); the records hold %d intents, %d refunds",
		len(acks), nConfirmed, nCaptured, nRefunds, len(rec.Intents), len(rec.Refunds))
}
