package cli

import (
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"

	"github.com/nats-io/nats.go"

	"github.com/ticketing/ticketing/core/node"
	"github.com/ticketing/ticketing/edge"
	"github.com/ticketing/ticketing/internal/devpki"
	"github.com/ticketing/ticketing/internal/tlsconf"
	"github.com/ticketing/ticketing/leafnodes"
)

// SecurityFlags say how a process secures its links and its store: the
// files of a secrets directory (internal/devpki's layout, made by `ticketing
// certs`), flags naming other files, or --insecure. Processes refuse to
// start in plaintext unless told --insecure.
type SecurityFlags struct {
	role     devpki.Role
	user     string // the NATS user the process signs in as
	secrets  *string
	insecure *bool
	cert     *string
	key      *string
	ca       *string
	seed     *string
	// A core's only: the users' public keys and the store's key.
	coreNKey, edgeNKey, sysNKey *string
	storeKey, storeKeyFile      *string
	cipher                      *string

	loaded *Security
}

// Security is what SecurityFlags resolved to.
type Security struct {
	insecure bool
	layout   devpki.Layout
	tls      tlsconf.Files
	seed     string             // the process's user's nkey seed
	nkeys    leafnodes.UserKeys // a core's
	store    node.StoreEncryption
	ops      *tls.Config // the ops listener's: no client certificates
}

// AddSecurityFlags adds the flags of a process with certificate role
// signing in as NATS user user; secrets is the default secrets directory
// ("" for dev: its data directory); core adds the users' public keys and
// the JetStream key.
func AddSecurityFlags(fs *flag.FlagSet, role devpki.Role, user, secrets string, core bool) *SecurityFlags {
	l := devpki.Layout{Dir: "<secrets>"}
	f := l.TLS(role)
	s := &SecurityFlags{role: role, user: user,
		secrets:  fs.String("secrets", secrets, "directory of the TLS certificates, NATS nkeys and JetStream key (ticketing certs --dir makes one)"),
		insecure: fs.Bool("insecure", false, "no TLS, NATS users by password, no store encryption: tests and debugging only"),
		cert:     fs.String("tls-cert", "", "TLS certificate (default "+f.Cert+")"),
		key:      fs.String("tls-key", "", "its private key (default "+f.Key+")"),
		ca:       fs.String("tls-ca", "", "CA certificate every peer must be signed by (default "+f.CA+")"),
		seed:     fs.String("nkey", "", "nkey seed file of NATS user "+user+" (default "+l.Seed(user)+")"),
	}
	if secrets == "" {
		fs.Lookup("secrets").Usage += " (default: the data directory, made on first start)"
	}
	if core {
		s.coreNKey = fs.String("nats-core-nkey", "", "public nkey of NATS user core (default: "+l.PublicKey("core")+")")
		s.edgeNKey = fs.String("nats-edge-nkey", "", "public nkey of NATS user edge (default: "+l.PublicKey("edge")+")")
		s.sysNKey = fs.String("nats-sys-nkey", "", "public nkey of NATS user sys (default: "+l.PublicKey("sys")+")")
		s.storeKey = fs.String("jetstream-key", "", "JetStream encryption key; give it as TICKETING_JETSTREAM_KEY rather than on the command line (default: read from --jetstream-key-file)")
		s.storeKeyFile = fs.String("jetstream-key-file", "", "file holding the JetStream encryption key (default "+l.StoreKey()+")")
		s.cipher = fs.String("jetstream-cipher", "aes", "JetStream store cipher: aes, chachapoly, or none (rely on disk encryption)")
	}
	return s
}

