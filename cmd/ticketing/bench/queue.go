package bench

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/schollz/progressbar/v3"

	"github.com/ticketing/ticketing/cmd/ticketing/cli"
	"github.com/ticketing/ticketing/core"
	"github.com/ticketing/ticketing/core/node"
	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/internal/keyring"
	"github.com/ticketing/ticketing/internal/supervisor"
	"github.com/ticketing/ticketing/internal/tlsconf"
	"github.com/ticketing/ticketing/internal/tracing"
	"github.com/ticketing/ticketing/services/admission"
	"github.com/ticketing/ticketing/services/catalog"
	catalogapi "github.com/ticketing/ticketing/services/catalog/natsapi"
)

// QueueReport is one run of `ticketing bench queue` (what --json prints
// without --compare).
type QueueReport struct {
	// TLS: the edge served its API and the waiting room's WebSockets over
	// HTTPS and wss:// with the development PKI, its leaf link to the
	// core over mutual TLS, as ticketing edge runs by default; the
	// clients dialled wss://. Off: --insecure, ws://.
	TLS bool `json:"tls"`
	// Tracing (--tracing): the edge's and the core's.
	Traced
	// EdgeGCPercent is the edge's --gc-percent (0: its default).
	EdgeGCPercent int    `json:"edge_gc_percent"`
	Connections   int    `json:"connections"` // asked for
	Held          int    `json:"held"`        // open at the end of the hold
	Failed        int    `json:"failed"`      // upgrades that failed
	Sources       int    `json:"source_addresses"`
	Reader        string `json:"reader"`
	NoFile        uint64 `json:"open_files_limit"`
	// The edge process's resident memory (VmRSS): before any socket,
	// while all were held (the highest of the samples), and their
	// difference per held socket.
	EdgeRSSBeforeKiB int64   `json:"edge_rss_before_kib"`
	EdgeRSSHeldKiB   int64   `json:"edge_rss_held_kib"`
	KiBPerConnection float64 `json:"kib_per_connection"`
	// From the edge's /metrics before the sockets and at the last sample
	// while all were held: its goroutines, goroutine stacks and heap in
	// use (live objects and garbage not yet collected).
	EdgeBefore edgeGoStats `json:"edge_go_before"`
	EdgeHeld   edgeGoStats `json:"edge_go_held"`
	// Joins: WebSocket upgrades (each joins the queue; over TLS each
	// with its handshake) per second while the N sockets were opened, and
	// the upgrade latency.
	JoinsPerSec float64 `json:"joins_per_sec"`
	JoinP50ms   float64 `json:"join_p50_ms"`
	JoinP99ms   float64 `json:"join_p99_ms"`
	// Pushes the client received while holding, and the fewest any socket
	// received after its first (updates every UpdateEvery).
	HoldSeconds   float64 `json:"hold_seconds"`
	Pushes        int64   `json:"pushes"`
	MinPushesHeld int64   `json:"min_pushes_per_socket"`
	// Admission tokens: admission.Signer.Issue (the core's side) and
	// admission.Verifier.Verify (the edge's) of fresh tokens, and the raw
	// ed25519.Verify of the same signatures, on every core.
	Cores            int     `json:"cores"`
	IssuePerSec      float64 `json:"admission_tokens_issued_per_sec"`
	VerifyPerSec     float64 `json:"admission_checks_per_sec"`
	RawVerifyPerSec  float64 `json:"raw_ed25519_verify_per_sec"`
	VerifyOverRaw    float64 `json:"checks_over_raw"`
	VerifyErrors     int64   `json:"check_errors"`
	EdgeCPUSeconds   float64 `json:"edge_cpu_seconds_while_held"`
	ClientCPUSeconds float64 `json:"client_cpu_seconds"`
}

// setup is how the run's system ran.
func (r QueueReport) setup() setup { return setup{Secure: r.TLS, Traced: r.TracingRatio > 0} }

// queueClientReport is what the WebSocket client process hands back.
type queueClientReport struct {
	Held, Failed    int
	FirstErr        string
	OpenSeconds     float64
	P50ms, P99ms    float64
	HoldSeconds     float64
	Pushes, MinHeld int64
	CPU             float64
}

const (
	benchQueueEvent = "bench-queue"
	queueMarkHeld   = "bench: sockets held"
	queueMarkDone   = "bench: hold done"
)

