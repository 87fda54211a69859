// Package streams declares the JetStream streams, key-value buckets and
// object stores of the core, and creates or updates them at start. The
// names other runtimes use too (EVENTS, the catalog bucket, the JetStream
// domain) are in internal/jsnames; the names only the core uses are here.
package streams

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ticketing/ticketing/internal/jsnames"
	keyringkv "github.com/ticketing/ticketing/internal/keyring/natskv"
	clientkv "github.com/ticketing/ticketing/services/identity/client/natskv"
	identitykv "github.com/ticketing/ticketing/services/identity/natskv"
	passkeykv "github.com/ticketing/ticketing/services/identity/passkey/natskv"
	sessionkv "github.com/ticketing/ticketing/services/identity/session/natskv"
	queuekv "github.com/ticketing/ticketing/services/queue/natskv"
	settingskv "github.com/ticketing/ticketing/services/settings/natskv"
)

// Names of streams, buckets and stores.
const (
	Inventory     = "INVENTORY" // partition logs: one subject per partition
	LeaseBucket   = "inventory-leases"
	SecretsBucket = "ticketing-secrets"
	// QueueBucket and AdmissionKeysBucket hold the waiting room's secrets
	// (ticket keys, draw seeds, signing keys): core users only, never
	// readable by edge leaf users (conf/nats/core.conf).
	QueueBucket         = queuekv.Bucket
	AdmissionKeysBucket = "admission-keys"
	SnapshotStore       = "inventory-snapshots"
	InventorySubjPx     = "inv.log."
	FenceSubjPx         = "inv.fence."
)

// AdmissionKeysConfig is the store of the admission token signing keys
// (services/admission): bucket AdmissionKeysBucket, key "keyset". Stored
// data: do not rename.
func AdmissionKeysConfig(replicas int) keyringkv.Config {
	return keyringkv.Config{Bucket: AdmissionKeysBucket, Key: "keyset", Replicas: replicas,
		Description: "admission token signing keys (private: core only)"}
}

// IdentityKeysConfig is the store of the access token signing keys
// (services/identity/token): bucket "identity-keys", key "keyset".
func IdentityKeysConfig(replicas int) keyringkv.Config {
	return keyringkv.Config{Bucket: "identity-keys", Key: "keyset", Replicas: replicas,
		Description: "access token signing keys (private: core only)"}
}

// TicketKeysConfig is the store of the ticket barcodes' signing keys
// (services/barcode): bucket "ticket-keys", key "keyset".
func TicketKeysConfig(replicas int) keyringkv.Config {
	return keyringkv.Config{Bucket: "ticket-keys", Key: "keyset", Replicas: replicas,
		Description: "ticket barcode signing keys (private: core only)"}
}

// AccountsConfig and SessionsConfig are the identity service's embedded
// stores.
func AccountsConfig(replicas int) identitykv.Config { return identitykv.Config{Replicas: replicas} }

// SessionsConfig: see AccountsConfig.
func SessionsConfig(replicas int) sessionkv.Config { return sessionkv.Config{Replicas: replicas} }

// SettingsBucket holds the dynamic settings and feature flags: written by
// the core's config service only, read by every core and edge (edges over
// their leaf node, conf/nats/core.conf).
const SettingsBucket = settingskv.Bucket

// InventoryLogSubject is the log subject of a partition ("<event>.<i>").
func InventoryLogSubject(partition string) string { return InventorySubjPx + partition }

// InventoryFenceSubject is where each new owner of a partition writes its
// epoch record; every log write expects this subject's last sequence to be
// its own epoch's, so a deposed owner's writes fail.
func InventoryFenceSubject(partition string) string { return FenceSubjPx + partition }

// Config sizes the streams.
type Config struct {
	Replicas      int           // 1 alone, 3 in a cluster
	LeaseTTL      time.Duration // how long an owner's lease lives without renewal
	EventsMaxAge  time.Duration // how long domain events are kept for the bridge
	EventsMaxSize int64         // bytes; -1 unlimited
	// EventsDedupe is how long EVENTS remembers event ids to drop a repeat.
	// Relays find their place on EVENTS by themselves and publish nothing
	// twice; the window only covers two owners relaying at once during a
	// hand-over, which lasts seconds. Default 30s.
	EventsDedupe time.Duration
}

