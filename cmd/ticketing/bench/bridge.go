package bench

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/schollz/progressbar/v3"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ticketing/ticketing/bridge/kafka"
	"github.com/ticketing/ticketing/bridge/mirror"
	"github.com/ticketing/ticketing/cmd/ticketing/cli"
	"github.com/ticketing/ticketing/core/node"
	"github.com/ticketing/ticketing/core/streams"
	"github.com/ticketing/ticketing/internal/cloudevents"
	"github.com/ticketing/ticketing/internal/jsnames"
	"github.com/ticketing/ticketing/internal/loadgen"
)

// bridgeReport is what `ticketing bench bridge --json` prints.
type bridgeReport struct {
	Broker string `json:"broker"` // "embedded" or the seed brokers
	// TLS: the core was secured (mutual TLS, nkeys, the store encrypted
	// unless --jetstream-cipher none).
	TLS        bool    `json:"tls"`
	Events     int     `json:"events"`
	EventBytes int     `json:"event_bytes"`
	Batch      int     `json:"events_per_message"` // 1: plain events; more: CloudEvents batches, as owners relay
	Bridge     rate    `json:"bridge"`
	Consume    rate    `json:"ceiling_jetstream_consume"`
	Produce    rate    `json:"ceiling_kafka_produce"`
	Ratio      float64 `json:"bridge_over_slower_ceiling"`
	Gaps       int     `json:"gaps"`       // events missing from Kafka
	Duplicates int     `json:"duplicates"` // events in Kafka more than once
	Txns       float64 `json:"transactions"`
	TxnMs      float64 `json:"transaction_ms_mean"` // produce and commit of one transaction
	// Latency of single events in an open loop (--latency-rate): from the
	// scheduled JetStream publish to the record's arrival at a
	// read_committed consumer of the topic.
	Latency loadgen.Result `json:"latency"`
	// Tracing (--tracing): its ratio is also the share of events that
	// carry a sampled traceparent, as the events of sampled holds do; the
	// spans are the bridge's.
	Traced
}

type rate struct {
	Seconds float64 `json:"seconds"`
	PerSec  float64 `json:"events_per_sec"`
	MBPerS  float64 `json:"mb_per_sec"`
}

func newRate(n, size int, d time.Duration) rate {
	s := d.Seconds()
	return rate{Seconds: s, PerSec: float64(n) / s, MBPerS: float64(n*size) / s / 1e6}
}

// benchBridge mirrors N events through the whole path (JetStream stream →
// bridge → Kafka) and measures, in the same run and on the same machine,
// raw JetStream consumption of the same stream and a raw franz-go producer
// writing the same records to the same broker. With --compare it does so
// as --tls and --tracing say and in plain (TLS off, tracing off),
// alternately, and compares them.
func benchBridge(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("bench bridge", flag.ContinueOnError)
	var o bridgeOpts
	fs.IntVar(&o.n, "events", 500_000, "events to mirror")
	fs.IntVar(&o.size, "size", 1024, "bytes of each event (the CloudEvents JSON body)")
	fs.IntVar(&o.batch, "batch", 1, "events per stream message: 1 for plain events, more for CloudEvents batches as inventory owners relay them (one per group commit: 20-50 at load)")
	fs.Var(&o.brokers, "brokers", "Kafka seed brokers (host:port,…); default: an embedded broker with a data directory, as in ticketing dev")
	asJSON := fs.Bool("json", false, "print one JSON object instead of a table")
	fs.StringVar(&o.data, "data", "", "data directory (default: a temporary one, removed afterwards)")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the bridge phase to this file")
	fs.DurationVar(&o.latDur, "latency-duration", 5*time.Second, "length of the latency phase")
	fs.Float64Var(&o.latRate, "latency-rate", 10000, "events a second in the latency phase (an open loop; at most half the bridge's peak)")
	cf := addCompareFlags(fs)
	tf := addBenchTracingFlags(fs, false) // events of batches (--batch > 1) only: the bridge traces those
	if err := cli.Parse(fs, args); err != nil {
		return err
	}
	if o.n < 1 || o.size < 200 || o.batch < 1 || o.batch > 256 {
		return errors.New("bench bridge: --events must be positive, --size at least 200 and --batch 1-256")
	}
	runs, err := cf.setups(tf.on())
	if err != nil {
		return err
	}
	if len(runs) > 1 && (o.data != "" || o.cpuProfile != "") {
		return errors.New("--compare runs several times: no --data or --cpuprofile with it")
	}
	o.cipher = *cf.cipher
	o.quiet = *asJSON
	return runAll(runner[bridgeReport]{
		measures: []measure[bridgeReport]{{"bridge events/s", "bridge_events_per_sec", func(r bridgeReport) float64 { return r.Bridge.PerSec }}},
		run:      func(s setup) (bridgeReport, error) { return bridgeTraced(ctx, o, tf, s) },
		check: func(r bridgeReport) error {
			if r.Gaps > 0 || r.Duplicates > 0 {
				return fmt.Errorf("bridge check failed: %d gaps, %d duplicates", r.Gaps, r.Duplicates)
			}
			return nil
		},
		print: printBridge, setup: bridgeReport.setup,
		status: func(format string, a ...any) {
			if !*asJSON {
				fmt.Fprintf(os.Stderr, format+"\n", a...)
			}
		},
	}, runs, *asJSON)
}