// queueOpts are the settings of the queue benchmark's runs.
type queueOpts struct {
	n, sources, dialers int
	hold, verifyFor     time.Duration
	reader              string
	cipher              string // the core's store, when secure
	edgeGC              int    // the edge's --gc-percent; 0: its default
	// Attaching to a running edge instead of starting one.
	edgeURL, edgeCA, event string
	edgePID                int
	tracing                *benchTracing
	progress               bool
	status                 func(format string, a ...any)
}

// benchQueue runs a core in this process and ONE edge as a child process
// (`ticketing edge`), or attaches to a running edge (--edge-url and
// --edge-pid), and holds N WebSockets on the edge's waiting room from a
// separate client process spread over several loopback source addresses.
// It reads the edge's resident memory from /proc before and while the
// sockets are held, and then measures admission tokens issued and checked
// next to the raw Ed25519 verification rate. With --compare it does so as
// --tls and --tracing say and in plain (TLS off, tracing off), alternately,
// and compares the two.
func benchQueue(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("bench queue", flag.ContinueOnError)
	var o queueOpts
	fs.IntVar(&o.n, "n", 18000, "WebSocket connections to hold")
	fs.IntVar(&o.sources, "sources", 8, "loopback source addresses to spread them over (127.0.0.2 and up)")
	fs.DurationVar(&o.hold, "hold", 12*time.Second, "how long to hold every socket once all are open (pushes come every 5s)")
	fs.IntVar(&o.dialers, "dialers", 64, "upgrades in flight at once")
	fs.StringVar(&o.reader, "reader", "epoll", "how the edge reads sockets: epoll or goroutine")
	fs.DurationVar(&o.verifyFor, "verify-duration", 3*time.Second, "length of each admission-token phase (issue, check, raw verify)")
	fs.IntVar(&o.edgeGC, "edge-gc-percent", 0, "the edge's --gc-percent (GOGC; 0: its default, 400), which sets how much garbage its resident memory carries")
	fs.StringVar(&o.edgeURL, "edge-url", "", "attach to this running edge instead of starting one (needs --edge-pid and an event --event with its queue on, before its sale)")
	fs.IntVar(&o.edgePID, "edge-pid", 0, "pid of the edge at --edge-url")
	fs.StringVar(&o.edgeCA, "edge-ca", "", "CA certificate of the edge at an https:// --edge-url (default: the system's roots)")
	fs.StringVar(&o.event, "event", benchQueueEvent, "event whose waiting room to join when attaching")
	asJSON := fs.Bool("json", false, "print one JSON object instead of a table")
	cf := addCompareFlags(fs)
	o.tracing = addBenchTracingFlags(fs, false)
	if err := cli.Parse(fs, args); err != nil {
		return err
	}
	if o.n < 1 || o.sources < 1 || o.sources > 250 {
		return errors.New("bench queue: -n must be positive and -sources 1-250")
	}
	runs, err := cf.setups(o.tracing.on())
	if err != nil {
		return err
	}
	if o.edgeURL != "" {
		// The edge's setup is its own: one run, measured as it is.
		if len(runs) > 1 || o.tracing.on() {
			return errors.New("bench queue: --compare and --tracing start their own edges; not with --edge-url")
		}
		runs = []setup{{Secure: strings.HasPrefix(o.edgeURL, "https://")}}
	}
	o.cipher = *cf.cipher
	o.progress = !*asJSON
	o.status = func(format string, a ...any) {
		if !*asJSON {
			fmt.Fprintf(os.Stderr, format+"\n", a...)
		}
	}
	nofile, raised, err := raiseNoFile()
	if err != nil {
		return err
	}
	if raised {
		o.status("open files: soft limit raised to the hard limit, %d", nofile)
	} else {
		o.status("open files: soft limit already at the hard limit, %d", nofile)
	}
	type m = measure[QueueReport]
	return runAll(runner[QueueReport]{
		measures: []m{
			{"edge bytes per connection", "edge_bytes_per_connection", func(r QueueReport) float64 { return 1024 * r.KiBPerConnection }},
			{"joins/s", "joins_per_sec", func(r QueueReport) float64 { return r.JoinsPerSec }},
			{"edge CPU ms while held", "edge_cpu_ms_while_held", func(r QueueReport) float64 { return 1000 * r.EdgeCPUSeconds }},
			{"tokens issued/s", "admission_tokens_issued_per_sec", func(r QueueReport) float64 { return r.IssuePerSec }},
			{"admission checks/s", "admission_checks_per_sec", func(r QueueReport) float64 { return r.VerifyPerSec }},
		},
		run: func(s setup) (QueueReport, error) {
			rep, err := queueTraced(ctx, o, s)
			rep.NoFile = nofile
			return rep, err
		},
		check: func(r QueueReport) error {
			if r.Held < r.Connections {
				return fmt.Errorf("held %d of %d connections (%s)", r.Held, r.Connections, r.setup())
			}
			return nil
		},
		print: printQueue, setup: QueueReport.setup, status: o.status,
	}, runs, *asJSON)
}

