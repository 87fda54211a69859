package kafka

import (
	"context"
	"log/slog"
	"net"
	"sort"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ticketing/ticketing/internal/errs"
)

const opConfig = "kafka.config"

// ClientConfig is what every client of this package needs: where the
// brokers are and how to reach them.
type ClientConfig struct {
	// Brokers are seed brokers, host:port each. Required.
	Brokers []string
	// ClientID names the client in broker logs and quotas. Default
	// "ticketing".
	ClientID string
	// DialTimeout bounds a connection attempt. Default 10s.
	DialTimeout time.Duration
	// Dial, when set, opens connections instead of a net.Dialer (for
	// example through a proxy, or a test that cuts connections).
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// Logger receives franz-go's log lines (warnings and errors, more when
	// the logger is enabled for info or debug). Default: none.
	Logger *slog.Logger
}

// Defaults fills zero fields.
func (c *ClientConfig) Defaults() {
	if c.ClientID == "" {
		c.ClientID = "ticketing"
	}
	if c.DialTimeout == 0 {
		c.DialTimeout = 10 * time.Second
	}
}

// Validate checks the config after Defaults.
func (c *ClientConfig) Validate() error {
	if len(c.Brokers) == 0 {
		return errs.E(opConfig, errs.Invalid, "at least one broker is required")
	}
	for _, b := range c.Brokers {
		if _, port, err := net.SplitHostPort(b); err != nil || port == "" {
			return errs.Errorf(opConfig, errs.Invalid, "broker %q is not host:port", b)
		}
	}
	if c.ClientID == "" {
		return errs.E(opConfig, errs.Invalid, "a client id is required")
	}
	if c.DialTimeout < 0 {
		return errs.E(opConfig, errs.Invalid, "dial timeout must not be negative")
	}
	return nil
}

func (c *ClientConfig) opts() []kgo.Opt {
	opts := []kgo.Opt{
		kgo.SeedBrokers(c.Brokers...),
		kgo.ClientID(c.ClientID),
		kgo.DialTimeout(c.DialTimeout),
	}
	if c.Dial != nil {
		opts = append(opts, kgo.Dialer(c.Dial))
	}
	if l := newKgoLogger(c.Logger); l != nil {
		opts = append(opts, kgo.WithLogger(l))
	}
	return opts
}

// ProducerConfig configures a Producer or a TxProducer.
type ProducerConfig struct {
	Client ClientConfig
	// Linger is how long a partition's batch waits for more records before
	// it is sent; Produce itself never waits for it (it flushes what it
	// gave). Default 5ms: concurrent Produce calls share batches at little
	// latency. At most 1s.
	Linger time.Duration
	// BatchMaxBytes caps one record batch. Default 1,000,000 (below the
	// broker's default message.max.bytes of 1 MiB).
	BatchMaxBytes int32
	// MaxBufferedRecords caps records waiting to be acknowledged; Produce
	// blocks (until its context ends) while the cap is reached. Default
	// 50,000.
	MaxBufferedRecords int
	// Compression of record batches: none, gzip, snappy, lz4 or zstd.
	// Default lz4.
	Compression string
	// TransactionalID is required by NewTxProducer and refused by
	// NewProducer. Two running producers must never share one: the newer
	// fences the older.
	TransactionalID string
	// TransactionTimeout is how long the broker lets a transaction stay
	// open before aborting it. Default 40s.
	TransactionTimeout time.Duration
	// Topics maps event types to topics, for the bridge.
	Topics TopicMap
}

// Defaults fills zero fields.
func (c *ProducerConfig) Defaults() {
	c.Client.Defaults()
	if c.Linger == 0 {
		c.Linger = 5 * time.Millisecond
	}
	if c.BatchMaxBytes == 0 {
		c.BatchMaxBytes = 1_000_000
	}
	if c.MaxBufferedRecords == 0 {
		c.MaxBufferedRecords = 50_000
	}
	if c.Compression == "" {
		c.Compression = "lz4"
	}
	if c.TransactionTimeout == 0 {
		c.TransactionTimeout = 40 * time.Second
	}
	c.Topics.Defaults()
}

