// Package bench is `ticketing bench`: the benchmarks of the hot paths, each
// printing its throughput and latency next to ceilings measured in the
// same run (and with --json one JSON object on its last line).
//
//   - holds: seat holds at one partition over NATS through an edge's leaf
//     node, or through the edge's HTTP API (--via-http, signed in to an
//     account as a browser is), driven by a load-generating child process
//     (holds-client) as remote clients would; ceilings: echo request/reply
//     and synchronous JetStream publishes over the same path.
//   - bridge: domain events mirrored from JetStream to Kafka, next to a raw
//     franz-go producer and a raw JetStream consumer.
//   - queue: waiting-room WebSockets held by one edge (a child process),
//     memory per connection, admission tokens issued and verified.
//   - auth: access-token checks, sign-ins and refresh rotations next to
//     raw Ed25519 and argon2id.
//   - purchase: whole purchases through the edge's HTTP API (hold, order,
//     pay with a card through the payment service and the gateway
//     simulator, until confirmed), driven by a child process
//     (purchase-client), next to plain HTTP holds through the same edge;
//     then a checker reads the orders, the payment ledger, the gateway's
//     records and the inventory: no double capture, no disagreement on
//     money, nothing oversold.
//   - scan: the gate's side of tickets: offline barcode verifications
//     next to raw Ed25519, and on the embedded tickets store ticket
//     issuance and online check-ins next to raw KV creates on the same
//     bucket.
//
// --tls and --tracing run the system secured and traced as the production
// commands do, and compare it with the same run in plaintext without
// traces.
package bench

import (
	"bytes"
	"cmp"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strconv"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/schollz/progressbar/v3"
	"github.com/valyala/fasthttp"
	"go.opentelemetry.io/otel/trace"

	"github.com/ticketing/ticketing/cmd/ticketing/cli"
	"github.com/ticketing/ticketing/core"
	"github.com/ticketing/ticketing/core/node"
	"github.com/ticketing/ticketing/edge"
	"github.com/ticketing/ticketing/internal/devpki"
	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/internal/loadgen"
	"github.com/ticketing/ticketing/internal/supervisor"
	"github.com/ticketing/ticketing/internal/tlsconf"
	"github.com/ticketing/ticketing/internal/tracing"
	"github.com/ticketing/ticketing/leafnodes"
	"github.com/ticketing/ticketing/services/catalog"
	catalogapi "github.com/ticketing/ticketing/services/catalog/natsapi"
	idtoken "github.com/ticketing/ticketing/services/identity/token"
	"github.com/ticketing/ticketing/services/inventory"
	"github.com/ticketing/ticketing/services/inventory/natsapi"
)

// Run runs `ticketing bench <name>`: holds, bridge, queue, auth,
// purchase, scan, and the load-generating children they start (holds-client,
// queue-client, purchase-client).
func Run(ctx context.Context, args []string) error {
	if len(args) > 0 {
		switch args[0] {
		case "holds":
			return benchHolds(ctx, args[1:])
		case "holds-client":
			return benchHoldsClient(ctx, args[1:])
		case "bridge":
			return benchBridge(ctx, args[1:])
		case "queue":
			return benchQueue(ctx, args[1:])
		case "queue-client":
			return benchQueueClient(ctx, args[1:])
		case "auth":
			return benchAuth(ctx, args[1:])
		case "purchase":
			return benchPurchase(ctx, args[1:])
		case "purchase-client":
			return benchPurchaseClient(ctx, args[1:])
		case "scan":
			return benchScan(ctx, args[1:])
		}
	}
	return errors.New("usage: ticketing bench holds|bridge|queue|auth|purchase|scan [flags]; see ticketing bench holds -h")
}

// Subjects and events of the holds benchmark.
const (
	// benchHolder is the holder of the holds sent over NATS: an account id
	// of the real length, as the edge names the signed-in caller.
	benchHolder        = "u_00000000000000000000000000"
	benchEchoPartition = "bench-echo.0"
	benchPublishSubj   = "bench.publish"
	benchPeak          = "bench-peak"
	benchHalf          = "bench-half"
)

