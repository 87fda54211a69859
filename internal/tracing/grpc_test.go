package tracing_test

import (
	"context"
	"encoding/hex"
	"net"
	"sync"
	"testing"

	"go.opentelemetry.io/otel/trace"
	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc"

	"github.com/ticketing/ticketing/internal/tracing"
)

type grpcReceiver struct {
	coltrace.UnimplementedTraceServiceServer
	mu    sync.Mutex
	spans []string // trace id/name
}

func (g *grpcReceiver) Export(_ context.Context, req *coltrace.ExportTraceServiceRequest) (*coltrace.ExportTraceServiceResponse, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, rs := range req.GetResourceSpans() {
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				g.spans = append(g.spans, hex.EncodeToString(s.GetTraceId())+"/"+s.GetName())
			}
		}
	}
	return &coltrace.ExportTraceServiceResponse{}, nil
}

// TestSetupGRPC: OTEL_EXPORTER_OTLP_PROTOCOL=grpc exports over OTLP/gRPC.
func TestSetupGRPC(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	g := &grpcReceiver{}
	coltrace.RegisterTraceServiceServer(srv, g)
	go func() { _ = srv.Serve(ln) }()
	defer srv.Stop()

	cfg, err := tracing.FromEnv(env(map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://" + ln.Addr().String(),
		"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_TRACES_SAMPLER": "always_on"}), "test")
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://"+ln.Addr().String()) // the exporter reads it itself
	shutdown, err := tracing.Setup(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, span := tracing.StartEntry(context.Background(), "over grpc", trace.SpanKindServer, "")
	span.End()
	if err := shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if want := span.SpanContext().TraceID().String() + "/over grpc"; len(g.spans) != 1 || g.spans[0] != want {
		t.Fatalf("received %v, want [%s]", g.spans, want)
	}
}
