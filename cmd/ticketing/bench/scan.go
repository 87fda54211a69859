package bench

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ticketing/ticketing/cmd/ticketing/cli"
	"github.com/ticketing/ticketing/core/node"
	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/internal/loadgen"
	"github.com/ticketing/ticketing/services/barcode"
	"github.com/ticketing/ticketing/services/fulfillment"
	fulfillmentkv "github.com/ticketing/ticketing/services/fulfillment/natskv"
)

// ScanReport is what `ticketing bench scan --json` prints.
type ScanReport struct {
	Cores int `json:"cores"`
	// Barcodes: distinct shown barcodes (static token and current code)
	// verified; Revoked: entries of the verifier's revocation list (other
	// tickets), as a scanner of a large event holds.
	Barcodes int `json:"barcodes"`
	Revoked  int `json:"revocation_list_entries"`
	// Offline: barcode.Verifier.Verify on every core; Raw: ed25519.Verify
	// alone over the same signed messages, in the same rounds.
	Offline              perSec  `json:"offline_verifications"`
	Raw                  perSec  `json:"raw_ed25519_verify"`
	VerificationsOverRaw float64 `json:"verifications_over_raw"`
	// Store is where tickets and check-ins were written: the tickets
	// bucket of services/fulfillment/natskv on an embedded core node
	// (conf/nats/core.conf: sync_interval always, R1).
	Store string `json:"store"`
	// Issuance: fulfillment.Issuer.Issue of sales of a GA hold of two
	// units each, from Issuers at once, signed as the core signs; its
	// ceiling RawIssuers: KV creates of distinct keys on the same bucket
	// from as many at once, in alternating rounds.
	Issuers    int            `json:"issuers"`
	Issuance   IssuanceResult `json:"issuance"`
	RawIssuers loadgen.Result `json:"raw_kv_create_at_issuers"`
	// IssuanceWritesOverRaw is the issuance's stored writes a second
	// (tickets × writes a ticket) over the raw creates a second.
	IssuanceWritesOverRaw float64 `json:"issuance_writes_over_raw"`
	// CheckIns: Store.CheckIn of distinct tickets from Gates at once;
	// its ceiling RawGates: KV creates of distinct keys of the same size
	// on the same bucket from as many at once, in alternating rounds.
	Gates           int            `json:"gates"`
	CheckIns        loadgen.Result `json:"online_checkins"`
	RawGates        loadgen.Result `json:"raw_kv_create"`
	CheckInsOverRaw float64        `json:"checkins_over_raw"`
	// DiskSync: appends of a check-in's size to a file in the store's
	// directory, each followed by fsync, one at a time: what one
	// stream's synced writes, made one after another, can reach.
	DiskSync loadgen.Result `json:"disk_synced_appends"`
	Verdicts ScanVerdicts   `json:"verdicts"`
	// Problems counts the verdicts that disagree (ScanVerdicts.problems);
	// 0 on a good run.
	Problems     int    `json:"problems"`
	FirstProblem string `json:"first_problem,omitempty"`
}

// IssuanceResult is the issuance phase: tickets issued a second, and the
// latency of a sale's issue (two tickets).
type IssuanceResult struct {
	PerSec      float64 `json:"per_sec"` // tickets
	SalesPerSec float64 `json:"sales_per_sec"`
	P50ms       float64 `json:"p50_ms"`
	P99ms       float64 `json:"p99_ms"`
	Sales       int64   `json:"sales"`
	Tickets     int64   `json:"tickets"`
	// WritesPerTicket: messages the tickets bucket stored a ticket
	// issued (slot, id, order and holder keys).
	WritesPerTicket float64 `json:"writes_per_ticket"`
	Errors          int64   `json:"errors"`
	FirstErr        string  `json:"first_error,omitempty"`
	Seconds         float64 `json:"seconds"`
}