// HoldsReport is what `ticketing bench holds --json` prints.
type HoldsReport struct {
	Path string `json:"path"` // "nats" or "http"
	// TLS: the run was secured as ticketing dev is (mutual TLS on every
	// link, nkeys, the store encrypted unless --jetstream-cipher none).
	TLS bool `json:"tls"`
	// LoadgenTLS: the load generator's link to the edge's leaf server was
	// secured too (--tls-loadgen).
	LoadgenTLS bool `json:"loadgen_tls"`
	// HTTPTLS: through HTTP, the edge's API was served over HTTPS (with
	// TLS, unless --tls-http=false).
	HTTPTLS     bool           `json:"http_tls"`
	Concurrency int            `json:"concurrency"`
	Holds       loadgen.Result `json:"holds"`
	HalfPeak    loadgen.Result `json:"holds_at_half_peak"`
	Echo        loadgen.Result `json:"ceiling_echo_request_reply"`
	// EchoHalf is the echo at the half-peak phase's rate, an open loop like
	// it: the latency the transport alone gives at that load.
	EchoHalf    loadgen.Result `json:"ceiling_echo_at_half_peak"`
	Publish     loadgen.Result `json:"ceiling_jetstream_sync_publish"`
	Oversold    int            `json:"oversold"`
	Unaccounted int64          `json:"unaccounted"` // acknowledged holds not in the final state, or the reverse
	// From the owner's metrics over the whole run.
	LogWrites       int     `json:"log_writes"`
	DecisionsPerLog float64 `json:"decisions_per_log_write"`
	LogWriteMs      float64 `json:"log_write_ms_mean"`
	LogWriteP99Ms   float64 `json:"log_write_ms_p99"` // from the histogram's buckets: an upper bound
	// CPU seconds used during the two holds phases by the system (core and
	// edge, this process) and by the load generator.
	SystemCPU float64 `json:"system_cpu_seconds"`
	ClientCPU float64 `json:"client_cpu_seconds"`
	// The same, split into user and kernel CPU, with the system calls and
	// context switches of each process.
	System procCounters `json:"system"`
	Client procCounters `json:"load_generator"`
	// The peak phase's alone (the one holds/s is measured in).
	SystemPeak procCounters `json:"system_peak"`
	ClientPeak procCounters `json:"load_generator_peak"`
	// Through HTTP: the load generator's sign-ins and refreshes (one
	// session, its access token sent with every hold).
	SignIns   int64 `json:"sign_ins,omitempty"`
	Refreshes int64 `json:"refreshes,omitempty"`
	// Tracing (--tracing): the system's and the load generator's.
	Traced
}

// clientReport is what the load-generating child process hands back.
type clientReport struct {
	Holds, HalfPeak, Echo, EchoHalf, Publish loadgen.Result
	OKPeak, OKHalf                           int64
	// CPU seconds the load generator used in the holds phases, and its
	// counters over them.
	HoldsCPU                    float64
	HoldsCounters, PeakCounters procCounters
	SignIns, Refreshes          int64
}

// benchHolds runs a core and an edge in this process and drives them from a
// child process, as remote clients would: holds at one partition over NATS
// through the edge's leaf node (or its HTTP API), next to same-run ceilings
// measured by the same child over the same paths. With --compare it does
// so as --tls and --tracing say and in plain (TLS off, tracing off),
// alternately, and compares the two.
func benchHolds(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("bench holds", flag.ContinueOnError)
	var o holdsOpts
	fs.DurationVar(&o.dur, "duration", 5*time.Second, "length of each measured phase")
	fs.IntVar(&o.conc, "concurrency", 512, "requests in flight at once (closed-loop workers)")
	fs.BoolVar(&o.viaHTTP, "via-http", false, "drive holds through the edge HTTP API instead of NATS, signed in to an account of the run's own")
	fs.DurationVar(&o.accessTTL, "access-token-lifetime", 5*time.Minute, "lifetime of the core's access tokens (as ticketing core's); through HTTP the load generator renews its session a minute before its token expires, or at half its lifetime if that is sooner")
	asJSON := fs.Bool("json", false, "print one JSON object instead of a table")
	fs.StringVar(&o.data, "data", "", "data directory (default: a temporary one, removed afterwards)")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the system (this process) to this file")
	fs.StringVar(&o.memProfile, "memprofile", "", "write a heap profile of the system (this process) at the end of the holds phases to this file")
	fs.StringVar(&o.clientProfile, "client-cpuprofile", "", "write a CPU profile of the load generator's holds phases to this file")
	cf := addCompareFlags(fs)
	o.tracing = addBenchTracingFlags(fs, false)
	fs.BoolVar(&o.loadgenTLS, "tls-loadgen", false, "secured runs over NATS: the load generator's link to the edge's leaf server over TLS too (default: that loopback link in plaintext, since it stands in for the edge's own handlers, which reach the leaf server in-process; every other link over TLS)")
	fs.BoolVar(&o.httpTLS, "tls-http", true, "secured runs through HTTP (--via-http): the edge's API over HTTPS (false: plain HTTP while every other link stays secured, to tell what HTTPS itself costs)")
	fs.StringVar(&o.leafCompression, "leaf-compression", "", "compression of the edge's leaf-node link: off, s2_auto, s2_fast, … (default: as ticketing dev, off in plaintext, s2_auto over TLS)")
	gf := cli.AddGCFlags(fs) // the system runs as ticketing core would
	if err := cli.Parse(fs, args); err != nil {
		return err
	}
	runs, err := cf.setups(o.tracing.on())
	if err != nil {
		return err
	}
	if len(runs) > 1 && (o.data != "" || o.cpuProfile != "" || o.memProfile != "" || o.clientProfile != "") {
		return errors.New("--compare runs several times: no --data or profiles with it")
	}
	o.cipher = *cf.cipher
	if err := gf.Apply(slog.New(slog.NewTextHandler(io.Discard, nil))); err != nil {
		return err
	}
	o.progress = !*asJSON
	o.status = func(format string, a ...any) {
		if !*asJSON {
			fmt.Fprintf(os.Stderr, format+"\n", a...)
		}
	}
	return runAll(runner[HoldsReport]{
		measures: []measure[HoldsReport]{{"holds/s", "holds_per_sec", func(r HoldsReport) float64 { return r.Holds.PerSec }}},
		run:      func(s setup) (HoldsReport, error) { return holdsTraced(ctx, o, s) },
		check: func(r HoldsReport) error {
			if r.Oversold > 0 || r.Unaccounted > 0 {
				return fmt.Errorf("inventory check failed: oversold %d, unaccounted %d", r.Oversold, r.Unaccounted)
			}
			return nil
		},
		print: printHolds, setup: HoldsReport.setup, status: o.status,
	}, runs, *asJSON)
}

