package bench

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
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
	"github.com/ticketing/ticketing/internal/supervisor"
	"github.com/ticketing/ticketing/services/admission"
	"github.com/ticketing/ticketing/services/catalog"
	catalogapi "github.com/ticketing/ticketing/services/catalog/natsapi"
)

// queueReport is what `ticketing bench queue --json` prints.
type queueReport struct {
	Connections int    `json:"connections"` // asked for
	Held        int    `json:"held"`        // open at the end of the hold
	Failed      int    `json:"failed"`      // upgrades that failed
	Sources     int    `json:"source_addresses"`
	Reader      string `json:"reader"`
	NoFile      uint64 `json:"open_files_limit"`
	// The edge process's resident memory (VmRSS): before any socket,
	// while all were held (the highest of the samples), and their
	// difference per held socket.
	EdgeRSSBeforeKiB int64   `json:"edge_rss_before_kib"`
	EdgeRSSHeldKiB   int64   `json:"edge_rss_held_kib"`
	KiBPerConnection float64 `json:"kib_per_connection"`
	// Joins: WebSocket upgrades (each joins the queue) per second while
	// the N sockets were opened, and the upgrade latency.
	JoinsPerSec float64 `json:"joins_per_sec"`
	JoinP50ms   float64 `json:"join_p50_ms"`
	JoinP99ms   float64 `json:"join_p99_ms"`
	// Pushes the client received while holding, and the fewest any socket
	// received after its first (updates every UpdateEvery).
	HoldSeconds   float64 `json:"hold_seconds"`
	Pushes        int64   `json:"pushes"`
	MinPushesHeld int64   `json:"min_pushes_per_socket"`
	// Admission checks: admission.Verifier.Verify on fresh tokens, and the
	// raw ed25519.Verify of the same signatures, on every core.
	Cores            int     `json:"cores"`
	VerifyPerSec     float64 `json:"admission_checks_per_sec"`
	RawVerifyPerSec  float64 `json:"raw_ed25519_verify_per_sec"`
	VerifyOverRaw    float64 `json:"checks_over_raw"`
	VerifyErrors     int64   `json:"check_errors"`
	EdgeCPUSeconds   float64 `json:"edge_cpu_seconds_while_held"`
	ClientCPUSeconds float64 `json:"client_cpu_seconds"`
}

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

