package bench

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ticketing/ticketing/cmd/ticketing/cli"
	"github.com/ticketing/ticketing/core"
	"github.com/ticketing/ticketing/core/node"
	"github.com/ticketing/ticketing/edge"
	"github.com/ticketing/ticketing/internal/loadgen"
	"github.com/ticketing/ticketing/internal/postgres"
	"github.com/ticketing/ticketing/internal/supervisor"
	"github.com/ticketing/ticketing/leafnodes"
	"github.com/ticketing/ticketing/services/catalog"
	ticketsapi "github.com/ticketing/ticketing/services/fulfillment/natsapi"
	"github.com/ticketing/ticketing/services/identity/auth"
	"github.com/ticketing/ticketing/services/inventory/natsapi"
	"github.com/ticketing/ticketing/services/payment/gateway"
	"github.com/ticketing/ticketing/services/payment/process"
	"github.com/ticketing/ticketing/services/payment/psp"
)

// PurchaseReport is what `ticketing bench purchase --json` prints.
type PurchaseReport struct {
	// Store is where orders, prices and the payment ledger and vault
	// were kept: "jetstream" or "postgres" (--pg-url).
	Store string `json:"store"`
	// Postgres: with --pg-url, how durable the server makes a commit
	// (the run asks synchronous_commit on; fsync is the server's).
	Postgres *pgDurability `json:"postgres,omitempty"`
	// Hold is what each purchase held: "ga" (one GA ticket) or "seats"
	// (one reserved seat).
	Hold        string `json:"hold"`
	Concurrency int    `json:"concurrency"`
	Buyers      int    `json:"buyers"`
	// ReuseCard: every purchase of a buyer paid with the card it
	// tokenized before the run (--reuse-card); else each purchase
	// tokenized its own (the steps' card).
	ReuseCard bool `json:"reuse_card"`
	// Purchases: confirmed purchases (hold, order, pay, confirmed) a
	// second, and their latency, whole and by step.
	Purchases PurchaseResult `json:"purchases"`
	Steps     PurchaseSteps  `json:"steps"`
	// ConfirmPolls: purchases whose pay answered "paid" and were read
	// again until confirmed.
	ConfirmPolls int64 `json:"confirm_polls"`
	// Ceiling: plain GA holds through the same edge, same run, same
	// number in flight (as bench holds --via-http measures them).
	Ceiling            loadgen.Result `json:"ceiling_http_holds"`
	PurchasesOverHolds float64        `json:"purchases_over_holds"`
	// The checker's findings, from the stores after the run.
	Check PurchaseCheck `json:"check"`
	// DoubleCaptures, LedgerMismatches and Oversold are the checker's
	// verdicts (PurchaseCheck says what each counts); all 0 on a good
	// run.
	DoubleCaptures   int `json:"double_captures"`
	LedgerMismatches int `json:"ledger_mismatches"`
	Oversold         int `json:"oversold"`
	// CPU seconds of the purchases phase: the system (core, edge,
	// payment service and gateway simulator: this process) and the load
	// generator.
	SystemCPU float64 `json:"system_cpu_seconds"`
	ClientCPU float64 `json:"client_cpu_seconds"`
	// StreamWrites: messages the core's JetStream streams stored in the
	// purchases phase, per confirmed purchase, by stream (buckets as
	// KV_<bucket>): every one a write synced before its ack.
	StreamWrites map[string]float64 `json:"stream_writes_per_purchase,omitempty"`
	// SettleSeconds is how long the checker waited after the run for
	// the stores to agree (the saga, the payment events and the webhooks
	// to finish), at most a minute.
	SettleSeconds float64 `json:"settle_seconds"`
}

