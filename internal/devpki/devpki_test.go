package devpki_test

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nkeys"

	"github.com/ticketing/ticketing/internal/devpki"
)

func readCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatalf("%s: no PEM", path)
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func verify(t *testing.T, l devpki.Layout, r devpki.Role, host string, usage x509.ExtKeyUsage) error {
	t.Helper()
	return verifyAt(t, l, r, host, usage, time.Time{})
}

func verifyAt(t *testing.T, l devpki.Layout, r devpki.Role, host string, usage x509.ExtKeyUsage, at time.Time) error {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AddCert(readCert(t, l.CA()))
	_, err := readCert(t, l.TLS(r).Cert).Verify(x509.VerifyOptions{Roots: pool, DNSName: host, KeyUsages: []x509.ExtKeyUsage{usage}, CurrentTime: at})
	return err
}

// TestEnsureMakesEverything: the CA, a certificate per role that the CA
// verifies for its uses and hosts, seeds and public keys of every user,
// the store key; private files 0600, seeds and keys in 0700 folders.
func TestEnsureMakesEverything(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "secrets")
	res, err := devpki.Ensure(devpki.Config{Dir: dir, Hosts: []string{"core-1", "10.0.0.7"}})
	if err != nil {
		t.Fatal(err)
	}
	l := res.Layout
	for _, r := range []devpki.Role{devpki.Core, devpki.Edge} {
		for _, host := range []string{"localhost", "127.0.0.1", "::1", "core-1", "10.0.0.7"} {
			if err := verify(t, l, r, host, x509.ExtKeyUsageServerAuth); err != nil {
				t.Errorf("%s certificate as a server for %s: %v", r, host, err)
			}
		}
		if err := verify(t, l, r, "", x509.ExtKeyUsageClientAuth); err != nil {
			t.Errorf("%s certificate as a client: %v", r, err)
		}
		if err := verify(t, l, r, "elsewhere.example", x509.ExtKeyUsageServerAuth); err == nil {
			t.Errorf("%s certificate is valid for a host it was not made for", r)
		}
	}
	if err := verify(t, l, devpki.Client, "", x509.ExtKeyUsageClientAuth); err != nil {
		t.Errorf("client certificate: %v", err)
	}
	if err := verify(t, l, devpki.Client, "", x509.ExtKeyUsageServerAuth); err == nil {
		t.Error("the client certificate can serve")
	}
	for _, u := range devpki.Users {
		seed, err := devpki.ReadSecret(l.Seed(u))
		if err != nil {
			t.Fatal(err)
		}
		kp, err := nkeys.FromSeed([]byte(seed))
		if err != nil {
			t.Fatalf("seed of %s: %v", u, err)
		}
		pub, _ := kp.PublicKey()
		if got, _ := devpki.ReadSecret(l.PublicKey(u)); got != pub || !nkeys.IsValidPublicUserKey(pub) {
			t.Errorf("public key of %s: file %q, seed's %q", u, got, pub)
		}
	}
	key, err := devpki.ReadSecret(l.StoreKey())
	if err != nil {
		t.Fatal(err)
	}
	if b, err := base64.StdEncoding.DecodeString(key); err != nil || len(b) != 32 {
		t.Errorf("store key %q: want 32 bytes in base64 (%v)", key, err)
	}
	private := []string{l.CAKey(), l.StoreKey()}
	for _, r := range devpki.Roles {
		private = append(private, l.TLS(r).Key)
	}
	for _, u := range devpki.Users {
		private = append(private, l.Seed(u))
	}
	for _, p := range private {
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, want 0600", p, st.Mode().Perm())
		}
		if !slices.Contains(res.Written, p) {
			t.Errorf("%s is not reported written", p)
		}
	}
	for sub, want := range map[string]os.FileMode{"tls": 0o755, "nkeys": 0o700, "keys": 0o700} {
		st, err := os.Stat(filepath.Join(dir, sub))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != want {
			t.Errorf("%s/: mode %v, want %v", sub, st.Mode().Perm(), want)
		}
	}
}