// setup is how the run's system ran.
func (r HoldsReport) setup() setup { return setup{Secure: r.TLS, Traced: r.TracingRatio > 0} }

// holdsTraced is holdsOnce with tracing on for the run when s asks for it,
// its spans exported to a receiver of its own and counted in the report.
func holdsTraced(ctx context.Context, o holdsOpts, s setup) (HoldsReport, error) {
	return tracedRun(ctx, o.tracing, "ticketing-bench", s, func(r *HoldsReport) *Traced { return &r.Traced },
		func() (HoldsReport, error) { return holdsOnce(ctx, o, s) })
}

// holdsOpts are the settings of one holds benchmark run.
type holdsOpts struct {
	dur                                   time.Duration
	conc                                  int
	viaHTTP                               bool
	accessTTL                             time.Duration
	data                                  string
	cpuProfile, memProfile, clientProfile string
	cipher                                string // the store's, when secure
	leafCompression                       string
	loadgenTLS, httpTLS                   bool
	tracing                               *benchTracing
	progress                              bool // progress bars on a terminal
	status                                func(format string, a ...any)
}

// holdsOnce is one run of the holds benchmark: secure, as ticketing dev
// runs (mutual TLS on every link, nkeys, the store encrypted with
// o.cipher), or in plaintext as with --insecure.
func holdsOnce(ctx context.Context, o holdsOpts, s setup) (HoldsReport, error) {
	secure := s.Secure
	dir, done, err := runDir(o.data, "ticketing-bench")
	if err != nil {
		return HoldsReport{}, err
	}
	defer done()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	coreSec, edgeSec := cli.Insecure(), cli.Insecure()
	if secure {
		var err error
		if coreSec, edgeSec, err = cli.DevSecurity(log, filepath.Join(dir, "secrets"), nil, o.cipher); err != nil {
			return HoldsReport{}, err
		}
	}
	o.status("starting a core and an edge (data in %s, every log write synced, TLS %s) …", dir, onOff(secure))
	const token = "bench-admin-token-0123456789"
	reg := prometheus.NewRegistry()
	sup, err := supervisor.New(supervisor.Config{Log: log})
	if err != nil {
		return HoldsReport{}, err
	}
	defer func() { _ = sup.Shutdown() }()
	c, err := core.Start(ctx, core.Config{
		Node:       coreSec.SecureNode(node.Config{Name: "core-1", DataDir: dir, ClientAddr: "127.0.0.1:0", LeafAddr: "127.0.0.1:0"}),
		AdminToken: token,
		Identity:   core.IdentityConfig{Tokens: idtoken.Config{Lifetime: o.accessTTL}},
	}, sup, log, reg)
	if err != nil {
		return HoldsReport{}, err
	}
	ecfg := edgeSec.SecureEdge(edge.Config{
		HTTPAddr: "127.0.0.1:0",
		Leaf: leafnodes.EdgeConfig{Name: "edge-1", ClientAddr: "127.0.0.1:0", Hubs: []string{c.Node.LeafURL()},
			Compression: cmp.Or(o.leafCompression, edgeSec.LoopbackLeafCompression()), PlainLoopbackClients: !o.loadgenTLS},
		// One client address drives the whole load: no per-client limits.
		RateLimit: edge.RateLimitConfig{Disabled: true},
	})
	if !o.httpTLS {
		ecfg.HTTPTLS = tlsconf.Files{}
	}
	e, err := edge.Start(ctx, ecfg, sup, log, cli.NewRegistry())
	if err != nil {
		return HoldsReport{}, err
	}

	inv := &natsapi.Client{NC: c.NC, Timeout: 10 * time.Second}
	if err := createBenchEvents(ctx, c.NC, token, inv); err != nil {
		return HoldsReport{}, err
	}
	var acct benchAccount
	if o.viaHTTP {
		if acct, err = seedBenchAccount(ctx, c); err != nil {
			return HoldsReport{}, err
		}
	}
	// The echo ceiling's responder runs in the core, where the owners run.
	echo, err := c.NC.Subscribe(natsapi.Subject(benchEchoPartition, natsapi.OpHold), func(m *nats.Msg) { _ = m.Respond(m.Data) })
	if err != nil {
		return HoldsReport{}, err
	}
	defer func() { _ = echo.Unsubscribe() }()
	js, _ := jetstream.New(c.NC)
	if _, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: "BENCH", Subjects: []string{benchPublishSubj}, Storage: jetstream.FileStorage}); err != nil {
		return HoldsReport{}, err
	}
	_ = c.NC.Flush()

	marks := &cpuMarks{w: os.Stderr}
	if o.cpuProfile != "" {
		// The profile covers the holds phases only, not the ceilings.
		f, err := os.Create(o.cpuProfile)
		if err != nil {
			return HoldsReport{}, err
		}
		defer f.Close()
		marks.onStart = func() { _ = pprof.StartCPUProfile(f) }
		marks.onEnd = pprof.StopCPUProfile
	}
	if o.memProfile != "" {
		f, err := os.Create(o.memProfile)
		if err != nil {
			return HoldsReport{}, err
		}
		defer f.Close()
		end := marks.onEnd
		marks.onEnd = func() {
			if end != nil {
				end()
			}
			_ = pprof.Lookup("heap").WriteTo(f, 0)
		}
	}
	self, err := os.Executable()
	if err != nil {
		return HoldsReport{}, err
	}
	cargs := []string{"bench", "holds-client", "--edge-nats", e.LeafClientURL(), "--edge-http", e.URL(),
		"--core-nats", c.Node.ClientURL(), "--duration", o.dur.String(), "--concurrency", strconv.Itoa(o.conc)}
	if secure {
		// The load generator is a tool: the client certificate, user
		// core's seed for the publish ceiling.
		cargs = append(cargs, "--secrets", coreSec.Secrets().Dir)
		if !o.loadgenTLS {
			cargs = append(cargs, "--edge-plain")
		}
	} else {
		user, pass := c.Node.CoreCredentials()
		cargs = append(cargs, "--insecure", "--core-user", user, "--core-password", pass)
	}
	if o.viaHTTP {
		cargs = append(cargs, "--via-http", "--account-email", acct.email)
	}
	if o.clientProfile != "" {
		cargs = append(cargs, "--cpuprofile", o.clientProfile)
	}
	if s.Traced {
		cargs = append(cargs, o.tracing.childArgs()...)
	}
	if o.progress {
		cargs = append(cargs, "--progress")
	}
	child := exec.CommandContext(ctx, self, cargs...)
	if o.viaHTTP {
		child.Env = append(os.Environ(), envAccountPassword+"="+acct.password)
	}
	var out bytes.Buffer
	child.Stdout, child.Stderr = &out, marks
	if err := child.Run(); err != nil {
		return HoldsReport{}, fmt.Errorf("load generator: %w", err)
	}
	var cr clientReport
	if err := json.Unmarshal(out.Bytes(), &cr); err != nil {
		return HoldsReport{}, fmt.Errorf("load generator report: %w", err)
	}
	rep := HoldsReport{Path: "nats", TLS: secure, LoadgenTLS: secure && o.loadgenTLS, HTTPTLS: secure && o.viaHTTP && o.httpTLS, Concurrency: o.conc, Holds: cr.Holds, HalfPeak: cr.HalfPeak, Echo: cr.Echo, EchoHalf: cr.EchoHalf, Publish: cr.Publish,
		System: marks.end.sub(marks.start), Client: cr.HoldsCounters, ClientCPU: cr.HoldsCPU,
		SystemPeak: marks.half.sub(marks.start), ClientPeak: cr.PeakCounters, SignIns: cr.SignIns, Refreshes: cr.Refreshes}
	rep.SystemCPU = rep.System.CPU()
	if o.viaHTTP {
		rep.Path = "http"
	}

	// No oversell, nothing lost: what was acknowledged is exactly what the
	// partitions hold.
	for _, ev := range []struct {
		id string
		ok int64
	}{{benchPeak, cr.OKPeak}, {benchHalf, cr.OKHalf}} {
		a, err := inv.Availability(ctx, catalog.PartitionKey(ev.id, 0))
		if err != nil {
			return rep, fmt.Errorf("final availability of %s: %w", ev.id, err)
		}
		z := a.Zones[0]
		rep.Oversold += max(z.Held+z.Sold-z.Capacity, 0)
		if d := int64(z.Held+z.Sold) - ev.ok; d != 0 {
			rep.Unaccounted += max(d, -d)
		}
	}
	var m dto.Metric
	_ = c.Metrics.BatchSize.Write(&m)
	if h := m.GetHistogram(); h.GetSampleCount() > 0 {
		rep.LogWrites = int(h.GetSampleCount())
		rep.DecisionsPerLog = h.GetSampleSum() / float64(h.GetSampleCount())
	}
	_ = c.Metrics.WriteSeconds.Write(&m)
	if h := m.GetHistogram(); h.GetSampleCount() > 0 {
		rep.LogWriteMs = 1000 * h.GetSampleSum() / float64(h.GetSampleCount())
		for _, b := range h.GetBucket() {
			if float64(b.GetCumulativeCount()) >= 0.99*float64(h.GetSampleCount()) {
				rep.LogWriteP99Ms = 1000 * b.GetUpperBound()
				break
			}
		}
	}
	return rep, nil
}