// PurchaseResult is the purchases phase: confirmed purchases a second,
// the latency of the confirmed ones, and what else happened.
type PurchaseResult struct {
	PerSec    float64 `json:"per_sec"`
	P50ms     float64 `json:"p50_ms"`
	P99ms     float64 `json:"p99_ms"`
	Confirmed int64   `json:"confirmed"`
	// Rejected: refused correctly (sold out, the purchase limit), by
	// step.
	Rejected map[string]int64 `json:"rejected,omitempty"`
	Errors   int64            `json:"errors"`
	FirstErr string           `json:"first_error,omitempty"`
	Seconds  float64          `json:"seconds"`
}

// PurchaseSteps are the latencies of a confirmed purchase's steps: the
// hold, the order, the card's tokenization at the payment service (none
// with --reuse-card), and the payment until the order is confirmed.
type PurchaseSteps struct {
	Hold  stepLatency  `json:"hold"`
	Order stepLatency  `json:"order"`
	Card  *stepLatency `json:"card,omitempty"`
	Pay   stepLatency  `json:"pay"`
}

type purchaseOpts struct {
	dur              time.Duration
	conc, buyers     int
	pgURL            string
	seats, reuseCard bool
	cpuProfile       string
	clientCPUProfile string
	asJSON           bool
	status           func(format string, a ...any)
}

// benchPurchase measures whole purchases through an edge's HTTP API: a
// hold, an order, a payment with a frictionless card through the payment
// service and the gateway simulator, until the order is confirmed; next to
// plain holds through the same edge; then checks the stores: no capture
// twice, the ledger, the gateway and the orders agreeing, nothing
// oversold.
func benchPurchase(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("bench purchase", flag.ContinueOnError)
	var o purchaseOpts
	fs.DurationVar(&o.dur, "duration", 5*time.Second, "length of the purchases phase and of the holds ceiling's")
	fs.IntVar(&o.conc, "concurrency", 128, "purchases in flight at once (closed-loop workers)")
	fs.IntVar(&o.buyers, "buyers", 64, "accounts buying, round robin (each signed in once, with its card tokenized once); the event's purchase limit is "+
		strconv.Itoa(catalog.MaxPurchaseLimit)+" tickets an account")
	fs.StringVar(&o.pgURL, "pg-url", "", "keep orders, prices, the payment ledger and the card vault in this PostgreSQL (default: JetStream; like every flag, read from $TICKETING_PG_URL when not given)")
	fs.BoolVar(&o.seats, "seats", false, "hold one reserved seat a purchase instead of a GA ticket")
	fs.BoolVar(&o.reuseCard, "reuse-card", false, "tokenize one card a buyer before the run and pay all its purchases with it (default: one a purchase, timed as a step: "+
		"the payment service forgets a card's CVC once it authorized a payment, and the gateway refuses a card without one, so a reused card's second payment fails)")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the system (this process) over the purchases phase to this file")
	fs.StringVar(&o.clientCPUProfile, "client-cpuprofile", "", "write a CPU profile of the load generator over the purchases phase to this file")
	fs.BoolVar(&o.asJSON, "json", false, "print one JSON object (its last line) instead of a table")
	gf := cli.AddGCFlags(fs)
	if err := cli.Parse(fs, args); err != nil {
		return err
	}
	if o.conc < 1 || o.buyers < 1 || o.dur <= 0 {
		return errors.New("bench purchase: --concurrency, --buyers and --duration must be positive")
	}
	if err := gf.Apply(slog.New(slog.NewTextHandler(io.Discard, nil))); err != nil {
		return err
	}
	o.status = func(format string, a ...any) {
		if !o.asJSON {
			fmt.Fprintf(os.Stderr, format+"\n", a...)
		}
	}
	rep, err := purchaseOnce(ctx, o)
	if err != nil {
		return err
	}
	if o.asJSON {
		if err := json.NewEncoder(os.Stdout).Encode(rep); err != nil {
			return err
		}
	} else {
		printPurchase(rep)
	}
	if rep.DoubleCaptures > 0 || rep.LedgerMismatches > 0 || rep.Oversold > 0 || rep.Check.TicketMismatches > 0 {
		return fmt.Errorf("purchase check failed: double captures %d, ledger mismatches %d, oversold %d, ticket mismatches %d (%s)",
			rep.DoubleCaptures, rep.LedgerMismatches, rep.Oversold, rep.Check.TicketMismatches, rep.Check.FirstProblem)
	}
	return nil
}

