// Package devpki makes, under one directory, every secret a ticketing
// deployment needs to run secured, for development and for stacks such as
// Compose that have no secret store: a private CA, the certificates of
// core nodes, edges and tools signed by it, the NATS users' nkeys, and the
// key JetStream encrypts its files with. `ticketing certs` and the first
// start of `ticketing dev` call Ensure; later calls reuse what is there and
// renew only what is missing, expiring or no longer covers the hosts asked
// for. Private keys and seeds are written 0600; the folders of seeds and
// keys are 0700, tls/ 0755 (its certificates are public).
//
// The layout (Layout) is what every process finds by default under its
// --secrets directory:
//
//	tls/ca.pem, tls/ca-key.pem          the CA (clients trust ca.pem; only Ensure uses the key)
//	tls/core.pem, tls/core-key.pem      core nodes and the Kafka side: listeners, routes, gateways, their own connections
//	tls/edge.pem, tls/edge-key.pem      edges: the HTTPS API, the leaf-node link, the leaf server
//	tls/client.pem, tls/client-key.pem  tools: the nats CLI, the benchmarks' load generators
//	nkeys/<user>.nk, nkeys/<user>.pub   NATS users core, edge and sys: seed (secret) and public key
//	keys/jetstream.key                  JetStream's encryption key
//
// Production deployments with a PKI of their own give the same files by
// flags instead (tlsconf.Files, the nkey and key flags), and hand each
// process only its own: an edge never needs the core's seed or the store
// key. Export copies such a cut (a Kit) of a directory into another, for
// stacks without a secret store (Compose, `ticketing certs --export`).
package devpki

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nkeys"

	"github.com/ticketing/ticketing/internal/tlsconf"
)

// Role is an identity with a certificate of its own.
type Role string

// The roles. Core and Edge certificates serve listeners and dial peers
// (server and client authentication, valid for Config.Hosts); Client
// certificates only dial.
const (
	Core   Role = "core"
	Edge   Role = "edge"
	Client Role = "client"
)

// Roles lists every role Ensure makes a certificate for.
var Roles = []Role{Core, Edge, Client}

// Users are the NATS users Ensure makes nkeys for (conf/nats/core.conf).
var Users = []string{"core", "edge", "sys"}

// Layout names the files inside a secrets directory.
type Layout struct{ Dir string }

// CA is the CA certificate every client and server trusts.
func (l Layout) CA() string { return filepath.Join(l.Dir, "tls", "ca.pem") }

// CAKey is the CA's private key.
func (l Layout) CAKey() string { return filepath.Join(l.Dir, "tls", "ca-key.pem") }

// TLS names the certificate, key and CA of role r.
func (l Layout) TLS(r Role) tlsconf.Files {
	return tlsconf.Files{
		Cert: filepath.Join(l.Dir, "tls", string(r)+".pem"),
		Key:  filepath.Join(l.Dir, "tls", string(r)+"-key.pem"),
		CA:   l.CA(),
	}
}

// Seed is the nkey seed file of a NATS user.
func (l Layout) Seed(user string) string { return filepath.Join(l.Dir, "nkeys", user+".nk") }

// PublicKey is the file of a NATS user's public nkey.
func (l Layout) PublicKey(user string) string { return filepath.Join(l.Dir, "nkeys", user+".pub") }

// StoreKey is the file of JetStream's encryption key.
func (l Layout) StoreKey() string { return filepath.Join(l.Dir, "keys", "jetstream.key") }

// Config says where and for which hosts Ensure works.
type Config struct {
	// Dir is the secrets directory. Required.
	Dir string
	// Hosts are the DNS names and IP addresses the core and edge
	// certificates are valid for; localhost, 127.0.0.1 and ::1 are always
	// added (processes dial themselves and their neighbours on loopback).
	Hosts []string
	// CAValidity is the CA's lifetime. Default 10 years.
	CAValidity time.Duration
	// CertValidity is the lifetime of the other certificates. Default 397
	// days (what browsers accept for a server certificate).
	CertValidity time.Duration
	// RenewBefore renews a certificate that expires sooner than this.
	// Default 30 days.
	RenewBefore time.Duration
	// Now is the clock (tests). Default time.Now.
	Now func() time.Time
}

