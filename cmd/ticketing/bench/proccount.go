package bench

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"syscall"
)

// procCounters are what a process has spent so far: CPU in user space and
// in the kernel, read and write system calls (reads, writes and their
// vector forms, sockets included; not fsync), and context switches, given
// up (waiting) or taken (preempted). The difference of two is what a phase
// cost; divided by its holds, what a hold cost.
type procCounters struct {
	UserCPU float64 `json:"user_cpu_seconds"`
	SysCPU  float64 `json:"kernel_cpu_seconds"`
	Reads   int64   `json:"read_syscalls"`
	Writes  int64   `json:"write_syscalls"`
	// VolSwitches: the process waited (a read with nothing to read, a
	// futex); InvolSwitches: the kernel took a core from it.
	VolSwitches   int64 `json:"voluntary_context_switches"`
	InvolSwitches int64 `json:"involuntary_context_switches"`
}

// readProcCounters reads this process's counters (getrusage and
// /proc/self/io; the system call counts stay 0 where there is no /proc).
func readProcCounters() procCounters {
	var c procCounters
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err == nil {
		c.UserCPU, c.SysCPU = float64(ru.Utime.Nano())/1e9, float64(ru.Stime.Nano())/1e9
		c.VolSwitches, c.InvolSwitches = int64(ru.Nvcsw), int64(ru.Nivcsw)
	}
	b, err := os.ReadFile("/proc/self/io")
	if err != nil {
		return c
	}
	s := bufio.NewScanner(bytes.NewReader(b))
	for s.Scan() {
		k, v, ok := bytes.Cut(s.Bytes(), []byte(": "))
		if !ok {
			continue
		}
		n, _ := strconv.ParseInt(string(v), 10, 64)
		switch string(k) {
		case "syscr":
			c.Reads = n
		case "syscw":
			c.Writes = n
		}
	}
	return c
}

// sub is what was spent from c0 to c.
func (c procCounters) sub(c0 procCounters) procCounters {
	return procCounters{UserCPU: c.UserCPU - c0.UserCPU, SysCPU: c.SysCPU - c0.SysCPU,
		Reads: c.Reads - c0.Reads, Writes: c.Writes - c0.Writes,
		VolSwitches: c.VolSwitches - c0.VolSwitches, InvolSwitches: c.InvolSwitches - c0.InvolSwitches}
}

// CPU is user and kernel CPU together.
func (c procCounters) CPU() float64 { return c.UserCPU + c.SysCPU }

// perOp describes the counters per operation of n.
func (c procCounters) perOp(n int64) string {
	if n <= 0 {
		return ""
	}
	f := float64(n)
	return fmt.Sprintf("%.0f µs a hold (user %.0f, kernel %.0f), %.2f reads and %.2f writes (system calls), %.2f + %.2f context switches (waits + preemptions)",
		1e6*c.CPU()/f, 1e6*c.UserCPU/f, 1e6*c.SysCPU/f, float64(c.Reads)/f, float64(c.Writes)/f, float64(c.VolSwitches)/f, float64(c.InvolSwitches)/f)
}