// The purchase benchmark's venues.
const (
	purchaseGAVenue    = "bench-shop-hall"
	purchaseSeatVenue  = "bench-shop-arena"
	purchaseGAPrice    = 5000
	purchaseSeatPrice  = 8000
	purchaseCeilingZon = "ga"
)

// purchaseData is the run's catalog: a GA hall and a seated arena, the
// event bought (its limit the highest an event may set) and the event of
// the holds ceiling, with ids of the run's own (orders, prices and
// payments of earlier runs may be in the same PostgreSQL).
func purchaseData(run string, seats bool) (*catalog.Dataset, string, string) {
	now := time.Now().UTC()
	ga := catalog.Venue{ID: purchaseGAVenue, Name: "Benchmark Shop Hall", City: "Loopback",
		Zones: []catalog.Zone{{ID: purchaseCeilingZon, Name: "General admission", Kind: catalog.GA, Capacity: catalog.MaxGACapacity, PriceCents: purchaseGAPrice, Currency: "USD"}}}
	rows := make([]catalog.Row, benchRows)
	for i := range rows {
		rows[i] = catalog.Row{ID: "r" + strconv.Itoa(i+1), Seats: benchRowSeats, Zone: "stalls"}
	}
	arena := catalog.Venue{ID: purchaseSeatVenue, Name: "Benchmark Shop Arena", City: "Loopback",
		Zones:    []catalog.Zone{{ID: "stalls", Name: "Stalls", Kind: catalog.Reserved, PriceCents: purchaseSeatPrice, Currency: "USD"}},
		Sections: []catalog.Section{{ID: benchSection, Name: "Stalls", Rows: rows}}}
	buy := catalog.Event{ID: "bench-buy-" + run, Name: "Benchmark purchases", VenueID: ga.ID, OrganizerID: "bench-org",
		OnSaleAt: now.Add(-time.Hour), StartsAt: now.Add(30 * 24 * time.Hour), PurchaseLimit: catalog.MaxPurchaseLimit}
	venues := []catalog.Venue{ga}
	if seats {
		buy.VenueID = arena.ID
		venues = append(venues, arena)
	}
	ceiling := catalog.Event{ID: "bench-holds-" + run, Name: "Benchmark holds ceiling", VenueID: ga.ID,
		OnSaleAt: now.Add(-time.Hour), StartsAt: now.Add(30 * 24 * time.Hour)}
	return &catalog.Dataset{Venues: venues, Events: []catalog.Event{buy, ceiling}}, buy.ID, ceiling.ID
}

