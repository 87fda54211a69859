//go:build !linux

package node

import "errors"

// diskSpace is not measured off Linux: the data directory's gauges are
// left out.
func diskSpace(string) (uint64, uint64, error) {
	return 0, 0, errors.New("node: disk space is measured on Linux only")
}
