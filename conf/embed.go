// Package conf carries the default configuration files, embedded in the
// binary so that `ticketing dev` runs with nothing on disk. The same files
// are the templates for deployments; see README.md in this folder.
package conf

import "embed"

// Files holds nats/*.conf, app/*.json and demo/*.json.
//
//go:embed nats/*.conf demo/*.json
var Files embed.FS