// purchaseOnce runs the system in this process (a core with the checkout
// and the payment service inside it, the gateway simulator, an edge) and
// the load generator as a child process, then checks the stores.
func purchaseOnce(ctx context.Context, o purchaseOpts) (PurchaseReport, error) {
	rep := PurchaseReport{Store: "jetstream", Hold: "ga", Concurrency: o.conc, Buyers: o.buyers, ReuseCard: o.reuseCard}
	if o.pgURL != "" {
		rep.Store = "postgres"
	}
	if o.seats {
		rep.Hold = "seats"
	}
	dir, done, err := runDir("", "ticketing-bench-purchase")
	if err != nil {
		return rep, err
	}
	defer done()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	sup, err := supervisor.New(supervisor.Config{Log: log})
	if err != nil {
		return rep, err
	}
	defer func() { _ = sup.Shutdown() }()

	run := strconv.FormatInt(time.Now().UnixNano(), 36)
	data, event, ceilingEvent := purchaseData(run, o.seats)
	pgURL := o.pgURL
	if pgURL != "" {
		// A schema of the run's own, dropped after it: the vault of an
		// earlier run (another keyring) or of ticketing dev is never met,
		// and the database does not grow run after run.
		var drop func()
		var d pgDurability
		if pgURL, d, drop, err = benchSchema(ctx, o.pgURL, "bench_purchase_"+run); err != nil {
			return rep, err
		}
		defer drop()
		rep.Postgres = &d
		if d.Fsync != "on" {
			o.status("warning: this PostgreSQL runs with fsync %s: its commits are not durable", d.Fsync)
		}
	}
	secret := func(prefix string) string {
		var b [16]byte
		_, _ = rand.Read(b[:])
		return prefix + hex.EncodeToString(b[:])
	}
	skey, whsec := secret("sk_test_"), secret("whsec_")
	// The simulator's address first: the payment service is started
	// with it; the simulator is made once the payment service's address
	// (its webhooks' endpoint) is known.
	simLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return rep, err
	}
	defer simLn.Close()
	simURL := "http://" + simLn.Addr().String()

	o.status("starting a core with the checkout and the payment service (orders in %s), the gateway simulator and an edge (data in %s, every write synced) …", rep.Store, dir)
	const token = "bench-admin-token-0123456789"
	c, err := core.Start(ctx, core.Config{
		Node:       node.Config{Name: "core-1", DataDir: filepath.Join(dir, "core"), ClientAddr: "-", LeafAddr: "127.0.0.1:0"},
		AdminToken: token,
		Demo:       data,
		Checkout: core.CheckoutConfig{PostgresURL: pgURL, Payment: &process.Config{
			HTTPAddr: "127.0.0.1:0", Origins: []string{"http://localhost"}, GenerateKeyring: true,
			DataDir: filepath.Join(dir, "payment"), PostgresURL: pgURL,
			Gateway: gateway.Config{BaseURL: simURL, SecretKey: skey, WebhookSecret: whsec},
		}},
	}, sup, log, prometheus.NewRegistry())
	if err != nil {
		return rep, err
	}
	simCfg := psp.Config{DataDir: filepath.Join(dir, "psp"), SecretKey: skey, WebhookSecrets: []string{whsec},
		WebhookURLs: []string{c.Payment.URL + "/v1/webhooks/gateway"}, PublicURL: simURL, Log: log}
	simCfg.Defaults()
	sim, err := psp.New(simCfg)
	if err != nil {
		return rep, fmt.Errorf("gateway simulator: %w", err)
	}
	defer sim.Close()
	simSrv := &http.Server{Handler: sim, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = simSrv.Serve(simLn) }()
	defer simSrv.Close()

	e, err := edge.Start(ctx, edge.Config{
		HTTPAddr: "127.0.0.1:0",
		Leaf:     leafnodes.EdgeConfig{Name: "edge-1", ClientAddr: "-", Hubs: []string{c.Node.LeafURL()}},
		// One client address drives the whole load: no per-client limits.
		RateLimit: edge.RateLimitConfig{Disabled: true},
	}, sup, log, cli.NewRegistry())
	if err != nil {
		return rep, err
	}
	inv := &natsapi.Client{NC: c.NC, Timeout: 10 * time.Second}
	for _, ev := range []string{event, ceilingEvent} {
		if _, err := inv.Availability(ctx, catalog.PartitionKey(ev, 0)); err != nil {
			return rep, fmt.Errorf("partition of %s not served: %w", ev, err)
		}
	}

	o.status("creating %d buyers …", o.buyers)
	prefix := "buyer-" + run + "-"
	password := secret("")
	if err := seedBuyers(ctx, c, prefix, password, o.buyers); err != nil {
		return rep, err
	}

	marks := &cpuMarks{w: os.Stderr}
	if o.cpuProfile != "" {
		f, err := os.Create(o.cpuProfile)
		if err != nil {
			return rep, err
		}
		defer f.Close()
		marks.onStart = func() { _ = pprof.StartCPUProfile(f) }
		marks.onEnd = pprof.StopCPUProfile
		defer pprof.StopCPUProfile() // harmless when stopped
	}
	self, err := os.Executable()
	if err != nil {
		return rep, err
	}
	cargs := []string{"bench", "purchase-client", "--edge-http", e.URL(), "--payment", c.Payment.URL,
		"--event", event, "--ceiling-event", ceilingEvent, "--account-prefix", prefix, "--buyers", strconv.Itoa(o.buyers),
		"--duration", o.dur.String(), "--concurrency", strconv.Itoa(o.conc)}
	if o.seats {
		cargs = append(cargs, "--seats")
	}
	if o.reuseCard {
		cargs = append(cargs, "--reuse-card")
	}
	if !o.asJSON {
		cargs = append(cargs, "--progress")
	}
	if o.clientCPUProfile != "" {
		cargs = append(cargs, "--cpuprofile", o.clientCPUProfile)
	}
	o.status("signing the buyers in, tokenizing their cards, then buying for %v and holding for %v, %d in flight …", o.dur, o.dur, o.conc)
	// The streams' sequences at the purchases phase's start and end
	// (marks calls these from the child's stderr).
	var seqs [2]map[string]uint64
	var seqErr error
	onStart, onEnd := marks.onStart, marks.onEnd
	marks.onStart = func() {
		seqs[0], seqErr = streamSeqs(ctx, c.NC)
		if onStart != nil {
			onStart()
		}
	}
	marks.onEnd = func() {
		if onEnd != nil {
			onEnd()
		}
		if seqErr == nil {
			seqs[1], seqErr = streamSeqs(ctx, c.NC)
		}
	}
	child := exec.CommandContext(ctx, self, cargs...)
	child.Env = append(os.Environ(), "TICKETING_ACCOUNT_PASSWORD="+password)
	var out bytes.Buffer
	child.Stdout, child.Stderr = &out, marks
	if err := child.Run(); err != nil {
		return rep, fmt.Errorf("load generator: %w", err)
	}
	var cr purchaseClientReport
	if err := json.Unmarshal(out.Bytes(), &cr); err != nil {
		return rep, fmt.Errorf("load generator report: %w", err)
	}
	p := cr.Purchases
	rep.Purchases = PurchaseResult{P50ms: cr.Whole.P50ms, P99ms: cr.Whole.P99ms, Confirmed: p.OK, Rejected: cr.RejectedBy,
		Errors: p.Errors, FirstErr: p.FirstErr, Seconds: p.Seconds}
	if p.Seconds > 0 {
		rep.Purchases.PerSec = float64(p.OK) / p.Seconds
	}
	rep.Steps = PurchaseSteps{Hold: cr.Hold, Order: cr.Order, Pay: cr.Pay}
	if !o.reuseCard {
		rep.Steps.Card = &cr.Card
	}
	rep.ConfirmPolls = cr.ConfirmPolls
	rep.Ceiling = cr.Ceiling
	rep.PurchasesOverHolds = ratio(rep.Purchases.PerSec, rep.Ceiling.PerSec)
	rep.SystemCPU = marks.end.sub(marks.start).CPU()
	rep.ClientCPU = cr.Counters.CPU()
	if seqErr != nil {
		return rep, fmt.Errorf("streams' sequences: %w", seqErr)
	}
	rep.StreamWrites = writesPer(seqs[0], seqs[1], p.OK)

	o.status("checking the orders, the payment ledger, the gateway's records and the inventory …")
	ck := &purchaseChecker{c: c, sim: sim, inv: inv, tickets: &ticketsapi.Client{NC: c.NC}, event: event, seats: o.seats}
	start := time.Now()
	if err := ck.settle(ctx, cr.Orders, 60*time.Second, &rep.Check); err != nil {
		return rep, fmt.Errorf("purchase check: %w", err)
	}
	rep.SettleSeconds = time.Since(start).Seconds()
	rep.DoubleCaptures, rep.LedgerMismatches, rep.Oversold = rep.Check.DoubleCaptures(), rep.Check.LedgerMismatches(), rep.Check.Oversold()
	return rep, nil
}

