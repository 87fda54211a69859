// Command ticketing is the one binary of the ticketing platform. Its
// subcommands run the whole system in one process (dev), a core node (core),
// an edge node (edge), the Kafka bridge (bridge) and the benchmarks (bench).
package main

import (
	"fmt"
	"os"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	if len(os.Args) < 2 {
		usage()
		os.Exit(2)
	}
	switch os.Args[1] {
	case "version":
		fmt.Println("ticketing", version)
	default:
		usage()
		os.Exit(2)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: ticketing <dev|core|edge|bench|version> [flags]")
}
