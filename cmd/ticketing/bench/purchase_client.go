package bench

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/ticketing/ticketing/cmd/ticketing/cli"
	"github.com/ticketing/ticketing/internal/loadgen"
	"github.com/ticketing/ticketing/services/catalog"
	"github.com/ticketing/ticketing/services/orders"
)

// purchaseClientReport is what the purchase load generator hands back to
// the benchmark.
type purchaseClientReport struct {
	// Purchases is the closed loop's result as loadgen measured it (every
	// operation, failed ones too); OK counts confirmed purchases.
	Purchases loadgen.Result
	// Latency of the confirmed purchases alone, whole and by step (Card:
	// the card tokenized at the payment service, unless reused).
	Whole, Hold, Order, Card, Pay stepLatency
	// ConfirmPolls counts the pays that answered "paid" and were read
	// again until confirmed; Polls the reads.
	ConfirmPolls, Polls int64
	// RejectedBy counts the refusals by step (sold out, purchase limit).
	RejectedBy map[string]int64
	// Ceiling: plain GA holds through the same edge, one account.
	Ceiling loadgen.Result
	// Accounts are the buyers' account ids (their tokens' subjects), in
	// buyer order; Orders every order id a request was sent for (the id
	// the orders service derives from the idempotency key), whatever the
	// answer.
	Accounts []string
	Orders   []string
	// SignIns: the buyers signed in before the run; Cards: the cards
	// tokenized (before the run with --reuse-card, else one a purchase).
	SignIns, Cards int
	// CPU of the load generator over the purchases phase.
	Counters procCounters
}

// stepLatency is the median and tail of one step of the confirmed
// purchases.
type stepLatency struct {
	P50ms float64 `json:"p50_ms"`
	P99ms float64 `json:"p99_ms"`
}

func latencyOf(l []time.Duration) stepLatency {
	if len(l) == 0 {
		return stepLatency{}
	}
	slices.Sort(l)
	q := func(p float64) float64 {
		i := max(int(p*float64(len(l))+0.999999)-1, 0)
		return float64(l[i]) / float64(time.Millisecond)
	}
	return stepLatency{P50ms: q(0.5), P99ms: q(0.99)}
}

// buyer is one signed-in account with its card's token.
type buyer struct {
	sess    *benchSession
	account string
	card    string
}

// benchPurchaseClient is the purchase benchmark's load generator, a
// process of its own as the buyers' browsers are: it signs every buyer in
// through the edge, tokenizes a card for each at the payment service, then
// buys (hold, order, pay) in a closed loop, and last measures plain holds
// through the same edge.
func benchPurchaseClient(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("bench purchase-client", flag.ContinueOnError)
	edgeHTTP := fs.String("edge-http", "", "the edge's HTTP API base URL")
	payURL := fs.String("payment", "", "the payment service's base URL (card tokenization)")
	event := fs.String("event", "", "the event to buy")
	ceilingEvent := fs.String("ceiling-event", "", "the event of the plain holds ceiling")
	reuseCard := fs.Bool("reuse-card", false, "tokenize one card a buyer before the run and pay every purchase with it (default: one a purchase, as the payment service forgets a card's CVC after its first authorization)")
	seats := fs.Bool("seats", false, "hold one seat of section s (rows r1.., 500 seats each) instead of a GA ticket")
	emails := fs.String("account-prefix", "", "the buyers' addresses: <prefix><n>@bench.invalid for n in [0, --buyers)")
	password := fs.String("account-password", "", "the buyers' password")
	nBuyers := fs.Int("buyers", 1, "buyers")
	dur := fs.Duration("duration", 5*time.Second, "length of each phase")
	conc := fs.Int("concurrency", 64, "purchases in flight at once")
	progress := fs.Bool("progress", false, "a progress line on standard error")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the purchases phase to this file")
	gf := cli.AddGCFlags(fs)
	if err := cli.Parse(fs, args); err != nil {
		return err
	}
	if err := gf.Apply(slog.New(slog.NewTextHandler(io.Discard, nil))); err != nil {
		return err
	}
	if *nBuyers < 1 || *conc < 1 {
		return errors.New("bench purchase-client: --buyers and --concurrency must be positive")
	}
	var rep purchaseClientReport
	buyers, err := signInBuyers(ctx, *edgeHTTP, *payURL, *emails, *password, *nBuyers, *reuseCard)
	if err != nil {
		return err
	}
	rep.SignIns = len(buyers)
	if *reuseCard {
		rep.Cards = len(buyers)
	}
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	for _, b := range buyers {
		go b.sess.keepFresh(sctx)
		rep.Accounts = append(rep.Accounts, b.account)
	}

	p := newPurchaser(*edgeHTTP, *payURL, *event, *seats, !*reuseCard, buyers, *conc)
	var report func(float64)
	if *progress {
		report = p.progressLine(*dur)
	}
	stopProfile, err := startCPUProfile(*cpuProfile)
	if err != nil {
		return err
	}
	defer stopProfile()
	fmt.Fprintln(os.Stderr, benchMarkStart)
	c0 := readProcCounters()
	rep.Purchases = loadgen.Closed(ctx, "purchases", *conc, *dur, p.purchase, report)
	rep.Counters = readProcCounters().sub(c0)
	fmt.Fprintln(os.Stderr, benchMarkEnd)
	stopProfile()
	if *progress {
		fmt.Fprintln(os.Stderr)
	}
	p.fill(&rep)

	// The ceiling: plain holds through the same edge and the same
	// number in flight, as bench holds --via-http makes them.
	var held atomic.Int64
	hold := holdOp(nil, *edgeHTTP, buyers[0].sess, *conc, nil)
	rep.Ceiling = loadgen.Closed(ctx, "http holds", *conc, *dur, hold(*ceilingEvent, &held), nil)
	return json.NewEncoder(os.Stdout).Encode(rep)
}