// benchHoldsClient is the load generator: a separate process, like the
// clients of a real edge.
func benchHoldsClient(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("bench holds-client", flag.ContinueOnError)
	edgeNATS := fs.String("edge-nats", "", "the edge leaf server's client URL")
	edgeHTTP := fs.String("edge-http", "", "the edge's HTTP API base URL")
	coreNATS := fs.String("core-nats", "", "a core node's client URL (for the publish ceiling)")
	coreUser := fs.String("core-user", "core", "core user (--insecure)")
	corePass := fs.String("core-password", "", "core password (--insecure)")
	sf := cli.AddSecurityFlags(fs, devpki.Client, "core", "data/secrets", false)
	edgePlain := fs.Bool("edge-plain", false, "the edge's leaf server takes plaintext clients (its --tls-loadgen=false)")
	dur := fs.Duration("duration", 5*time.Second, "length of each measured phase")
	conc := fs.Int("concurrency", 512, "requests in flight at once")
	viaHTTP := fs.Bool("via-http", false, "drive holds through the HTTP API")
	var acct benchAccount
	fs.StringVar(&acct.email, "account-email", "", "with --via-http: the account to sign in to")
	fs.StringVar(&acct.password, "account-password", "", "its password (default $"+envAccountPassword+")")
	progress := fs.Bool("progress", false, "show progress bars on a terminal")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the holds phases to this file")
	// The load generator's own collections (every ~100 ms with Go's
	// defaults on its small heap, each with a stop of up to a few ms) would
	// show in the latencies it measures.
	gf := cli.AddGCFlags(fs)
	tf := addBenchTracingFlags(fs, true)
	if err := cli.Parse(fs, args); err != nil {
		return err
	}
	if err := gf.Apply(slog.New(slog.NewTextHandler(io.Discard, nil))); err != nil {
		return err
	}
	stopTracing, err := tf.start(ctx, "ticketing-bench-client")
	if err != nil {
		return err
	}
	defer stopTracing()
	// Secured, the load generator is a tool of the deployment: the client
	// certificate everywhere, user core's nkey at the core.
	sec, err := sf.Load(slog.New(slog.NewTextHandler(io.Discard, nil)), "")
	if err != nil {
		return err
	}
	coreOpts, err := sec.NATSOptions()
	if err != nil {
		return err
	}
	var tc *tls.Config
	edgeOpts := []nats.Option{nats.Name("bench")}
	if sec.IsInsecure() {
		coreOpts = append(coreOpts, nats.UserInfo(*coreUser, *corePass))
	} else {
		if tc, err = tlsconf.Client(sec.TLSFiles()); err != nil {
			return err
		}
		if !*edgePlain {
			edgeOpts = append(edgeOpts, nats.Secure(tc))
		}
	}
	client, err := nats.Connect(*edgeNATS, edgeOpts...)
	if err != nil {
		return err
	}
	defer client.Close()
	coreNC, err := nats.Connect(*coreNATS, append(coreOpts, nats.Name("bench-publish"))...)
	if err != nil {
		return err
	}
	defer coreNC.Close()
	bar := func(name string) func(float64) {
		if !*progress || !isTerminal(os.Stderr) {
			return nil
		}
		b := progressbar.NewOptions(1000, progressbar.OptionSetDescription(fmt.Sprintf("%-26s", name)),
			progressbar.OptionSetWriter(os.Stderr), progressbar.OptionClearOnFinish(), progressbar.OptionSetWidth(30))
		return func(f float64) { _ = b.Set(int(f * 1000)) }
	}
	var rep clientReport

	// Ceiling 1: request/reply with an echo responder in the core, over the
	// same leaf-node path and with the same payload size as a hold.
	payload, _ := json.Marshal(inventory.HoldRequest{Zone: "ga", Quantity: 1, Holder: benchHolder,
		IdempotencyKey: benchHolder + ":00000000-0000-0000-0000-000000000000", Fingerprint: "0123456789abcdef0123456789abcdef"})
	echoSubj := natsapi.Subject(benchEchoPartition, natsapi.OpHold)
	waitInterest(client, echoSubj)
	echo := func(ctx context.Context, _ int, _ int64) (loadgen.Outcome, error) {
		_, err := client.Request(echoSubj, payload, 5*time.Second)
		return loadgen.OK, err
	}
	rep.Echo = loadgen.Closed(ctx, "echo request/reply", *conc, *dur, echo, bar("ceiling: echo req/reply"))

	// Ceiling 2: one synchronous JetStream publish per message, on the same
	// server and storage settings (every write synced).
	js, _ := jetstream.New(coreNC)
	rep.Publish = loadgen.Closed(ctx, "jetstream sync publish", *conc, *dur, func(ctx context.Context, _ int, _ int64) (loadgen.Outcome, error) {
		_, err := js.Publish(ctx, benchPublishSubj, payload)
		return loadgen.OK, err
	}, bar("ceiling: JetStream publish"))

	// Holds: GA holds of one ticket each, every one with its own
	// idempotency key, at one partition. Through HTTP, as one signed-in
	// account: one access token on every request, as a browser sends its
	// session's, renewed in the background before it expires.
	var sess *benchSession
	if *viaHTTP {
		sess = newBenchSession(*edgeHTTP, acct, tc)
		if err := sess.signIn(ctx); err != nil {
			return err
		}
		sctx, stop := context.WithCancel(ctx)
		defer stop()
		go sess.keepFresh(sctx)
	}
	inv := &natsapi.Client{NC: client, Timeout: 10 * time.Second, AttemptTimeout: 5 * time.Second}
	hold := holdOp(inv, *edgeHTTP, sess, *conc, tc)
	var okPeak, okHalf atomic.Int64
	stopProfile, err := startCPUProfile(*cpuProfile)
	if err != nil {
		return err
	}
	defer stopProfile() // on early returns; stopping twice is harmless
	// Tell the parent when the holds phases start and end (a line on stderr
	// it watches), so that it can measure its own CPU over them.
	fmt.Fprintln(os.Stderr, benchMarkStart)
	c0 := readProcCounters()
	rep.Holds = loadgen.Closed(ctx, "holds", *conc, *dur, hold(benchPeak, &okPeak), bar("holds (peak)"))
	rep.PeakCounters = readProcCounters().sub(c0)
	fmt.Fprintln(os.Stderr, benchMarkHalf)
	rate := max(rep.Holds.PerSec/2, 1)
	rep.HalfPeak = loadgen.Open(ctx, "holds at half peak", rate, *dur, 4**conc, hold(benchHalf, &okHalf), bar("holds (half of peak)"))
	rep.HoldsCounters = readProcCounters().sub(c0)
	rep.HoldsCPU = rep.HoldsCounters.CPU()
	fmt.Fprintln(os.Stderr, benchMarkEnd)
	stopProfile()
	rep.OKPeak, rep.OKHalf = okPeak.Load(), okHalf.Load()
	// The latency ceiling for the half-peak phase: the same path, rate and
	// open loop with nothing decided or written.
	rep.EchoHalf = loadgen.Open(ctx, "echo at half peak", rate, *dur, 4**conc, echo, bar("ceiling: echo at half peak"))
	if sess != nil {
		rep.SignIns, rep.Refreshes = sess.signIns.Load(), sess.refreshes.Load()
	}
	return json.NewEncoder(os.Stdout).Encode(rep)
}

