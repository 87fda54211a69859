package cli

import (
	"context"
	"os"
	"time"

	"github.com/ticketing/ticketing/internal/tracing"
)

// tracingFlushTimeout bounds the export of the spans still queued when a
// command ends.
const tracingFlushTimeout = 5 * time.Second

// StartTracing starts tracing for a command as the OTEL_* variables say
// (off unless an OTLP endpoint is set; service name ticketing-<command>
// unless OTEL_SERVICE_NAME says otherwise) and returns what flushes and
// stops it. It runs around the whole command, so the flush comes after
// the command's supervisor has stopped every component that makes spans.
func StartTracing(ctx context.Context, command string) (stop func(), err error) {
	cfg, err := tracing.FromEnv(os.Getenv, "ticketing-"+command)
	if err != nil {
		return nil, err
	}
	shutdown, err := tracing.Setup(ctx, cfg, nil)
	if err != nil {
		return nil, err
	}
	return func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), tracingFlushTimeout)
		defer cancel()
		_ = shutdown(ctx)
	}, nil
}
