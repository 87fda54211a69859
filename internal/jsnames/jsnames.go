// Package jsnames names the JetStream resources that more than one runtime
// uses: the JetStream domain of the core regions, the domain-event stream
// EVENTS and its subjects, and the catalog bucket the edges mirror. The
// core creates them (core/streams); the edge and the bridge find them by
// these names without importing the core runtime. Names only the core uses
// (its inventory logs, leases, snapshots, secrets) stay in core/streams.
package jsnames

// Domain is the JetStream domain of the core regions. An edge's leaf
// server has a domain of its own, so the edge reaches the core's streams
// and buckets through this one.
const Domain = "core"

// The shared streams and buckets.
const (
	// Events is the stream of domain events (CloudEvents) that the bridge
	// mirrors into Kafka; its subjects start with EventsSubjPx.
	Events = "EVENTS"
	// EventsSubjPx starts every subject of Events: "events.<source>.…".
	EventsSubjPx = "events."
	// CatalogBucket is the key-value bucket of venues and events, mirrored
	// by every edge.
	CatalogBucket = "catalog"
)

// InventoryEventSubject is where a partition's domain events go.
func InventoryEventSubject(partition string) string {
	return EventsSubjPx + "inventory." + partition
}
