package kafka

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/ticketing/ticketing/internal/errs"
)

// EmbeddedConfig configures the embedded broker of `ticketing dev`.
type EmbeddedConfig struct {
	// DataDir keeps topics, records, committed offsets and producer state
	// across restarts. Empty: everything is in memory and lost on Close.
	DataDir string
	// Port on 127.0.0.1; 0 picks a free one. The broker always listens on
	// loopback: kfake advertises its listener's address, so it is only
	// reachable from this machine.
	Port int
	// DefaultPartitions of topics created with -1 partitions or
	// automatically. Default 10.
	DefaultPartitions int
	// SyncWrites fsyncs every record batch before it is acknowledged.
	// Default false: batches reach the OS at once but disk only on a segment
	// roll and at Close, as with Kafka's default flush settings.
	SyncWrites bool
	// ClusterID reported in metadata for a new data directory. Default
	// "ticketing-dev".
	ClusterID string
	// Logger receives the broker's warnings and errors. Default: none.
	Logger *slog.Logger
}

// Defaults fills zero fields.
func (c *EmbeddedConfig) Defaults() {
	if c.DefaultPartitions == 0 {
		c.DefaultPartitions = 10
	}
	if c.ClusterID == "" {
		c.ClusterID = "ticketing-dev"
	}
}

// Validate checks the config after Defaults.
func (c *EmbeddedConfig) Validate() error {
	switch {
	case c.Port < 0 || c.Port > 65535:
		return errs.Errorf(opConfig, errs.Invalid, "embedded kafka: port %d is not a port", c.Port)
	case c.DefaultPartitions < 1:
		return errs.Errorf(opConfig, errs.Invalid, "embedded kafka: default partitions %d is below 1", c.DefaultPartitions)
	}
	return nil
}

// Embedded is a running embedded broker (franz-go's kfake, one broker).
type Embedded struct {
	c       *kfake.Cluster
	brokers []string
}

// StartEmbedded starts the embedded broker, reloading DataDir's state if
// there is one.
func StartEmbedded(c EmbeddedConfig) (*Embedded, error) {
	c.Defaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	opts := []kfake.Opt{
		kfake.NumBrokers(1),
		kfake.Ports(c.Port),
		kfake.ClusterID(c.ClusterID),
		kfake.DefaultNumPartitions(c.DefaultPartitions),
	}
	if c.DataDir != "" {
		if err := os.MkdirAll(c.DataDir, 0o750); err != nil {
			return nil, fmt.Errorf("kafka: embedded: %w", err)
		}
		opts = append(opts, kfake.DataDir(c.DataDir))
		if c.SyncWrites {
			opts = append(opts, kfake.SyncWrites())
		}
	}
	if c.Logger != nil {
		opts = append(opts, kfake.WithLogger(kfakeLogger{c.Logger.With("component", "kafka-embedded")}))
	}
	cl, err := kfake.NewCluster(opts...)
	if err != nil {
		return nil, fmt.Errorf("kafka: embedded: %w", err)
	}
	return &Embedded{c: cl, brokers: cl.ListenAddrs()}, nil
}

// Brokers returns the broker address, host:port.
func (e *Embedded) Brokers() []string { return append([]string(nil), e.brokers...) }

// Shutdown stops accepting connections and, with a data directory, writes
// the broker's state to it. It returns ctx's error if that takes longer than
// ctx allows; the state is then still being written.
func (e *Embedded) Shutdown(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		e.c.Close()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("kafka: embedded shutdown: %w", ctx.Err())
	}
}

type kfakeLogger struct{ log *slog.Logger }

func (l kfakeLogger) Logf(level kfake.LogLevel, format string, args ...any) {
	var sl slog.Level
	switch level {
	case kfake.LogLevelError:
		sl = slog.LevelError
	case kfake.LogLevelWarn:
		sl = slog.LevelWarn
	default:
		sl = slog.LevelDebug // kfake's info is per group join and failed request
	}
	if !l.log.Enabled(context.Background(), sl) {
		return
	}
	l.log.Log(context.Background(), sl, fmt.Sprintf(format, args...))
}
