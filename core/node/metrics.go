package node

import (
	"github.com/nats-io/nats-server/v2/server"
	"github.com/prometheus/client_golang/prometheus"
)

// Collector exports the node's storage at scrape time: JetStream's file
// store (used, reserved by streams with a byte limit, and the limit it runs
// under) and memory store, and the space left on the file system of the
// data directory. Register it with the process's registry; reading costs a
// walk over the node's streams (nats-server's Jsz) and one statfs(2) per
// scrape.
func (n *Node) Collector() prometheus.Collector {
	return &storageCollector{n: n}
}

var (
	descStoreUsed = prometheus.NewDesc("ticketing_jetstream_storage_used_bytes",
		"JetStream file storage this server uses (its replicas of every stream included).", nil, nil)
	descStoreReserved = prometheus.NewDesc("ticketing_jetstream_storage_reserved_bytes",
		"JetStream file storage reserved by streams with a byte limit.", nil, nil)
	descStoreMax = prometheus.NewDesc("ticketing_jetstream_storage_max_bytes",
		"JetStream file storage this server may use (max_file_store, or what nats-server derived from the disk at start).", nil, nil)
	descMemUsed = prometheus.NewDesc("ticketing_jetstream_memory_used_bytes",
		"JetStream memory storage this server uses.", nil, nil)
	descMemMax = prometheus.NewDesc("ticketing_jetstream_memory_max_bytes",
		"JetStream memory storage this server may use.", nil, nil)
	descDirAvail = prometheus.NewDesc("ticketing_data_dir_available_bytes",
		"Space left to this process on the file system of the node's data directory.", nil, nil)
	descDirSize = prometheus.NewDesc("ticketing_data_dir_size_bytes",
		"Size of the file system of the node's data directory.", nil, nil)
)

type storageCollector struct{ n *Node }

func (c *storageCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descStoreUsed, descStoreReserved, descStoreMax, descMemUsed, descMemMax, descDirAvail, descDirSize} {
		ch <- d
	}
}

func (c *storageCollector) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64) { ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v) }
	if js, err := c.n.Server.Jsz(&server.JSzOptions{}); err == nil && !js.Disabled {
		gauge(descStoreUsed, float64(js.Store))
		gauge(descStoreReserved, float64(js.ReservedStore))
		gauge(descStoreMax, float64(js.Config.MaxStore))
		gauge(descMemUsed, float64(js.Memory))
		gauge(descMemMax, float64(js.Config.MaxMemory))
	}
	if avail, size, err := diskSpace(c.n.cfg.DataDir); err == nil {
		gauge(descDirAvail, float64(avail))
		gauge(descDirSize, float64(size))
	}
}