// ScanVerdicts are the run's verdicts, counted, and what the store holds
// after it.
type ScanVerdicts struct {
	// Offline: every barcode shown is valid, so every verification
	// should accept.
	OfflineAccepted int64 `json:"offline_accepted"`
	OfflineRefused  int64 `json:"offline_refused"`
	// Issued: tickets the issuance returned; TicketsStored: ticket slots
	// of the event found in the bucket after it.
	Issued        int64 `json:"tickets_issued"`
	TicketsStored int   `json:"tickets_stored"`
	// Admitted: check-ins that admitted; AlreadyCheckedIn: check-ins
	// refused as a second (none: each ticket is scanned once);
	// CheckInsStored: check-in keys of the event in the bucket after.
	Admitted         int64 `json:"admitted"`
	AlreadyCheckedIn int64 `json:"already_checked_in"`
	CheckInsStored   int   `json:"checkins_stored"`
	// Rescans: admitted tickets scanned again at another gate, of which
	// RescansRefused were refused already_checked_in naming the first
	// gate; Replays: admitted scans sent again (the same nonce), of which
	// ReplaysFirst were answered with the first.
	Rescans        int64 `json:"rescans"`
	RescansRefused int64 `json:"rescans_refused"`
	Replays        int64 `json:"replays"`
	ReplaysFirst   int64 `json:"replays_answered_first"`
	// Errors: operations of the online phases that failed.
	Errors int64 `json:"errors"`
}

// problems lists the verdicts that disagree.
func (v ScanVerdicts) problems() []string {
	var out []string
	add := func(bad bool, format string, a ...any) {
		if bad {
			out = append(out, fmt.Sprintf(format, a...))
		}
	}
	add(v.OfflineRefused > 0, "%d valid barcodes refused offline", v.OfflineRefused)
	add(int64(v.TicketsStored) != v.Issued, "%d tickets issued, %d in the store", v.Issued, v.TicketsStored)
	add(v.AlreadyCheckedIn > 0, "%d first scans refused as already checked in", v.AlreadyCheckedIn)
	add(int64(v.CheckInsStored) != v.Admitted, "%d check-ins admitted, %d in the store", v.Admitted, v.CheckInsStored)
	add(v.RescansRefused != v.Rescans, "%d of %d rescans at another gate refused", v.RescansRefused, v.Rescans)
	add(v.ReplaysFirst != v.Replays, "%d of %d replayed scans answered with the first", v.ReplaysFirst, v.Replays)
	add(v.Errors > 0, "%d operations failed", v.Errors)
	return out
}

type scanOpts struct {
	d          time.Duration
	barcodes   int
	revoked    int
	issuers    int
	gates      int
	cpuProfile string
	asJSON     bool
	status     func(format string, a ...any)
}

// benchScan measures the gate's side of tickets, each next to a same-run
// ceiling: offline barcode verification against raw Ed25519, ticket
// issuance and online check-ins on the embedded tickets store against raw
// KV creates on the same bucket.
func benchScan(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("bench scan", flag.ContinueOnError)
	var o scanOpts
	fs.DurationVar(&o.d, "duration", 5*time.Second, "length of each phase: offline verifications, raw Ed25519, issuance, its raw creates, check-ins, their raw creates (each in alternating rounds with its ceiling)")
	fs.IntVar(&o.barcodes, "barcodes", 4096, "distinct tickets whose barcodes are verified offline")
	fs.IntVar(&o.revoked, "revoked", 10000, "entries of the offline verifier's revocation list (other tickets)")
	fs.IntVar(&o.issuers, "issuers", 16, "sales issued at once (a core node issues 16 orders at once)")
	fs.IntVar(&o.gates, "concurrency", 64, "gates checking tickets in at once")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the check-in phase (check-ins and their raw creates) to this file")
	fs.BoolVar(&o.asJSON, "json", false, "print one JSON object (its last line) instead of a table")
	if err := cli.Parse(fs, args); err != nil {
		return err
	}
	if o.d <= 0 || o.barcodes < 1 || o.revoked < 0 || o.issuers < 1 || o.gates < 1 {
		return errors.New("bench scan: --duration, --barcodes, --issuers and --concurrency must be positive, --revoked not negative")
	}
	o.status = func(format string, a ...any) {
		if !o.asJSON {
			fmt.Fprintf(os.Stderr, format+"\n", a...)
		}
	}
	rep, err := scanOnce(ctx, o)
	if err != nil {
		return err
	}
	if o.asJSON {
		if err := json.NewEncoder(os.Stdout).Encode(rep); err != nil {
			return err
		}
	} else {
		printScan(rep)
	}
	if rep.Problems > 0 {
		return fmt.Errorf("scan check failed: %d problem(s), first: %s", rep.Problems, rep.FirstProblem)
	}
	return nil
}

// scanEvent is the event of the run's tickets.
const scanEvent = "bench-scan"