// queueTraced is queueOnce with tracing on for the run when s asks for
// it: in this process (the core) and in the edge, its spans exported to a
// receiver of this process and counted in the report.
func queueTraced(ctx context.Context, o queueOpts, s setup) (QueueReport, error) {
	return tracedRun(ctx, o.tracing, "ticketing-bench", s, func(r *QueueReport) *Traced { return &r.Traced },
		func() (QueueReport, error) { return queueOnce(ctx, o, s) })
}

// queueOnce is one run of the queue benchmark, secure (s.Secure: the
// edge and its clients as ticketing edge runs by default, the core as
// ticketing core) or in plaintext as with --insecure.
func queueOnce(ctx context.Context, o queueOpts, s setup) (QueueReport, error) {
	rep := QueueReport{TLS: s.Secure, EdgeGCPercent: o.edgeGC, Connections: o.n, Sources: o.sources, Reader: o.reader, Cores: runtime.GOMAXPROCS(0)}
	var ring *keyring.KeyRing
	base, pid, ca := o.edgeURL, o.edgePID, o.edgeCA
	if base == "" {
		dir, done, err := runDir("", "ticketing-bench-queue")
		if err != nil {
			return rep, err
		}
		defer done()
		log := slog.New(slog.NewTextHandler(io.Discard, nil))
		coreSec := cli.Insecure()
		if s.Secure {
			// The edge child reads the same secrets (--secrets).
			if coreSec, _, err = cli.DevSecurity(log, filepath.Join(dir, "secrets"), nil, o.cipher); err != nil {
				return rep, err
			}
		}
		o.status("starting a core (in this process) and one edge (a child process), TLS %s …", onOff(s.Secure))
		const token = "bench-admin-token-0123456789"
		sup, err := supervisor.New(supervisor.Config{Log: log})
		if err != nil {
			return rep, err
		}
		defer func() { _ = sup.Shutdown() }()
		c, err := core.Start(ctx, core.Config{
			Node:       coreSec.SecureNode(node.Config{Name: "core-1", DataDir: dir, ClientAddr: "127.0.0.1:0", LeafAddr: "127.0.0.1:0"}),
			AdminToken: token,
		}, sup, log, prometheus.NewRegistry())
		if err != nil {
			return rep, err
		}
		ring = c.Room().Ring()
		if err := createQueueBenchEvent(ctx, c, token); err != nil {
			return rep, err
		}
		addr, err := freeLoopbackAddr()
		if err != nil {
			return rep, err
		}
		self, err := os.Executable()
		if err != nil {
			return rep, err
		}
		eargs := []string{"edge", "--name", "edge-1", "--http", addr, "--hubs", c.Node.LeafURL(),
			"--no-limits", "--queue-reader", o.reader, "--log-level", "warn"}
		base = "http://" + addr
		if s.Secure {
			eargs = append(eargs, "--secrets", coreSec.Secrets().Dir)
			base, ca = "https://"+addr, coreSec.Secrets().CA()
		} else {
			eargs = append(eargs, "--insecure")
		}
		if o.edgeGC != 0 {
			eargs = append(eargs, "--gc-percent", strconv.Itoa(o.edgeGC))
		}
		edgeCmd := exec.CommandContext(ctx, self, eargs...)
		edgeCmd.Stderr = os.Stderr
		if s.Traced {
			edgeCmd.Env = append(os.Environ(), edgeTracingEnv(o.tracing)...)
		}
		if err := edgeCmd.Start(); err != nil {
			return rep, err
		}
		defer func() {
			_ = edgeCmd.Process.Signal(syscall.SIGTERM)
			_ = edgeCmd.Wait()
		}()
		pid = edgeCmd.Process.Pid
	}
	hc, err := benchHTTPClient(ca)
	if err != nil {
		return rep, err
	}
	if err := waitReady(ctx, hc, base, 60*time.Second); err != nil {
		return rep, err
	}
	// Open the room (one join over HTTP) so that its fixed cost is in
	// the "before" figure, then let the edge settle.
	if err := joinOnce(hc, base, o.event); err != nil {
		return rep, fmt.Errorf("bench queue: joining %s: %w", o.event, err)
	}
	runtime.GC()
	rss0, err := vmRSS(pid)
	if err != nil {
		return rep, err
	}
	rep.EdgeRSSBeforeKiB = rss0
	rep.EdgeBefore = readEdgeGoStats(hc, base)
	o.status("edge pid %d: %d KiB resident before the sockets; opening %d WebSockets (%s) from a client process over %d source addresses …",
		pid, rss0, o.n, map[bool]string{false: "ws://", true: "wss://"}[strings.HasPrefix(base, "https://")], o.sources)

	self, err := os.Executable()
	if err != nil {
		return rep, err
	}
	cargs := []string{"bench", "queue-client", "--url", base, "--event", o.event, "--n", strconv.Itoa(o.n),
		"--sources", strconv.Itoa(o.sources), "--hold", o.hold.String(), "--dialers", strconv.Itoa(o.dialers)}
	if ca != "" {
		cargs = append(cargs, "--ca", ca)
	}
	if o.progress {
		cargs = append(cargs, "--progress")
	}
	child := exec.CommandContext(ctx, self, cargs...)
	var out bytes.Buffer
	child.Stdout = &out
	stderr, err := child.StderrPipe()
	if err != nil {
		return rep, err
	}
	if err := child.Start(); err != nil {
		return rep, err
	}
	// Sample the edge's memory and CPU while the client holds the sockets
	// (its resident memory four times a second, its runtime's figures
	// every second).
	var peak atomic.Int64
	var goHeld atomic.Pointer[edgeGoStats]
	var cpuHeld0, cpuHeld1 float64
	sampling, stopped := make(chan struct{}), false
	var wg sync.WaitGroup
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		line := sc.Text()
		switch line {
		case queueMarkHeld:
			cpuHeld0 = procCPU(pid)
			wg.Add(1)
			go func() {
				defer wg.Done()
				t := time.NewTicker(250 * time.Millisecond)
				defer t.Stop()
				for i := 0; ; i++ {
					if r, err := vmRSS(pid); err == nil && r > peak.Load() {
						peak.Store(r)
					}
					if i%4 == 0 {
						g := readEdgeGoStats(hc, base)
						goHeld.Store(&g)
					}
					select {
					case <-sampling:
						return
					case <-t.C:
					}
				}
			}()
		case queueMarkDone:
			if r, err := vmRSS(pid); err == nil && r > peak.Load() {
				peak.Store(r)
			}
			cpuHeld1 = procCPU(pid)
			close(sampling)
			stopped = true
		default:
			fmt.Fprintln(os.Stderr, line)
		}
	}
	if !stopped {
		close(sampling)
	}
	wg.Wait()
	if err := child.Wait(); err != nil {
		return rep, fmt.Errorf("WebSocket client: %w", err)
	}
	var cr queueClientReport
	if err := json.Unmarshal(out.Bytes(), &cr); err != nil {
		return rep, fmt.Errorf("WebSocket client report: %w", err)
	}
	rep.Held, rep.Failed = cr.Held, cr.Failed
	rep.EdgeRSSHeldKiB = peak.Load()
	if g := goHeld.Load(); g != nil {
		rep.EdgeHeld = *g
	}
	if cr.Held > 0 {
		rep.KiBPerConnection = float64(rep.EdgeRSSHeldKiB-rep.EdgeRSSBeforeKiB) / float64(cr.Held)
	}
	if cr.OpenSeconds > 0 {
		rep.JoinsPerSec = float64(cr.Held+cr.Failed) / cr.OpenSeconds
	}
	rep.JoinP50ms, rep.JoinP99ms = cr.P50ms, cr.P99ms
	rep.HoldSeconds, rep.Pushes, rep.MinPushesHeld = cr.HoldSeconds, cr.Pushes, cr.MinHeld
	rep.EdgeCPUSeconds = cpuHeld1 - cpuHeld0
	rep.ClientCPUSeconds = cr.CPU
	if cr.FirstErr != "" {
		o.status("first upgrade error: %s", cr.FirstErr)
	}

	// Admission tokens issued and checked, next to the raw signature
	// checks.
	o.status("admission tokens: %s each, on %d cores …", o.verifyFor, rep.Cores)
	if ring == nil {
		if ring, err = keyring.NewKeyRing(keyring.KeyRingConfig{}, time.Now()); err != nil {
			return rep, err
		}
	}
	tr, err := tokenRates(ring, hc, base, o.verifyFor, o.edgeURL == "")
	if err != nil {
		return rep, err
	}
	rep.IssuePerSec, rep.VerifyPerSec, rep.RawVerifyPerSec, rep.VerifyErrors = tr.issued, tr.checks, tr.raw, tr.errors
	if rep.RawVerifyPerSec > 0 {
		rep.VerifyOverRaw = rep.VerifyPerSec / rep.RawVerifyPerSec
	}
	return rep, nil
}