// benchQueue runs a core in this process and ONE edge as a child process
// (`ticketing edge`), or attaches to a running edge (--edge-url and
// --edge-pid), and holds N WebSockets on the edge's waiting room from a
// separate client process spread over several loopback source addresses.
// It reads the edge's resident memory from /proc before and while the
// sockets are held, and then measures admission checks against the raw
// Ed25519 verification rate.
func benchQueue(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("bench queue", flag.ContinueOnError)
	n := fs.Int("n", 18000, "WebSocket connections to hold")
	sources := fs.Int("sources", 8, "loopback source addresses to spread them over (127.0.0.2 and up)")
	hold := fs.Duration("hold", 12*time.Second, "how long to hold every socket once all are open (pushes come every 5s)")
	dialers := fs.Int("dialers", 64, "upgrades in flight at once")
	reader := fs.String("reader", "epoll", "how the edge reads sockets: epoll or goroutine")
	verifyFor := fs.Duration("verify-duration", 3*time.Second, "length of each admission-check phase")
	edgeURL := fs.String("edge-url", "", "attach to this running edge instead of starting one (needs --edge-pid and an event --event with its queue on, before its sale)")
	edgePID := fs.Int("edge-pid", 0, "pid of the edge at --edge-url")
	event := fs.String("event", benchQueueEvent, "event whose waiting room to join when attaching")
	asJSON := fs.Bool("json", false, "print one JSON object instead of a table")
	if err := cli.Parse(fs, args); err != nil {
		return err
	}
	if *n < 1 || *sources < 1 || *sources > 250 {
		return errors.New("bench queue: -n must be positive and -sources 1-250")
	}
	status := func(format string, a ...any) {
		if !*asJSON {
			fmt.Fprintf(os.Stderr, format+"\n", a...)
		}
	}
	nofile, raised, err := raiseNoFile()
	if err != nil {
		return err
	}
	if raised {
		status("open files: soft limit raised to the hard limit, %d", nofile)
	} else {
		status("open files: soft limit already at the hard limit, %d", nofile)
	}
	rep := queueReport{Connections: *n, Sources: *sources, Reader: *reader, NoFile: nofile, Cores: runtime.GOMAXPROCS(0)}

	var ring *admission.KeyRing
	base, pid := *edgeURL, *edgePID
	if base == "" {
		dir, err := os.MkdirTemp("", "ticketing-bench-queue")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		log := slog.New(slog.NewTextHandler(io.Discard, nil))
		status("starting a core (in this process) and one edge (a child process) …")
		const token = "bench-admin-token-0123456789"
		sup, err := supervisor.New(supervisor.Config{Log: log})
		if err != nil {
			return err
		}
		defer func() { _ = sup.Shutdown() }()
		c, err := core.Start(ctx, core.Config{
			Node:       node.Config{Name: "core-1", DataDir: dir, ClientAddr: "127.0.0.1:0", LeafAddr: "127.0.0.1:0"},
			AdminToken: token,
		}, sup, log, prometheus.NewRegistry())
		if err != nil {
			return err
		}
		ring = c.Room().Ring()
		if err := createQueueBenchEvent(ctx, c, token); err != nil {
			return err
		}
		addr, err := freeLoopbackAddr()
		if err != nil {
			return err
		}
		self, err := os.Executable()
		if err != nil {
			return err
		}
		// The sockets are measured in plaintext (--insecure: the core in
		// this process is plaintext too), as behind a load balancer that
		// ends TLS: over TLS every socket has a reader goroutine and
		// crypto/tls's record buffers (edge/queue's package doc).
		edgeCmd := exec.CommandContext(ctx, self, "edge", "--name", "edge-1", "--http", addr, "--hubs", c.Node.LeafURL(),
			"--no-limits", "--queue-reader", *reader, "--log-level", "warn", "--insecure")
		edgeCmd.Stderr = os.Stderr
		if err := edgeCmd.Start(); err != nil {
			return err
		}
		defer func() {
			_ = edgeCmd.Process.Signal(syscall.SIGTERM)
			_ = edgeCmd.Wait()
		}()
		base, pid = "http://"+addr, edgeCmd.Process.Pid
		if err := waitReady(ctx, base, 60*time.Second); err != nil {
			return err
		}
	}
	// Open the room (one join over HTTP) so that its fixed cost is in
	// the "before" figure, then let the edge settle.
	if err := joinOnce(base, *event); err != nil {
		return fmt.Errorf("bench queue: joining %s: %w", *event, err)
	}
	runtime.GC()
	rss0, err := vmRSS(pid)
	if err != nil {
		return err
	}
	rep.EdgeRSSBeforeKiB = rss0
	status("edge pid %d: %d KiB resident before the sockets; opening %d WebSockets from a client process over %d source addresses …",
		pid, rss0, *n, *sources)

	self, err := os.Executable()
	if err != nil {
		return err
	}
	cargs := []string{"bench", "queue-client", "--url", base, "--event", *event, "--n", strconv.Itoa(*n),
		"--sources", strconv.Itoa(*sources), "--hold", hold.String(), "--dialers", strconv.Itoa(*dialers)}
	if !*asJSON {
		cargs = append(cargs, "--progress")
	}
	child := exec.CommandContext(ctx, self, cargs...)
	var out bytes.Buffer
	child.Stdout = &out
	stderr, err := child.StderrPipe()
	if err != nil {
		return err
	}
	if err := child.Start(); err != nil {
		return err
	}
	// Sample the edge's memory and CPU while the client holds the sockets.
	var peak atomic.Int64
	var cpuHeld0, cpuHeld1 float64
	sampling := make(chan struct{})
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
				for {
					if r, err := vmRSS(pid); err == nil && r > peak.Load() {
						peak.Store(r)
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
			sampling = nil
		default:
			fmt.Fprintln(os.Stderr, line)
		}
	}
	if sampling != nil {
		close(sampling)
	}
	wg.Wait()
	if err := child.Wait(); err != nil {
		return fmt.Errorf("WebSocket client: %w", err)
	}
	var cr queueClientReport
	if err := json.Unmarshal(out.Bytes(), &cr); err != nil {
		return fmt.Errorf("WebSocket client report: %w", err)
	}
	rep.Held, rep.Failed = cr.Held, cr.Failed
	rep.EdgeRSSHeldKiB = peak.Load()
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
		status("first upgrade error: %s", cr.FirstErr)
	}

	// Admission checks on fresh tokens, next to the raw signature checks.
	status("admission checks: %s each, on %d cores …", *verifyFor, rep.Cores)
	if ring == nil {
		if ring, err = admission.NewKeyRing(admission.KeyRingConfig{}, time.Now()); err != nil {
			return err
		}
	}
	rep.VerifyPerSec, rep.RawVerifyPerSec, rep.VerifyErrors, err = verifyRates(ring, base, *verifyFor, *edgeURL == "")
	if err != nil {
		return err
	}
	if rep.RawVerifyPerSec > 0 {
		rep.VerifyOverRaw = rep.VerifyPerSec / rep.RawVerifyPerSec
	}
	if *asJSON {
		return json.NewEncoder(os.Stdout).Encode(rep)
	}
	printQueue(rep)
	if rep.Held < rep.Connections {
		return fmt.Errorf("held %d of %d connections", rep.Held, rep.Connections)
	}
	return nil
}