// Validate checks the config after Defaults.
func (c *ProducerConfig) Validate() error {
	if err := c.Client.Validate(); err != nil {
		return err
	}
	switch {
	case c.Linger < 0 || c.Linger > time.Second:
		return errs.Errorf(opConfig, errs.Invalid, "linger %v is outside 0…1s", c.Linger)
	case c.BatchMaxBytes < 1024 || c.BatchMaxBytes > 64<<20:
		return errs.Errorf(opConfig, errs.Invalid, "batch max bytes %d is outside 1 KiB…64 MiB", c.BatchMaxBytes)
	case c.MaxBufferedRecords < 1:
		return errs.Errorf(opConfig, errs.Invalid, "max buffered records %d is below 1", c.MaxBufferedRecords)
	case c.TransactionTimeout < time.Second:
		return errs.Errorf(opConfig, errs.Invalid, "transaction timeout %v is below 1s", c.TransactionTimeout)
	}
	if _, err := codec(c.Compression); err != nil {
		return err
	}
	return c.Topics.Validate()
}

func codec(name string) (kgo.CompressionCodec, error) {
	switch name {
	case "none":
		return kgo.NoCompression(), nil
	case "gzip":
		return kgo.GzipCompression(), nil
	case "snappy":
		return kgo.SnappyCompression(), nil
	case "lz4":
		return kgo.Lz4Compression(), nil
	case "zstd":
		return kgo.ZstdCompression(), nil
	}
	return kgo.NoCompression(), errs.Errorf(opConfig, errs.Invalid, "compression %q: want none, gzip, snappy, lz4 or zstd", name)
}

func (c *ProducerConfig) opts() []kgo.Opt {
	cc, _ := codec(c.Compression)
	opts := append(c.Client.opts(),
		// Idempotent writes are kgo's default; acks=all is required for them
		// and is what makes a write survive the loss of the leader.
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(c.Linger),
		kgo.ProducerBatchMaxBytes(c.BatchMaxBytes),
		kgo.MaxBufferedRecords(c.MaxBufferedRecords),
		kgo.ProducerBatchCompression(cc),
		// Keyed records go to murmur2(key) % partitions, as with the Java
		// client, so consumers in any language agree; unkeyed records fill
		// 64 KiB batches per partition in turn.
		kgo.RecordPartitioner(kgo.UniformBytesPartitioner(64<<10, true, true, nil)),
	)
	if c.TransactionalID != "" {
		opts = append(opts, kgo.TransactionalID(c.TransactionalID), kgo.TransactionTimeout(c.TransactionTimeout))
	}
	return opts
}

// ConsumerConfig configures a Consumer.
type ConsumerConfig struct {
	Client ClientConfig
	// Group is the consumer group. Required.
	Group string
	// Topics to consume. Required.
	Topics []string
	// StartAt is where a group without a committed offset for a partition
	// starts: "earliest" (default) or "latest".
	StartAt string
	// ReadUncommitted also returns records of open and aborted
	// transactions. Default false: read_committed.
	ReadUncommitted bool
	// MaxPollRecords caps the records given to one handler call. Default 500.
	MaxPollRecords int
	// SessionTimeout: a member not heard from for this long is removed from
	// the group and its partitions go to the others. Default 45s.
	SessionTimeout time.Duration
	// InstanceID makes the member static (KIP-345): a process restarted
	// with the same instance id takes its partitions back at once, instead
	// of waiting for the dead member's session to time out. Each running
	// member needs its own; empty: a dynamic member.
	InstanceID string
	// HeartbeatInterval: default 3s.
	HeartbeatInterval time.Duration
	// RebalanceTimeout is how long members may take to finish their batch
	// and commit when a rebalance starts; a handler call should be well
	// shorter. Default 60s.
	RebalanceTimeout time.Duration
	// CommitTimeout bounds an offset commit, which runs even when the
	// Consume context was cancelled after the handler succeeded. Default 10s.
	CommitTimeout time.Duration
}