// Defaults fills zero fields and adds the loopback names to Hosts.
func (c *Config) Defaults() {
	if c.CAValidity == 0 {
		c.CAValidity = 10 * 365 * 24 * time.Hour
	}
	if c.CertValidity == 0 {
		c.CertValidity = 397 * 24 * time.Hour
	}
	if c.RenewBefore == 0 {
		c.RenewBefore = 30 * 24 * time.Hour
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	hosts := []string{"localhost", "127.0.0.1", "::1"}
	for _, h := range c.Hosts {
		if h = strings.TrimSpace(h); h != "" && !slices.Contains(hosts, h) {
			hosts = append(hosts, h)
		}
	}
	c.Hosts = hosts
}

// Validate checks the config.
func (c *Config) Validate() error {
	if c.Dir == "" {
		return errors.New("devpki: a directory is required")
	}
	for _, h := range c.Hosts {
		if strings.ContainsAny(h, " /:") && net.ParseIP(h) == nil {
			return fmt.Errorf("devpki: host %q is neither a DNS name nor an IP address", h)
		}
	}
	if c.RenewBefore >= c.CertValidity || c.RenewBefore >= c.CAValidity {
		return errors.New("devpki: certificates must be valid for longer than the renewal window")
	}
	return nil
}

// Result says what Ensure did.
type Result struct {
	Layout Layout
	// Written lists the files created or renewed; the others were kept.
	Written []string
}

// Ensure makes every file of the layout that is missing, and renews the
// certificates that are expiring, not signed by the CA on disk, or not
// valid for every host in c. A new CA (none on disk, or the one there
// expiring) reissues every certificate. Existing seeds and the store key
// are never replaced: losing them would lock users out and data away.
func Ensure(c Config) (Result, error) {
	c.Defaults()
	if err := c.Validate(); err != nil {
		return Result{}, err
	}
	l := Layout{Dir: c.Dir}
	res := Result{Layout: l}
	if err := mkdirs(l); err != nil {
		return res, err
	}
	now := c.Now()
	ca, caKey, err := loadCA(l, now.Add(c.RenewBefore))
	if err != nil {
		return res, err
	}
	if ca == nil {
		if ca, caKey, err = newCA(now, c.CAValidity); err != nil {
			return res, err
		}
		if err := writeKeyPair(l.CA(), l.CAKey(), ca.Raw, caKey); err != nil {
			return res, err
		}
		res.Written = append(res.Written, l.CA(), l.CAKey())
	}
	for _, r := range Roles {
		f := l.TLS(r)
		if certCurrent(f, ca, r, c.Hosts, now.Add(c.RenewBefore)) {
			continue
		}
		der, key, err := issue(ca, caKey, r, c.Hosts, now, c.CertValidity)
		if err != nil {
			return res, err
		}
		if err := writeKeyPair(f.Cert, f.Key, der, key); err != nil {
			return res, err
		}
		res.Written = append(res.Written, f.Cert, f.Key)
	}
	for _, u := range Users {
		written, err := ensureSeed(l, u)
		if err != nil {
			return res, err
		}
		res.Written = append(res.Written, written...)
	}
	if _, err := os.Stat(l.StoreKey()); errors.Is(err, os.ErrNotExist) {
		b := make([]byte, 32)
		if _, err := rand.Read(b); err != nil {
			return res, err
		}
		if err := writeFile(l.StoreKey(), []byte(base64.StdEncoding.EncodeToString(b)+"\n"), 0o600); err != nil {
			return res, err
		}
		res.Written = append(res.Written, l.StoreKey())
	} else if err != nil {
		return res, fmt.Errorf("devpki: %w", err)
	}
	return res, nil
}

// ReadSecret reads a key or seed file: its content without surrounding
// white space, which must not be empty.
func ReadSecret(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "", fmt.Errorf("%s is empty", path)
	}
	return s, nil
}

// loadCA reads the CA; nil (and no error) when there is none or it expires
// before renewBy, so a new one is made.
func loadCA(l Layout, renewBy time.Time) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	certPEM, cerr := os.ReadFile(l.CA())
	keyPEM, kerr := os.ReadFile(l.CAKey())
	switch {
	case errors.Is(cerr, os.ErrNotExist) && errors.Is(kerr, os.ErrNotExist):
		return nil, nil, nil
	case cerr != nil:
		return nil, nil, fmt.Errorf("devpki: CA: %w", cerr)
	case kerr != nil:
		return nil, nil, fmt.Errorf("devpki: the CA's key: %w (without it no certificate can be issued; remove %s to start a new CA)", kerr, l.CA())
	}
	cert, err := parseCert(certPEM)
	if err != nil {
		return nil, nil, fmt.Errorf("devpki: %s: %w", l.CA(), err)
	}
	key, err := parseKey(keyPEM)
	if err != nil {
		return nil, nil, fmt.Errorf("devpki: %s: %w", l.CAKey(), err)
	}
	if !key.PublicKey.Equal(cert.PublicKey) {
		return nil, nil, fmt.Errorf("devpki: %s is not the key of %s", l.CAKey(), l.CA())
	}
	if !cert.IsCA || cert.NotAfter.Before(renewBy) {
		return nil, nil, nil
	}
	return cert, key, nil
}

func newCA(now time.Time, validity time.Duration) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{Organization: []string{"ticketing development"}, CommonName: "ticketing development CA " + now.UTC().Format("2006-01-02")},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(validity),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("devpki: CA: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	return cert, key, err
}

