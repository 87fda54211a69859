package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ticketing/ticketing/cmd/ticketing/cli"
	"github.com/ticketing/ticketing/core"
	"github.com/ticketing/ticketing/core/node"
	"github.com/ticketing/ticketing/internal/eventually"
	"github.com/ticketing/ticketing/internal/supervisor/supervisortest"
	"github.com/ticketing/ticketing/services/settings"
)

// `ticketing config` against a running core: a setting and a flag are set,
// read back and applied by the core's own watcher within a second; a bad
// value is refused with a clear message and changes nothing.
func TestConfigCommand(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	sec, _, err := cli.DevSecurity(log, testSecrets.Dir, nil, "aes")
	if err != nil {
		t.Fatal(err)
	}
	c, err := core.Start(ctx, core.Config{
		Node:       sec.SecureNode(node.Config{Name: "core-1", DataDir: filepath.Join(t.TempDir(), "core"), ClientAddr: "127.0.0.1:0", LeafAddr: "127.0.0.1:0"}),
		AdminToken: testAdminToken,
	}, supervisortest.New(t), log, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	config := func(args ...string) (string, error) {
		t.Helper()
		cmd := exec.Command(binPath, append(append([]string{"config"}, args...), "--nats", c.Node.ClientURL(), "--secrets", testSecrets.Dir, "--by", "tester")...)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	mustConfig := func(args ...string) string {
		t.Helper()
		out, err := config(args...)
		if err != nil {
			t.Fatalf("ticketing config %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}

	out := mustConfig("set", "queue.target_shoppers", "5000", "--scope", "arena-onsale", "--note", "big on-sale")
	if !strings.Contains(out, "queue.target_shoppers --scope arena-onsale = 5000") {
		t.Fatalf("set said %q", out)
	}
	eventually.True(t, time.Second, "the core's target for arena-onsale at 5000", func() bool {
		return c.Settings().Snapshot().Int(settings.QueueTargetShoppers, "arena-onsale", 0) == 5000
	})
	mustConfig("set", "edge.drain", "true")
	out = mustConfig("get")
	for _, want := range [][]string{{"queue.target_shoppers", "arena-onsale", "5000", "2000", "1", "tester"}, {"edge.drain", "*", "true", "false"}} {
		if !hasRow(out, want...) {
			t.Fatalf("get lacks a row %q:\n%s", want, out)
		}
	}
	if !strings.Contains(out, "big on-sale") {
		t.Fatalf("get lacks the note:\n%s", out)
	}
	out = mustConfig("get", "edge.holds.rate")
	if !strings.Contains(out, "ticketing edge --hold-rate") || !strings.Contains(out, "1 to 100000") {
		t.Fatalf("get edge.holds.rate:\n%s", out)
	}

	// Refused, clearly, nothing changed.
	for _, args := range [][]string{
		{"set", "edge.holds.rate", "0"},
		{"set", "edge.drain", "perhaps"},
		{"set", "edge.nonsense", "1"},
		{"set", "edge.drain", "false", "--revision", "999999"},
		{"flags", "set", `{"key":"x","variants":{"a":true},"default_variant":"b"}`},
	} {
		out, err := config(args...)
		if _, ok := err.(*exec.ExitError); !ok || !strings.Contains(out, "refused, nothing changed") {
			t.Fatalf("ticketing config %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	var list []settings.Setting
	if err := json.Unmarshal([]byte(mustConfig("get", "--json")), &list); err != nil {
		t.Fatal(err)
	}
	for _, s := range list {
		if s.Name == settings.EdgeHoldsRate && s.Value != nil {
			t.Fatalf("a refused value got in: %+v", s)
		}
		if s.Name == settings.EdgeDrain && s.Scope == "" && string(s.Value) != "true" {
			t.Fatalf("drain changed by a refused write: %+v", s)
		}
	}

	flag := filepath.Join(t.TempDir(), "flag.json")
	if err := writeFile(flag, `{"key":"sales.enabled","enabled":true,"variants":{"on":true,"off":false},"default_variant":"on",
		"rules":[{"organizers":["echoes-live"],"variant":"off"}]}`); err != nil {
		t.Fatal(err)
	}
	mustConfig("flags", "set", flag)
	eventually.True(t, time.Second, "the flag at the core", func() bool { _, ok := c.Flags().Get("sales.enabled"); return ok })
	if out := mustConfig("flags", "list"); !strings.Contains(out, "sales.enabled") {
		t.Fatalf("flags list:\n%s", out)
	}
	if out := mustConfig("flags", "get", "sales.enabled"); !strings.Contains(out, `"echoes-live"`) {
		t.Fatalf("flags get:\n%s", out)
	}
	mustConfig("flags", "delete", "sales.enabled")
	mustConfig("unset", "edge.drain")
	eventually.True(t, time.Second, "drain unset at the core", func() bool {
		_, ok := c.Settings().Snapshot().Lookup(settings.EdgeDrain, "")
		return !ok
	})
}

func writeFile(path, s string) error { return os.WriteFile(path, []byte(s), 0o600) }

// hasRow reports whether a line of out begins with fields.
func hasRow(out string, fields ...string) bool {
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) >= len(fields) && strings.Join(f[:len(fields)], " ") == strings.Join(fields, " ") {
			return true
		}
	}
	return false
}