// Defaults fills zero fields.
func (c *ConsumerConfig) Defaults() {
	c.Client.Defaults()
	if c.StartAt == "" {
		c.StartAt = "earliest"
	}
	if c.MaxPollRecords == 0 {
		c.MaxPollRecords = 500
	}
	if c.SessionTimeout == 0 {
		c.SessionTimeout = 45 * time.Second
	}
	if c.HeartbeatInterval == 0 {
		c.HeartbeatInterval = 3 * time.Second
	}
	if c.RebalanceTimeout == 0 {
		c.RebalanceTimeout = 60 * time.Second
	}
	if c.CommitTimeout == 0 {
		c.CommitTimeout = 10 * time.Second
	}
}

// Validate checks the config after Defaults.
func (c *ConsumerConfig) Validate() error {
	if err := c.Client.Validate(); err != nil {
		return err
	}
	if strings.TrimSpace(c.Group) == "" {
		return errs.E(opConfig, errs.Invalid, "a consumer group is required")
	}
	if len(c.Topics) == 0 {
		return errs.E(opConfig, errs.Invalid, "at least one topic is required")
	}
	for _, t := range c.Topics {
		if err := ValidateTopicName(t); err != nil {
			return err
		}
	}
	switch {
	case c.StartAt != "earliest" && c.StartAt != "latest":
		return errs.Errorf(opConfig, errs.Invalid, "start at %q: want earliest or latest", c.StartAt)
	case c.MaxPollRecords < 1:
		return errs.Errorf(opConfig, errs.Invalid, "max poll records %d is below 1", c.MaxPollRecords)
	case c.HeartbeatInterval <= 0 || c.SessionTimeout <= c.HeartbeatInterval:
		return errs.Errorf(opConfig, errs.Invalid, "heartbeat interval %v must be positive and below the session timeout %v", c.HeartbeatInterval, c.SessionTimeout)
	case c.RebalanceTimeout < time.Second:
		return errs.Errorf(opConfig, errs.Invalid, "rebalance timeout %v is below 1s", c.RebalanceTimeout)
	case c.CommitTimeout <= 0:
		return errs.Errorf(opConfig, errs.Invalid, "commit timeout %v must be positive", c.CommitTimeout)
	}
	return nil
}

func (c *ConsumerConfig) opts() []kgo.Opt {
	start := kgo.NewOffset().AtStart()
	if c.StartAt == "latest" {
		start = kgo.NewOffset().AtEnd()
	}
	iso := kgo.ReadCommitted()
	if c.ReadUncommitted {
		iso = kgo.ReadUncommitted()
	}
	opts := append(c.Client.opts(),
		kgo.ConsumerGroup(c.Group),
		kgo.ConsumeTopics(c.Topics...),
		kgo.ConsumeResetOffset(start),
		kgo.FetchIsolationLevel(iso),
		kgo.SessionTimeout(c.SessionTimeout),
		kgo.HeartbeatInterval(c.HeartbeatInterval),
		kgo.RebalanceTimeout(c.RebalanceTimeout),
		// At least once: offsets are committed by Consume after the handler
		// succeeded, and no rebalance runs between a poll and its commit.
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
	)
	if c.InstanceID != "" {
		opts = append(opts, kgo.InstanceID(c.InstanceID))
	}
	return opts
}

// TopicSpec is a topic to create.
type TopicSpec struct {
	Name       string
	Partitions int32
	// ReplicationFactor: -1 takes the broker's default.replication.factor.
	ReplicationFactor int16
}

