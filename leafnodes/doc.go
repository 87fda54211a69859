// Package leafnodes owns how edges join the core: the leaf topology, the
// accounts and permissions an edge is given, and the embedded leaf server an
// edge runs.
package leafnodes
