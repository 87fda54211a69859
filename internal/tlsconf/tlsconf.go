// Package tlsconf builds the crypto/tls configurations of the platform from
// PEM files: a certificate, its private key and the CA that signs every
// peer. One private CA vouches for every process (internal/devpki makes one
// for development), so servers that face other processes require a client
// certificate signed by it (mutual TLS), servers that face browsers do not,
// and clients trust that CA alone, not the system's roots.
package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
)

// Files names the PEM files of one identity. The zero value means "no TLS".
type Files struct {
	Cert string // certificate (chain), PEM
	Key  string // its private key, PEM
	CA   string // the CA certificate(s) peers must be signed by, PEM
}

// IsZero reports whether no file is named: TLS is off.
func (f Files) IsZero() bool { return f == Files{} }

// Validate checks that a certificate comes with its key and the reverse.
func (f Files) Validate() error {
	if (f.Cert == "") != (f.Key == "") {
		return fmt.Errorf("tlsconf: a certificate needs its key and a key its certificate (cert %q, key %q)", f.Cert, f.Key)
	}
	return nil
}

// MinVersion is the oldest protocol version any configuration accepts.
const MinVersion = tls.VersionTLS12

// Server is the configuration of a listener presenting f's certificate.
// With mutual, it requires of every client a certificate that f's CA
// signed (for listeners other processes dial: NATS clients and leaf
// nodes); without it, clients present none (HTTP for browsers, metrics).
func Server(f Files, mutual bool) (*tls.Config, error) {
	if err := f.Validate(); err != nil {
		return nil, err
	}
	if f.Cert == "" {
		return nil, errors.New("tlsconf: a server needs a certificate and key")
	}
	cert, err := loadCert(f)
	if err != nil {
		return nil, err
	}
	c := &tls.Config{MinVersion: MinVersion, Certificates: []tls.Certificate{cert}}
	if mutual {
		pool, err := loadPool(f)
		if err != nil {
			return nil, err
		}
		c.ClientCAs = pool
		c.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return c, nil
}

// Client is the configuration of a client that trusts only servers f's CA
// signed, presenting f's certificate when f names one.
func Client(f Files) (*tls.Config, error) {
	if err := f.Validate(); err != nil {
		return nil, err
	}
	pool, err := loadPool(f)
	if err != nil {
		return nil, err
	}
	c := &tls.Config{MinVersion: MinVersion, RootCAs: pool}
	if f.Cert != "" {
		cert, err := loadCert(f)
		if err != nil {
			return nil, err
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return c, nil
}

// Peer is one configuration for links that both accept and dial with the
// same certificate, both ways checked against f's CA: NATS cluster routes,
// gateways, and a server that dials itself. f's certificate must allow
// server and client authentication.
func Peer(f Files) (*tls.Config, error) {
	c, err := Server(f, true)
	if err != nil {
		return nil, err
	}
	c.RootCAs = c.ClientCAs
	return c, nil
}

func loadCert(f Files) (tls.Certificate, error) {
	cert, err := tls.LoadX509KeyPair(f.Cert, f.Key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("tlsconf: certificate %s with key %s: %w", f.Cert, f.Key, err)
	}
	// LoadX509KeyPair fills Leaf since Go 1.23.
	if cert.Leaf == nil {
		if cert.Leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return tls.Certificate{}, fmt.Errorf("tlsconf: certificate %s: %w", f.Cert, err)
		}
	}
	return cert, nil
}

func loadPool(f Files) (*x509.CertPool, error) {
	if f.CA == "" {
		return nil, errors.New("tlsconf: a CA file is required to check peers")
	}
	b, err := os.ReadFile(f.CA)
	if err != nil {
		return nil, fmt.Errorf("tlsconf: CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("tlsconf: CA %s holds no PEM certificate", f.CA)
	}
	return pool, nil
}
