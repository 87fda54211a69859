package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ticketing/ticketing/internal/devpki"
	"github.com/ticketing/ticketing/internal/eventually"
	"github.com/ticketing/ticketing/services/inventory"
	"github.com/ticketing/ticketing/services/inventory/natsapi"
)

// devProc is a `ticketing dev` process.
type devProc struct {
	t                               *testing.T
	dir, http, nats, leaf, adminTok string
	extra                           []string // more flags
	cmd                             *exec.Cmd
	out                             *lockedBuffer
}

func (d *devProc) start() {
	d.t.Helper()
	d.cmd = exec.Command(binPath, append([]string{"dev", "--data", d.dir, "--http", d.http, "--nats", d.nats, "--leaf", d.leaf,
		"--kafka-port", "0", "--admin-token", d.adminTok, "--psp", freeAddr(d.t), "--payment-http", freeAddr(d.t)}, d.extra...)...)
	d.out = &lockedBuffer{}
	d.cmd.Stdout, d.cmd.Stderr = d.out, d.out
	if err := d.cmd.Start(); err != nil {
		d.t.Fatal(err)
	}
	cmd, out := d.cmd, d.out
	d.t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
		if d.t.Failed() {
			d.t.Logf("--- log of ticketing dev ---\n%s", tail(out.String(), 60))
		}
	})
	eventually.Nil(d.t, 90*time.Second, func() error {
		if d.cmd.ProcessState != nil {
			return fmt.Errorf("ticketing dev exited: %v", d.cmd.ProcessState)
		}
		// ticketing dev makes its secrets in its data directory first.
		if _, err := os.Stat(d.secrets().CA()); err != nil {
			return err
		}
		resp, err := httpsClient(d.secrets()).Get("https://" + d.http + "/readyz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("readyz %d", resp.StatusCode)
		}
		return nil
	})
}

// secrets are the ones ticketing dev made in its data directory.
func (d *devProc) secrets() devpki.Layout { return devpki.Layout{Dir: d.dir} }

// api is an HTTPS client of the dev system's edge.
func (d *devProc) api(timeout time.Duration) *api {
	hc := httpsClient(d.secrets())
	hc.Timeout = timeout
	return &api{t: d.t, base: "https://" + d.http, hc: hc}
}

// kill9 ends the process with SIGKILL.
func (d *devProc) kill9() {
	d.t.Helper()
	_ = d.cmd.Process.Signal(syscall.SIGKILL)
	_ = d.cmd.Wait()
}

// stop ends the process with SIGTERM, as an operator would.
func (d *devProc) stop() {
	d.t.Helper()
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		d.t.Fatal(err)
	}
	if err := d.cmd.Wait(); err != nil {
		d.t.Fatalf("ticketing dev after SIGTERM: %v\n%s", err, tail(d.out.String(), 30))
	}
}

type eventReport struct {
	OrganizerID string `json:"organizer_id"`
	Totals      struct {
		Held, Released, Sold, Cancelled int
		HeldNow                         int   `json:"held_now"`
		SoldNow                         int   `json:"sold_now"`
		OrdersPaid                      int   `json:"orders_paid"`
		OrdersRefunded                  int   `json:"orders_refunded"`
		CapturedCents                   int64 `json:"captured_cents"`
		GrossCents                      int64 `json:"gross_cents"`
		FeesCents                       int64 `json:"fees_cents"`
		TaxCents                        int64 `json:"tax_cents"`
		DiscountCents                   int64 `json:"discount_cents"`
		RefundedCents                   int64 `json:"refunded_cents"`
		NetCents                        int64 `json:"net_cents"`
	} `json:"totals"`
}

// orderAnswer is an order as the edge answers it.
type orderAnswer struct {
	ID      string `json:"id"`
	State   string `json:"state"`
	Amounts struct {
		Subtotal, Fees, Tax, Discount, Total int64
	} `json:"amounts"`
	Payment struct {
		Captured, Refunded int64
	} `json:"payment"`
}

type funnel struct {
	HoldsPlaced int `json:"holds_placed"`
	HeldTickets int `json:"held_tickets"`
	SoldTickets int `json:"sold_tickets"`
}

