package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ticketing/ticketing/bridge/kafka"
	"github.com/ticketing/ticketing/internal/devpki"
	"github.com/ticketing/ticketing/internal/tlsconf"
)

// TestCertsCommand: `ticketing certs` writes every file of the layout, and
// a second run keeps them all.
func TestCertsCommand(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "secrets")
	run := func() string {
		t.Helper()
		out, err := exec.Command(binPath, "certs", "--dir", dir, "--hosts", "core-1,10.1.2.3").CombinedOutput()
		if err != nil {
			t.Fatalf("ticketing certs: %v\n%s", err, out)
		}
		return string(out)
	}
	out := run()
	l := devpki.Layout{Dir: dir}
	for _, f := range []string{l.CA(), l.CAKey(), l.TLS(devpki.Core).Cert, l.TLS(devpki.Edge).Key, l.TLS(devpki.Client).Cert,
		l.Seed("core"), l.PublicKey("edge"), l.Seed("sys"), l.StoreKey()} {
		if !strings.Contains(out, "wrote "+f) {
			t.Errorf("the output does not say it wrote %s:\n%s", f, out)
		}
		if _, err := os.Stat(f); err != nil {
			t.Error(err)
		}
	}
	if out := run(); !strings.Contains(out, "nothing written") {
		t.Errorf("a second run:\n%s", out)
	}
}

// TestProcessesRefusePlaintext: without its secrets a process refuses to
// start, naming the missing file and the ways out.
func TestProcessesRefusePlaintext(t *testing.T) {
	empty := t.TempDir()
	for _, args := range [][]string{
		{"core", "--data", t.TempDir(), "--admin-token", testAdminToken},
		{"edge"},
		{"bridge", "--brokers", "127.0.0.1:1"},
	} {
		out, err := exec.Command(binPath, append(args, "--secrets", empty)...).CombinedOutput()
		if err == nil {
			t.Errorf("ticketing %s started without secrets", args[0])
			continue
		}
		for _, want := range []string{empty, "ticketing certs --dir", "--insecure"} {
			if !strings.Contains(string(out), want) {
				t.Errorf("ticketing %s says %q, without %q", args[0], out, want)
			}
		}
	}
}

// TestProbe: `ticketing probe` succeeds on a 2xx over HTTPS from a server
// of the given CA, and fails on another status or another CA.
func TestProbe(t *testing.T) {
	res, err := devpki.Ensure(devpki.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	other, err := devpki.Ensure(devpki.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/readyz" {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	if srv.TLS, err = tlsconf.Server(res.Layout.TLS(devpki.Core), false); err != nil {
		t.Fatal(err)
	}
	srv.StartTLS()
	defer srv.Close()
	url := strings.Replace(srv.URL, "127.0.0.1", "localhost", 1)
	ctx := context.Background()
	if err := runProbe(ctx, []string{"--url", url + "/readyz", "--ca", res.Layout.CA()}); err != nil {
		t.Errorf("probe of a ready server: %v", err)
	}
	if err := runProbe(ctx, []string{"--url", url + "/other", "--ca", res.Layout.CA()}); err == nil {
		t.Error("probe of a 503 succeeded")
	}
	if err := runProbe(ctx, []string{"--url", url + "/readyz", "--ca", other.Layout.CA()}); err == nil {
		t.Error("probe trusting another CA succeeded")
	}
}

// TestEachProcessRunsOnItsKit: `ticketing certs --export` cuts the secrets
// into kits, and a core, an edge (joined to it over mutual TLS) and a
// bridge each come up ready on its own kit alone, without the CA key or
// another user's seed.
func TestEachProcessRunsOnItsKit(t *testing.T) {
	dir := t.TempDir()
	kit := func(k devpki.Kit) string { return filepath.Join(dir, "kit-"+string(k)) }
	out, err := exec.Command(binPath, "certs", "--dir", filepath.Join(dir, "all"),
		"--export", "core="+kit(devpki.KitCore)+",edge="+kit(devpki.KitEdge)+",kafka="+kit(devpki.KitKafka)).CombinedOutput()
	if err != nil {
		t.Fatalf("ticketing certs --export: %v\n%s", err, out)
	}
	for _, k := range []devpki.Kit{devpki.KitCore, devpki.KitEdge, devpki.KitKafka} {
		l := devpki.Layout{Dir: kit(k)}
		if _, err := os.Stat(l.CAKey()); !os.IsNotExist(err) {
			t.Errorf("kit %s holds the CA key (%v)", k, err)
		}
		if !strings.Contains(string(out), "wrote "+l.CA()) {
			t.Errorf("the output does not list kit %s's files:\n%s", k, out)
		}
	}
	if _, err := os.Stat(devpki.Layout{Dir: kit(devpki.KitEdge)}.Seed("core")); !os.IsNotExist(err) {
		t.Errorf("the edge's kit holds user core's seed (%v)", err)
	}
	if out, err := exec.Command(binPath, "certs", "--dir", filepath.Join(dir, "all"), "--export", "everything="+dir).CombinedOutput(); err == nil {
		t.Errorf("ticketing certs took an unknown kit:\n%s", out)
	}

	core := newCores(t, 1, "--secrets", kit(devpki.KitCore))[0]
	core.start()
	waitReadyz(t, core.cmd, "https://"+core.ops+"/readyz", devpki.Layout{Dir: kit(devpki.KitCore)})
	edgeAddr := freeAddr(t)
	edge := startProc(t, "edge", nil, "edge", "--name", "edge-kit", "--http", edgeAddr,
		"--hubs", "nats-leaf://"+core.leafAddr, "--secrets", kit(devpki.KitEdge))
	waitReadyz(t, edge.cmd, "https://"+edgeAddr+"/readyz", devpki.Layout{Dir: kit(devpki.KitEdge)})
	broker, err := kafka.StartEmbedded(kafka.EmbeddedConfig{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = broker.Shutdown(context.Background()) })
	ops := freeAddr(t)
	bridge := startProc(t, "bridge", nil, "bridge", "--brokers", strings.Join(broker.Brokers(), ","), "--ops", ops,
		"--nats", "tls://"+core.natsAddr, "--secrets", kit(devpki.KitKafka))
	waitReadyz(t, bridge.cmd, "https://"+ops+"/readyz", devpki.Layout{Dir: kit(devpki.KitKafka)})
}