func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	files := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		files[p] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// TestEnsureReuses: a second call keeps every file; a new host reissues
// the core and edge certificates only; an expiring certificate is renewed
// and an expiring CA reissues everything, but seeds and the store key are
// never replaced.
func TestEnsureReuses(t *testing.T) {
	dir := t.TempDir()
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	cfg := devpki.Config{Dir: dir, Hosts: []string{"core-1"}, Now: func() time.Time { return now }}
	if _, err := devpki.Ensure(cfg); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, dir)
	res, err := devpki.Ensure(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Written) != 0 {
		t.Errorf("second Ensure wrote %v", res.Written)
	}
	l := res.Layout
	changed := func(after map[string]string) []string {
		var c []string
		for p, b := range after {
			if before[p] != b {
				c = append(c, strings.TrimPrefix(p, dir+"/"))
			}
		}
		slices.Sort(c)
		return c
	}

	cfg.Hosts = []string{"core-1", "core-2"}
	if _, err := devpki.Ensure(cfg); err != nil {
		t.Fatal(err)
	}
	want := []string{"tls/core-key.pem", "tls/core.pem", "tls/edge-key.pem", "tls/edge.pem"}
	if got := changed(snapshot(t, dir)); !slices.Equal(got, want) {
		t.Errorf("a new host changed %v, want %v", got, want)
	}
	if err := verifyAt(t, l, devpki.Core, "core-2", x509.ExtKeyUsageServerAuth, now); err != nil {
		t.Errorf("the core certificate does not name the new host: %v", err)
	}

	// A year on, within 30 days of the certificates' end: renewed, with
	// the same CA.
	before = snapshot(t, dir)
	now = now.Add(370 * 24 * time.Hour)
	if _, err := devpki.Ensure(cfg); err != nil {
		t.Fatal(err)
	}
	want = []string{"tls/client-key.pem", "tls/client.pem", "tls/core-key.pem", "tls/core.pem", "tls/edge-key.pem", "tls/edge.pem"}
	if got := changed(snapshot(t, dir)); !slices.Equal(got, want) {
		t.Errorf("expiring certificates: changed %v, want %v", got, want)
	}

	// Ten years on the CA expires: a new one, every certificate reissued,
	// the seeds and the store key kept.
	before = snapshot(t, dir)
	now = now.Add(10 * 365 * 24 * time.Hour)
	if _, err := devpki.Ensure(cfg); err != nil {
		t.Fatal(err)
	}
	after := snapshot(t, dir)
	for _, keep := range []string{l.StoreKey(), l.Seed("core"), l.Seed("edge"), l.Seed("sys")} {
		if after[keep] != before[keep] {
			t.Errorf("%s was replaced", keep)
		}
	}
	if after[l.CA()] == before[l.CA()] {
		t.Error("the expiring CA was kept")
	}
	if err := verifyAt(t, l, devpki.Edge, "core-1", x509.ExtKeyUsageServerAuth, now); err != nil {
		t.Errorf("after a new CA: %v", err)
	}
}

// TestEnsureRefusesCAWithoutKey: a CA certificate without its key cannot
// issue anything, and is not silently replaced.
func TestEnsureRefusesCAWithoutKey(t *testing.T) {
	dir := t.TempDir()
	res, err := devpki.Ensure(devpki.Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(res.Layout.CAKey()); err != nil {
		t.Fatal(err)
	}
	if _, err := devpki.Ensure(devpki.Config{Dir: dir, Hosts: []string{"new-host"}}); err == nil {
		t.Fatal("Ensure went on without the CA's key")
	}
}

func TestConfigValidate(t *testing.T) {
	for _, c := range []devpki.Config{
		{},
		{Dir: "x", Hosts: []string{"a host"}},
		{Dir: "x", Hosts: []string{"http://core-1"}},
		{Dir: "x", CertValidity: time.Hour},
	} {
		c.Defaults()
		if err := c.Validate(); err == nil {
			t.Errorf("%+v: no error", c)
		}
	}
	c := devpki.Config{Dir: "x", Hosts: []string{"core-1", "fe80::1", "10.1.2.3"}}
	c.Defaults()
	if err := c.Validate(); err != nil {
		t.Error(err)
	}
}