// benchSchema creates a schema in the database at pgURL and returns the
// URL with it as the search path and synchronous_commit on (a commit
// waits for its WAL flush, whatever the server's default), the server's
// fsync and synchronous_commit as the run's connections have them, and
// what drops the schema.
func benchSchema(ctx context.Context, pgURL, schema string) (string, pgDurability, func(), error) {
	var d pgDurability
	pool, err := postgres.Open(ctx, postgres.Config{URL: pgURL, MaxConns: 1, ApplicationName: "ticketing-bench"})
	if err != nil {
		return "", d, nil, err
	}
	ident := pgx.Identifier{schema}.Sanitize()
	if _, err := pool.Exec(ctx, "CREATE SCHEMA "+ident); err != nil {
		pool.Close()
		return "", d, nil, fmt.Errorf("bench schema: %w", err)
	}
	drop := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := pool.Exec(ctx, "DROP SCHEMA "+ident+" CASCADE"); err != nil {
			fmt.Fprintf(os.Stderr, "bench: schema %s not dropped: %v\n", schema, err)
		}
		pool.Close()
	}
	params := [][2]string{{"search_path", schema}, {"synchronous_commit", "on"}}
	if strings.HasPrefix(pgURL, "postgres://") || strings.HasPrefix(pgURL, "postgresql://") {
		u, err := url.Parse(pgURL)
		if err != nil {
			drop()
			return "", d, nil, err
		}
		q := u.Query()
		for _, p := range params {
			q.Set(p[0], p[1])
		}
		u.RawQuery = q.Encode()
		pgURL = u.String()
	} else {
		for _, p := range params { // key=value form
			pgURL += " " + p[0] + "=" + p[1]
		}
	}
	// The settings as the run's connections see them.
	check, err := postgres.Open(ctx, postgres.Config{URL: pgURL, MaxConns: 1, ApplicationName: "ticketing-bench"})
	if err == nil {
		err = check.QueryRow(ctx, "SELECT current_setting('fsync'), current_setting('synchronous_commit')").Scan(&d.Fsync, &d.SynchronousCommit)
		check.Close()
	}
	if err != nil {
		drop()
		return "", d, nil, fmt.Errorf("bench schema: %w", err)
	}
	return pgURL, d, drop, nil
}