// startCPUProfile starts a CPU profile written to path (none when path is
// empty) and returns what stops it.
func startCPUProfile(path string) (stop func(), err error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

// waitInterest waits until a subject's subscription is visible through the
// leaf node (interest propagates asynchronously).
func waitInterest(nc *nats.Conn, subj string) {
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := nc.Request(subj, nil, time.Second); err == nil {
			return
		}
		time.Sleep(20 * time.Millisecond) // polling with a deadline
	}
}

// holdOp makes the holds phases' operation: over NATS as the edge's
// handlers send holds to the core, or, with a session, through the edge's
// HTTP API.
func holdOp(inv *natsapi.Client, base string, sess *benchSession, conc int, tc *tls.Config) func(event string, ok *atomic.Int64) loadgen.Op {
	// fasthttp's client: a load generator should cost the shared CPU as
	// little as it can (Go's net/http client costs about three times more).
	// Its connections live as long as the run, as a buyer's browser keeps
	// its connection to the edge (fasthttp closes one idle for 10 s, and
	// the phases between the two holds phases take longer), and it resumes
	// TLS sessions, as browsers do.
	if tc != nil {
		tc = tc.Clone()
		tc.ClientSessionCache = tls.NewLRUClientSessionCache(conc)
	}
	hc := &fasthttp.Client{MaxConnsPerHost: conc, MaxConnWaitTimeout: 10 * time.Second, ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second,
		MaxIdleConnDuration: time.Hour, TLSConfig: tc}
	body := []byte(`{"zone":"ga","quantity":1}`)
	return func(event string, ok *atomic.Int64) loadgen.Op {
		part := catalog.PartitionKey(event, 0)
		url := base + "/v1/events/" + event + "/holds"
		return func(ctx context.Context, _ int, i int64) (loadgen.Outcome, error) {
			key := event + "-" + strconv.FormatInt(i, 10)
			if sess == nil { // the load generator is the entry point: it samples
				ctx, span := tracing.StartEntry(ctx, "bench.hold", trace.SpanKindClient, "")
				defer span.End()
				_, err := inv.Hold(ctx, part, inventory.HoldRequest{Zone: "ga", Quantity: 1, Holder: benchHolder,
					IdempotencyKey: benchHolder + ":" + key, Fingerprint: "bench"})
				if errs.Is(errs.Conflict, err) {
					return loadgen.Rejected, nil
				}
				if err == nil {
					ok.Add(1)
				}
				return loadgen.OK, err
			}
			req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(req)
			defer fasthttp.ReleaseResponse(resp)
			req.SetRequestURI(url)
			req.Header.SetMethod(fasthttp.MethodPost)
			req.Header.SetContentType("application/json")
			req.Header.Set("Idempotency-Key", key)
			req.Header.Set("Authorization", sess.header())
			req.SetBodyRaw(body)
			if err := hc.DoTimeout(req, resp, 10*time.Second); err != nil {
				return loadgen.OK, err
			}
			switch resp.StatusCode() {
			case fasthttp.StatusCreated:
				ok.Add(1)
				return loadgen.OK, nil
			case fasthttp.StatusConflict:
				return loadgen.Rejected, nil
			}
			return loadgen.OK, fmt.Errorf("HTTP %d", resp.StatusCode())
		}
	}
}