// TopicMap routes domain events to topics by event type (the CloudEvents
// "type", e.g. "ticketing.inventory.seat_held"): the longest matching
// prefix in Routes wins, else Default.
type TopicMap struct {
	// Routes maps an event type prefix to a topic.
	Routes map[string]string
	// Default receives the events no route matches; empty makes them an
	// error.
	Default string
	// Partitions of each topic when the bridge creates it: the parallelism
	// of its consumers. Default 12.
	Partitions int32
	// ReplicationFactor of each topic when the bridge creates it. Default
	// -1: the broker's default.replication.factor (use 3 in production).
	ReplicationFactor int16
}

// The default topics: inventory events (types starting with
// InventoryTypePrefix) go to DefaultInventoryTopic, all others to
// DefaultEventsTopic.
const (
	InventoryTypePrefix   = "ticketing.inventory."
	DefaultInventoryTopic = "ticketing.inventory"
	DefaultEventsTopic    = "ticketing.events"
)

// Defaults fills zero fields: with neither routes nor a default topic,
// inventory events go to DefaultInventoryTopic and all others to
// DefaultEventsTopic.
func (m *TopicMap) Defaults() {
	if len(m.Routes) == 0 && m.Default == "" {
		m.Routes = map[string]string{InventoryTypePrefix: DefaultInventoryTopic}
		m.Default = DefaultEventsTopic
	}
	if m.Partitions == 0 {
		m.Partitions = 12
	}
	if m.ReplicationFactor == 0 {
		m.ReplicationFactor = -1
	}
}

// Validate checks the map after Defaults.
func (m *TopicMap) Validate() error {
	if len(m.Routes) == 0 && m.Default == "" {
		return errs.E(opConfig, errs.Invalid, "topic map: no route and no default topic")
	}
	for prefix, t := range m.Routes {
		if prefix == "" {
			return errs.E(opConfig, errs.Invalid, "topic map: empty event type prefix (use Default)")
		}
		if err := ValidateTopicName(t); err != nil {
			return err
		}
	}
	if m.Default != "" {
		if err := ValidateTopicName(m.Default); err != nil {
			return err
		}
	}
	if m.Partitions < 1 {
		return errs.Errorf(opConfig, errs.Invalid, "topic map: partitions %d is below 1", m.Partitions)
	}
	if m.ReplicationFactor < 1 && m.ReplicationFactor != -1 {
		return errs.Errorf(opConfig, errs.Invalid, "topic map: replication factor %d: want -1 or at least 1", m.ReplicationFactor)
	}
	return nil
}

// Topic returns the topic of an event type.
func (m *TopicMap) Topic(eventType string) (string, error) {
	best, topic := -1, m.Default
	for prefix, t := range m.Routes {
		if strings.HasPrefix(eventType, prefix) && len(prefix) > best {
			best, topic = len(prefix), t
		}
	}
	if topic == "" {
		return "", errs.Errorf("kafka.topic", errs.Invalid, "no topic for event type %q", eventType)
	}
	return topic, nil
}

// Specs lists every topic the map can route to, sorted, for EnsureTopics.
func (m *TopicMap) Specs() []TopicSpec {
	seen := map[string]bool{}
	if m.Default != "" {
		seen[m.Default] = true
	}
	for _, t := range m.Routes {
		seen[t] = true
	}
	specs := make([]TopicSpec, 0, len(seen))
	for t := range seen {
		specs = append(specs, TopicSpec{Name: t, Partitions: m.Partitions, ReplicationFactor: m.ReplicationFactor})
	}
	sort.Slice(specs, func(i, j int) bool { return specs[i].Name < specs[j].Name })
	return specs
}

// ValidateTopicName applies Kafka's rules: 1 to 249 of [a-zA-Z0-9._-], and
// neither "." nor "..".
func ValidateTopicName(t string) error {
	if t == "" || len(t) > 249 || t == "." || t == ".." {
		return errs.Errorf(opConfig, errs.Invalid, "topic name %q: want 1 to 249 characters, not . or ..", t)
	}
	for _, r := range t {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return errs.Errorf(opConfig, errs.Invalid, "topic name %q: only letters, digits, '.', '_' and '-'", t)
		}
	}
	return nil
}