func scanOnce(ctx context.Context, o scanOpts) (ScanReport, error) {
	rep := ScanReport{Cores: runtime.GOMAXPROCS(0), Barcodes: o.barcodes, Revoked: o.revoked, Issuers: o.issuers, Gates: o.gates,
		Store: "jetstream kv (services/fulfillment/natskv), embedded core node, sync_interval always, R1"}
	now := time.Now()
	key, err := barcode.NewKey(scanEvent, "k1", now.Add(-time.Hour), time.Time{})
	if err != nil {
		return rep, err
	}
	if err := scanOffline(key, o, &rep); err != nil {
		return rep, err
	}

	dir, done, err := runDir("", "ticketing-bench-scan")
	if err != nil {
		return rep, err
	}
	defer done()
	o.status("starting a core node (in this process; data in %s, every write synced) …", dir)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	n, err := node.Start(ctx, node.Config{Name: "core-1", DataDir: dir, ClientAddr: "-", LeafAddr: "127.0.0.1:0"}, log)
	if err != nil {
		return rep, err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		n.Shutdown(sctx)
	}()
	// The core's own connection: in process, as core.Start opens the one
	// its tickets store uses.
	nc, err := n.Connect("bench-scan")
	if err != nil {
		return rep, err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return rep, err
	}
	cfg := fulfillmentkv.Config{}
	store, err := fulfillmentkv.Open(ctx, js, cfg)
	if err != nil {
		return rep, err
	}
	cfg.Defaults()
	kv, err := js.KeyValue(ctx, cfg.Bucket)
	if err != nil {
		return rep, err
	}
	s := &scanStore{store: store, kv: kv, js: js, stream: "KV_" + cfg.Bucket}
	if err := scanIssuance(ctx, s, key, o, &rep); err != nil {
		return rep, err
	}
	if err := scanCheckIns(ctx, s, o, &rep); err != nil {
		return rep, err
	}
	if err := scanDisk(ctx, dir, o, &rep); err != nil {
		return rep, err
	}
	probs := rep.Verdicts.problems()
	rep.Problems = len(probs)
	if len(probs) > 0 {
		rep.FirstProblem = probs[0]
	}
	return rep, nil
}

// scanOffline measures offline verifications of distinct valid barcodes
// against raw Ed25519 over the same signed messages, in alternating
// rounds on every core. The barcodes are shown again (their current
// code) before each round, as phones redraw them.
func scanOffline(key barcode.Key, o scanOpts, rep *ScanReport) error {
	rotation := barcode.NewRotationSecret()
	now := time.Now()
	o.status("signing %d barcodes, a revocation list of %d …", o.barcodes, o.revoked)
	type ticket struct {
		static   string
		secret   []byte
		msg, sig []byte
	}
	tickets := make([]ticket, o.barcodes)
	for i := range tickets {
		c := barcode.Claims{TicketID: fmt.Sprintf("t_%032x", i), EventID: scanEvent, PlaceKind: barcode.GeneralAdmission, Place: "ga",
			Holder: fmt.Sprintf("u_%026x", i%1000), ValidFrom: now.Add(-time.Hour), ValidUntil: now.Add(24 * time.Hour),
			Device: barcode.NewDeviceBinding()}
		static, err := barcode.Sign(key, c)
		if err != nil {
			return err
		}
		secret, err := barcode.DeviceSecret(rotation, c)
		if err != nil {
			return err
		}
		raw, err := base64.RawURLEncoding.DecodeString(static)
		if err != nil {
			return err
		}
		end := len(raw) - ed25519.SignatureSize
		tickets[i] = ticket{static: static, secret: secret,
			msg: append([]byte("ticketing-barcode-v1"), raw[:end]...), sig: raw[end:]}
	}
	revoked := barcode.NewRevocationList(1)
	for i := range o.revoked {
		if i%4 == 0 { // a re-issue for a lost phone: the old barcode refused
			revoked.Supersede(fmt.Sprintf("t_revoked_%032x", i), barcode.NewDeviceBinding())
		} else {
			revoked.Revoke(fmt.Sprintf("t_revoked_%032x", i))
		}
	}
	pub := key.Public()
	v := barcode.Verifier{Keys: barcode.KeySet{Keys: []barcode.PublicKey{pub}}, Revoked: revoked, Event: scanEvent, RotationSecret: rotation}

	shown := make([]string, len(tickets))
	var accepted, refused atomic.Int64
	var firstRefusal atomic.Value
	const rounds = 5
	var verify, raw float64
	for r := range rounds {
		at := time.Now()
		for i, t := range tickets {
			text, err := barcode.Show(t.static, t.secret, at)
			if err != nil {
				return err
			}
			shown[i] = text
		}
		o.status("offline verifications and raw Ed25519 on %d cores, round %d of %d (%v each) …", rep.Cores, r+1, rounds, o.d/rounds)
		rates := inRounds(o.d/rounds, 1, len(tickets),
			func(i int) {
				if _, err := v.Verify(shown[i]); err != nil {
					refused.Add(1)
					firstRefusal.CompareAndSwap(nil, err.Error())
					return
				}
				accepted.Add(1)
			},
			func(i int) {
				if !ed25519.Verify(pub.Key, tickets[i].msg, tickets[i].sig) {
					refused.Add(1)
					firstRefusal.CompareAndSwap(nil, "raw ed25519.Verify failed")
				}
			})
		verify += rates[0] / rounds
		raw += rates[1] / rounds
		o.status("  %.0f verifications/s, %.0f raw verifies/s", rates[0], rates[1])
	}
	rep.Offline.PerSec, rep.Raw.PerSec = verify, raw
	rep.VerificationsOverRaw = ratio(verify, raw)
	rep.Verdicts.OfflineAccepted, rep.Verdicts.OfflineRefused = accepted.Load(), refused.Load()
	if msg, ok := firstRefusal.Load().(string); ok {
		o.status("  first refusal: %s", msg)
	}
	return nil
}

