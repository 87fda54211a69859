package bench

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"
)

// setup is how one run's system runs: secured as the production commands
// run it (mutual TLS on every link, nkeys, the store encrypted) or in
// plaintext as with --insecure; traced at --tracing's sampling or not.
type setup struct {
	Secure bool `json:"tls"`
	Traced bool `json:"tracing"`
}

func (s setup) String() string {
	return fmt.Sprintf("TLS %s, tracing %s", onOff(s.Secure), onOff(s.Traced))
}

// plain is the baseline a --compare run is measured against.
var plain = setup{}

// compareFlags choose the runs of a benchmark: one run as --tls and
// --tracing say, or --compare pairs of that run and the plain baseline.
type compareFlags struct {
	tls     *string
	compare *int
	cipher  *string
}

func addCompareFlags(fs *flag.FlagSet) compareFlags {
	return compareFlags{
		tls: fs.String("tls", "on", "on: the system secured as ticketing dev runs it (mutual TLS on every link, nkeys, the store encrypted); off: plaintext, as with --insecure"),
		compare: fs.Int("compare", 0, "N > 0: N pairs of runs, each the run --tls and --tracing ask for and the plain baseline (TLS off, tracing off), "+
			"alternating which goes first, and the ratio of the two"),
		cipher: fs.String("jetstream-cipher", "aes", "store cipher of the secured runs: aes, chachapoly, or none (to measure TLS alone)"),
	}
}

// setups lists the runs to make; traced says whether --tracing asks for
// tracing.
func (f compareFlags) setups(traced bool) ([]setup, error) {
	var run setup
	switch *f.tls {
	case "on":
		run.Secure = true
	case "off":
	default:
		return nil, fmt.Errorf("--tls %q: want on or off", *f.tls)
	}
	run.Traced = traced
	switch {
	case *f.compare < 0:
		return nil, fmt.Errorf("--compare %d: want 0 or more pairs", *f.compare)
	case *f.compare == 0:
		return []setup{run}, nil
	case run == plain:
		return nil, fmt.Errorf("--compare: the run to compare is the baseline itself (TLS off, tracing off)")
	}
	var runs []setup
	for p := range *f.compare {
		if p%2 == 0 {
			runs = append(runs, plain, run)
		} else {
			runs = append(runs, run, plain)
		}
	}
	return runs, nil
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

// comparison compares a figure of the configured runs with the plain runs
// of the same invocation.
type comparison struct {
	// Setup is the configured runs' (the plain ones: TLS off, tracing
	// off).
	Setup      setup     `json:"setup"`
	Plain      []float64 `json:"plain"`
	Configured []float64 `json:"configured"`
	PlainMean  float64   `json:"plain_mean"`
	Mean       float64   `json:"configured_mean"`
	// Ratio is Mean / PlainMean; ByPair the ratio within each pair of runs
	// made one after the other.
	Ratio  float64   `json:"configured_over_plain"`
	ByPair []float64 `json:"configured_over_plain_by_pair"`
}

// compare compares value over runs made in pairs (compareFlags.setups),
// setupOf telling each run's setup.
func compare[R any](runs []R, setupOf func(R) setup, value func(R) float64) comparison {
	var c comparison
	for i, r := range runs {
		if s := setupOf(r); s == plain {
			c.Plain = append(c.Plain, value(r))
		} else {
			c.Setup = s
			c.Configured = append(c.Configured, value(r))
		}
		if i%2 == 1 {
			run, base := value(runs[i]), value(runs[i-1])
			if setupOf(runs[i]) == plain {
				run, base = base, run
			}
			if base > 0 {
				c.ByPair = append(c.ByPair, run/base)
			}
		}
	}
	c.PlainMean, c.Mean = mean(c.Plain), mean(c.Configured)
	if c.PlainMean > 0 {
		c.Ratio = c.Mean / c.PlainMean
	}
	return c
}

func mean(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := 0.0
	for _, x := range v {
		s += x
	}
	return s / float64(len(v))
}

func (c comparison) print(what string) {
	f := func(v []float64) string {
		s := make([]string, len(v))
		for i, x := range v {
			s[i] = fmt.Sprintf("%.0f", x)
		}
		return strings.Join(s, ", ")
	}
	pairs := make([]string, len(c.ByPair))
	for i, x := range c.ByPair {
		pairs[i] = fmt.Sprintf("%.2f", x)
	}
	fmt.Printf("%s, %s: %s (mean %.0f)\n%s, %s: %s (mean %.0f)\n%s over plain: %.2fx (pairs: %s)\n",
		what, plain, f(c.Plain), c.PlainMean, what, c.Setup, f(c.Configured), c.Mean, c.Setup, c.Ratio, strings.Join(pairs, ", "))
}

// runDir is a run's data directory: data when given (kept), else a new
// temporary one named after pattern, which done removes.
func runDir(data, pattern string) (dir string, done func(), err error) {
	if data != "" {
		return data, func() {}, nil
	}
	if dir, err = os.MkdirTemp("", pattern); err != nil {
		return "", nil, err
	}
	return dir, func() { os.RemoveAll(dir) }, nil
}

// runner is how to make one benchmark's runs and read their reports.
type runner[R any] struct {
	// measures are the figures compared between the configured and the
	// plain runs, the first the one the benchmark is judged by.
	measures []measure[R]
	// run makes one run as s says; check fails a run whose own checks
	// failed (oversold, gaps, …).
	run   func(s setup) (R, error)
	check func(R) error
	print func(R)
	setup func(R) setup
	// status reports progress to people (nil: none).
	status func(format string, a ...any)
}

// measure is one figure of a report that runs are compared by.
type measure[R any] struct {
	what  string // for people: "holds/s"
	key   string // its comparison's key in --json: "holds_per_sec"
	value func(R) float64
}

// runAll makes the runs and prints the one report, or with several runs
// every report and their comparisons: as a table, or with asJSON one JSON
// object ({"runs": […], key: comparison, …} for several).
func runAll[R any](b runner[R], runs []setup, asJSON bool) error {
	var reps []R
	for i, s := range runs {
		if len(runs) > 1 && b.status != nil {
			b.status("run %d of %d: %s", i+1, len(runs), s)
		}
		rep, err := b.run(s)
		if err != nil {
			return err
		}
		if err := b.check(rep); err != nil {
			b.print(rep)
			return err
		}
		reps = append(reps, rep)
	}
	enc := json.NewEncoder(os.Stdout)
	if len(reps) == 1 {
		if asJSON {
			return enc.Encode(reps[0])
		}
		b.print(reps[0])
		return nil
	}
	out := map[string]any{"runs": reps}
	for _, m := range b.measures {
		out[m.key] = compare(reps, b.setup, m.value)
	}
	if asJSON {
		return enc.Encode(out)
	}
	for _, r := range reps {
		fmt.Printf("--- %s ---\n", b.setup(r))
		b.print(r)
		fmt.Println()
	}
	for _, m := range b.measures {
		out[m.key].(comparison).print(m.what)
	}
	return nil
}