// Defaults fills zero fields.
func (c *Config) Defaults() {
	if c.Replicas == 0 {
		c.Replicas = 1
	}
	if c.LeaseTTL == 0 {
		c.LeaseTTL = 3 * time.Second
	}
	if c.EventsMaxAge == 0 {
		c.EventsMaxAge = 7 * 24 * time.Hour
	}
	if c.EventsMaxSize == 0 {
		c.EventsMaxSize = -1
	}
	if c.EventsDedupe == 0 {
		c.EventsDedupe = 30 * time.Second
	}
}

// Validate checks the config.
func (c *Config) Validate() error {
	if c.Replicas != 1 && c.Replicas != 3 && c.Replicas != 5 {
		return fmt.Errorf("streams: replicas must be 1, 3 or 5, not %d", c.Replicas)
	}
	if c.LeaseTTL < time.Second {
		return fmt.Errorf("streams: lease TTL %v is below 1s", c.LeaseTTL)
	}
	return nil
}

// Set is the core's JetStream resources.
type Set struct {
	Inventory jetstream.Stream
	Events    jetstream.Stream
	// EventsAsync: EVENTS was made before its events were written before
	// they are acknowledged, and still flushes them asynchronously (a
	// crash may lose acknowledged events); recreate it, once the bridge
	// has mirrored it, to change that.
	EventsAsync bool
	Leases      jetstream.KeyValue
	Catalog     jetstream.KeyValue
	Secrets     jetstream.KeyValue
	Snapshots   jetstream.ObjectStore
	// Queue is the waiting room's state (services/queue/natskv);
	// AdmissionKeys the admission token signing keys (internal/keyring/natskv).
	Queue         jetstream.KeyValue
	AdmissionKeys jetstream.KeyValue
	// Settings: dynamic settings and flags (services/settings/natskv).
	Settings jetstream.KeyValue
	// Accounts, Sessions and IdentityKeys are the identity service's
	// embedded stores (services/identity/natskv,
	// services/identity/session/natskv) and its access-token signing keys:
	// core users only.
	Accounts     jetstream.KeyValue
	Sessions     jetstream.KeyValue
	IdentityKeys jetstream.KeyValue
	// Clients are the partner applications (services/identity/client);
	// PasskeySpent the finished passkey ceremonies.
	Clients      jetstream.KeyValue
	PasskeySpent jetstream.KeyValue
	// TicketKeys: the ticket barcodes' signing keys (internal/keyring/natskv).
	TicketKeys jetstream.KeyValue
}