// scanStore is the tickets store and the bucket under it.
type scanStore struct {
	store  *fulfillmentkv.Store
	kv     jetstream.KeyValue
	js     jetstream.JetStream
	stream string
}

// stored is the number of messages the bucket's stream has stored.
func (s *scanStore) stored(ctx context.Context) (uint64, error) {
	st, err := s.js.Stream(ctx, s.stream)
	if err != nil {
		return 0, err
	}
	info, err := st.Info(ctx)
	if err != nil {
		return 0, err
	}
	return info.State.Msgs, nil
}

// keys counts the bucket's keys matching filter.
func (s *scanStore) keys(ctx context.Context, filter string) (int, error) {
	lister, err := s.kv.ListKeysFiltered(ctx, filter)
	if err != nil {
		return 0, err
	}
	n := 0
	for range lister.Keys() {
		n++
	}
	return n, ctx.Err()
}

// rawCreates is the KV-create ceiling: each call creates a key of its
// own in the bucket, value of size bytes.
func (s *scanStore) rawCreates(prefix string, size int) loadgen.Op {
	val := []byte(strings.Repeat("x", size))
	var next atomic.Int64
	return func(ctx context.Context, _ int, _ int64) (loadgen.Outcome, error) {
		_, err := s.kv.Create(ctx, prefix+strconv.FormatInt(next.Add(1), 10), val)
		return loadgen.OK, err
	}
}

// scanSigner signs tickets' barcodes with one key, as the core's
// ticketSigner does with its ring's active key.
type scanSigner struct{ key barcode.Key }

func (s scanSigner) Sign(t fulfillment.Ticket) (string, []byte, error) {
	if t.KeyID != "" && t.KeyID != s.key.ID {
		return "", nil, errs.Errorf("bench.sign_ticket", errs.Gone, "key %s is not kept", t.KeyID)
	}
	c := barcode.Claims{TicketID: t.ID, EventID: t.EventID, Holder: t.Holder, ValidFrom: t.ValidFrom, ValidUntil: t.ValidUntil}
	if t.Seat != "" {
		c.PlaceKind, c.Place = barcode.Seat, t.Seat
	} else {
		c.PlaceKind, c.Place = barcode.GeneralAdmission, t.Zone
	}
	if n, err := hex.Decode(c.Device[:], []byte(t.Device)); err != nil || n != len(c.Device) {
		return "", nil, errs.Errorf("bench.sign_ticket", errs.Invalid, "device %q is not 8 hex bytes", t.Device)
	}
	text, err := barcode.Sign(s.key, c)
	if err != nil {
		return "", nil, err
	}
	return s.key.ID, []byte(text), nil
}