// setup is how the run's system ran.
func (r bridgeReport) setup() setup { return setup{Secure: r.TLS, Traced: r.TracingRatio > 0} }

// bridgeTraced is bridgeOnce with tracing on for the run when s asks for
// it: one event in 1/ratio carries a sampled traceparent, as the events of
// sampled holds do, and the bridge's spans are exported to a receiver of
// the run's own and counted in the report.
func bridgeTraced(ctx context.Context, o bridgeOpts, tf *benchTracing, s setup) (bridgeReport, error) {
	benchTracedEvery.Store(0)
	if s.Traced {
		benchTracedEvery.Store(int64(1 / tf.Ratio()))
	}
	return tracedRun(ctx, tf, "ticketing-bench-bridge", s, func(r *bridgeReport) *Traced { return &r.Traced },
		func() (bridgeReport, error) { return bridgeOnce(ctx, o, s.Secure) })
}

// bridgeOpts are the settings of one bridge benchmark run.
type bridgeOpts struct {
	n, size, batch   int
	brokers          cli.List
	data, cpuProfile string
	latDur           time.Duration
	latRate          float64
	cipher           string // the store's, when secure
	quiet            bool   // no status lines or progress bars
}

// bridgeOnce is one run of the bridge benchmark: the core secured as
// ticketing core runs (mutual TLS, the bridge signing in by nkey, the
// store encrypted with o.cipher), or in plaintext as with --insecure. The
// Kafka side is the same either way.
func bridgeOnce(ctx context.Context, o bridgeOpts, secure bool) (bridgeReport, error) {
	brokers := o.brokers
	dir, removeDir, err := runDir(o.data, "ticketing-bench-bridge")
	if err != nil {
		return bridgeReport{}, err
	}
	defer removeDir()
	status := func(format string, a ...any) {
		if !o.quiet {
			fmt.Fprintf(os.Stderr, format+"\n", a...)
		}
	}
	bar := func(name string, total int) func(int) {
		if o.quiet || !isTerminal(os.Stderr) {
			return func(int) {}
		}
		b := progressbar.NewOptions(total, progressbar.OptionSetDescription(fmt.Sprintf("%-24s", name)),
			progressbar.OptionSetWriter(os.Stderr), progressbar.OptionClearOnFinish(), progressbar.OptionSetWidth(30),
			progressbar.OptionShowCount(), progressbar.OptionThrottle(100*time.Millisecond))
		return func(done int) { _ = b.Set(done) }
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	sec := cli.Insecure()
	if secure {
		var err error
		if sec, _, err = cli.DevSecurity(quiet, filepath.Join(dir, "secrets"), nil, o.cipher); err != nil {
			return bridgeReport{}, err
		}
	}

	status("starting a core node (data in %s, TLS %s) …", dir, onOff(secure))
	nd, err := node.Start(ctx, sec.SecureNode(node.Config{Name: "core-1", DataDir: filepath.Join(dir, "core"), ClientAddr: "127.0.0.1:0", LeafAddr: "127.0.0.1:0"}), quiet)
	if err != nil {
		return bridgeReport{}, err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		nd.Shutdown(sctx)
	}()
	// The bridge and the consumption ceiling read over TCP, as a bridge
	// process does: secured, over mutual TLS as user core by nkey.
	copts, err := sec.NATSOptions()
	if err != nil {
		return bridgeReport{}, err
	}
	if sec.IsInsecure() {
		copts = append(copts, nats.UserInfo(nd.CoreCredentials()))
	}
	nc, err := nats.Connect(nd.ClientURL(), append(copts, nats.Name("bench-bridge"))...)
	if err != nil {
		return bridgeReport{}, err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return bridgeReport{}, err
	}
	if _, err := streams.Ensure(ctx, js, streams.Config{}); err != nil {
		return bridgeReport{}, err
	}
	rep := bridgeReport{Broker: "embedded", TLS: secure, Events: o.n, EventBytes: o.size, Batch: o.batch}
	if len(brokers) == 0 {
		e, err := kafka.StartEmbedded(kafka.EmbeddedConfig{DataDir: filepath.Join(dir, "kafka")})
		if err != nil {
			return bridgeReport{}, err
		}
		defer func() {
			sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			_ = e.Shutdown(sctx)
		}()
		brokers = e.Brokers()
	} else {
		rep.Broker = fmt.Sprint([]string(brokers))
	}
	run := strconv.FormatInt(time.Now().UnixNano(), 36)
	topics := kafka.TopicMap{Routes: map[string]string{"ticketing.inventory.": "bench." + run + ".inventory"}, Default: "bench." + run + ".events"}

	status("publishing %d events of %d bytes to %s, %d a message …", o.n, o.size, jsnames.Events, o.batch)
	msgs, err := fillEvents(ctx, js, o.n, o.size, o.batch, bar("publishing", o.n))
	if err != nil {
		return bridgeReport{}, err
	}

	status("ceiling: raw JetStream consumption (fetch + ack) …")
	d, err := rawConsume(ctx, js, msgs, bar("ceiling: consume", msgs))
	if err != nil {
		return bridgeReport{}, err
	}
	rep.Consume = newRate(o.n, o.size, d)

	status("ceiling: raw franz-go producer to the same broker …")
	d, err = rawProduce(ctx, js, kafka.ClientConfig{Brokers: brokers, ClientID: "bench-raw"}, topics, run, o.n, bar("ceiling: produce", o.n))
	if err != nil {
		return bridgeReport{}, err
	}
	rep.Produce = newRate(o.n, o.size, d)

	status("bridge: JetStream → bridge → Kafka …")
	cfg := mirror.Config{Name: "bench", Consumer: "bench-bridge", LeaseBucket: "bench-bridge-leases",
		CheckpointTopic: "bench." + run + ".checkpoint", UnroutableTopic: "bench." + run + ".unroutable",
		Kafka: kafka.ProducerConfig{Client: kafka.ClientConfig{Brokers: brokers}, TransactionalID: "bench-" + run, Topics: topics}}
	metrics := mirror.NewMetrics(nil)
	b, err := mirror.New(cfg, nc, quiet, metrics)
	if err != nil {
		return bridgeReport{}, err
	}
	stopProfile, err := startCPUProfile(o.cpuProfile)
	if err != nil {
		return bridgeReport{}, err
	}
	defer stopProfile() // on early returns; stopping twice is harmless
	bctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- b.Run(bctx) }()
	progress := bar("bridge", msgs)
	latBar := bar("bridge latency", 1000)
	tick := time.NewTicker(5 * time.Millisecond)
	for b.Stats().Checkpoint < uint64(msgs) {
		select {
		case <-ctx.Done():
			stop()
			return bridgeReport{}, ctx.Err()
		case err := <-done:
			stop()
			return bridgeReport{}, fmt.Errorf("bridge stopped: %v", err)
		case <-tick.C:
			progress(int(b.Stats().Checkpoint))
		}
	}
	rep.Bridge = newRate(o.n, o.size, time.Since(start))
	stopProfile()
	tick.Stop()
	rep.Txns = counterValue(metrics.Transactions.WithLabelValues("committed"))
	var hm dto.Metric
	if err := metrics.CommitSeconds.Write(&hm); err == nil && hm.GetHistogram().GetSampleCount() > 0 {
		rep.TxnMs = 1000 * hm.GetHistogram().GetSampleSum() / float64(hm.GetHistogram().GetSampleCount())
	}
	rep.Ratio = rep.Bridge.PerSec / min(rep.Consume.PerSec, rep.Produce.PerSec)

	status("bridge latency: JetStream publish → visible to a read_committed Kafka consumer …")
	rep.Latency, err = bridgeLatency(ctx, js, kafka.ClientConfig{Brokers: brokers}, topics, run, min(o.latRate, rep.Bridge.PerSec/2), o.latDur, o.size, func(f float64) { latBar(int(f * 1000)) })
	stop()
	<-done
	if err != nil {
		return bridgeReport{}, err
	}

	status("checking Kafka: every event once …")
	rep.Gaps, rep.Duplicates, err = countMirrored(ctx, kafka.ClientConfig{Brokers: brokers}, topics, o.n, bar("reading back", o.n))
	if err != nil {
		return bridgeReport{}, err
	}
	return rep, nil
}