// createBenchEvents creates a venue with one large GA zone and two events
// at it, and waits until their partitions are owned.
func createBenchEvents(ctx context.Context, nc *nats.Conn, token string, inv *natsapi.Client) error {
	admin := &catalogapi.Client{NC: nc}
	v := catalog.Venue{ID: "bench-hall", Name: "Benchmark Hall", City: "Loopback",
		Zones: []catalog.Zone{{ID: "ga", Name: "General admission", Kind: catalog.GA, Capacity: catalog.MaxGACapacity, PriceCents: 1000, Currency: "USD"}}}
	if err := admin.CreateVenue(ctx, token, v); err != nil && !errs.Is(errs.Conflict, err) {
		return err
	}
	now := time.Now().UTC()
	for _, id := range []string{benchPeak, benchHalf} {
		ev := catalog.Event{ID: id, Name: "Benchmark " + id, VenueID: v.ID, OnSaleAt: now.Add(-time.Hour), StartsAt: now.Add(30 * 24 * time.Hour)}
		if err := admin.CreateEvent(ctx, token, ev); err != nil && !errs.Is(errs.Conflict, err) {
			return err
		}
		if _, err := inv.Availability(ctx, catalog.PartitionKey(id, 0)); err != nil {
			return fmt.Errorf("partition of %s not served: %w", id, err)
		}
	}
	return nil
}

