// Package leafnodes owns how edges join the core: the leaf topology (which
// hub URLs an edge dials, where the core listens for leaves), the accounts
// and permissions an edge is given (conf/nats/core.conf: user "edge" may
// publish only the subjects its users need), and the embedded leaf server an
// edge runs.
package leafnodes

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"

	"github.com/ticketing/ticketing/conf"
	"github.com/ticketing/ticketing/internal/natsembed"
	"github.com/ticketing/ticketing/internal/tlsconf"
)

// TLSTimeout bounds a TLS handshake on the NATS links (nats-server's
// default is 2 s; handshakes of many leaf nodes reconnecting at once, on a
// busy host, take longer).
const TLSTimeout = 5 * time.Second

// Account and user names fixed by conf/nats/core.conf.
const (
	AppAccount = "TICKETING"
	SysAccount = "SYS"
	CoreUser   = "core"
	EdgeUser   = "edge"
	SysUser    = "sys"
)

// Credentials say how the accounts' users authenticate: by nkey, each
// process signing the server's nonce with its user's seed, or, as an
// insecure fallback (tests, --insecure), by the passwords of the conf file.
type Credentials struct {
	// Passwords of the users; empty fields keep the conf file's. Ignored
	// for a user that has an nkey.
	Core, Edge, Sys string
	// NKeys are the users' public nkeys. A user with one is given to the
	// server as an nkey user (same account and permissions as in the conf
	// file) and its password is dropped.
	NKeys UserKeys
}

// UserKeys are public nkeys ("U…") of the users; empty: none.
type UserKeys struct {
	Core, Edge, Sys string
}

// IsZero reports whether no user has an nkey.
func (k UserKeys) IsZero() bool { return k == UserKeys{} }

// Apply sets the users' credentials in opts (parsed from core.conf): nkey
// users for those with a key, passwords for the others. It refuses a conf
// without users core and edge, an invalid key, and a user left with
// neither key nor password.
func (c Credentials) Apply(opts *server.Options) error {
	set := map[string]string{CoreUser: c.Core, EdgeUser: c.Edge, SysUser: c.Sys}
	keys := map[string]string{CoreUser: c.NKeys.Core, EdgeUser: c.NKeys.Edge, SysUser: c.NKeys.Sys}
	for name, k := range keys {
		if k != "" && !nkeys.IsValidPublicUserKey(k) {
			return fmt.Errorf("leafnodes: the nkey of user %q is not a public user key", name)
		}
	}
	found := map[string]bool{}
	var users []*server.User
	for _, u := range opts.Users {
		found[u.Username] = true
		if k := keys[u.Username]; k != "" {
			opts.Nkeys = append(opts.Nkeys, &server.NkeyUser{Nkey: k, Permissions: u.Permissions, Account: u.Account,
				AllowedConnectionTypes: u.AllowedConnectionTypes})
			continue
		}
		if p := set[u.Username]; p != "" {
			u.Password = p
		}
		if u.Password == "" {
			return fmt.Errorf("leafnodes: user %q has neither an nkey nor a password", u.Username)
		}
		users = append(users, u)
	}
	opts.Users = users
	for _, name := range []string{CoreUser, EdgeUser} {
		if !found[name] {
			return fmt.Errorf("leafnodes: the core conf has no user %q", name)
		}
	}
	return nil
}

// NKeyAuth is the nats.go option that authenticates a connection by the
// nkey seed ("SU…") of a user.
func NKeyAuth(seed string) (nats.Option, error) {
	kp, err := nkeys.FromSeed([]byte(seed))
	if err != nil {
		return nil, fmt.Errorf("leafnodes: nkey seed: %w", err)
	}
	pub, err := kp.PublicKey()
	if err != nil {
		return nil, fmt.Errorf("leafnodes: nkey seed: %w", err)
	}
	return nats.Nkey(pub, kp.Sign), nil
}

// PublicKey is the public key of an nkey seed.
func PublicKey(seed string) (string, error) {
	kp, err := nkeys.FromSeed([]byte(seed))
	if err != nil {
		return "", fmt.Errorf("leafnodes: nkey seed: %w", err)
	}
	return kp.PublicKey()
}

// SplitHostPort parses a listen address "host:port" for server options.
// Port 0 means "any free port", which nats-server spells -1.
func SplitHostPort(addr string) (string, int, error) {
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("port %q is not a port number", p)
	}
	if port == 0 {
		port = server.RANDOM_PORT
	}
	return h, port, nil
}

// EdgeConfig configures the leaf server an edge embeds.
type EdgeConfig struct {
	// Name is the server name, unique among edges, e.g. "edge-eu-1".
	Name string
	// ConfigFile is a NATS conf for the leaf server; empty means the
	// embedded conf/nats/edge.conf.
	ConfigFile string
	// ClientAddr is where local clients may connect, e.g. for `ticketing
	// bench`; the edge's own connection uses it too when there is one
	// (natsembed.Connect). Empty keeps the conf file's; "-" listens nowhere.
	ClientAddr string
	// Hubs are the core's leaf-node URLs ("nats-leaf://host:7422"). Empty keeps
	// the conf file's.
	Hubs []string
	// Password of user "edge"; empty keeps the conf file's. Ignored when
	// Seed is set.
	Password string
	// Seed is user edge's nkey seed ("SU…"): when set the edge
	// authenticates by it, and the hub URLs carry no password.
	Seed string
	// TLS, when set, dials the hubs over TLS, presenting this certificate
	// (the core's leaf port requires one its CA signed) and trusting only
	// servers that CA signed; the leaf server's own client listener, if
	// any, requires the same of its clients (mutual TLS). Zero: plaintext.
	TLS tlsconf.Files
	// PlainLoopbackClients leaves the leaf server's client listener in
	// plaintext while TLS secures the link to the hubs. Only for a
	// listener on a loopback address: the benchmarks, whose load
	// generator stands in for the edge's own handlers, which reach the
	// leaf server in-process.
	PlainLoopbackClients bool
	// Compression of the leaf-node link: empty keeps the conf file's
	// (nats-server's default, s2_auto: by round-trip time, from framed but
	// uncompressed below 10 ms to s2_best above 100 ms); "off" for a link
	// on the same machine (ticketing dev, the benchmarks), where even the
	// framing costs CPU for nothing.
	Compression string
}

