// Package otlpreceiver receives OTLP/HTTP trace exports (protobuf, gzip or
// not) in process, as a collector would: the tests of tracing read what the
// platform's processes exported through their real exporters, and the
// benchmarks measure with spans exported somewhere instead of dropped.
package otlpreceiver

import (
	"compress/gzip"
	"context"
	"encoding/hex"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	"google.golang.org/protobuf/proto"
)

// Span is one received span, flattened; ids in lowercase hex ("" for no
// parent).
type Span struct {
	Service             string
	TraceID, SpanID     string
	ParentSpanID        string
	Name                string
	Kind                string // "server", "client", "producer", "consumer", "internal"
	Start, End          time.Time
	Attrs               map[string]string // values as strings
	Links               []Link
	StatusError         bool
	StatusMessage       string
	InstrumentationName string
}

// Link is a span's link to another span.
type Link struct{ TraceID, SpanID string }

// Receiver is an OTLP/HTTP traces endpoint on loopback.
type Receiver struct {
	srv  *http.Server
	url  string
	keep bool // spans are kept for Spans, not only counted

	mu       sync.Mutex
	spans    []Span
	count    int
	requests int
	bytes    int64
}

// Start listens on 127.0.0.1 (a free port). With keep, Spans returns every
// span received; without, only the counts are kept.
func Start(keep bool) (*Receiver, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r := &Receiver{url: "http://" + ln.Addr().String() + "/v1/traces", keep: keep}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/traces", r.export)
	r.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = r.srv.Serve(ln) }()
	return r, nil
}

// URL is the traces endpoint (OTEL_EXPORTER_OTLP_TRACES_ENDPOINT).
func (r *Receiver) URL() string { return r.url }

// BaseURL is the endpoint without its path (OTEL_EXPORTER_OTLP_ENDPOINT).
func (r *Receiver) BaseURL() string { return r.url[:len(r.url)-len("/v1/traces")] }

// Close stops the receiver.
func (r *Receiver) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return r.srv.Shutdown(ctx)
}

// Spans returns a copy of the spans received so far.
func (r *Receiver) Spans() []Span {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Span(nil), r.spans...)
}

// Counts returns how many spans, export requests and body bytes arrived.
func (r *Receiver) Counts() (spans, requests int, bytes int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.count, r.requests, r.bytes
}

func (r *Receiver) export(w http.ResponseWriter, req *http.Request) {
	var body io.Reader = http.MaxBytesReader(w, req.Body, 64<<20)
	if req.Header.Get("Content-Encoding") == "gzip" {
		gz, err := gzip.NewReader(body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		defer gz.Close()
		body = gz
	}
	b, err := io.ReadAll(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var in coltrace.ExportTraceServiceRequest
	if err := proto.Unmarshal(b, &in); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	spans, n := decode(&in, r.keep)
	r.mu.Lock()
	r.spans = append(r.spans, spans...)
	r.count += n
	r.requests++
	r.bytes += int64(len(b))
	r.mu.Unlock()
	out, _ := proto.Marshal(&coltrace.ExportTraceServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(out)
}

func decode(in *coltrace.ExportTraceServiceRequest, keep bool) ([]Span, int) {
	var out []Span
	n := 0
	for _, rs := range in.GetResourceSpans() {
		service := ""
		for _, kv := range rs.GetResource().GetAttributes() {
			if kv.GetKey() == "service.name" {
				service = value(kv.GetValue())
			}
		}
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				n++
				if !keep {
					continue
				}
				sp := Span{Service: service, TraceID: hex.EncodeToString(s.GetTraceId()), SpanID: hex.EncodeToString(s.GetSpanId()),
					ParentSpanID: hex.EncodeToString(s.GetParentSpanId()), Name: s.GetName(),
					Kind:  kindName(int32(s.GetKind())),
					Start: time.Unix(0, int64(s.GetStartTimeUnixNano())), End: time.Unix(0, int64(s.GetEndTimeUnixNano())),
					Attrs: map[string]string{}, InstrumentationName: ss.GetScope().GetName(),
					StatusError: s.GetStatus().GetCode() == 2, StatusMessage: s.GetStatus().GetMessage()}
				for _, kv := range s.GetAttributes() {
					sp.Attrs[kv.GetKey()] = value(kv.GetValue())
				}
				for _, l := range s.GetLinks() {
					sp.Links = append(sp.Links, Link{TraceID: hex.EncodeToString(l.GetTraceId()), SpanID: hex.EncodeToString(l.GetSpanId())})
				}
				out = append(out, sp)
			}
		}
	}
	return out, n
}

func kindName(k int32) string {
	switch k {
	case 2:
		return "server"
	case 3:
		return "client"
	case 4:
		return "producer"
	case 5:
		return "consumer"
	}
	return "internal"
}

func value(v *commonpb.AnyValue) string {
	switch x := v.GetValue().(type) {
	case *commonpb.AnyValue_StringValue:
		return x.StringValue
	case nil:
		return ""
	default:
		return protoText(v)
	}
}

// protoText is a non-string value as text (numbers, booleans).
func protoText(v *commonpb.AnyValue) string {
	switch x := v.GetValue().(type) {
	case *commonpb.AnyValue_IntValue:
		return strconv.FormatInt(x.IntValue, 10)
	case *commonpb.AnyValue_BoolValue:
		if x.BoolValue {
			return "true"
		}
		return "false"
	}
	return v.String()
}
