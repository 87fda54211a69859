package kafka

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
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
	running string // the marker file, with a data directory
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
	// A marker file says the broker is running; one left from an earlier
	// start means that process died without Shutdown.
	var crashed bool
	var running string
	if c.DataDir != "" {
		running = filepath.Join(c.DataDir, runningMarker)
		if _, err := os.Stat(running); err == nil {
			crashed = true
		}
	}
	cl, err := kfake.NewCluster(opts...)
	if err != nil {
		return nil, fmt.Errorf("kafka: embedded: %w", err)
	}
	e := &Embedded{c: cl, brokers: cl.ListenAddrs(), running: running}
	if crashed {
		if err := e.abortHangingTransactions(c.Logger); err != nil {
			cl.Close()
			return nil, fmt.Errorf("kafka: embedded: after a crash: %w", err)
		}
	}
	if running != "" {
		if err := os.WriteFile(running, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o600); err != nil {
			cl.Close()
			return nil, fmt.Errorf("kafka: embedded: %w", err)
		}
	}
	return e, nil
}

// runningMarker is the file in the data directory that exists while a
// broker runs on it.
const runningMarker = ".ticketing-running"

// abortHangingTransactions writes an abort marker, on every partition, for
// every transactional producer. kfake aborts the transactions a crash left
// open when it reloads its data, but writes no marker for them; without one,
// read_committed clients skip every later batch of the same producer id
// (they skip an aborted transaction's batches until its marker), so a
// producer that comes back with its transactional id would never be read.
// This is what `kafka-transactions.sh abort` does for a hanging transaction
// on a real broker. A marker for a producer with nothing open is a control
// record that readers pass over.
func (e *Embedded) abortHangingTransactions(log *slog.Logger) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a, err := NewAdmin(ClientConfig{Brokers: e.brokers, ClientID: "kafka-embedded-recovery"})
	if err != nil {
		return err
	}
	defer a.Close()
	txns, err := a.adm.ListTransactions(ctx, nil, nil)
	if err != nil {
		return err
	}
	if len(txns) == 0 {
		return nil
	}
	topics, err := a.adm.ListTopics(ctx)
	if err != nil {
		return err
	}
	all := kadm.TopicsSet{}
	for _, t := range topics {
		for _, p := range t.Partitions {
			all.Add(t.Topic, p.Partition)
		}
	}
	described, err := a.adm.DescribeTransactions(ctx, txns.TransactionalIDs()...)
	if err != nil {
		return err
	}
	for _, d := range described {
		if d.Err != nil {
			return d.Err
		}
		resp, err := a.adm.WriteTxnMarkers(ctx, kadm.TxnMarkers{ProducerID: d.ProducerID, ProducerEpoch: d.ProducerEpoch, Topics: all})
		if err != nil {
			return err
		}
		for _, r := range resp {
			for _, t := range r.Topics {
				for _, p := range t.Partitions {
					if p.Err != nil {
						return fmt.Errorf("abort marker for %s on %s/%d: %w", d.TxnID, t.Topic, p.Partition, p.Err)
					}
				}
			}
		}
		if log != nil {
			log.Warn("embedded Kafka: the last run ended without a shutdown; aborted what its transactions left open",
				"transactional_id", d.TxnID, "producer_id", d.ProducerID, "partitions", len(all.IntoList()))
		}
	}
	return nil
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
		if e.running != "" {
			if err := os.Remove(e.running); err != nil && !os.IsNotExist(err) {
				return fmt.Errorf("kafka: embedded shutdown: %w", err)
			}
		}
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
