// Package bridge mirrors the durable domain-event stream from JetStream into
// Kafka topics for analytics, reporting, audit and finance consumers.
package bridge
