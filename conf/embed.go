// Package conf carries the default configuration files, embedded in the
// binary so that `ticketing dev` runs with nothing on disk. The same files
// are the templates for deployments; see README.md in this folder.
//
// prometheus/ holds the Prometheus recording and alert rules of the SLOs
// (not embedded: Prometheus loads them); this package's tests run promtool
// on them and hold them to the metrics the code exports.
package conf

import "embed"

// Files holds nats/*.conf, app/*.json and demo/*.json.
//
//go:embed nats/*.conf demo/*.json app/*.json
var Files embed.FS
