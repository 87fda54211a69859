package edge

import (
	"crypto/tls"
	"net"

	"github.com/ticketing/ticketing/internal/tlsconf"
)

// listen opens the API's listener: HTTPS with f's certificate (browsers
// present none), or plain HTTP when f is zero. A plain HTTP request to an
// HTTPS listener fails its handshake and the connection is closed.
func listen(addr string, f tlsconf.Files) (net.Listener, error) {
	var conf *tls.Config
	if !f.IsZero() {
		var err error
		if conf, err = tlsconf.Server(f, false); err != nil {
			return nil, err
		}
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil || conf == nil {
		return ln, err
	}
	return httpsListener{tls.NewListener(ln, conf)}, nil
}

// httpsListener marks a TLS listener, for URL.
type httpsListener struct{ net.Listener }

func scheme(ln net.Listener) string {
	if _, ok := ln.(httpsListener); ok {
		return "https"
	}
	return "http"
}