// Load resolves the flags once: the secrets directory's files unless
// flags name others, each checked to exist. dataDir is the default
// secrets directory of a process whose --secrets default is empty.
func (s *SecurityFlags) Load(log *slog.Logger, dataDir string) (*Security, error) {
	if s.loaded != nil {
		return s.loaded, nil
	}
	if *s.insecure {
		log.Warn("running insecure (--insecure): plaintext listeners and links, NATS users by password, JetStream store not encrypted")
		s.loaded = &Security{insecure: true}
		return s.loaded, nil
	}
	dir := *s.secrets
	if dir == "" {
		dir = dataDir
	}
	l := devpki.Layout{Dir: dir}
	sec := &Security{layout: l, tls: l.TLS(s.role)}
	pick := func(flag, def string) string {
		if flag != "" {
			return flag
		}
		return def
	}
	sec.tls = tlsconf.Files{Cert: pick(*s.cert, sec.tls.Cert), Key: pick(*s.key, sec.tls.Key), CA: pick(*s.ca, sec.tls.CA)}
	missing := func(err error) error {
		return fmt.Errorf("%w\n  make the development secrets with `ticketing certs --dir %s`, name your own files (--tls-cert, --tls-key, --tls-ca, --nkey, …), or run in plaintext with --insecure", err, dir)
	}
	for _, p := range []string{sec.tls.Cert, sec.tls.Key, sec.tls.CA} {
		if _, err := os.Stat(p); err != nil {
			return nil, missing(err)
		}
	}
	var err error
	if sec.ops, err = tlsconf.Server(sec.tls, false); err != nil {
		return nil, err
	}
	if sec.seed, err = devpki.ReadSecret(pick(*s.seed, l.Seed(s.user))); err != nil {
		return nil, missing(err)
	}
	if _, err := leafnodes.PublicKey(sec.seed); err != nil {
		return nil, err
	}
	if s.coreNKey != nil {
		for _, k := range []struct {
			flag *string
			user string
			to   *string
		}{{s.coreNKey, "core", &sec.nkeys.Core}, {s.edgeNKey, "edge", &sec.nkeys.Edge}, {s.sysNKey, "sys", &sec.nkeys.Sys}} {
			if *k.to = *k.flag; *k.to == "" {
				if *k.to, err = devpki.ReadSecret(l.PublicKey(k.user)); err != nil {
					return nil, missing(err)
				}
			}
		}
		switch *s.cipher {
		case "none":
			log.Warn("JetStream store not encrypted (--jetstream-cipher none): the disk must be")
		default:
			if _, ok := node.Ciphers[*s.cipher]; !ok {
				return nil, fmt.Errorf("--jetstream-cipher %q: want aes, chachapoly or none", *s.cipher)
			}
			sec.store = node.StoreEncryption{Cipher: *s.cipher, Key: *s.storeKey}
			if sec.store.Key == "" {
				if sec.store.Key, err = devpki.ReadSecret(pick(*s.storeKeyFile, l.StoreKey())); err != nil {
					return nil, fmt.Errorf("no JetStream key (TICKETING_JETSTREAM_KEY, --jetstream-key-file): %w", missing(err))
				}
			}
		}
	}
	s.loaded = sec
	return sec, nil
}

// SecureNode returns a core node's config secured; with insecure, as it
// is (the conf file's passwords, or the flags').
func (sec *Security) SecureNode(c node.Config) node.Config {
	if sec.insecure {
		return c
	}
	c.TLS, c.CoreSeed, c.Store = sec.tls, sec.seed, sec.store
	c.Credentials.NKeys = sec.nkeys
	return c
}

// SecureEdge returns an edge's config secured: HTTPS API, mutual TLS leaf
// link and leaf server, user edge's seed; with insecure, as it is.
func (sec *Security) SecureEdge(c edge.Config) edge.Config {
	if sec.insecure {
		return c
	}
	c.HTTPTLS = sec.tls
	c.Leaf.TLS, c.Leaf.Seed = sec.tls, sec.seed
	return c
}

// LoopbackLeafCompression is the compression of a leaf-node link on one
// machine (ticketing dev, the benchmarks): none in plaintext, where even
// s2's framing costs CPU for nothing; s2_auto (framed, uncompressed on
// loopback) over TLS, where nats-server otherwise writes each of its
// output buffers as a record of its own, and framing collapses them into
// one (about 10% less CPU a hold in ticketing bench holds).
func (sec *Security) LoopbackLeafCompression() string {
	if sec.insecure {
		return "off"
	}
	return "s2_auto"
}

// CABanner is `ticketing dev`'s line about TLS.
func (sec *Security) CABanner(api string) string {
	if sec.insecure {
		return "  TLS:          off (--insecure)\n"
	}
	return fmt.Sprintf("  TLS CA:       %s (curl --cacert %s %s/v1/events)\n", sec.layout.CA(), sec.layout.CA(), api)
}

// NATSOptions are the options of a client of the core: TLS with the
// process's certificate and its user's nkey; none when insecure.
func (sec *Security) NATSOptions() ([]nats.Option, error) {
	if sec.insecure {
		return nil, nil
	}
	c, err := tlsconf.Client(sec.tls)
	if err != nil {
		return nil, err
	}
	auth, err := leafnodes.NKeyAuth(sec.seed)
	if err != nil {
		return nil, err
	}
	return []nats.Option{nats.Secure(c), auth}, nil
}

// Loaded is what Load resolved the flags to; nil before.
func (s *SecurityFlags) Loaded() *Security { return s.loaded }

// Insecure is the security of a process run with --insecure: plaintext,
// NATS users by password, the store not encrypted.
func Insecure() *Security { return &Security{insecure: true} }

// IsInsecure reports whether the process runs in plaintext.
func (sec *Security) IsInsecure() bool { return sec.insecure }

// Secrets is the layout of the secrets directory the security comes from.
func (sec *Security) Secrets() devpki.Layout { return sec.layout }

// TLSFiles are the process's certificate, key and CA.
func (sec *Security) TLSFiles() tlsconf.Files { return sec.tls }

