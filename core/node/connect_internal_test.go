package node

import (
	"crypto/x509"
	"net"
	"testing"
)

func TestSelfServerName(t *testing.T) {
	loopback := &x509.Certificate{DNSNames: []string{"localhost", "core-1.example"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1")}}
	named := &x509.Certificate{DNSNames: []string{"core-1.example", "core-2.example"}}
	ipOnly := &x509.Certificate{IPAddresses: []net.IP{net.ParseIP("10.0.0.7")}}
	for _, c := range []struct {
		leaf       *x509.Certificate
		host, want string
	}{
		{loopback, "127.0.0.1", "127.0.0.1"},
		{loopback, "::1", "::1"},
		{named, "127.0.0.1", "core-1.example"},
		{ipOnly, "127.0.0.1", "10.0.0.7"},
		{nil, "127.0.0.1", "127.0.0.1"},
	} {
		if got := selfServerName(c.leaf, c.host); got != c.want {
			t.Errorf("selfServerName(%v, %q) = %q, want %q", c.leaf, c.host, got, c.want)
		}
	}
}