// Validate checks the config.
func (c *EdgeConfig) Validate() error {
	if c.Name == "" {
		return errors.New("leafnodes: edge needs a name")
	}
	for _, h := range c.Hubs {
		u, err := url.Parse(h)
		if err != nil || u.Host == "" {
			return fmt.Errorf("leafnodes: hub URL %q is not a URL with a host", h)
		}
	}
	if c.ClientAddr != "" && c.ClientAddr != "-" {
		if _, _, err := SplitHostPort(c.ClientAddr); err != nil {
			return fmt.Errorf("leafnodes: client address %q: %w", c.ClientAddr, err)
		}
	}
	if c.Seed != "" {
		if _, err := nkeys.FromSeed([]byte(c.Seed)); err != nil {
			return fmt.Errorf("leafnodes: the edge's nkey seed: %w", err)
		}
	}
	if !c.TLS.IsZero() && (c.TLS.Cert == "" || c.TLS.CA == "") {
		return errors.New("leafnodes: the edge's TLS needs a certificate, its key and the CA")
	}
	if c.PlainLoopbackClients && c.ClientAddr != "-" {
		host, _, err := net.SplitHostPort(c.ClientAddr)
		if ip := net.ParseIP(host); err != nil || (host != "localhost" && (ip == nil || !ip.IsLoopback())) {
			return fmt.Errorf("leafnodes: plaintext clients only on a loopback address, not %q", c.ClientAddr)
		}
	}
	return c.TLS.Validate()
}

// EdgeOptions builds the leaf server's options from the conf file and the
// overrides.
func EdgeOptions(c EdgeConfig) (*server.Options, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	opts, err := natsembed.LoadOptions(c.ConfigFile, conf.Files, "nats/edge.conf")
	if err != nil {
		return nil, err
	}
	opts.ServerName = c.Name
	switch c.ClientAddr {
	case "":
	case "-":
		opts.DontListen = true
	default:
		opts.Host, opts.Port, _ = SplitHostPort(c.ClientAddr)
	}
	if len(opts.LeafNode.Remotes) == 0 {
		return nil, errors.New("leafnodes: the edge conf has no leaf remote")
	}
	r := opts.LeafNode.Remotes[0]
	// Credentials: the configured password, else the one in the URL, else
	// the conf file's.
	confUser, confPass := EdgeUser, ""
	for _, u := range r.URLs {
		if u.User != nil {
			confUser = u.User.Username()
			confPass, _ = u.User.Password()
			break
		}
	}
	if len(c.Hubs) > 0 {
		r.URLs = nil
		for _, h := range c.Hubs {
			u, _ := url.Parse(h)
			r.URLs = append(r.URLs, u)
		}
	}
	for _, u := range r.URLs {
		if c.Seed != "" {
			// nats-server sends a URL's user and password along with
			// the nkey's signature: none.
			u.User = nil
			continue
		}
		user, pass := confUser, confPass
		if u.User != nil {
			user = u.User.Username()
			if p, ok := u.User.Password(); ok {
				pass = p
			}
		}
		if c.Password != "" {
			pass = c.Password
		}
		u.User = url.UserPassword(user, pass)
	}
	if c.Seed != "" {
		r.Nkey = c.Seed
	}
	if !c.TLS.IsZero() {
		if r.TLSConfig, err = tlsconf.Client(c.TLS); err != nil {
			return nil, err
		}
		r.TLS = true
		if !c.PlainLoopbackClients {
			if opts.TLSConfig, err = tlsconf.Server(c.TLS, true); err != nil {
				return nil, err
			}
			opts.TLSVerify = true
			opts.TLSTimeout = TLSTimeout.Seconds()
		}
		r.TLSTimeout = TLSTimeout.Seconds()
	}
	if c.Compression != "" {
		r.Compression = server.CompressionOpts{Mode: c.Compression}
	}
	opts.LeafNode.ReconnectInterval = time.Second
	opts.LeafNode.Remotes = []*server.RemoteLeafOpts{r}
	return opts, nil
}

// StartEdge starts an edge's leaf server. It does not wait for the leaf-node
// connection: an edge serves what it can while the core is away.
func StartEdge(c EdgeConfig, log *slog.Logger) (*server.Server, error) {
	opts, err := EdgeOptions(c)
	if err != nil {
		return nil, err
	}
	return natsembed.Start(opts, log, 10*time.Second)
}

// WaitConnected waits until the leaf server has a leaf-node connection to a
// hub, or ctx is done.
func WaitConnected(ctx context.Context, s *server.Server) error {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for s.NumLeafNodes() == 0 {
		select {
		case <-ctx.Done():
			return fmt.Errorf("leafnodes: %s has no hub connection: %w", s.Name(), ctx.Err())
		case <-t.C:
		}
	}
	return nil
}