// pgDurability is how durable the server makes a commit.
type pgDurability struct {
	Fsync             string `json:"fsync"`
	SynchronousCommit string `json:"synchronous_commit"`
}

// seedBuyers creates the buyers' accounts (verified, with one password),
// a few at a time.
func seedBuyers(ctx context.Context, c *core.Core, prefix, password string, n int) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	workers := runtime.GOMAXPROCS(0)
	errc := make(chan error, workers)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
				if _, err := c.Identity.Seed(ctx, auth.SeedAccount{Email: fmt.Sprintf("%s%d@bench.invalid", prefix, i), Password: password, DisplayName: "Buyer"}); err != nil {
					errc <- fmt.Errorf("bench buyer: %w", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errc)
	return <-errc
}

func printPurchase(r PurchaseReport) {
	card := "card tokenized → "
	if r.ReuseCard {
		card = "(the buyer's card) "
	}
	fmt.Printf("purchases through the edge's HTTP API: hold (%s) → order → %spay (frictionless card) → confirmed\n", r.Hold, card)
	durable := "every write durable (fsync), the gateway simulator's journal too"
	if r.Postgres != nil && r.Postgres.Fsync != "on" {
		durable = "every write durable (fsync) but PostgreSQL's: the server runs with fsync " + r.Postgres.Fsync
	}
	fmt.Printf("orders, prices, payments in %s; %d in flight, %d buyers; %s\n\n", r.Store, r.Concurrency, r.Buyers, durable)
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "run\tper second\tp50 ms\tp99 ms\terrors\t")
	fmt.Fprintf(w, "purchases (confirmed)\t%.0f\t%.1f\t%.1f\t%d\t\n", r.Purchases.PerSec, r.Purchases.P50ms, r.Purchases.P99ms, r.Purchases.Errors)
	steps := []struct {
		name string
		l    stepLatency
	}{{"  hold", r.Steps.Hold}, {"  order", r.Steps.Order}}
	if r.Steps.Card != nil {
		steps = append(steps, struct {
			name string
			l    stepLatency
		}{"  card (tokenized)", *r.Steps.Card})
	}
	for _, s := range append(steps, struct {
		name string
		l    stepLatency
	}{"  pay until confirmed", r.Steps.Pay}) {
		fmt.Fprintf(w, "%s\t\t%.1f\t%.1f\t\t\n", s.name, s.l.P50ms, s.l.P99ms)
	}
	fmt.Fprintf(w, "ceiling: HTTP holds\t%.0f\t%.1f\t%.1f\t%d\t\n", r.Ceiling.PerSec, r.Ceiling.P50ms, r.Ceiling.P99ms, r.Ceiling.Errors)
	w.Flush()
	fmt.Printf("\npurchases / holds ceiling: %.3fx\n", r.PurchasesOverHolds)
	if n := r.Purchases.Confirmed; n > 0 {
		fmt.Printf("CPU in the purchases phase: system %.1f s (%.0f µs a purchase), load generator %.1f s (%.0f µs a purchase)\n",
			r.SystemCPU, 1e6*r.SystemCPU/float64(n), r.ClientCPU, 1e6*r.ClientCPU/float64(n))
	}
	if len(r.StreamWrites) > 0 {
		printWrites(os.Stdout, r.StreamWrites)
	}
	if len(r.Purchases.Rejected) > 0 {
		fmt.Printf("refused (sold out, purchase limit), by step: %v\n", r.Purchases.Rejected)
	}
	if r.ConfirmPolls > 0 {
		fmt.Printf("pays that answered \"paid\" and were read again until confirmed: %d\n", r.ConfirmPolls)
	}
	ck := r.Check
	fmt.Printf("\ncheck (after %.1f s for the saga, the webhooks and the tickets to settle): %d orders, %d confirmed (%d tickets, %d.%02d USD), %d fulfilled (%d tickets issued)\n",
		r.SettleSeconds, ck.Orders, ck.Confirmed, ck.ConfirmedTickets, ck.ConfirmedTotal/100, ck.ConfirmedTotal%100, ck.Fulfilled, ck.Tickets)
	fmt.Printf("  ledger: %d payments, net captured %d; gateway: %d intents, net captured %d; inventory sold %d of %d\n",
		ck.LedgerPayments, ck.LedgerNet, ck.GatewayIntents, ck.GatewayNet, ck.Sold, ck.Capacity)
	fmt.Printf("  double captures: %d   ledger mismatches: %d   oversold: %d   ticket mismatches: %d\n", r.DoubleCaptures, r.LedgerMismatches, r.Oversold, ck.TicketMismatches)
	if ck.StaleStatus > 0 {
		fmt.Printf("  confirmed orders showing a payment status other than succeeded: %d\n", ck.StaleStatus)
	}
	if ck.FirstProblem != "" {
		fmt.Printf("  first problem: %s\n", ck.FirstProblem)
	}
	if r.Purchases.FirstErr != "" {
		fmt.Printf("first error: %s\n", r.Purchases.FirstErr)
	}
	if r.Ceiling.FirstErr != "" {
		fmt.Printf("first error of the holds ceiling: %s\n", r.Ceiling.FirstErr)
	}
}