// scanSale is sale k of the run: a GA hold of two units, bought by one of
// a thousand accounts.
func scanSale(k int64, validFrom, validUntil time.Time) fulfillment.Sale {
	return fulfillment.Sale{Order: "o_scan_" + strconv.FormatInt(k, 10), Account: fmt.Sprintf("u_%026d", k%1000), Event: scanEvent,
		ValidFrom: validFrom, ValidUntil: validUntil,
		Holds: []fulfillment.SoldHold{{ID: scanEvent + ".0.h" + strconv.FormatInt(k, 10), Zone: "ga", Quantity: 2}}}
}

// scanIssuance measures fulfillment.Issuer.Issue of sales against raw KV
// creates at the same concurrency, two rounds each, alternating.
func scanIssuance(ctx context.Context, s *scanStore, key barcode.Key, o scanOpts, rep *ScanReport) error {
	from := time.Now().Add(-time.Hour).Truncate(time.Second)
	until := from.Add(48 * time.Hour)
	is := &fulfillment.Issuer{Store: s.store, Signer: scanSigner{key: key}}
	var next, tickets atomic.Int64
	issue := func(ctx context.Context, _ int, _ int64) (loadgen.Outcome, error) {
		ts, err := is.Issue(ctx, scanSale(next.Add(1)-1, from, until))
		tickets.Add(int64(len(ts)))
		return loadgen.OK, err
	}
	// The ceiling's values are of a ticket's size.
	t := scanSale(0, from, until).Tickets()[0]
	t.KeyID, t.TokenHash, t.IssuedAt = key.ID, strings.Repeat("0", 64), time.Now()
	raw := s.rawCreates("raw.issue.", len(mustJSON(t)))
	before, err := s.stored(ctx)
	if err != nil {
		return err
	}
	var issues, raws []loadgen.Result
	const rounds = 2
	for r := range rounds {
		o.status("issuance (%d issuers) and raw KV creates, round %d of %d (%v each) …", o.issuers, r+1, rounds, o.d/rounds)
		issues = append(issues, loadgen.Closed(ctx, "issuance", o.issuers, o.d/rounds, issue, nil))
		raws = append(raws, loadgen.Closed(ctx, "raw_kv_create_at_issuers", o.issuers, o.d/rounds, raw, nil))
		o.status("  %.0f tickets/s, %.0f raw creates/s", 2*issues[r].PerSec, raws[r].PerSec)
	}
	after, err := s.stored(ctx)
	if err != nil {
		return err
	}
	res, rr := mergeResults(issues), mergeResults(raws)
	rep.RawIssuers = rr
	iss := IssuanceResult{Sales: res.OK, Tickets: tickets.Load(), P50ms: res.P50ms, P99ms: res.P99ms,
		Errors: res.Errors, FirstErr: res.FirstErr, Seconds: res.Seconds}
	if res.Seconds > 0 {
		iss.SalesPerSec = float64(res.OK) / res.Seconds
		iss.PerSec = float64(iss.Tickets) / res.Seconds
	}
	if iss.Tickets > 0 {
		iss.WritesPerTicket = float64(int64(after-before)-rr.OK) / float64(iss.Tickets)
	}
	rep.Issuance = iss
	rep.IssuanceWritesOverRaw = ratio(iss.PerSec*iss.WritesPerTicket, rr.PerSec)
	rep.Verdicts.Issued = iss.Tickets
	rep.Verdicts.Errors += res.Errors + rr.Errors
	n, err := s.keys(ctx, "slot."+scanEvent+".>")
	if err != nil {
		return err
	}
	rep.Verdicts.TicketsStored = n
	return nil
}

