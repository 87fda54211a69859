package cli

import (
	"flag"
	"log/slog"

	"github.com/ticketing/ticketing/internal/gctune"
)

// GCFlags set the garbage collector of a server process (internal/gctune).
type GCFlags struct {
	percent  *int
	limitMiB *int64
}

func AddGCFlags(fs *flag.FlagSet) GCFlags {
	return GCFlags{
		percent:  fs.Int("gc-percent", 400, "GOGC of this process: heap growth that starts a collection, in percent (-1: off); the GOGC variable wins"),
		limitMiB: fs.Int64("memory-limit-mib", 0, "soft memory limit in MiB (0: 75% of the cgroup's or machine's memory); the GOMEMLIMIT variable wins"),
	}
}

// Apply sets the collector and logs what is in force.
func (g GCFlags) Apply(log *slog.Logger) error {
	c, err := gctune.Apply(gctune.Config{Percent: *g.percent, MemoryLimit: *g.limitMiB << 20})
	if err != nil {
		return err
	}
	log.Debug("garbage collector", "gc_percent", c.Percent, "memory_limit_mib", c.MemoryLimit>>20)
	return nil
}