// printBridge prints a bridge report as tables.
func printBridge(rep bridgeReport) {
	fmt.Printf("%d events of %d bytes, %d a stream message, broker: %s\n\n", rep.Events, rep.EventBytes, rep.Batch, rep.Broker)
	switch {
	case rep.TracingRatio > 0 && rep.Batch == 1:
		// The bridge continues the traces of the owners' batches only.
		fmt.Printf("tracing: on in the bridge; plain events carry no trace to continue, so no spans (--batch N for relayed batches)\n\n")
	case rep.TracingRatio > 0:
		fmt.Printf("tracing: one event in %d carries a sampled traceparent; %d spans exported over OTLP\n\n", benchTracedEvery.Load(), rep.SpansExported)
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "run\tevents/s\tMB/s\tseconds\t")
	for _, r := range []struct {
		name string
		r    rate
	}{{"bridge (JetStream → Kafka, transactions)", rep.Bridge}, {"ceiling: raw JetStream consume + ack", rep.Consume}, {"ceiling: raw franz-go produce", rep.Produce}} {
		fmt.Fprintf(w, "%s\t%.0f\t%.1f\t%.2f\t\n", r.name, r.r.PerSec, r.r.MBPerS, r.r.Seconds)
	}
	w.Flush()
	fmt.Printf("\nlatency at %.0f events/s, publish → read_committed consumer: p50 %.1f ms, p99 %.1f ms, p99.9 %.1f ms, %d lost\n",
		rep.Latency.PerSec, rep.Latency.P50ms, rep.Latency.P99ms, rep.Latency.P999ms, rep.Latency.Errors)
	fmt.Printf("\nbridge / slower ceiling: %.2fx   transactions: %.0f (%.0f events each, %.1f ms each)\ngaps: %d   duplicates: %d\n",
		rep.Ratio, rep.Txns, float64(rep.Events)/max(rep.Txns, 1), rep.TxnMs, rep.Gaps, rep.Duplicates)
}

