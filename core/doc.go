// Package core is the core-region runtime: the embedded clustered
// nats-server, partition ownership by lease, the inventory partition owners
// and the domain services that run beside them.
package core
