package tlsconf_test

import (
	"crypto/tls"
	"io"
	"net"
	"testing"

	"github.com/ticketing/ticketing/internal/devpki"
	"github.com/ticketing/ticketing/internal/tlsconf"
)

func pki(t *testing.T) devpki.Layout {
	t.Helper()
	res, err := devpki.Ensure(devpki.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	return res.Layout
}

// exchange runs one connection between a server and a client config and
// reports the client's error: the handshake's, or the first read's (with
// TLS 1.3 a client learns that its certificate was refused only then).
func exchange(t *testing.T, server, client *tls.Config) error {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", server)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		if c.(*tls.Conn).Handshake() == nil {
			_, _ = c.Write([]byte("ok"))
		}
	}()
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c := tls.Client(conn, client)
	defer c.Close()
	if err := c.Handshake(); err != nil {
		return err
	}
	b := make([]byte, 2)
	_, err = io.ReadFull(c, b)
	return err
}

func TestMutualTLS(t *testing.T) {
	l, other := pki(t), pki(t)
	mutual, err := tlsconf.Server(l.TLS(devpki.Core), true)
	if err != nil {
		t.Fatal(err)
	}
	open, err := tlsconf.Server(l.TLS(devpki.Edge), false)
	if err != nil {
		t.Fatal(err)
	}
	client := func(f tlsconf.Files) *tls.Config {
		c, err := tlsconf.Client(f)
		if err != nil {
			t.Fatal(err)
		}
		c.ServerName = "localhost"
		return c
	}
	noCert := client(tlsconf.Files{CA: l.CA()})
	foreign := client(tlsconf.Files{Cert: other.TLS(devpki.Client).Cert, Key: other.TLS(devpki.Client).Key, CA: l.CA()})
	distrusting := client(tlsconf.Files{CA: other.CA()})
	for _, c := range []struct {
		name           string
		server, client *tls.Config
		ok             bool
	}{
		{"client certificate", mutual, client(l.TLS(devpki.Client)), true},
		{"edge certificate", mutual, client(l.TLS(devpki.Edge)), true},
		{"no client certificate", mutual, noCert, false},
		{"certificate of another CA", mutual, foreign, false},
		{"server of another CA", open, distrusting, false},
		{"browser-facing server, no client certificate", open, noCert, true},
	} {
		err := exchange(t, c.server, c.client)
		if (err == nil) != c.ok {
			t.Errorf("%s: error %v, want success %v", c.name, err, c.ok)
		}
	}
}

func TestFilesErrors(t *testing.T) {
	l := pki(t)
	f := l.TLS(devpki.Core)
	if _, err := tlsconf.Server(tlsconf.Files{Cert: f.Cert, CA: f.CA}, true); err == nil {
		t.Error("a certificate without its key")
	}
	if _, err := tlsconf.Server(tlsconf.Files{Cert: f.Cert, Key: f.Key}, true); err == nil {
		t.Error("mutual TLS without a CA")
	}
	if _, err := tlsconf.Client(tlsconf.Files{CA: f.Key}); err == nil {
		t.Error("a CA file without a certificate")
	}
	if _, err := tlsconf.Server(tlsconf.Files{Cert: f.Cert, Key: l.TLS(devpki.Edge).Key}, false); err == nil {
		t.Error("a key of another certificate")
	}
}