// edgeGoStats are figures of the edge's Go runtime, from its /metrics.
type edgeGoStats struct {
	Goroutines  int64 `json:"goroutines"`
	StackKiB    int64 `json:"stack_inuse_kib"`
	HeapKiB     int64 `json:"heap_inuse_kib"`
	GCPercent   int64 `json:"gc_percent"`
	ReadFailure bool  `json:"read_failure,omitempty"`
}

// readEdgeGoStats reads the edge's Go runtime figures from its /metrics.
func readEdgeGoStats(hc *http.Client, base string) edgeGoStats {
	resp, err := hc.Get(base + "/metrics")
	if err != nil {
		return edgeGoStats{ReadFailure: true}
	}
	defer resp.Body.Close()
	var g edgeGoStats
	found := 0
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		name, v, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			continue
		}
		switch name {
		case "go_goroutines":
			g.Goroutines = int64(f)
		case "go_memstats_stack_inuse_bytes":
			g.StackKiB = int64(f) >> 10
		case "go_memstats_heap_inuse_bytes":
			g.HeapKiB = int64(f) >> 10
		case "go_gc_gogc_percent":
			g.GCPercent = int64(f)
		default:
			continue
		}
		found++
	}
	g.ReadFailure = resp.StatusCode != http.StatusOK || found < 3
	return g
}

