// Command devstack-probe makes one real request to a server and exits 0 when
// it answered, 1 otherwise. compose/devstack polls it to know when a server
// is ready:
//
//	devstack-probe [-timeout 5s] postgres postgres://u:p@127.0.0.1:25432/db
//	devstack-probe redis 127.0.0.1:26379
//	devstack-probe kafka 127.0.0.1:29092[,host:port…]
//	devstack-probe cql 127.0.0.1:29042[,host:port…]
//	devstack-probe opensearch http://127.0.0.1:29200
//	devstack-probe smtp 127.0.0.1:21025
//	devstack-probe mailpit http://127.0.0.1:28025
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/ticketing/ticketing/internal/testservers"
)

func main() {
	timeout := flag.Duration("timeout", 5*time.Second, "deadline for the one request")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: devstack-probe [-timeout d] postgres|redis|kafka|cql|opensearch|smtp|mailpit TARGET")
	}
	flag.Parse()
	if flag.NArg() != 2 {
		flag.Usage()
		os.Exit(2)
	}
	kind, target := flag.Arg(0), flag.Arg(1)
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()

	var (
		answer string
		err    error
	)
	switch kind {
	case "postgres":
		answer, err = testservers.PingPostgres(ctx, target)
	case "redis":
		answer, err = testservers.PingRedis(ctx, target)
	case "kafka":
		answer, err = testservers.PingKafka(ctx, strings.Split(target, ","))
	case "cql":
		answer, err = testservers.PingCQL(ctx, strings.Split(target, ","))
	case "opensearch":
		answer, err = testservers.PingOpenSearch(ctx, target)
	case "smtp":
		answer, err = testservers.PingSMTP(ctx, target)
	case "mailpit":
		answer, err = testservers.PingMailpit(ctx, target)
	default:
		flag.Usage()
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s %s: %v\n", kind, target, err)
		os.Exit(1)
	}
	fmt.Printf("%s %s: %s\n", kind, target, answer)
}
