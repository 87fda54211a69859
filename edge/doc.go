// Package edge is the regional edge runtime: the public HTTP API, the waiting
// room, rate limits and edge caches. An edge decides nothing about inventory;
// it routes holds over its leaf node to the partition owners in the core.
package edge