// benchAggregates are the record keys of the benchmark's events.
const benchAggregates = 64

// fillEvents publishes n inventory domain events of size bytes to EVENTS,
// batch to a message (a CloudEvents batch when more than one, as owners
// relay them), and returns the number of messages.
func fillEvents(ctx context.Context, js jetstream.JetStream, n, size, batch int, progress func(int)) (int, error) {
	pad := make([]byte, size)
	for i := range pad {
		pad[i] = 'x'
	}
	event := func(i, agg int) (cloudevents.Event, []byte, error) {
		ev := cloudevents.Event{SpecVersion: cloudevents.SpecVersion, ID: "bench-" + strconv.Itoa(i), Source: "/bench",
			Type: "ticketing.inventory.hold.placed", Time: time.Now().UTC(), PartitionKey: "event-" + strconv.Itoa(agg%benchAggregates),
			TraceParent: benchTraceParent(i)}
		body, err := cloudevents.Encode(&ev, map[string]string{"pad": ""})
		if err != nil {
			return ev, nil, err
		}
		// Pad the data to the event size.
		if extra := size - len(body); extra > 0 {
			body, err = cloudevents.Encode(&ev, map[string]string{"pad": string(pad[:extra])})
		}
		return ev, body, err
	}
	var futures []jetstream.PubAckFuture
	msgs := 0
	for i := 0; i < n; msgs++ {
		var m *nats.Msg
		if batch == 1 {
			ev, body, err := event(i, i)
			if err != nil {
				return 0, err
			}
			m = &nats.Msg{Subject: jsnames.EventsSubjPx + "bench." + ev.PartitionKey, Header: nats.Header{}, Data: body}
			for _, kv := range ev.Headers() {
				m.Header[kv[0]] = []string{kv[1]}
			}
			m.Header[nats.MsgIdHdr] = []string{ev.ID}
			i++
		} else {
			// One aggregate a message, as an owner's batch is one event's.
			body := []byte{'['}
			first := i
			for ; i < n && i-first < batch; i++ {
				_, b, err := event(i, msgs)
				if err != nil {
					return 0, err
				}
				if i > first {
					body = append(body, ',')
				}
				body = append(body, b...)
			}
			m = &nats.Msg{Subject: jsnames.EventsSubjPx + "bench.event-" + strconv.Itoa(msgs%benchAggregates), Header: nats.Header{},
				Data: append(body, ']')}
			m.Header[cloudevents.HeaderContentType] = []string{cloudevents.BatchContentType}
			m.Header[nats.MsgIdHdr] = []string{"bench-batch-" + strconv.Itoa(first)}
		}
		f, err := js.PublishMsgAsync(m)
		if err != nil {
			return 0, err
		}
		futures = append(futures, f)
		if len(futures) == 4096 || i == n {
			for _, f := range futures {
				select {
				case <-f.Ok():
				case err := <-f.Err():
					return 0, err
				case <-ctx.Done():
					return 0, ctx.Err()
				}
			}
			futures = futures[:0]
			progress(i)
		}
	}
	return msgs, nil
}