// OpsTLS is the TLS config of the ops listener (/metrics, /healthz,
// /readyz): the process's certificate, no client certificates (Prometheus
// and health checks); nil when insecure.
func (sec *Security) OpsTLS() *tls.Config { return sec.ops }

// DevHosts are the names `ticketing dev` makes its certificates for,
// besides localhost: the machine's name and the hosts of its listen
// addresses that are neither loopback nor unspecified.
func DevHosts(addrs ...string) []string {
	var hosts []string
	if h, err := os.Hostname(); err == nil && h != "" {
		hosts = append(hosts, h)
	}
	for _, a := range addrs {
		h, _, err := net.SplitHostPort(a)
		if err != nil || h == "" {
			continue
		}
		if ip := net.ParseIP(h); ip != nil && (ip.IsLoopback() || ip.IsUnspecified()) {
			continue
		}
		hosts = append(hosts, h)
	}
	return hosts
}

// DevSecurityFlags are `ticketing dev`'s: it makes its secrets in its data
// directory on first start (devpki.Ensure) and uses them for the core, the
// edge and the Kafka side.
type DevSecurityFlags struct {
	secrets  *string
	insecure *bool
	cipher   *string
}

func AddDevSecurityFlags(fs *flag.FlagSet) DevSecurityFlags {
	return DevSecurityFlags{
		secrets:  fs.String("secrets", "", "directory of the TLS certificates, NATS nkeys and JetStream key, made on first start (default: the data directory)"),
		insecure: fs.Bool("insecure", false, "no TLS, NATS users by password, no store encryption: tests and debugging only"),
		cipher:   fs.String("jetstream-cipher", "aes", "JetStream store cipher: aes, chachapoly, or none"),
	}
}

// Resolve makes or renews the secrets (for hosts besides localhost) and
// returns the core's and the edge's security.
func (f DevSecurityFlags) Resolve(log *slog.Logger, dataDir string, hosts []string) (core, edge *Security, err error) {
	if *f.insecure {
		log.Warn("running insecure (--insecure): plaintext listeners and links, NATS users by password, JetStream store not encrypted")
		return &Security{insecure: true}, &Security{insecure: true}, nil
	}
	dir := *f.secrets
	if dir == "" {
		dir = dataDir
	}
	return DevSecurity(log, dir, hosts, *f.cipher)
}

// DevSecurity makes or renews the development secrets in dir and returns
// a core's and an edge's security from them, the store encrypted with
// cipher (none: not encrypted).
func DevSecurity(log *slog.Logger, dir string, hosts []string, cipher string) (core, edge *Security, err error) {
	if _, ok := node.Ciphers[cipher]; !ok && cipher != "none" {
		return nil, nil, fmt.Errorf("--jetstream-cipher %q: want aes, chachapoly or none", cipher)
	}
	res, err := devpki.Ensure(devpki.Config{Dir: dir, Hosts: hosts})
	if err != nil {
		return nil, nil, err
	}
	if len(res.Written) > 0 {
		log.Info("development secrets written", "dir", dir, "files", len(res.Written), "ca", res.Layout.CA())
	}
	l := res.Layout
	read := func(path string) string {
		if err == nil {
			var s string
			s, err = devpki.ReadSecret(path)
			return s
		}
		return ""
	}
	core = &Security{layout: l, tls: l.TLS(devpki.Core), seed: read(l.Seed("core")),
		nkeys: leafnodes.UserKeys{Core: read(l.PublicKey("core")), Edge: read(l.PublicKey("edge")), Sys: read(l.PublicKey("sys"))}}
	if cipher == "none" {
		log.Warn("JetStream store not encrypted (--jetstream-cipher none)")
	} else {
		core.store = node.StoreEncryption{Cipher: cipher, Key: read(l.StoreKey())}
	}
	edge = &Security{layout: l, tls: l.TLS(devpki.Edge), seed: read(l.Seed("edge"))}
	return core, edge, err
}

// ClientOptions are the options of a client of the core, once load has
// run: TLS with the process's certificate and its user's nkey, or with
// --insecure the given user and password.
func (s *SecurityFlags) ClientOptions(user, password string) ([]nats.Option, error) {
	if s.loaded == nil {
		return nil, errors.New("the Security flags were not loaded")
	}
	if s.loaded.insecure {
		return []nats.Option{nats.UserInfo(user, password)}, nil
	}
	return s.loaded.NATSOptions()
}

// AddToolConnFlags are the flags of a tool that connects to the core
// (ticketing config): the client certificate, and by default the secrets
// of `make run` (data/dev), whose core listens on the default --nats.
func AddToolConnFlags(fs *flag.FlagSet) CoreConnFlags {
	return AddCoreConnFlags(fs, AddSecurityFlags(fs, devpki.Client, "core", "data/dev", false))
}