// edgeTracingEnv is the environment that gives the edge child --tracing's
// sampling, exporting to this process's receiver (ticketing edge reads
// the OTEL_* variables).
func edgeTracingEnv(t *benchTracing) []string {
	if t.recv == nil {
		return nil
	}
	return []string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=" + t.recv.URL(), "OTEL_TRACES_SAMPLER=" + tracing.SamplerParentBasedTraceIDRatio,
		"OTEL_TRACES_SAMPLER_ARG=" + strconv.FormatFloat(t.Ratio(), 'g', -1, 64)}
}

// benchHTTPClient is the bench's client of the edge's API: trusting ca
// (the system's roots when empty) for https:// URLs.
func benchHTTPClient(ca string) (*http.Client, error) {
	if ca == "" {
		return &http.Client{Timeout: 10 * time.Second}, nil
	}
	tc, err := tlsconf.Client(tlsconf.Files{CA: ca})
	if err != nil {
		return nil, err
	}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: tc}}, nil
}

func printQueue(r QueueReport) {
	scheme := "ws://"
	if r.TLS {
		scheme = "wss://"
	}
	fmt.Printf("waiting room: %d WebSockets (%s) on one edge process (reader %s), client in another process over %d source addresses, open files limit %d\n\n",
		r.Connections, scheme, r.Reader, r.Sources, r.NoFile)
	fmt.Printf("connections held:        %d (failed %d)\n", r.Held, r.Failed)
	fmt.Printf("edge resident memory:    %d KiB before, %d KiB held → %.2f KiB per connection\n", r.EdgeRSSBeforeKiB, r.EdgeRSSHeldKiB, r.KiBPerConnection)
	if perConn := func(before, held int64) float64 { return float64(held-before) / float64(max(r.Held, 1)) }; !r.EdgeBefore.ReadFailure && !r.EdgeHeld.ReadFailure {
		fmt.Printf("edge Go runtime:         goroutines %d → %d (%.2f per connection), stacks %d → %d KiB (%.2f KiB per connection), heap in use %d → %d KiB (%.2f KiB per connection), GOGC %d\n",
			r.EdgeBefore.Goroutines, r.EdgeHeld.Goroutines, perConn(r.EdgeBefore.Goroutines, r.EdgeHeld.Goroutines),
			r.EdgeBefore.StackKiB, r.EdgeHeld.StackKiB, perConn(r.EdgeBefore.StackKiB, r.EdgeHeld.StackKiB),
			r.EdgeBefore.HeapKiB, r.EdgeHeld.HeapKiB, perConn(r.EdgeBefore.HeapKiB, r.EdgeHeld.HeapKiB), r.EdgeHeld.GCPercent)
	}
	fmt.Printf("join rate:               %.0f joins/s (WebSocket upgrades; p50 %.1f ms, p99 %.1f ms)\n", r.JoinsPerSec, r.JoinP50ms, r.JoinP99ms)
	fmt.Printf("pushes while held:       %d in %.1f s, at least %d per socket; edge CPU %.2f s\n", r.Pushes, r.HoldSeconds, r.MinPushesHeld, r.EdgeCPUSeconds)
	fmt.Printf("tokens issued:           %.0f /s (Signer.Issue, %d cores)\n", r.IssuePerSec, r.Cores)
	fmt.Printf("admission checks:        %.0f /s (Verifier.Verify, fresh tokens, %d cores)\n", r.VerifyPerSec, r.Cores)
	fmt.Printf("raw ed25519.Verify:      %.0f /s (same run, same cores)\n", r.RawVerifyPerSec)
	fmt.Printf("checks / raw:            %.2fx (errors %d)\n", r.VerifyOverRaw, r.VerifyErrors)
	if r.TracingRatio > 0 {
		fmt.Printf("tracing:                 %g sampled, %d spans exported\n", r.TracingRatio, r.SpansExported)
	}
}

