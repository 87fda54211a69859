package bench

import (
	"context"
	"fmt"
	"io"
	"slices"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// streamSeqs returns the last sequence of every stream of nc's account
// by name: how many messages each has stored so far (a bucket's purged
// or replaced keys still count).
func streamSeqs(ctx context.Context, nc *nats.Conn) (map[string]uint64, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	seqs := map[string]uint64{}
	l := js.ListStreams(ctx)
	for si := range l.Info() {
		seqs[si.Config.Name] = si.State.LastSeq
	}
	return seqs, l.Err()
}

// writesPer returns, per stream, the messages stored between before and
// after divided by n; streams that stored none are left out.
func writesPer(before, after map[string]uint64, n int64) map[string]float64 {
	if n <= 0 {
		return nil
	}
	per := map[string]float64{}
	for name, seq := range after {
		if d := seq - min(seq, before[name]); d > 0 {
			per[name] = float64(d) / float64(n)
		}
	}
	return per
}

// printWrites prints per, its streams by name, and their sum.
func printWrites(w io.Writer, per map[string]float64) {
	names := make([]string, 0, len(per))
	sum := 0.0
	for name, v := range per {
		names = append(names, name)
		sum += v
	}
	slices.Sort(names)
	fmt.Fprintf(w, "JetStream messages stored a purchase (each synced on its own): %.1f\n", sum)
	for _, name := range names {
		fmt.Fprintf(w, "  %-24s %5.2f\n", name, per[name])
	}
}
