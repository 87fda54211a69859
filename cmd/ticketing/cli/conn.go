package cli

import (
	"flag"

	"github.com/nats-io/nats.go"
)

// CoreConnFlags are the flags of a process that connects to the core as a
// NATS client: over mutual TLS as user core by nkey (sec, with the core
// role's certificate, which also serves the process's ops listener), or
// with --insecure in plaintext by password.
type CoreConnFlags struct {
	url, user, password *string
	sec                 *SecurityFlags
}

// AddCoreConnFlags adds the flags of a client of the core; sec are the
// process's security flags.
func AddCoreConnFlags(fs *flag.FlagSet, sec *SecurityFlags) CoreConnFlags {
	return CoreConnFlags{
		url:      fs.String("nats", "nats://127.0.0.1:4222", "core NATS URLs (comma-separated)"),
		user:     fs.String("nats-user", "core", "core NATS user (--insecure)"),
		password: fs.String("nats-core-password", "core-dev-password", "core NATS password (--insecure; the core's --nats-core-password)"),
		sec:      sec,
	}
}

// Connect connects as a client named name, reconnecting forever, with opts
// added. The security flags must have been loaded (SecurityFlags.Load).
func (f CoreConnFlags) Connect(name string, opts ...nats.Option) (*nats.Conn, error) {
	auth, err := f.sec.ClientOptions(*f.user, *f.password)
	if err != nil {
		return nil, err
	}
	return nats.Connect(*f.url, append(append([]nats.Option{nats.Name(name), nats.MaxReconnects(-1)}, auth...), opts...)...)
}

// URL is the core's NATS URLs, comma-separated.
func (f CoreConnFlags) URL() string { return *f.url }

// Security are the security flags the connection uses.
func (f CoreConnFlags) Security() *SecurityFlags { return f.sec }