// raiseNoFile raises the soft limit of open files to the hard limit (the
// Go runtime already does so at start; this says what the limit is).
func raiseNoFile() (limit uint64, raised bool, err error) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0, false, err
	}
	if rl.Cur < rl.Max {
		rl.Cur = rl.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
			return 0, false, err
		}
		raised = true
	}
	return rl.Cur, raised, nil
}

// vmRSS is a process's resident memory in KiB, from /proc/<pid>/status.
func vmRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			return strconv.ParseInt(f[1], 10, 64)
		}
	}
	return 0, errors.New("no VmRSS in /proc status")
}

// procCPU is a process's CPU seconds (user and system), from
// /proc/<pid>/stat.
func procCPU(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (u + st) / 100 // clock ticks; 100 a second on Linux
}

func freeLoopbackAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func waitReady(ctx context.Context, hc *http.Client, base string, d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		resp, err := hc.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the edge at %s is not ready after %v (last: %v)", base, d, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond): // polling with a deadline
		}
	}
}

func joinOnce(hc *http.Client, base, event string) error {
	resp, err := hc.Post(base+"/v1/events/"+event+"/queue/join", "application/json", nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("HTTP %d: %s", resp.StatusCode, b)
	}
	return nil
}

// createQueueBenchEvent creates an event with its waiting room on whose
// sale starts in an hour: everyone who joins waits in the pre-queue and is
// pushed a status every UpdateEvery.
func createQueueBenchEvent(ctx context.Context, c *core.Core, token string) error {
	admin := &catalogapi.Client{NC: c.NC}
	v := catalog.Venue{ID: "bench-queue-hall", Name: "Benchmark Hall", City: "Loopback",
		Zones: []catalog.Zone{{ID: "ga", Name: "General admission", Kind: catalog.GA, Capacity: 1000, PriceCents: 1000, Currency: "USD"}}}
	if err := admin.CreateVenue(ctx, token, v); err != nil && !errs.Is(errs.Conflict, err) {
		return err
	}
	now := time.Now().UTC()
	ev := catalog.Event{ID: benchQueueEvent, Name: "Benchmark waiting room", VenueID: v.ID, Queue: true,
		OnSaleAt: now.Add(time.Hour).Truncate(time.Second), StartsAt: now.Add(30 * 24 * time.Hour)}
	if err := admin.CreateEvent(ctx, token, ev); err != nil && !errs.Is(errs.Conflict, err) {
		return err
	}
	return nil
}

// tokens are what tokenRates measured, per second.
type tokens struct {
	issued, checks, raw float64
	errors              int64
}