// rawConsume reads the whole stream with a durable pull consumer, the way
// the bridge does (same prefetch, AckAll once per 16384 messages), and
// nothing else.
func rawConsume(ctx context.Context, js jetstream.JetStream, n int, progress func(int)) (time.Duration, error) {
	c, err := js.CreateOrUpdateConsumer(ctx, jsnames.Events, jetstream.ConsumerConfig{Durable: "bench-raw", AckPolicy: jetstream.AckAllPolicy,
		AckWait: 10 * time.Minute, MaxAckPending: 1 << 17})
	if err != nil {
		return 0, err
	}
	start := time.Now()
	it, err := c.Messages(jetstream.PullMaxBytes(mirror.PrefetchBytes))
	if err != nil {
		return 0, err
	}
	defer it.Stop()
	for i := 1; i <= n; i++ {
		m, err := it.Next(jetstream.NextContext(ctx))
		if err != nil {
			return 0, err
		}
		if i%16384 == 0 || i == n {
			if err := m.Ack(); err != nil {
				return 0, err
			}
			progress(i)
		}
	}
	return time.Since(start), nil
}

// rawProduce writes the same records the bridge writes (topics, keys,
// values, headers) with a plain idempotent franz-go producer, acks from all
// in-sync replicas, no transactions. The records are read from the stream
// first, outside the measured time.
func rawProduce(ctx context.Context, js jetstream.JetStream, cc kafka.ClientConfig, topics kafka.TopicMap, run string, n int, progress func(int)) (time.Duration, error) {
	topics.Defaults()
	raw := kafka.TopicMap{Routes: map[string]string{}, Partitions: topics.Partitions, ReplicationFactor: topics.ReplicationFactor}
	for p, t := range topics.Routes {
		raw.Routes[p] = t + ".raw"
	}
	raw.Default = topics.Default + ".raw"
	a, err := kafka.NewAdmin(cc)
	if err != nil {
		return 0, err
	}
	err = a.EnsureTopics(ctx, raw.Specs()...)
	a.Close()
	if err != nil {
		return 0, err
	}
	c, err := js.OrderedConsumer(ctx, jsnames.Events, jetstream.OrderedConsumerConfig{})
	if err != nil {
		return 0, err
	}
	recs := make([]*kgo.Record, 0, n)
	it, err := c.Messages(jetstream.PullMaxBytes(mirror.PrefetchBytes))
	if err != nil {
		return 0, err
	}
	for len(recs) < n {
		m, err := it.Next(jetstream.NextContext(ctx))
		if err != nil {
			it.Stop()
			return 0, err
		}
		h := m.Headers()
		if h.Get(cloudevents.HeaderContentType) == cloudevents.BatchContentType {
			els, err := cloudevents.SplitBatch(m.Data())
			if err != nil {
				it.Stop()
				return 0, err
			}
			for _, el := range els {
				topic, _ := raw.Topic(string(el.Attrs.Type))
				recs = append(recs, &kgo.Record{Topic: topic, Key: el.Attrs.PartitionKey, Value: el.Raw, Headers: []kgo.RecordHeader{
					{Key: "ce_id", Value: el.Attrs.ID}, {Key: "ce_type", Value: el.Attrs.Type}, {Key: "ce_source", Value: el.Attrs.Source},
					{Key: "ce_specversion", Value: el.Attrs.SpecVersion}, {Key: "ce_time", Value: el.Attrs.Time},
					{Key: "ce_partitionkey", Value: el.Attrs.PartitionKey}, {Key: "content-type", Value: []byte(cloudevents.ContentType)}}})
			}
			continue
		}
		topic, _ := raw.Topic(h.Get(cloudevents.HeaderType))
		r := &kgo.Record{Topic: topic, Key: []byte(h.Get(cloudevents.HeaderPartitionKey)), Value: m.Data()}
		for k, vs := range h {
			r.Headers = append(r.Headers, kgo.RecordHeader{Key: k, Value: []byte(vs[0])})
		}
		recs = append(recs, r)
	}
	it.Stop()
	cl, err := kgo.NewClient(kgo.SeedBrokers(cc.Brokers...), kgo.ClientID(cc.ClientID), kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(5*time.Millisecond), kgo.ProducerBatchCompression(kgo.Lz4Compression()), kgo.MaxBufferedRecords(50_000))
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	errc := make(chan error, 1)
	start := time.Now()
	for i, r := range recs {
		cl.Produce(ctx, r, func(_ *kgo.Record, err error) {
			if err != nil {
				select {
				case errc <- err:
				default:
				}
			}
		})
		if i%16384 == 0 {
			progress(i)
		}
	}
	if err := cl.Flush(ctx); err != nil {
		return 0, err
	}
	d := time.Since(start)
	select {
	case err := <-errc:
		return 0, err
	default:
	}
	return d, nil
}