func printHolds(r HoldsReport) {
	fmt.Printf("path: %s, %d in flight, one partition, durable writes (fsync on every log write)\n\n", r.Path, r.Concurrency)
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "run\tops/s\tp50 ms\tp99 ms\tp99.9 ms\terrors\t")
	for _, x := range []loadgen.Result{r.Holds, r.HalfPeak, r.Echo, r.EchoHalf, r.Publish} {
		fmt.Fprintf(w, "%s\t%.0f\t%.2f\t%.2f\t%.2f\t%d\t\n", x.Name, x.PerSec, x.P50ms, x.P99ms, x.P999ms, x.Errors)
	}
	w.Flush()
	fmt.Printf("\nlog writes: %d, %.1f decisions each on average, %.2f ms each on average, p99 ≤ %.1f ms\n", r.LogWrites, r.DecisionsPerLog, r.LogWriteMs, r.LogWriteP99Ms)
	if n := r.Holds.Ops + r.HalfPeak.Ops; n > 0 {
		fmt.Printf("CPU in the holds phases: system %.1f s (%.0f µs a hold), load generator %.1f s (%.0f µs a hold)\n",
			r.SystemCPU, 1e6*r.SystemCPU/float64(n), r.ClientCPU, 1e6*r.ClientCPU/float64(n))
		fmt.Printf("  system:         %s\n  load generator: %s\n", r.System.perOp(n), r.Client.perOp(n))
		fmt.Printf("peak phase alone:\n  system:         %s\n  load generator: %s\n", r.SystemPeak.perOp(r.Holds.Ops), r.ClientPeak.perOp(r.Holds.Ops))
	}
	if r.SignIns > 0 {
		fmt.Printf("session: %d sign-in(s) and %d refresh(es); every hold sent its access token\n", r.SignIns, r.Refreshes)
	}
	if r.TracingRatio > 0 {
		fmt.Printf("tracing: sampling ratio %g, %d spans exported over OTLP\n", r.TracingRatio, r.SpansExported)
	}
	fmt.Printf("holds / echo ceiling:    %.2fx\nholds / publish ceiling: %.1fx\noversold: %d   unaccounted: %d\n",
		r.Holds.PerSec/r.Echo.PerSec, r.Holds.PerSec/r.Publish.PerSec, r.Oversold, r.Unaccounted)
	printWindows("half of peak", r.HalfPeak.Windows)
	printWindows("echo at the same rate", r.EchoHalf.Windows)
	for _, x := range []loadgen.Result{r.Holds, r.HalfPeak, r.Echo, r.EchoHalf, r.Publish} {
		if x.FirstErr != "" {
			fmt.Printf("first error in %s: %s\n", x.Name, x.FirstErr)
		}
	}
}