// signInBuyers signs n buyers in through the edge (POST /v1/auth/signin)
// and, with card, tokenizes a frictionless card for each at the payment
// service, a few at a time.
func signInBuyers(ctx context.Context, edge, pay, prefix, password string, n int, card bool) ([]*buyer, error) {
	out := make([]*buyer, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	errc := make(chan error, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
				b, err := signInBuyer(ctx, edge, pay, benchAccount{email: fmt.Sprintf("%s%d@bench.invalid", prefix, i), password: password}, card)
				if err != nil {
					errc <- err
					return
				}
				out[i] = b
			}
		}()
	}
	wg.Wait()
	close(errc)
	if err := <-errc; err != nil {
		return nil, err
	}
	return out, nil
}

func signInBuyer(ctx context.Context, edge, pay string, acct benchAccount, card bool) (*buyer, error) {
	s := newBenchSession(edge, acct, nil)
	if err := s.signIn(ctx); err != nil {
		return nil, err
	}
	sub, err := tokenSubject(strings.TrimPrefix(s.header(), "Bearer "))
	if err != nil {
		return nil, err
	}
	b := &buyer{sess: s, account: sub}
	if card {
		if b.card, err = tokenizeCard(ctx, s, pay); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// tokenSubject reads the subject of an access token (a JWT), the account
// the edge names the caller by.
func tokenSubject(token string) (string, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return "", errors.New("the access token is not a JWT")
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return "", err
	}
	var claims struct {
		Sub string `json:"sub"`
	}
	if err := json.Unmarshal(raw, &claims); err != nil || claims.Sub == "" {
		return "", fmt.Errorf("no subject in the access token (%v)", err)
	}
	return claims.Sub, nil
}

// frictionlessCard is the body of a tokenization: a card the gateway
// simulator authorizes without a 3-D Secure challenge.
var frictionlessCard = []byte(fmt.Sprintf(`{"number":"4242424242424242","exp_month":12,"exp_year":%d,"cvc":"123"}`, time.Now().Year()+3))

// tokenizeCard seals a card at the payment service (POST /v1/cards, as
// its card page does) and returns its token.
func tokenizeCard(ctx context.Context, s *benchSession, pay string) (string, error) {
	req, err := newJSONRequest(ctx, pay+"/v1/cards", string(frictionlessCard))
	if err != nil {
		return "", err
	}
	resp, err := s.hc.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var tok struct {
		ID string `json:"id"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil || resp.StatusCode != 201 || tok.ID == "" {
		return "", fmt.Errorf("tokenizing a card: HTTP %d (%v)", resp.StatusCode, err)
	}
	return tok.ID, nil
}

func newJSONRequest(ctx context.Context, url, body string) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	return req, nil
}

// purchaser makes purchases through the edge's HTTP API: a hold, an order
// of it, a card tokenized at the payment service (unless the buyer's is
// reused), the order's payment with it, read again until confirmed when
// the pay answered "paid".
type purchaser struct {
	hc      *fasthttp.Client
	base    string
	pay     string // the payment service's base URL
	event   string
	seats   bool
	card    bool // tokenize a card a purchase
	buyers  []*buyer
	workers []purchaseWorker
	// done counts confirmed purchases, for the progress line.
	done, failed atomic.Int64
	polls, slow  atomic.Int64
	cards        atomic.Int64
	rejected     sync.Map // step → *atomic.Int64
}

// purchaseWorker is one closed-loop worker's record (its own: no locks).
type purchaseWorker struct {
	whole, hold, order, card, pay []time.Duration
	orders                        []string
	_                             [64]byte // keeps workers' records off each other's cache lines
}

// Seats of the seated venue: one section, rows of benchRowSeats.
const (
	benchSection  = "s"
	benchRowSeats = catalog.MaxSeatsPerRow
	benchRows     = catalog.MaxRowsPerSect
)

func newPurchaser(base, pay, event string, seats, card bool, buyers []*buyer, conc int) *purchaser {
	return &purchaser{
		// As holdOp's: connections kept for the run, as browsers keep
		// theirs.
		hc: &fasthttp.Client{MaxConnsPerHost: conc, MaxConnWaitTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
			WriteTimeout: 10 * time.Second, MaxIdleConnDuration: time.Hour},
		base: base, pay: pay, event: event, seats: seats, card: card, buyers: buyers, workers: make([]purchaseWorker, conc),
	}
}

// errRejected marks a correct refusal (sold out, the purchase limit).
type errRejected struct{ step string }

func (e errRejected) Error() string { return e.step + " refused" }

// purchase is one purchase, the closed loop's operation: buyer i mod n.
func (p *purchaser) purchase(ctx context.Context, w int, i int64) (loadgen.Outcome, error) {
	b := p.buyers[i%int64(len(p.buyers))]
	rec := &p.workers[w]
	key := "p" + strconv.FormatInt(i, 10)
	t0 := time.Now()
	holdID, err := p.hold(b, key, i)
	t1 := time.Now()
	if err == nil {
		// Whatever the answer, the order (if any) is found by the id
		// its key makes.
		rec.orders = append(rec.orders, orders.IDFor(b.account+":"+key+"-o"))
		var id string
		id, err = p.order(b, key, holdID)
		t2 := time.Now()
		card := b.card
		if err == nil && p.card {
			card, err = p.tokenize()
		}
		t3 := time.Now()
		if err == nil {
			err = p.payOrder(ctx, b, id, card)
			t4 := time.Now()
			if err == nil {
				rec.hold = append(rec.hold, t1.Sub(t0))
				rec.order = append(rec.order, t2.Sub(t1))
				rec.card = append(rec.card, t3.Sub(t2))
				rec.pay = append(rec.pay, t4.Sub(t3))
				rec.whole = append(rec.whole, t4.Sub(t0))
				p.done.Add(1)
				return loadgen.OK, nil
			}
		}
	}
	var rej errRejected
	if errors.As(err, &rej) {
		n, _ := p.rejected.LoadOrStore(rej.step, new(atomic.Int64))
		n.(*atomic.Int64).Add(1)
		return loadgen.Rejected, nil
	}
	p.failed.Add(1)
	return loadgen.OK, err
}

// do sends one request, as buyer b when b is not nil, and returns the
// answer's status and body (a copy).
func (p *purchaser) do(b *buyer, method, url, key string, body []byte) (int, []byte, error) {
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI(url)
	req.Header.SetMethod(method)
	if b != nil {
		req.Header.Set("Authorization", b.sess.header())
	}
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	if body != nil {
		req.Header.SetContentType("application/json")
		req.SetBodyRaw(body)
	}
	if err := p.hc.DoTimeout(req, resp, 30*time.Second); err != nil {
		return 0, nil, err
	}
	return resp.StatusCode(), bytes.Clone(resp.Body()), nil
}

func (p *purchaser) hold(b *buyer, key string, i int64) (string, error) {
	body := []byte(`{"zone":"ga","quantity":1}`)
	if p.seats {
		n := int(i % (benchRows * benchRowSeats))
		seat := catalog.SeatID(benchSection, "r"+strconv.Itoa(n/benchRowSeats+1), n%benchRowSeats+1)
		body = []byte(`{"seats":["` + seat + `"]}`)
	}
	st, out, err := p.do(b, fasthttp.MethodPost, p.base+"/v1/events/"+p.event+"/holds", key+"-h", body)
	if err != nil {
		return "", fmt.Errorf("hold: %w", err)
	}
	var h struct {
		HoldID string `json:"hold_id"`
	}
	switch {
	case st == fasthttp.StatusConflict:
		return "", errRejected{"hold"}
	case st != fasthttp.StatusCreated:
		return "", fmt.Errorf("hold: HTTP %d: %s", st, out)
	case json.Unmarshal(out, &h) != nil || h.HoldID == "":
		return "", fmt.Errorf("hold: no hold id in %s", out)
	}
	return h.HoldID, nil
}

// orderView is what the purchase reads of an order's answer.
type orderView struct {
	ID    string       `json:"id"`
	State orders.State `json:"state"`
}

func (p *purchaser) order(b *buyer, key, holdID string) (string, error) {
	st, out, err := p.do(b, fasthttp.MethodPost, p.base+"/v1/orders", key+"-o", []byte(`{"holds":["`+holdID+`"]}`))
	if err != nil {
		return "", fmt.Errorf("order: %w", err)
	}
	var o orderView
	switch {
	case st == fasthttp.StatusConflict:
		return "", errRejected{"order"}
	case st != fasthttp.StatusCreated:
		return "", fmt.Errorf("order: HTTP %d: %s", st, out)
	case json.Unmarshal(out, &o) != nil || o.ID == "":
		return "", fmt.Errorf("order: no order in %s", out)
	case o.State != orders.AwaitingPayment:
		return "", fmt.Errorf("order: a new order is %s", o.State)
	}
	return o.ID, nil
}

// tokenize seals a frictionless card at the payment service, as the card
// page does when the buyer types it in.
func (p *purchaser) tokenize() (string, error) {
	p.cards.Add(1)
	st, out, err := p.do(nil, fasthttp.MethodPost, p.pay+"/v1/cards", "", frictionlessCard)
	if err != nil {
		return "", fmt.Errorf("card: %w", err)
	}
	var tok struct {
		ID string `json:"id"`
	}
	if st != fasthttp.StatusCreated || json.Unmarshal(out, &tok) != nil || tok.ID == "" {
		return "", fmt.Errorf("card: HTTP %d: %s", st, out)
	}
	return tok.ID, nil
}

// payOrder pays the order with a card token and, when the answer is
// "paid" (the seats being confirmed), reads the order again until it is
// confirmed.
func (p *purchaser) payOrder(ctx context.Context, b *buyer, id, card string) error {
	st, out, err := p.do(b, fasthttp.MethodPost, p.base+"/v1/orders/"+id+"/pay", "", []byte(`{"method":"`+card+`"}`))
	if err != nil {
		return fmt.Errorf("pay: %w", err)
	}
	if st != fasthttp.StatusOK {
		return fmt.Errorf("pay: HTTP %d: %s", st, out)
	}
	var o orderView
	if err := json.Unmarshal(out, &o); err != nil {
		return fmt.Errorf("pay: %w", err)
	}
	if o.State == orders.Paid {
		p.slow.Add(1)
		deadline := time.Now().Add(30 * time.Second)
		for o.State == orders.Paid && time.Now().Before(deadline) && ctx.Err() == nil {
			time.Sleep(2 * time.Millisecond) // polling with a deadline, as a browser's page would
			p.polls.Add(1)
			st, out, err := p.do(b, fasthttp.MethodGet, p.base+"/v1/orders/"+id, "", nil)
			if err != nil {
				return fmt.Errorf("reading the order: %w", err)
			}
			if st != fasthttp.StatusOK || json.Unmarshal(out, &o) != nil {
				return fmt.Errorf("reading the order: HTTP %d: %s", st, out)
			}
		}
	}
	if !o.State.SeatsSold() {
		return fmt.Errorf("pay: the order is %s, not confirmed", o.State)
	}
	return nil
}

// fill adds the workers' records to rep.
func (p *purchaser) fill(rep *purchaseClientReport) {
	var whole, hold, order, card, pay []time.Duration
	for _, w := range p.workers {
		whole, hold, order = append(whole, w.whole...), append(hold, w.hold...), append(order, w.order...)
		card, pay = append(card, w.card...), append(pay, w.pay...)
		rep.Orders = append(rep.Orders, w.orders...)
	}
	rep.Whole, rep.Hold, rep.Order, rep.Pay = latencyOf(whole), latencyOf(hold), latencyOf(order), latencyOf(pay)
	if p.card {
		rep.Card = latencyOf(card)
		rep.Cards = int(p.cards.Load())
	}
	rep.ConfirmPolls, rep.Polls = p.slow.Load(), p.polls.Load()
	rep.RejectedBy = map[string]int64{}
	p.rejected.Range(func(k, v any) bool {
		rep.RejectedBy[k.(string)] = v.(*atomic.Int64).Load()
		return true
	})
}

// progressLine returns loadgen's progress callback: a line on standard
// error with the purchases so far and their rate, rewritten in place on
// a terminal, else printed every two seconds.
func (p *purchaser) progressLine(d time.Duration) func(float64) {
	term := isTerminal(os.Stderr)
	start := time.Now()
	var last time.Time
	return func(f float64) {
		now := time.Now()
		if !term && now.Sub(last) < 2*time.Second && f < 1 {
			return
		}
		last = now
		n := p.done.Load()
		line := fmt.Sprintf("purchases: %3.0f%% of %v, %d confirmed (%.0f/s), %d failed", 100*f, d, n, float64(n)/now.Sub(start).Seconds(), p.failed.Load())
		if term {
			fmt.Fprintf(os.Stderr, "\r%-78s", line)
		} else {
			fmt.Fprintln(os.Stderr, line)
		}
	}
}
