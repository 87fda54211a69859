package main

import (
	"flag"
	"fmt"
	"strings"
)

// benchTLSFlags choose whether a benchmark's system runs secured, in
// plaintext, or both alternately to compare them.
type benchTLSFlags struct {
	mode   *string
	rounds *int
	cipher *string
}

func addBenchTLSFlags(fs *flag.FlagSet) benchTLSFlags {
	return benchTLSFlags{
		mode: fs.String("tls", "on", "on: secured as ticketing dev runs (mutual TLS on every link, nkeys, the store encrypted); "+
			"off: plaintext, as with --insecure; both: off and on alternately (--tls-rounds pairs) and their ratio"),
		rounds: fs.Int("tls-rounds", 2, "with --tls both: pairs of runs, in the orders off-on, on-off, off-on, …"),
		cipher: fs.String("jetstream-cipher", "aes", "store cipher of the secured runs: aes, chachapoly, or none (to measure TLS alone)"),
	}
}

// runs lists the runs to make: true for a secured one.
func (f benchTLSFlags) runs() ([]bool, error) {
	switch *f.mode {
	case "on":
		return []bool{true}, nil
	case "off":
		return []bool{false}, nil
	case "both":
		if *f.rounds < 1 {
			return nil, fmt.Errorf("--tls-rounds %d: at least 1", *f.rounds)
		}
		var runs []bool
		for r := range *f.rounds {
			runs = append(runs, r%2 == 1, r%2 == 0)
		}
		return runs, nil
	}
	return nil, fmt.Errorf("--tls %q: want on, off or both", *f.mode)
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

// tlsComparison compares a figure of the secured runs with the plaintext
// runs of the same invocation.
type tlsComparison struct {
	Off     []float64 `json:"tls_off"`
	On      []float64 `json:"tls_on"`
	OffMean float64   `json:"tls_off_mean"`
	OnMean  float64   `json:"tls_on_mean"`
	// Ratio is OnMean / OffMean; ByPair the ratio within each pair of
	// runs made one after the other.
	Ratio  float64   `json:"on_over_off"`
	ByPair []float64 `json:"on_over_off_by_pair"`
}

// compareTLS compares value over runs made in pairs (benchTLSFlags.runs).
func compareTLS[R any](runs []R, secure func(R) bool, value func(R) float64) tlsComparison {
	var c tlsComparison
	for i, r := range runs {
		if secure(r) {
			c.On = append(c.On, value(r))
		} else {
			c.Off = append(c.Off, value(r))
		}
		if i%2 == 1 {
			on, off := value(runs[i]), value(runs[i-1])
			if !secure(runs[i]) {
				on, off = off, on
			}
			if off > 0 {
				c.ByPair = append(c.ByPair, on/off)
			}
		}
	}
	c.OffMean, c.OnMean = mean(c.Off), mean(c.On)
	if c.OffMean > 0 {
		c.Ratio = c.OnMean / c.OffMean
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

func (c tlsComparison) print(what string) {
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
	fmt.Printf("%s, TLS off: %s (mean %.0f)\n%s, TLS on:  %s (mean %.0f)\nTLS on / off: %.2fx (pairs: %s)\n",
		what, f(c.Off), c.OffMean, what, f(c.On), c.OnMean, c.Ratio, strings.Join(pairs, ", "))
}
