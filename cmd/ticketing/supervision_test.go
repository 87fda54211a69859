package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ticketing/ticketing/bridge/kafka"
	"github.com/ticketing/ticketing/internal/devpki"
	"github.com/ticketing/ticketing/internal/eventually"
	"github.com/ticketing/ticketing/internal/supervisor"
)

// TestProcessesStopInOrder sends SIGTERM to a core, an edge, a dev, a
// bridge and a consume process: each stops every component of its /readyz
// in the reverse order and exits 0; with a shutdown deadline too short for
// that, each exits non-zero and says the shutdown was unclean.
func TestProcessesStopInOrder(t *testing.T) {
	core := newCores(t, 1, "--log-format", "json")[0]
	core.start()
	core.waitReady(60 * time.Second)
	broker, err := kafka.StartEmbedded(kafka.EmbeddedConfig{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = broker.Shutdown(context.Background()) })
	// readyz is the URL of a process's /readyz and the secrets whose CA
	// signed its certificate.
	type readyz struct {
		url     string
		secrets devpki.Layout
	}
	kafkaSide := func(t *testing.T, cmd string, extra ...string) (*exec.Cmd, *lockedBuffer, readyz) {
		ops := freeAddr(t)
		p := startProc(t, cmd, nil, append([]string{cmd, "--brokers", strings.Join(broker.Brokers(), ","), "--ops", ops,
			"--nats", "tls://" + core.natsAddr, "--log-format", "json", "--secrets", testSecrets.Dir}, extra...)...)
		return p.cmd, p.out, readyz{"https://" + ops + "/readyz", testSecrets}
	}
	procs := map[string]func(t *testing.T, extra ...string) (cmd *exec.Cmd, out *lockedBuffer, r readyz){
		"core": func(t *testing.T, extra ...string) (*exec.Cmd, *lockedBuffer, readyz) {
			c := newCores(t, 1, append([]string{"--log-format", "json"}, extra...)...)[0]
			c.start()
			return c.cmd, c.out, readyz{"https://" + c.ops + "/readyz", testSecrets}
		},
		"edge": func(t *testing.T, extra ...string) (*exec.Cmd, *lockedBuffer, readyz) {
			addr := freeAddr(t)
			p := startProc(t, "edge", nil, append([]string{"edge", "--name", "edge-sup", "--http", addr,
				"--hubs", "nats-leaf://" + core.leafAddr, "--log-format", "json", "--secrets", testSecrets.Dir}, extra...)...)
			return p.cmd, p.out, readyz{"https://" + addr + "/readyz", testSecrets}
		},
		"dev": func(t *testing.T, extra ...string) (*exec.Cmd, *lockedBuffer, readyz) {
			addr, dir := freeAddr(t), t.TempDir()
			p := startProc(t, "dev", nil, append([]string{"dev", "--data", dir, "--http", addr, "--nats", "-",
				"--leaf", freeAddr(t), "--kafka-port", "0", "--admin-token", testAdminToken, "--log-format", "json",
				"--psp", freeAddr(t), "--payment-http", freeAddr(t)}, extra...)...)
			return p.cmd, p.out, readyz{"https://" + addr + "/readyz", devpki.Layout{Dir: dir}}
		},
		"bridge": func(t *testing.T, extra ...string) (*exec.Cmd, *lockedBuffer, readyz) {
			return kafkaSide(t, "bridge", extra...)
		},
		"consume": func(t *testing.T, extra ...string) (*exec.Cmd, *lockedBuffer, readyz) {
			return kafkaSide(t, "consume", append([]string{"--data", t.TempDir()}, extra...)...)
		},
	}
	for _, name := range []string{"core", "edge", "dev", "bridge", "consume"} {
		t.Run(name, func(t *testing.T) {
			t.Run("clean", func(t *testing.T) {
				cmd, out, r := procs[name](t)
				started := waitReadyz(t, cmd, r.url, r.secrets)
				if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
					t.Fatal(err)
				}
				if err := cmd.Wait(); err != nil {
					t.Fatalf("exit after SIGTERM: %v, want 0\n%s", err, tail(out.String(), 30))
				}
				slices.Reverse(started)
				if got := stopped(t, out.String()); !slices.Equal(got, started) {
					t.Fatalf("stopped %v, want the reverse of /readyz's %v", got, started)
				}
			})
			t.Run("unclean", func(t *testing.T) {
				cmd, out, r := procs[name](t, "--shutdown-timeout", "1ns")
				waitReadyz(t, cmd, r.url, r.secrets)
				if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
					t.Fatal(err)
				}
				var exit *exec.ExitError
				if err := cmd.Wait(); !errors.As(err, &exit) || exit.ExitCode() != 1 {
					t.Fatalf("exit after SIGTERM with no time to stop: %v, want exit status 1\n%s", err, tail(out.String(), 30))
				}
				if !strings.Contains(out.String(), "unclean shutdown") {
					t.Fatalf("the process did not say its shutdown was unclean:\n%s", tail(out.String(), 30))
				}
			})
		})
	}
}

// waitReadyz waits until the process answers /readyz with 200 (over HTTPS,
// trusting the CA of secrets) and returns its components, in start order.
func waitReadyz(t *testing.T, cmd *exec.Cmd, url string, secrets devpki.Layout) []string {
	t.Helper()
	var r supervisor.Report
	eventually.Nil(t, 90*time.Second, func() error {
		if cmd.ProcessState != nil {
			return fmt.Errorf("exited: %v", cmd.ProcessState)
		}
		if _, err := os.Stat(secrets.CA()); err != nil {
			return err // ticketing dev makes its CA first
		}
		resp, err := httpsClient(secrets).Get(url)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		r = supervisor.Report{}
		if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
			return err
		}
		if resp.StatusCode != 200 || !r.Ready() {
			return fmt.Errorf("readyz %d: %+v", resp.StatusCode, r)
		}
		return nil
	})
	var names []string
	for _, c := range r.Components {
		names = append(names, c.Name)
	}
	if len(names) < 3 {
		t.Fatalf("/readyz names %v: want every component", names)
	}
	return names
}

// stopped reads the components' stops from a JSON log, in order.
func stopped(t *testing.T, log string) []string {
	t.Helper()
	var names []string
	sc := bufio.NewScanner(strings.NewReader(log))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var rec struct{ Msg, Name string }
		if json.Unmarshal(sc.Bytes(), &rec) == nil && rec.Msg == supervisor.MsgStopped {
			names = append(names, rec.Name)
		}
	}
	return names
}
