package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ticketing/ticketing/bridge/kafka"
	"github.com/ticketing/ticketing/internal/eventually"
	"github.com/ticketing/ticketing/internal/otlpreceiver"
	"github.com/ticketing/ticketing/internal/tracing"
)

// TestTraceOfAHold runs `ticketing dev` with its spans exported over OTLP
// to a receiver in the test, places three holds through the edge's HTTP
// API (one whose caller sampled it, one whose caller did not, one without
// a trace context at a sampling ratio of 0) and checks the chain of the
// sampled one from the HTTP handler to the Kafka record: one trace, every
// span's parent the one before it; the Kafka record's traceparent is the
// bridge's send span. The other two leave no span, and their NATS request
// has no header at all.
func TestTraceOfAHold(t *testing.T) {
	r, err := otlpreceiver.Start(true)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", r.BaseURL())
	t.Setenv("OTEL_TRACES_SAMPLER", "parentbased_traceidratio")
	t.Setenv("OTEL_TRACES_SAMPLER_ARG", "0") // only callers' decisions
	t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "100")
	kafkaAddr := freeAddr(t)
	_, kafkaPort, _ := net.SplitHostPort(kafkaAddr)
	d := &devProc{t: t, dir: t.TempDir(), http: freeAddr(t), nats: freeAddr(t), leaf: freeAddr(t), adminTok: testAdminToken,
		extra: []string{"--kafka-port", kafkaPort, "--log-format", "json"}}
	d.start()
	a := d.api(30 * time.Second).signIn(testBuyer)
	buyer := a.subject()

	// Every hold request as it reaches the core.
	nc, err := coreConn(d.secrets(), d.nats)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	reqs, err := nc.SubscribeSync("inv.club-night.*.hold")
	if err != nil {
		t.Fatal(err)
	}
	_ = nc.Flush()

	var tid, parent [16]byte
	_, _ = rand.Read(tid[:])
	_, _ = rand.Read(parent[:8])
	traceID, parentID := hex.EncodeToString(tid[:]), hex.EncodeToString(parent[:8])
	hold := func(key, traceparent string) holdAnswer {
		t.Helper()
		h := map[string]string{"Idempotency-Key": key}
		if traceparent != "" {
			h["traceparent"] = traceparent
		}
		var out holdAnswer
		eventually.Nil(t, 60*time.Second, func() error { // the partition may still be on its way to an owner
			code, err := a.do("POST", "/v1/events/club-night/holds", h, map[string]any{"zone": "ga", "quantity": 1}, &out)
			if err != nil || code != 201 {
				return fmt.Errorf("hold %s: HTTP %d %v %+v", key, code, err, out.Error)
			}
			return nil
		})
		return out
	}
	sampled := hold("traced", "00-"+traceID+"-"+parentID+"-01")
	unsampledByCaller := hold("not-traced", "00-"+hex.EncodeToString(parent[:])+"-"+parentID+"-00")
	unsampled := hold("no-context", "")

	// The NATS requests: a header on the sampled one only.
	seen := map[string]nats.Header{}
	eventually.Nil(t, 30*time.Second, func() error {
		for {
			m, err := reqs.NextMsg(10 * time.Millisecond)
			if err != nil {
				break
			}
			for _, key := range []string{"traced", "not-traced", "no-context"} {
				// Idempotency keys reach the core scoped to the caller.
				if strings.Contains(string(m.Data), `"`+buyer+`:`+key+`"`) {
					seen[key] = m.Header
				}
			}
		}
		if len(seen) < 3 {
			return fmt.Errorf("hold requests seen: %v", seen)
		}
		return nil
	})
	if tp := seen["traced"].Get(tracing.HeaderTraceParent); !strings.HasPrefix(tp, "00-"+traceID+"-") || !strings.HasSuffix(tp, "-01") {
		t.Fatalf("sampled hold's request: traceparent %q", tp)
	}
	if seen["not-traced"] != nil || seen["no-context"] != nil {
		t.Fatalf("unsampled holds' requests have headers: %v, %v", seen["not-traced"], seen["no-context"])
	}

	// The chain, parent by parent.
	chain := []struct{ name, kind string }{
		{"POST /v1/events/:id/holds", "server"},
		{"inventory.hold", "client"},
		{"inventory.hold", "server"},
		{"inventory.decide", "internal"},
		{"EVENTS publish", "producer"},
		{"send ticketing.inventory", "producer"},
	}
	var spans []otlpreceiver.Span
	eventually.Nil(t, 60*time.Second, func() error {
		spans = r.Spans()
		if find(spans, "send ticketing.inventory", "producer") == nil || find(spans, "inventory.log.write", "client") == nil {
			return fmt.Errorf("%d spans so far, not yet the Kafka send and the log write", len(spans))
		}
		return nil
	})
	for _, s := range spans {
		if s.TraceID != traceID {
			t.Fatalf("a span of another trace (only one hold was sampled): %+v", s)
		}
	}
	want := parentID
	for _, c := range chain {
		s := find(spans, c.name, c.kind)
		if s == nil {
			t.Fatalf("no %s span %q in %v", c.kind, c.name, names(spans))
		}
		if s.ParentSpanID != want {
			t.Fatalf("%s span %q: parent %s, want %s (%v)", c.kind, c.name, s.ParentSpanID, want, names(spans))
		}
		want = s.SpanID
	}
	server, write := find(spans, "inventory.hold", "server"), find(spans, "inventory.log.write", "client")
	if write.ParentSpanID != server.SpanID || write.Attrs["inventory.log.seq"] == "" {
		t.Fatalf("log write %+v, want a child of the owner's span %s", write, server.SpanID)
	}
	send := find(spans, "send ticketing.inventory", "producer")
	if http := find(spans, chain[0].name, "server"); http.Service != "ticketing-dev" || http.Attrs["http.response.status_code"] != "201" {
		t.Fatalf("HTTP span %+v", http)
	}

	// The Kafka records: the sampled hold's carries the send span's
	// context; the others none.
	cl, err := kgo.NewClient(kgo.SeedBrokers(kafkaAddr), kgo.ConsumeTopics(kafka.DefaultInventoryTopic),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	headers := map[string]string{}
	eventually.Nil(t, 30*time.Second, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		cl.PollFetches(ctx).EachRecord(func(rec *kgo.Record) {
			var subject, tp string
			for _, h := range rec.Headers {
				switch h.Key {
				case "ce_subject":
					subject = string(h.Value)
				case tracing.HeaderTraceParent:
					tp = string(h.Value)
				}
			}
			headers[subject] = tp
		})
		for _, h := range []holdAnswer{sampled, unsampledByCaller, unsampled} {
			if _, ok := headers[h.HoldID]; !ok {
				return fmt.Errorf("no Kafka record of hold %s yet", h.HoldID)
			}
		}
		return nil
	})
	if got, want := headers[sampled.HoldID], "00-"+traceID+"-"+send.SpanID+"-01"; got != want {
		t.Fatalf("the sampled hold's Kafka record: traceparent %q, want %q", got, want)
	}
	if headers[unsampledByCaller.HoldID] != "" || headers[unsampled.HoldID] != "" {
		t.Fatalf("unsampled holds' Kafka records carry a traceparent: %q %q", headers[unsampledByCaller.HoldID], headers[unsampled.HoldID])
	}
	t.Logf("trace %s: %d spans %v; Kafka record traceparent %s", traceID, len(spans), names(spans), headers[sampled.HoldID])
}

func find(spans []otlpreceiver.Span, name, kind string) *otlpreceiver.Span {
	for i := range spans {
		if spans[i].Name == name && spans[i].Kind == kind {
			return &spans[i]
		}
	}
	return nil
}

func names(spans []otlpreceiver.Span) []string {
	var out []string
	for _, s := range spans {
		out = append(out, s.Kind+" "+s.Name+" "+s.SpanID+"<"+s.ParentSpanID)
	}
	return out
}