// Ensure creates or updates every resource.
func Ensure(ctx context.Context, js jetstream.JetStream, c Config) (*Set, error) {
	c.Defaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	var s Set
	var err error
	// The inventory log: every write synced (server sync_interval: always)
	// or replicated; owners purge what their snapshots cover.
	s.Inventory, err = js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        Inventory,
		Description: "inventory partition logs (group-committed decisions)",
		Subjects:    []string{InventorySubjPx + ">", FenceSubjPx + ">"},
		Storage:     jetstream.FileStorage,
		Replicas:    c.Replicas,
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardNew,
		MaxMsgSize:  8 << 20,
		AllowDirect: true,
		DenyDelete:  true,
		Duplicates:  2 * time.Minute,
	})
	if err != nil {
		return nil, fmt.Errorf("streams: %s: %w", Inventory, err)
	}
	// An event EVENTS acknowledges must be stored: its publishers forget
	// it then (the orders' outbox relays delete their entries or move
	// their checkpoint past them, the payment service publishes once
	// after its ledger write) and the bridge's checkpoint is a stream
	// sequence, which a lost tail would hand to the next events, skipped
	// then as mirrored. So a single node writes (and, sync_interval
	// always, syncs) each event before it acknowledges it; replicated
	// streams have it from the quorum.
	// Flushed asynchronously, a killed node lost acknowledged events.
	events := jetstream.StreamConfig{
		Name:        jsnames.Events,
		Description: "domain events (CloudEvents), mirrored to Kafka by the bridge",
		Subjects:    []string{jsnames.EventsSubjPx + ">"},
		Storage:     jetstream.FileStorage,
		Replicas:    c.Replicas,
		Retention:   jetstream.LimitsPolicy,
		MaxAge:      c.EventsMaxAge,
		MaxBytes:    c.EventsMaxSize,
		AllowDirect: true,
		Duplicates:  c.EventsDedupe,
		PersistMode: jetstream.DefaultPersistMode,
	}
	// A stream made before with asynchronous flushes keeps them: a
	// stream's persist mode cannot change in place (EventsAsync says so;
	// the core warns).
	if old, err := js.Stream(ctx, jsnames.Events); err == nil && old.CachedInfo().Config.PersistMode == jetstream.AsyncPersistMode {
		events.PersistMode, s.EventsAsync = jetstream.AsyncPersistMode, true
	}
	s.Events, err = js.CreateOrUpdateStream(ctx, events)
	if err != nil {
		return nil, fmt.Errorf("streams: %s: %w", jsnames.Events, err)
	}
	kvs := []struct {
		dst *jetstream.KeyValue
		cfg jetstream.KeyValueConfig
	}{
		{&s.Leases, jetstream.KeyValueConfig{Bucket: LeaseBucket, Description: "partition ownership leases",
			History: 1, TTL: c.LeaseTTL, Storage: jetstream.FileStorage, Replicas: c.Replicas}},
		{&s.Catalog, jetstream.KeyValueConfig{Bucket: jsnames.CatalogBucket, Description: "venues and events",
			History: 1, Storage: jetstream.FileStorage, Replicas: c.Replicas, MaxValueSize: 4 << 20}},
		{&s.Secrets, jetstream.KeyValueConfig{Bucket: SecretsBucket, Description: "keys shared by core nodes",
			History: 1, Storage: jetstream.FileStorage, Replicas: c.Replicas}},
		{&s.Queue, queuekv.KeyValueConfig(c.Replicas)},
		{&s.AdmissionKeys, AdmissionKeysConfig(c.Replicas).KeyValueConfig()},
		{&s.Settings, settingskv.KeyValueConfig(c.Replicas)},
		{&s.Accounts, AccountsConfig(c.Replicas).KeyValueConfig()},
		{&s.Sessions, SessionsConfig(c.Replicas).KeyValueConfig()},
		{&s.IdentityKeys, IdentityKeysConfig(c.Replicas).KeyValueConfig()},
		{&s.Clients, clientkv.Config{Replicas: c.Replicas}.KeyValueConfig()},
		{&s.PasskeySpent, passkeykv.KeyValueConfig(c.Replicas)},
		{&s.TicketKeys, TicketKeysConfig(c.Replicas).KeyValueConfig()},
	}
	// The buckets are created at once: in a cluster each is a RAFT group
	// of its own, and their elections overlap instead of adding up.
	errc := make(chan error, len(kvs))
	for _, k := range kvs {
		go func() {
			kv, err := js.CreateOrUpdateKeyValue(ctx, k.cfg)
			if err != nil {
				errc <- fmt.Errorf("streams: bucket %s: %w", k.cfg.Bucket, err)
				return
			}
			*k.dst = kv
			errc <- nil
		}()
	}
	var errl []error
	for range kvs {
		if err := <-errc; err != nil {
			errl = append(errl, err)
		}
	}
	if err := errors.Join(errl...); err != nil {
		return nil, err
	}
	s.Snapshots, err = js.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{
		Bucket: SnapshotStore, Description: "inventory partition snapshots",
		Storage: jetstream.FileStorage, Replicas: c.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("streams: object store %s: %w", SnapshotStore, err)
	}
	return &s, nil
}