// countMirrored reads the bridge's topics back (read_committed) and counts
// the events missing and the events written more than once.
func countMirrored(ctx context.Context, cc kafka.ClientConfig, topics kafka.TopicMap, n int, progress func(int)) (gaps, dups int, err error) {
	topics.Defaults()
	var names []string
	for _, s := range topics.Specs() {
		names = append(names, s.Name)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(cc.Brokers...), kgo.ConsumeTopics(names...),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if err != nil {
		return 0, 0, err
	}
	defer cl.Close()
	seen := make([]uint8, n)
	total := 0
	// Read until every event was seen, or until the topics have nothing
	// more for a while (then the rest are gaps).
	for distinct := 0; distinct < n; {
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		fs := cl.PollFetches(pctx)
		cancel()
		if ctx.Err() != nil {
			return 0, 0, ctx.Err()
		}
		if err := fs.Err0(); errors.Is(err, context.DeadlineExceeded) || fs.IsClientClosed() {
			break
		}
		fs.EachRecord(func(r *kgo.Record) {
			total++
			var id string
			for _, h := range r.Headers {
				if h.Key == "ce_id" {
					id = string(h.Value)
					break
				}
			}
			i, err := strconv.Atoi(strings.TrimPrefix(id, "bench-"))
			if err != nil || i < 0 || i >= n {
				return
			}
			if seen[i] == 0 {
				distinct++
			}
			seen[i]++
		})
		progress(total)
	}
	for _, c := range seen {
		switch {
		case c == 0:
			gaps++
		case c > 1:
			dups += int(c) - 1
		}
	}
	return gaps, dups, nil
}

func counterValue(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		return 0
	}
	return m.GetCounter().GetValue()
}