// printWindows draws a phase's per-window p99 as a sparkline, with their
// median, worst and how many meet the half-peak target.
func printWindows(name string, w []loadgen.Window) {
	if len(w) == 0 {
		return
	}
	p99 := make([]float64, len(w))
	within := 0
	for i, x := range w {
		p99[i] = x.P99ms
		if x.P99ms <= halfPeakTargetMs {
			within++
		}
	}
	sorted := slices.Sorted(slices.Values(p99))
	fmt.Printf("%s, p99 of each %v: %s\n  median %.1f ms, worst %.1f ms; %d of %d at or under %.0f ms\n",
		name, loadgen.WindowLen, sparkline(p99), sorted[len(sorted)/2], sorted[len(sorted)-1], within, len(p99), float64(halfPeakTargetMs))
}

// halfPeakTargetMs is issue 2's target for the p99 at half of peak.
const halfPeakTargetMs = 10

// sparkline draws values as a line of bars, the highest full.
func sparkline(v []float64) string {
	bars := []rune("▁▂▃▄▅▆▇█")
	top := slices.Max(v)
	out := make([]rune, len(v))
	for i, x := range v {
		k := 0
		if top > 0 {
			k = min(int(x/top*float64(len(bars))), len(bars)-1)
		}
		out[i] = bars[max(k, 0)]
	}
	return string(out)
}

func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

const (
	benchMarkStart = "bench: holds phases start"
	benchMarkHalf  = "bench: holds peak phase end"
	benchMarkEnd   = "bench: holds phases end"
)

// cpuSeconds is the CPU time (user and system) this process has used.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

// cpuMarks passes the child's stderr through, and notes this process's CPU
// time when the child marks the start and end of its holds phases.
type cpuMarks struct {
	w              io.Writer
	start, end     procCounters
	half           procCounters // at the end of the peak phase
	onStart, onEnd func()       // optional
	line           []byte
}

func (m *cpuMarks) Write(p []byte) (int, error) {
	for _, b := range p {
		m.line = append(m.line, b)
		if b != '\n' {
			continue
		}
		switch string(bytes.TrimSpace(m.line)) {
		case benchMarkStart:
			m.start = readProcCounters()
			if m.onStart != nil {
				m.onStart()
			}
		case benchMarkHalf:
			m.half = readProcCounters()
		case benchMarkEnd:
			m.end = readProcCounters()
			if m.onEnd != nil {
				m.onEnd()
			}
		default:
			_, _ = m.w.Write(m.line)
		}
		m.line = m.line[:0]
	}
	return len(p), nil
}