// tokenRates measures admission.Signer.Issue (fresh tokens, each for its
// own subject, signed by the core's key ring), admission.Verifier.Verify
// of such tokens with the public keys the edge serves, and raw
// ed25519.Verify of the same signatures, with one worker per core for d
// each (in alternating rounds).
func tokenRates(ring *keyring.KeyRing, hc *http.Client, base string, d time.Duration, fromEdge bool) (tokens, error) {
	var r tokens
	signer, err := admission.NewSigner(ring, admission.Config{})
	if err != nil {
		return r, err
	}
	keys := ring.PublicKeys()
	if fromEdge {
		resp, err := hc.Get(base + "/.well-known/jwks.json")
		if err != nil {
			return r, err
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return r, err
		}
		if keys, err = keyring.ParseJWKS(b); err != nil {
			return r, fmt.Errorf("the edge's key set: %w", err)
		}
	}
	v, err := admission.NewVerifier(keys, nil, admission.Config{})
	if err != nil {
		return r, err
	}
	const pool = 8192
	type tok struct {
		token, subject string
		msg, sig       []byte
	}
	now := time.Now()
	toks := make([]tok, pool)
	pub, _ := keys.Lookup(keys.KIDs()[0])
	for i := range toks {
		var b [16]byte
		_, _ = rand.Read(b[:])
		subj := fmt.Sprintf("%x", b)
		t, _, err := signer.Issue(benchQueueEvent, subj, now)
		if err != nil {
			return r, err
		}
		j := strings.LastIndexByte(t, '.')
		sig, err := base64.RawURLEncoding.DecodeString(t[j+1:])
		if err != nil {
			return r, err
		}
		toks[i] = tok{token: t, subject: subj, msg: []byte(t[:j]), sig: sig}
	}
	// Alternate the three in short rounds so that all see the same machine
	// (frequency, other load); each rate is over all its rounds.
	var bad atomic.Int64
	rates := inRounds(d, 5, pool,
		func(i int) {
			if _, _, err := signer.Issue(benchQueueEvent, toks[i].subject, now); err != nil {
				bad.Add(1)
			}
		},
		func(i int) {
			if _, err := v.Verify(toks[i].token, benchQueueEvent, toks[i].subject, now); err != nil {
				bad.Add(1)
			}
		},
		func(i int) {
			if !ed25519.Verify(pub, toks[i].msg, toks[i].sig) {
				bad.Add(1)
			}
		})
	r.issued, r.checks, r.raw = rates[0], rates[1], rates[2]
	r.errors = bad.Load()
	return r, nil
}