// scanCheckIns measures Store.CheckIn of distinct tickets from o.gates
// gates at once against raw KV creates of the same size and concurrency,
// two rounds each, alternating; then scans a sample again, at another
// gate and as the same scan, and counts the check-ins stored.
//
// Check-ins name the issued tickets first, then the tickets of further
// sales of the event (never issued: CheckIn does not read the ticket,
// the gate verified it).
func scanCheckIns(ctx context.Context, s *scanStore, o scanOpts, rep *ScanReport) error {
	type scan struct {
		i    int64
		gate int
	}
	admitted := make([][]scan, o.gates) // by gate (worker): each its own
	var next, already atomic.Int64
	from := time.Now().Add(-time.Hour).Truncate(time.Second)
	ticketOf := func(i int64) string {
		t := scanSale(i/2, from, from).Tickets()
		return t[i%2].ID
	}
	checkIn := func(ctx context.Context, w int, _ int64) (loadgen.Outcome, error) {
		i := next.Add(1) - 1
		_, err := s.store.CheckIn(ctx, fulfillment.CheckIn{TicketID: ticketOf(i), EventID: scanEvent,
			Gate: "gate-" + strconv.Itoa(w), Nonce: "scan-" + strconv.FormatInt(i, 10), At: time.Now()})
		switch {
		case errs.ReasonOf(err) == fulfillment.ReasonCheckedIn:
			already.Add(1)
			return loadgen.Rejected, nil
		case err != nil:
			return loadgen.OK, err
		}
		admitted[w] = append(admitted[w], scan{i: i, gate: w})
		return loadgen.OK, nil
	}
	size := len(mustJSON(fulfillment.CheckIn{TicketID: ticketOf(0), EventID: scanEvent, Gate: "gate-0", Nonce: "scan-100000", At: time.Now()}))
	raw := s.rawCreates("raw.checkin.", size)

	stopProfile, err := startCPUProfile(o.cpuProfile)
	if err != nil {
		return err
	}
	defer stopProfile() // on early returns; stopping twice is harmless
	var ins, raws []loadgen.Result
	const rounds = 2
	for r := range rounds {
		o.status("check-ins (%d gates) and raw KV creates, round %d of %d (%v each) …", o.gates, r+1, rounds, o.d/rounds)
		ins = append(ins, loadgen.Closed(ctx, "online_checkins", o.gates, o.d/rounds, checkIn, nil))
		raws = append(raws, loadgen.Closed(ctx, "raw_kv_create", o.gates, o.d/rounds, raw, nil))
		o.status("  %.0f check-ins/s (p99 %.1f ms), %.0f raw creates/s (p99 %.1f ms)", ins[r].PerSec, ins[r].P99ms, raws[r].PerSec, raws[r].P99ms)
	}
	stopProfile()
	rep.CheckIns, rep.RawGates = mergeResults(ins), mergeResults(raws)
	// mergeResults rates OK operations only; a refused check-in is a
	// check-in answered too.
	if rep.CheckIns.Seconds > 0 {
		rep.CheckIns.PerSec = float64(rep.CheckIns.OK+rep.CheckIns.Rejected) / rep.CheckIns.Seconds
	}
	rep.CheckInsOverRaw = ratio(rep.CheckIns.PerSec, rep.RawGates.PerSec)
	v := &rep.Verdicts
	v.AlreadyCheckedIn = already.Load()
	v.Errors += rep.CheckIns.Errors + rep.RawGates.Errors
	var all []scan
	for _, a := range admitted {
		all = append(all, a...)
	}
	v.Admitted = int64(len(all))

	// A sample scanned again: at another gate (refused, naming the first
	// gate), or the same scan sent again (answered with the first).
	sample := all[:min(len(all), 2000)]
	o.status("scanning %d admitted tickets again …", len(sample))
	var rescans, rescansRefused, replays, replaysFirst, errCount atomic.Int64
	var wg sync.WaitGroup
	var k atomic.Int64
	for range o.gates {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := k.Add(1) - 1; j < int64(len(sample)); j = k.Add(1) - 1 {
				sc := sample[j]
				gate, nonce := "gate-"+strconv.Itoa(sc.gate), "scan-"+strconv.FormatInt(sc.i, 10)
				c := fulfillment.CheckIn{TicketID: ticketOf(sc.i), EventID: scanEvent, Gate: gate, Nonce: nonce, At: time.Now()}
				if j%2 == 0 {
					rescans.Add(1)
					c.Gate, c.Nonce = "gate-other", "rescan-"+strconv.FormatInt(sc.i, 10)
				} else {
					replays.Add(1)
				}
				first, err := s.store.CheckIn(ctx, c)
				switch {
				case j%2 == 0 && errs.ReasonOf(err) == fulfillment.ReasonCheckedIn && first.Gate == gate && first.Nonce == nonce:
					rescansRefused.Add(1)
				case j%2 == 1 && err == nil && first.Gate == gate && first.Nonce == nonce:
					replaysFirst.Add(1)
				case err != nil && !errs.Is(errs.Conflict, err):
					errCount.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	v.Rescans, v.RescansRefused, v.Replays, v.ReplaysFirst = rescans.Load(), rescansRefused.Load(), replays.Load(), replaysFirst.Load()
	v.Errors += errCount.Load()
	n, err := s.keys(ctx, "in."+scanEvent+".*")
	if err != nil {
		return err
	}
	v.CheckInsStored = n
	return nil
}

func mustJSON(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}

// scanDisk measures synced appends of a check-in's size to a file in the
// store's directory, one at a time, as a stream's writes are synced.
func scanDisk(ctx context.Context, dir string, o scanOpts, rep *ScanReport) error {
	f, err := os.Create(filepath.Join(dir, "synced-appends"))
	if err != nil {
		return err
	}
	defer f.Close()
	rec := make([]byte, 300)
	d := min(o.d, 2*time.Second)
	o.status("synced appends to the store's disk, %v …", d)
	rep.DiskSync = loadgen.Closed(ctx, "disk_synced_appends", 1, d, func(context.Context, int, int64) (loadgen.Outcome, error) {
		if _, err := f.Write(rec); err != nil {
			return loadgen.OK, err
		}
		return loadgen.OK, f.Sync()
	}, nil)
	return nil
}

func printScan(r ScanReport) {
	fmt.Printf("gate benchmark on %d cores\n\n", r.Cores)
	fmt.Printf("offline: %d distinct valid barcodes (static token and current code), a revocation list of %d other tickets, every core\n", r.Barcodes, r.Revoked)
	fmt.Printf("online:  %s\n", r.Store)
	fmt.Printf("         issuance is fulfillment.Issuer.Issue on that store (no core, no orders): sales of 2 GA units, signed with barcode.Sign\n\n")
	fmt.Printf("  %-40s %12s %10s %10s\n", "", "per second", "p50 ms", "p99 ms")
	fmt.Printf("  %-40s %12.0f\n", "offline verifications (barcode.Verifier)", r.Offline.PerSec)
	fmt.Printf("  %-40s %12.0f\n", "raw Ed25519 verify (ceiling)", r.Raw.PerSec)
	fmt.Printf("  %-40s %12.2f\n", "  verifications / raw", r.VerificationsOverRaw)
	row := func(name string, perSec, p50, p99 float64) {
		fmt.Printf("  %-40s %12.0f %10.1f %10.1f\n", name, perSec, p50, p99)
	}
	row(fmt.Sprintf("tickets issued (%d issuers; ms a sale)", r.Issuers), r.Issuance.PerSec, r.Issuance.P50ms, r.Issuance.P99ms)
	row(fmt.Sprintf("raw KV creates, %d at once (ceiling)", r.Issuers), r.RawIssuers.PerSec, r.RawIssuers.P50ms, r.RawIssuers.P99ms)
	fmt.Printf("  %-40s %12.2f   (%.1f stored writes a ticket)\n", "  ticket writes / raw", r.IssuanceWritesOverRaw, r.Issuance.WritesPerTicket)
	row(fmt.Sprintf("online check-ins (%d gates)", r.Gates), r.CheckIns.PerSec, r.CheckIns.P50ms, r.CheckIns.P99ms)
	row(fmt.Sprintf("raw KV creates, %d at once (ceiling)", r.Gates), r.RawGates.PerSec, r.RawGates.P50ms, r.RawGates.P99ms)
	fmt.Printf("  %-40s %12.2f\n", "  check-ins / raw", r.CheckInsOverRaw)
	row("disk: synced appends, one at a time", r.DiskSync.PerSec, r.DiskSync.P50ms, r.DiskSync.P99ms)
	v := r.Verdicts
	fmt.Printf("\nverdicts: offline %d accepted, %d refused; %d tickets issued, %d stored; %d admitted, %d already checked in, %d check-ins stored;\n"+
		"          rescans at another gate %d of %d refused; replays %d of %d answered with the first; errors %d\n",
		v.OfflineAccepted, v.OfflineRefused, v.Issued, v.TicketsStored, v.Admitted, v.AlreadyCheckedIn, v.CheckInsStored,
		v.RescansRefused, v.Rescans, v.ReplaysFirst, v.Replays, v.Errors)
	for _, e := range []string{r.Issuance.FirstErr, r.RawIssuers.FirstErr, r.CheckIns.FirstErr, r.RawGates.FirstErr, r.DiskSync.FirstErr} {
		if e != "" {
			fmt.Printf("first error: %s\n", e)
		}
	}
	if r.Problems > 0 {
		fmt.Printf("PROBLEMS: %d, first: %s\n", r.Problems, r.FirstProblem)
	}
}