// issue signs a certificate of role r.
func issue(ca *x509.Certificate, caKey *ecdsa.PrivateKey, r Role, hosts []string, now time.Time, validity time.Duration) ([]byte, *ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{Organization: []string{"ticketing development"}, CommonName: "ticketing " + string(r)},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(validity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if r != Client {
		tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, x509.ExtKeyUsageServerAuth)
		for _, h := range hosts {
			if ip := net.ParseIP(h); ip != nil {
				tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
			} else {
				tmpl.DNSNames = append(tmpl.DNSNames, h)
			}
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return nil, nil, fmt.Errorf("devpki: %s certificate: %w", r, err)
	}
	return der, key, nil
}

// certCurrent reports whether f holds a certificate of role r, with its
// key, signed by ca, valid past renewBy and (server roles) for every host.
func certCurrent(f tlsconf.Files, ca *x509.Certificate, r Role, hosts []string, renewBy time.Time) bool {
	certPEM, err := os.ReadFile(f.Cert)
	if err != nil {
		return false
	}
	keyPEM, err := os.ReadFile(f.Key)
	if err != nil {
		return false
	}
	cert, err := parseCert(certPEM)
	if err != nil {
		return false
	}
	key, err := parseKey(keyPEM)
	if err != nil || !key.PublicKey.Equal(cert.PublicKey) {
		return false
	}
	if cert.CheckSignatureFrom(ca) != nil || cert.NotAfter.Before(renewBy) {
		return false
	}
	if r == Client {
		return true
	}
	for _, h := range hosts {
		if cert.VerifyHostname(h) != nil {
			return false
		}
	}
	return true
}

// ensureSeed makes a user's seed when it has none, and (re)writes its
// public key from the seed.
func ensureSeed(l Layout, user string) ([]string, error) {
	var written []string
	seed, err := ReadSecret(l.Seed(user))
	if errors.Is(err, os.ErrNotExist) {
		kp, err := nkeys.CreateUser()
		if err != nil {
			return nil, err
		}
		b, err := kp.Seed()
		if err != nil {
			return nil, err
		}
		if err := writeFile(l.Seed(user), append(b, '\n'), 0o600); err != nil {
			return nil, err
		}
		written = append(written, l.Seed(user))
		seed = string(b)
	} else if err != nil {
		return nil, fmt.Errorf("devpki: %w", err)
	}
	kp, err := nkeys.FromSeed([]byte(seed))
	if err != nil {
		return nil, fmt.Errorf("devpki: %s: %w", l.Seed(user), err)
	}
	pub, err := kp.PublicKey()
	if err != nil {
		return nil, err
	}
	if old, err := os.ReadFile(l.PublicKey(user)); err != nil || strings.TrimSpace(string(old)) != pub {
		if err := writeFile(l.PublicKey(user), []byte(pub+"\n"), 0o644); err != nil {
			return nil, err
		}
		written = append(written, l.PublicKey(user))
	}
	return written, nil
}

func writeKeyPair(certPath, keyPath string, der []byte, key *ecdsa.PrivateKey) error {
	k, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	if err := writeFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: k}), 0o600); err != nil {
		return err
	}
	return writeFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
}

// mkdirs makes l's folders. tls/ can be searched by anyone, so that a
// process of another user (Prometheus checking /metrics) reads the CA; the
// keys in it are 0600.
func mkdirs(l Layout) error {
	for sub, perm := range map[string]os.FileMode{"tls": 0o755, "nkeys": 0o700, "keys": 0o700} {
		if err := os.MkdirAll(filepath.Join(l.Dir, sub), perm); err != nil {
			return fmt.Errorf("devpki: %w", err)
		}
	}
	return nil
}

// writeFile writes atomically: a temporary file in the same folder,
// synced, renamed over path.
func writeFile(path string, b []byte, perm os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("devpki: %w", err)
	}
	defer os.Remove(tmp.Name())
	err = tmp.Chmod(perm)
	if err == nil {
		_, err = tmp.Write(b)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("devpki: writing %s: %w", path, err)
	}
	return nil
}

func parseCert(b []byte) (*x509.Certificate, error) {
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "CERTIFICATE" {
		return nil, errors.New("no PEM certificate")
	}
	return x509.ParseCertificate(blk.Bytes)
}

func parseKey(b []byte) (*ecdsa.PrivateKey, error) {
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, errors.New("no PEM key")
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, err
	}
	ek, ok := k.(*ecdsa.PrivateKey)
	if !ok {
		return nil, errors.New("not an ECDSA key")
	}
	return ek, nil
}

func serial() *big.Int {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[0] &= 0x7f
	return new(big.Int).SetBytes(bytes.TrimLeft(b, "\x00"))
}