// benchQueueClient is the WebSocket client process: N sockets held on the
// edge's waiting room, each with its own session, from several loopback
// source addresses.
func benchQueueClient(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("bench queue-client", flag.ContinueOnError)
	base := fs.String("url", "", "the edge's base URL")
	event := fs.String("event", benchQueueEvent, "event")
	n := fs.Int("n", 18000, "sockets")
	sources := fs.Int("sources", 8, "loopback source addresses")
	hold := fs.Duration("hold", 12*time.Second, "hold time once all are open")
	dialers := fs.Int("dialers", 64, "upgrades in flight")
	ca := fs.String("ca", "", "CA certificate of the edge at an https:// --url (default: the system's roots)")
	progress := fs.Bool("progress", false, "show a progress bar on a terminal")
	if err := cli.Parse(fs, args); err != nil {
		return err
	}
	if _, _, err := raiseNoFile(); err != nil {
		return err
	}
	// Over https:// every socket is wss://: a TLS client of its own over
	// the TCP connection, so that its handshake and records cost this
	// process's CPU, not the edge's.
	var tc *tls.Config
	host, secure := strings.CutPrefix(*base, "https://")
	if secure {
		var err error
		tc = &tls.Config{MinVersion: tlsconf.MinVersion}
		if *ca != "" {
			if tc, err = tlsconf.Client(tlsconf.Files{CA: *ca}); err != nil {
				return err
			}
		}
		if tc.ServerName, _, err = net.SplitHostPort(host); err != nil {
			return err
		}
	} else {
		host = strings.TrimPrefix(*base, "http://")
	}
	path := "/v1/events/" + *event + "/queue"
	var bar *progressbar.ProgressBar
	if *progress && isTerminal(os.Stderr) {
		bar = progressbar.NewOptions(*n, progressbar.OptionSetDescription("opening WebSockets"),
			progressbar.OptionSetWriter(os.Stderr), progressbar.OptionClearOnFinish(), progressbar.OptionSetWidth(30), progressbar.OptionShowCount())
	}
	cpu0 := cpuSeconds()
	socks := make([]*benchSock, *n)
	lat := make([]time.Duration, *n)
	var next atomic.Int64
	var failed atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	start := time.Now()
	for range *dialers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= *n || ctx.Err() != nil {
					return
				}
				t0 := time.Now()
				s, err := dialBenchSock(host, path, net.IPv4(127, 0, 0, byte(2+i%*sources)), tc)
				lat[i] = time.Since(t0)
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				socks[i] = s
				// Read by a goroutine of its own from here on, counting
				// the pushes it gets (those of the opening too, which are
				// not the hold's).
				go s.readLoop()
				if bar != nil {
					_ = bar.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	open := time.Since(start)
	if bar != nil {
		_ = bar.Finish()
	}
	// The hold's pushes are those counted from here on.
	base0 := make([]int64, *n)
	for i, s := range socks {
		if s != nil {
			base0[i] = s.pushes.Load()
		}
	}
	fmt.Fprintln(os.Stderr, queueMarkHeld)
	holdStart := time.Now()
	select {
	case <-ctx.Done():
	case <-time.After(*hold):
	}
	held := time.Since(holdStart)
	rep := queueClientReport{Failed: int(failed.Load()), OpenSeconds: open.Seconds(), HoldSeconds: held.Seconds(), MinHeld: -1}
	for i, s := range socks {
		if s == nil {
			continue
		}
		if !s.dead.Load() {
			rep.Held++
		}
		p := s.pushes.Load() - base0[i]
		rep.Pushes += p
		if rep.MinHeld < 0 || p < rep.MinHeld {
			rep.MinHeld = p
		}
	}
	fmt.Fprintln(os.Stderr, queueMarkDone)
	for _, s := range socks {
		if s != nil {
			_ = s.c.Close()
		}
	}
	if e, ok := firstErr.Load().(string); ok {
		rep.FirstErr = e
	}
	ok := lat[:0]
	for i, d := range lat {
		if socks[i] != nil {
			ok = append(ok, d)
		}
	}
	sort.Slice(ok, func(a, b int) bool { return ok[a] < ok[b] })
	if len(ok) > 0 {
		rep.P50ms = float64(ok[len(ok)/2]) / 1e6
		rep.P99ms = float64(ok[len(ok)*99/100]) / 1e6
	}
	rep.CPU = cpuSeconds() - cpu0
	return json.NewEncoder(os.Stdout).Encode(rep)
}

// benchSock is a minimal WebSocket client: it sends the handshake and
// reads the server's frames, counting text frames (status pushes).
type benchSock struct {
	c      net.Conn
	br     *bufio.Reader
	pushes atomic.Int64
	dead   atomic.Bool
}

// dialBenchSock opens a WebSocket from source address src, over TLS with
// tc (wss://) unless it is nil.
func dialBenchSock(host, path string, src net.IP, tc *tls.Config) (*benchSock, error) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: src}, Timeout: 10 * time.Second}
	raw, err := d.Dial("tcp", host)
	if err != nil {
		return nil, err
	}
	c := raw
	if tc != nil {
		t := tls.Client(raw, tc)
		_ = t.SetDeadline(time.Now().Add(30 * time.Second))
		if err := t.Handshake(); err != nil {
			raw.Close()
			return nil, fmt.Errorf("TLS handshake: %w", err)
		}
		c = t
	}
	var key [16]byte
	_, _ = rand.Read(key[:])
	var sess [16]byte
	_, _ = rand.Read(sess[:])
	req := "GET " + path + " HTTP/1.1\r\nHost: " + host + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: " + base64.StdEncoding.EncodeToString(key[:]) + "\r\n" +
		"Cookie: tq_session=" + base64.RawURLEncoding.EncodeToString(sess[:]) + "\r\n\r\n"
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.WriteString(c, req); err != nil {
		c.Close()
		return nil, err
	}
	s := &benchSock{c: c, br: bufio.NewReaderSize(c, 1024)}
	resp, err := http.ReadResponse(s.br, nil)
	if err != nil {
		c.Close()
		return nil, err
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		c.Close()
		return nil, fmt.Errorf("upgrade: HTTP %d %s", resp.StatusCode, b)
	}
	// The first push: the join's status.
	op, p, err := s.frame()
	if err != nil {
		c.Close()
		return nil, err
	}
	if op != 1 || !bytes.Contains(p, []byte(`"type":"status"`)) {
		c.Close()
		return nil, fmt.Errorf("first frame: opcode %d %q", op, p)
	}
	_ = c.SetDeadline(time.Time{})
	return s, nil
}

func (s *benchSock) frame() (byte, []byte, error) {
	var h [2]byte
	if _, err := io.ReadFull(s.br, h[:]); err != nil {
		return 0, nil, err
	}
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		var b [2]byte
		if _, err := io.ReadFull(s.br, b[:]); err != nil {
			return 0, nil, err
		}
		n = uint64(binary.BigEndian.Uint16(b[:]))
	case 127:
		var b [8]byte
		if _, err := io.ReadFull(s.br, b[:]); err != nil {
			return 0, nil, err
		}
		n = binary.BigEndian.Uint64(b[:])
	}
	if n > 1<<16 {
		return 0, nil, fmt.Errorf("frame of %d bytes", n)
	}
	p := make([]byte, n)
	if _, err := io.ReadFull(s.br, p); err != nil {
		return 0, nil, err
	}
	return h[0] & 0x0f, p, nil
}

func (s *benchSock) readLoop() {
	for {
		op, _, err := s.frame()
		if err != nil || op == 8 {
			s.dead.Store(true)
			return
		}
		if op == 1 {
			s.pushes.Add(1)
		}
	}
}