// TestDevKafkaPipeline runs `ticketing dev` and follows holds, sales and
// an order through the whole Kafka side: the bridge mirrors their events
// to the embedded broker, the reporting and analytics consumers fold them
// (and answer through the edge's report endpoints: the tickets from the
// inventory's events, the money from the order's), the audit consumer
// chains them. A restart counts nothing twice; `ticketing audit verify`
// passes, and fails once an entry is changed.
func TestDevKafkaPipeline(t *testing.T) {
	payAddr := freeAddr(t)
	d := &devProc{t: t, dir: t.TempDir(), http: freeAddr(t), nats: freeAddr(t), leaf: freeAddr(t), adminTok: testAdminToken,
		extra: []string{"--payment-http", payAddr, "--psp", freeAddr(t)}}
	d.start()
	a := d.api(30 * time.Second).signIn(testBuyer)
	nc, err := coreConn(d.secrets(), d.nats)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	inv := &natsapi.Client{NC: nc, Timeout: 10 * time.Second}
	hold := func(key string) holdAnswer {
		t.Helper()
		var h holdAnswer
		code, err := a.do("POST", "/v1/events/club-night/holds", map[string]string{"Idempotency-Key": key}, map[string]any{"zone": "ga", "quantity": 2}, &h)
		if err != nil || code != 201 {
			t.Fatalf("hold %s: HTTP %d %v %+v", key, code, err, h.Error)
		}
		return h
	}
	var holds []holdAnswer
	for i := range 5 {
		holds = append(holds, hold(fmt.Sprintf("pipeline-%d", i)))
	}
	for i, h := range holds[:2] { // two sales
		if _, err := inv.Confirm(context.Background(), inventory.ConfirmRequest{HoldID: h.HoldID, OrderID: fmt.Sprintf("o-%d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	code, err := a.do("DELETE", "/v1/holds/"+holds[4].HoldID, nil, nil, nil)
	if err != nil || code != 200 {
		t.Fatalf("release: HTTP %d %v", code, err)
	}

	// An order through the checkout: a hold of 2 tickets with a voucher,
	// the card at the payment service (its simulator behind it), paid and
	// confirmed and fulfilled (its tickets issued); then refunded by an admin.
	admin := a.asAdmin()
	var o orderAnswer
	code, err = a.do("POST", "/v1/orders", map[string]string{"Idempotency-Key": "pipeline-order"},
		map[string]any{"holds": []string{hold("pipeline-order").HoldID}, "voucher": "DEMO10"}, &o)
	if err != nil || code != 201 || o.State != "awaiting_payment" {
		t.Fatalf("order: HTTP %d %v %+v", code, err, o)
	}
	var card struct{ ID string }
	payment := &api{t: t, base: "https://" + strings.Replace(payAddr, "127.0.0.1:", "localhost:", 1), hc: a.hc} // its public URL
	if code, err := payment.send("POST", "/v1/cards", nil, map[string]any{"number": "4242 4242 4242 4242", "exp_month": 12, "exp_year": 2040, "cvc": "123"}, &card); err != nil || code != 201 {
		t.Fatalf("card: HTTP %d %v", code, err)
	}
	if code, err := a.do("POST", "/v1/orders/"+o.ID+"/pay", nil, map[string]any{"method": card.ID}, nil); err != nil || code != 200 {
		t.Fatalf("pay: HTTP %d %v", code, err)
	}
	orderIn := func(state string) {
		t.Helper()
		eventually.Nil(t, 30*time.Second, func() error {
			code, err := a.do("GET", "/v1/orders/"+o.ID, nil, nil, &o)
			if err != nil || code != 200 || o.State != state {
				return fmt.Errorf("order: HTTP %d %v %+v, want %s", code, err, o, state)
			}
			return nil
		})
	}
	orderIn("fulfilled") // confirmed, then its tickets issued
	if code, err := admin.do("POST", "/v1/admin/orders/"+o.ID+"/refund", nil, map[string]any{"reason": "pipeline"}, nil); err != nil || code != 200 {
		t.Fatalf("refund: HTTP %d %v", code, err)
	}
	orderIn("refunded")
	if a := o.Amounts; a.Discount == 0 || a.Tax == 0 || a.Total != a.Subtotal+a.Fees-a.Discount+a.Tax ||
		o.Payment.Captured != a.Total || o.Payment.Refunded != a.Total {
		t.Fatalf("the order's amounts %+v and payment %+v", o.Amounts, o.Payment)
	}

	// 6 holds of 2 tickets, 3 of them sold at 35.00 each ticket, 1 released;
	// the order's 2 tickets sold and cancelled again. The money is the
	// order's: its amounts when it was paid, its capture when refunded.
	wantReport := func(held, heldNow, placed int) {
		t.Helper()
		eventually.Nil(t, 60*time.Second, func() error {
			var r eventReport
			code, err := admin.do("GET", "/v1/reports/events/club-night", nil, nil, &r)
			if err != nil || code != 200 {
				return fmt.Errorf("report: HTTP %d %v", code, err)
			}
			tot := r.Totals
			if tot.Held != held || tot.Sold != 6 || tot.Cancelled != 2 || tot.Released != 2 ||
				tot.HeldNow != heldNow || tot.SoldNow != 4 || r.OrganizerID != "basement-promotions" {
				return fmt.Errorf("report %+v; %s", r, bridgeMetrics(a))
			}
			if tot.OrdersPaid != 1 || tot.OrdersRefunded != 1 || tot.CapturedCents != o.Amounts.Total || tot.GrossCents != o.Amounts.Subtotal ||
				tot.FeesCents != o.Amounts.Fees || tot.TaxCents != o.Amounts.Tax || tot.DiscountCents != o.Amounts.Discount ||
				tot.RefundedCents != o.Amounts.Total || tot.NetCents != 0 {
				return fmt.Errorf("report's money %+v, the order's %+v; %s", tot, o.Amounts, bridgeMetrics(a))
			}
			var f funnel
			code, err = admin.do("GET", "/v1/reports/events/club-night/funnel", nil, nil, &f)
			if err != nil || code != 200 {
				return fmt.Errorf("funnel: HTTP %d %v", code, err)
			}
			if f.HoldsPlaced != placed || f.HeldTickets != held || f.SoldTickets != 4 {
				return fmt.Errorf("funnel %+v", f)
			}
			return nil
		})
	}
	wantReport(12, 4, 6)
	if code, _ := a.anonymous().do("GET", "/v1/reports/events/club-night", nil, nil, nil); code != 401 {
		t.Fatalf("a report for an anonymous caller: HTTP %d, want 401", code)
	}
	if code, _ := a.do("GET", "/v1/reports/events/club-night", nil, nil, nil); code != 403 {
		t.Fatalf("a report for a buyer: HTTP %d, want 403", code)
	}
	if code, _ := a.do("GET", "/v1/reports/events/club-night", map[string]string{"Authorization": "Bearer " + testAdminToken}, nil, nil); code != 401 {
		t.Fatalf("a report with the bootstrap admin token: HTTP %d, want 401", code)
	}

	// A burst of 300 one-ticket holds, then SIGKILL while the bridge and the
	// consumers are still working through it: after a restart every
	// acknowledged hold is counted once.
	burst := make(chan error, 300)
	for w := range 10 {
		go func() {
			for i := range 30 {
				_, err := inv.Hold(context.Background(), "club-night.0", inventory.HoldRequest{Zone: "ga", Quantity: 1,
					IdempotencyKey: fmt.Sprintf("anon:burst-%d-%d", w, i), Fingerprint: "burst"})
				burst <- err
			}
		}()
	}
	for range 300 {
		if err := <-burst; err != nil {
			t.Fatalf("burst hold: %v", err)
		}
	}
	if err := d.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = d.cmd.Wait()
	nc.Close()
	d.start()
	wantReport(312, 304, 306)

	// A clean restart: the bridge and the consumers carry on where they
	// were; nothing is counted twice, the new hold is counted once.
	d.stop()
	d.start()
	hold("pipeline-after-restart")
	wantReport(314, 306, 307)
	d.stop()

	verify := func() (string, error) {
		cmd := exec.Command(binPath, "audit", "verify", "--data", d.dir)
		// Not the PostgreSQL of `make test`: --pg-url is also TICKETING_PG_URL.
		for _, kv := range os.Environ() {
			if !strings.HasPrefix(kv, "TICKETING_PG_URL=") {
				cmd.Env = append(cmd.Env, kv)
			}
		}
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	out, err := verify()
	if err != nil || !strings.Contains(out, "verified") {
		t.Fatalf("audit verify of an untouched log: %v\n%s", err, out)
	}
	// Change one recorded event, as someone with access to the files
	// might: a hold of 2 tickets becomes 1.
	files, _ := filepath.Glob(filepath.Join(d.dir, "audit", "*.jsonl"))
	tampered := false
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		lines := bytes.Split(b, []byte("\n"))
		for i, line := range lines {
			var e map[string]any
			if json.Unmarshal(line, &e) != nil {
				continue
			}
			body, _ := base64.StdEncoding.DecodeString(fmt.Sprint(e["body"]))
			if !bytes.Contains(body, []byte(`"quantity":2`)) {
				continue
			}
			e["body"] = base64.StdEncoding.EncodeToString(bytes.Replace(body, []byte(`"quantity":2`), []byte(`"quantity":1`), 1))
			lines[i], _ = json.Marshal(e)
			if err := os.WriteFile(f, bytes.Join(lines, []byte("\n")), 0o600); err != nil {
				t.Fatal(err)
			}
			tampered = true
			break
		}
		if tampered {
			break
		}
	}
	if !tampered {
		t.Fatalf("no audit entry with a quantity of 2 in %v", files)
	}
	out, err = verify()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || !strings.Contains(out, "changed") {
		t.Fatalf("audit verify of a changed log: %v\n%s", err, out)
	}
}

// bridgeMetrics are the bridge's gauges and counters, for failure messages.
func bridgeMetrics(a *api) string {
	resp, err := a.hc.Get(a.base + "/metrics")
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "ticketing_bridge_") && !strings.Contains(l, "_bucket") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "; ")
}