// bridgeLatency publishes events in an open loop at rate for d while the
// bridge runs, and measures each from its scheduled publish to its arrival
// at a read_committed consumer of the bridge's topics (started at their
// current ends).
func bridgeLatency(ctx context.Context, js jetstream.JetStream, cc kafka.ClientConfig, topics kafka.TopicMap, run string, rate float64, d time.Duration, size int, progress func(float64)) (loadgen.Result, error) {
	topics.Defaults()
	a, err := kafka.NewAdmin(cc)
	if err != nil {
		return loadgen.Result{}, err
	}
	var names []string
	for _, s := range topics.Specs() {
		names = append(names, s.Name)
	}
	ends, err := a.Kadm().ListEndOffsets(ctx, names...)
	a.Close()
	if err != nil {
		return loadgen.Result{}, err
	}
	from := map[string]map[int32]kgo.Offset{}
	ends.Each(func(o kadm.ListedOffset) {
		if from[o.Topic] == nil {
			from[o.Topic] = map[int32]kgo.Offset{}
		}
		from[o.Topic][o.Partition] = kgo.NewOffset().At(o.Offset)
	})
	cl, err := kgo.NewClient(kgo.SeedBrokers(cc.Brokers...), kgo.ConsumePartitions(from), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.FetchMaxWait(10*time.Millisecond))
	if err != nil {
		return loadgen.Result{}, err
	}
	defer cl.Close()
	var waiters sync.Map // event id → chan struct{}
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		for cctx.Err() == nil {
			cl.PollFetches(cctx).EachRecord(func(r *kgo.Record) {
				for _, h := range r.Headers {
					if h.Key == "ce_id" {
						if ch, ok := waiters.LoadAndDelete(string(h.Value)); ok {
							close(ch.(chan struct{}))
						}
						return
					}
				}
			})
		}
	}()
	pad := strings.Repeat("x", max(size-400, 0))
	op := func(ctx context.Context, _ int, i int64) (loadgen.Outcome, error) {
		ev := cloudevents.Event{SpecVersion: cloudevents.SpecVersion, ID: "lat-" + run + "-" + strconv.FormatInt(i, 10), Source: "/bench",
			Type: "ticketing.inventory.hold.placed", Time: time.Now().UTC(), PartitionKey: "event-" + strconv.FormatInt(i%benchAggregates, 10)}
		body, err := cloudevents.Encode(&ev, map[string]string{"pad": pad})
		if err != nil {
			return loadgen.OK, err
		}
		m := &nats.Msg{Subject: jsnames.EventsSubjPx + "bench." + ev.PartitionKey, Header: nats.Header{}, Data: body}
		for _, kv := range ev.Headers() {
			m.Header[kv[0]] = []string{kv[1]}
		}
		m.Header[nats.MsgIdHdr] = []string{ev.ID}
		ch := make(chan struct{})
		waiters.Store(ev.ID, ch)
		if _, err := js.PublishMsgAsync(m); err != nil {
			waiters.Delete(ev.ID)
			return loadgen.OK, err
		}
		t := time.NewTimer(10 * time.Second)
		defer t.Stop()
		select {
		case <-ch:
			return loadgen.OK, nil
		case <-t.C:
			waiters.Delete(ev.ID)
			return loadgen.OK, errors.New("not in Kafka after 10s")
		case <-ctx.Done():
			return loadgen.OK, ctx.Err()
		}
	}
	return loadgen.Open(ctx, "bridge at half of peak", rate, d, int(rate)*2+64, op, progress), nil
}
