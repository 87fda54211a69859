// Package settings is the domain of dynamic configuration: the settings an
// operator changes on a running system (hold limits, drain mode, the
// waiting room's target, …), and the one write path for them and for the
// feature flags of services/flags.
//
// A setting is known before it can be set: the Registry names each one
// with its type, default, bounds, scope and doc (Known lists them). A value
// may be set for everyone or, where the setting has a scope, for one edge
// or one event; a scoped value wins over the global one, and with neither
// the process keeps its start-up value (its command-line flag).
//
// Writes go through Service, and only through it: it validates a value
// against the registry (a flag definition with services/flags) before
// anything is written, writes with compare-and-set on the entry's revision
// (so two operators never overwrite each other unseen), and then has every
// accepted change audited as a domain event (Auditor: a CloudEvent on the
// core's EVENTS stream, with who, the old and new value and the revision).
//
// Readers do not trust the store either: Live (and services/flags.Set)
// decode and validate each entry again as it arrives, and keep the last
// good value when something invalid got in (a hand-made put into the
// bucket), counting it.
//
// Storage and transport are adapters: services/settings/natskv keeps the
// entries in the core's JetStream key-value bucket (compare-and-set
// writes, a watcher that applies changes within a second on every core
// and edge process) and publishes the audit events; services/settings/
// natsapi serves Service as the NATS micro services "config" and "flags",
// which `ticketing config` calls.
//
// # Keys
//
// In the bucket a setting is "setting.<name>" or, for one scope,
// "setting.<name>/<scope id>"; a flag is "flag.<key>". An entry's value is
// an Entry: the JSON value, who wrote it, when, and an optional note.
package settings
