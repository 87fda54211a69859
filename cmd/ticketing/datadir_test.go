package main

import (
	"context"
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestDataDirOneProcess: a second `ticketing dev` (and a `ticketing core`)
// given a data directory a running dev holds stops at once, non-zero,
// naming the holder, before it starts a store there; the first runs on.
func TestDataDirOneProcess(t *testing.T) {
	d := &devProc{t: t, dir: t.TempDir(), http: freeAddr(t), nats: freeAddr(t), leaf: freeAddr(t), adminTok: testAdminToken}
	d.start()
	for _, args := range [][]string{
		{"dev", "--data", d.dir, "--http", freeAddr(t), "--nats", freeAddr(t), "--leaf", freeAddr(t), "--kafka-port", "0",
			"--psp", freeAddr(t), "--payment-http", freeAddr(t)},
		{"core", "--data", d.dir},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		out, err := exec.CommandContext(ctx, binPath, args...).CombinedOutput()
		cancel()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() == 0 {
			t.Fatalf("ticketing %s on a held directory: %v, want a non-zero exit\n%s", args[0], err, out)
		}
		msg := string(out)
		if !strings.Contains(msg, "directory in use") || !strings.Contains(msg, "held by process") {
			t.Errorf("ticketing %s: the error does not say the directory is held and by whom:\n%s", args[0], tail(msg, 10))
		}
		if strings.Contains(msg, "JetStream") || strings.Contains(msg, "Starting nats-server") {
			t.Errorf("ticketing %s started a server before refusing:\n%s", args[0], tail(msg, 20))
		}
	}
	// The holder runs on and stops cleanly.
	d.stop()
}