func printQueue(r queueReport) {
	fmt.Printf("waiting room: %d WebSockets on one edge process (reader %s), client in another process over %d source addresses, open files limit %d\n\n",
		r.Connections, r.Reader, r.Sources, r.NoFile)
	fmt.Printf("connections held:        %d (failed %d)\n", r.Held, r.Failed)
	fmt.Printf("edge resident memory:    %d KiB before, %d KiB held → %.2f KiB per connection\n", r.EdgeRSSBeforeKiB, r.EdgeRSSHeldKiB, r.KiBPerConnection)
	fmt.Printf("join rate:               %.0f joins/s (WebSocket upgrades; p50 %.1f ms, p99 %.1f ms)\n", r.JoinsPerSec, r.JoinP50ms, r.JoinP99ms)
	fmt.Printf("pushes while held:       %d in %.1f s, at least %d per socket; edge CPU %.2f s\n", r.Pushes, r.HoldSeconds, r.MinPushesHeld, r.EdgeCPUSeconds)
	fmt.Printf("admission checks:        %.0f /s (Verifier.Verify, fresh tokens, %d cores)\n", r.VerifyPerSec, r.Cores)
	fmt.Printf("raw ed25519.Verify:      %.0f /s (same run, same cores)\n", r.RawVerifyPerSec)
	fmt.Printf("checks / raw:            %.2fx (errors %d)\n", r.VerifyOverRaw, r.VerifyErrors)
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

func waitReady(ctx context.Context, base string, d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		resp, err := http.Get(base + "/readyz")
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

func joinOnce(base, event string) error {
	resp, err := http.Post(base+"/v1/events/"+event+"/queue/join", "application/json", nil)
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

// verifyRates measures admission.Verifier.Verify on fresh tokens (signed
// now by the core's key ring, each for its own subject) with the public
// keys the edge serves, and raw ed25519.Verify of the same signatures,
// with one worker per core for d each (in alternating rounds).
func verifyRates(ring *admission.KeyRing, base string, d time.Duration, fromEdge bool) (checks, raw float64, errCount int64, err error) {
	signer, err := admission.NewSigner(ring, admission.Config{})
	if err != nil {
		return 0, 0, 0, err
	}
	keys := ring.PublicKeys()
	if fromEdge {
		resp, err := http.Get(base + "/.well-known/jwks.json")
		if err != nil {
			return 0, 0, 0, err
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return 0, 0, 0, err
		}
		if keys, err = admission.ParseJWKS(b); err != nil {
			return 0, 0, 0, fmt.Errorf("the edge's key set: %w", err)
		}
	}
	v, err := admission.NewVerifier(keys, nil, admission.Config{})
	if err != nil {
		return 0, 0, 0, err
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
			return 0, 0, 0, err
		}
		j := strings.LastIndexByte(t, '.')
		sig, err := base64.RawURLEncoding.DecodeString(t[j+1:])
		if err != nil {
			return 0, 0, 0, err
		}
		toks[i] = tok{token: t, subject: subj, msg: []byte(t[:j]), sig: sig}
	}
	run := func(f func(i int)) float64 {
		workers := runtime.GOMAXPROCS(0)
		var total atomic.Int64
		var wg sync.WaitGroup
		stop := time.Now().Add(d / 5)
		start := time.Now()
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				n := 0
				for i := w * 997; ; i++ {
					if n%64 == 0 && time.Now().After(stop) {
						break
					}
					f(i % pool)
					n++
				}
				total.Add(int64(n))
			}()
		}
		wg.Wait()
		return float64(total.Load()) / time.Since(start).Seconds()
	}
	// Alternate the two in short rounds so that both see the same machine
	// (frequency, other load); each rate is over all its rounds.
	var bad atomic.Int64
	const rounds = 5
	var checkSum, rawSum float64
	for range rounds {
		checkSum += run(func(i int) {
			if _, err := v.Verify(toks[i].token, benchQueueEvent, toks[i].subject, now); err != nil {
				bad.Add(1)
			}
		})
		rawSum += run(func(i int) {
			if !ed25519.Verify(pub, toks[i].msg, toks[i].sig) {
				bad.Add(1)
			}
		})
	}
	checks, raw = checkSum/rounds, rawSum/rounds
	return checks, raw, bad.Load(), nil
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
	progress := fs.Bool("progress", false, "show a progress bar on a terminal")
	if err := cli.Parse(fs, args); err != nil {
		return err
	}
	if _, _, err := raiseNoFile(); err != nil {
		return err
	}
	host := strings.TrimPrefix(*base, "http://")
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
				s, err := dialBenchSock(host, path, net.IPv4(127, 0, 0, byte(2+i%*sources)))
				lat[i] = time.Since(t0)
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				socks[i] = s
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
	// Every socket is read by its own goroutine from here on, counting the
	// pushes it gets.
	base0 := make([]int64, *n)
	for i, s := range socks {
		if s != nil {
			base0[i] = s.pushes.Load()
			go s.readLoop()
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

func dialBenchSock(host, path string, src net.IP) (*benchSock, error) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: src}, Timeout: 10 * time.Second}
	c, err := d.Dial("tcp", host)
	if err != nil {
		return nil, err
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
