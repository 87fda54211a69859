// Package node runs a core region's embedded nats-server: JetStream in the
// "core" domain with every write synced, the accounts of conf/nats/core.conf,
// the leaf-node listener edges attach to, and, when peers are given, a
// cluster with them (R3 streams).
//
// Secured (what `ticketing core` and `ticketing dev` run), every listener
// speaks TLS and requires a certificate of the deployment's CA (Config.TLS),
// users authenticate by nkey (Config.Credentials.NKeys) and the JetStream
// store is encrypted (Config.Store). Left zero, the node runs in plaintext
// with the conf file's passwords, which package tests rely on.
package node

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/ticketing/ticketing/conf"
	"github.com/ticketing/ticketing/internal/jsnames"
	"github.com/ticketing/ticketing/internal/natsembed"
	"github.com/ticketing/ticketing/internal/tlsconf"
	"github.com/ticketing/ticketing/leafnodes"
)

// Config configures a core node's server. Empty fields keep the conf file's
// values; see Defaults.
type Config struct {
	Name       string // server name, unique in the cluster
	ConfigFile string // NATS conf; empty means the embedded conf/nats/core.conf
	DataDir    string // the JetStream store is DataDir/jetstream
	ClientAddr string // client listener, "host:port"; port 0 picks one; "-" none
	LeafAddr   string // leaf-node listener for edges
	// ClusterAddr and Routes make a cluster: Routes lists every node's
	// cluster address ("nats-route://host:6222"), this node's included.
	// Without Routes the node runs alone and the cluster block is dropped.
	ClusterAddr string
	Routes      []string
	MonitorAddr string // HTTP monitoring ("host:port"); empty: none
	Credentials leafnodes.Credentials
	// CoreSeed is user core's nkey seed, which the node's own connections
	// (Connect) authenticate with. When set and Credentials.NKeys.Core is
	// empty, the public key is taken from it.
	CoreSeed string
	// TLS, when set, puts every listener behind TLS and requires of every
	// peer a certificate TLS.CA signed: NATS clients, leaf nodes (edges),
	// cluster routes and gateways (mutual TLS); monitoring (MonitorAddr)
	// serves HTTPS without client certificates. Routes and gateways dial
	// with the same certificate, so it must allow client and server
	// authentication and name the addresses peers dial. Zero: plaintext.
	TLS tlsconf.Files
	// Store encrypts the JetStream store. Zero: not encrypted.
	Store StoreEncryption
}

// StoreEncryption is nats-server's encryption at rest: every file of the
// JetStream store (streams, key-value buckets, object stores, the
// cluster's Raft logs) is encrypted with a key derived from Key.
type StoreEncryption struct {
	// Key is the secret; empty means no encryption. It comes from a file
	// or the environment, never from a conf file in the repository.
	Key string
	// Cipher is "aes" (AES-256-GCM, the default; fast with AES-NI) or
	// "chachapoly" (ChaCha20-Poly1305).
	Cipher string
}

// Ciphers are the values StoreEncryption.Cipher accepts.
var Ciphers = map[string]server.StoreCipher{"aes": server.AES, "chachapoly": server.ChaCha}

// Defaults fills empty fields for a single node in dataDir.
func (c *Config) Defaults() {
	if c.Name == "" {
		c.Name = "core-1"
	}
	if c.Store.Key != "" && c.Store.Cipher == "" {
		c.Store.Cipher = "aes"
	}
	if c.CoreSeed != "" && c.Credentials.NKeys.Core == "" {
		c.Credentials.NKeys.Core, _ = leafnodes.PublicKey(c.CoreSeed)
	}
}

// Validate checks the config.
func (c *Config) Validate() error {
	if c.Name == "" {
		return errors.New("node: a name is required")
	}
	if c.DataDir == "" {
		return errors.New("node: a data directory is required")
	}
	for _, a := range []string{c.ClientAddr, c.LeafAddr, c.ClusterAddr, c.MonitorAddr} {
		if a != "" && a != "-" {
			if _, _, err := leafnodes.SplitHostPort(a); err != nil {
				return fmt.Errorf("node: address %q: %w", a, err)
			}
		}
	}
	for _, r := range c.Routes {
		if u, err := url.Parse(r); err != nil || u.Host == "" {
			return fmt.Errorf("node: route %q is not a URL with a host", r)
		}
	}
	if c.CoreSeed != "" {
		pub, err := leafnodes.PublicKey(c.CoreSeed)
		if err != nil {
			return fmt.Errorf("node: user core's seed: %w", err)
		}
		if pub != c.Credentials.NKeys.Core {
			return errors.New("node: user core's seed does not belong to its public nkey")
		}
	} else if c.Credentials.NKeys.Core != "" {
		return errors.New("node: user core has an nkey: its seed is required for the node's own connections")
	}
	if _, ok := Ciphers[c.Store.Cipher]; c.Store.Key != "" && !ok {
		return fmt.Errorf("node: store cipher %q: want aes or chachapoly", c.Store.Cipher)
	}
	if !c.TLS.IsZero() && (c.TLS.Cert == "" || c.TLS.CA == "") {
		return errors.New("node: TLS needs a certificate, its key and the CA")
	}
	return c.TLS.Validate()
}

// Options builds the server options: the conf file, overridden by c.
func (c Config) Options() (*server.Options, error) {
	c.Defaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	opts, err := natsembed.LoadOptions(c.ConfigFile, conf.Files, "nats/core.conf")
	if err != nil {
		return nil, err
	}
	opts.ServerName = c.Name
	opts.JetStream = true
	opts.JetStreamDomain = jsnames.Domain
	opts.StoreDir = c.DataDir // nats-server adds "jetstream"
	if err := c.Credentials.Apply(opts); err != nil {
		return nil, err
	}
	switch c.ClientAddr {
	case "":
	case "-":
		opts.DontListen = true
	default:
		opts.Host, opts.Port, _ = leafnodes.SplitHostPort(c.ClientAddr)
	}
	if c.LeafAddr != "" {
		opts.LeafNode.Host, opts.LeafNode.Port, _ = leafnodes.SplitHostPort(c.LeafAddr)
	}
	if c.MonitorAddr != "" {
		opts.HTTPHost, opts.HTTPPort, _ = leafnodes.SplitHostPort(c.MonitorAddr)
	}
	if len(c.Routes) == 0 {
		opts.Cluster = server.ClusterOpts{}
	} else {
		if c.ClusterAddr != "" {
			opts.Cluster.Host, opts.Cluster.Port, _ = leafnodes.SplitHostPort(c.ClusterAddr)
		}
		opts.Routes = nil
		for _, r := range c.Routes {
			u, _ := url.Parse(r)
			opts.Routes = append(opts.Routes, u)
		}
	}
	if c.Store.Key != "" {
		opts.JetStreamKey = c.Store.Key
		opts.JetStreamCipher = Ciphers[c.Store.Cipher]
	}
	if !c.TLS.IsZero() {
		if err := secureListeners(opts, c.TLS); err != nil {
			return nil, err
		}
	}
	return opts, nil
}

// secureListeners puts every listener of opts behind TLS with f: mutual
// TLS for clients, leaf nodes, routes and gateways, HTTPS for monitoring.
func secureListeners(opts *server.Options, f tlsconf.Files) error {
	peer, err := tlsconf.Peer(f)
	if err != nil {
		return fmt.Errorf("node: %w", err)
	}
	timeout := leafnodes.TLSTimeout.Seconds()
	opts.TLSConfig, opts.TLSVerify, opts.TLSTimeout = peer.Clone(), true, timeout
	opts.LeafNode.TLSConfig, opts.LeafNode.TLSTimeout = peer.Clone(), timeout
	// One config accepts routes and dials them (and gateways alike).
	opts.Cluster.TLSConfig, opts.Cluster.TLSTimeout = peer.Clone(), timeout
	// Over TLS nats-server writes each of a connection's output buffers
	// (512 bytes to 64 KiB, a few small messages each) as a record and a
	// write of its own, unless the link is compressed, which collapses
	// them into one: routes negotiate s2_auto (framed only, below 10 ms
	// of round trip) unless the conf file chose.
	if opts.Cluster.Compression.Mode == "" {
		opts.Cluster.Compression.Mode = server.CompressionS2Auto
	}
	opts.Gateway.TLSConfig, opts.Gateway.TLSTimeout = peer.Clone(), timeout
	if opts.HTTPPort != 0 {
		opts.HTTPSPort, opts.HTTPPort = opts.HTTPPort, 0
	}
	return nil
}

// Node is a running core server.
type Node struct {
	Server *server.Server
	cfg    Config
	opts   *server.Options
}

// Start starts the server and waits until JetStream is ready (in a cluster:
// until a meta leader is elected), or ctx is done.
//
// With Store.Key it refuses a store encrypted with another key, and
// without one a store that was encrypted: nats-server would skip the
// streams it cannot decrypt, and the core would create them anew, empty,
// over the old files. A check value of the key (an HMAC, not the key) is
// kept beside the store for that.
func Start(ctx context.Context, c Config, log *slog.Logger) (*Node, error) {
	opts, err := c.Options()
	if err != nil {
		return nil, err
	}
	c.Defaults()
	if err := checkStoreKey(c.DataDir, c.Store.Key); err != nil {
		return nil, err
	}
	s, err := natsembed.Start(opts, log, 10*time.Second)
	if err != nil {
		return nil, err
	}
	if err := natsembed.WaitJetStream(ctx, s); err != nil {
		s.Shutdown()
		return nil, err
	}
	if err := writeStoreKeyCheck(c.DataDir, c.Store.Key); err != nil {
		s.Shutdown()
		return nil, err
	}
	return &Node{Server: s, cfg: c, opts: opts}, nil
}

// Clustered reports whether the node runs in a cluster (streams use R3).
func (n *Node) Clustered() bool { return len(n.cfg.Routes) > 0 }

// Connect opens a client connection of this process as the core user:
// over the client listener when the node has one in plaintext, over
// nats-server's in-process pipe when it requires TLS or there is none
// (natsembed.Connect), with user core's nkey seed when the node has one,
// its password otherwise.
func (n *Node) Connect(name string, extra ...nats.Option) (*nats.Conn, error) {
	opts, err := n.connectOptions(name, extra)
	if err != nil {
		return nil, err
	}
	return natsembed.Connect(n.Server, opts...)
}

// ConnectSocket is Connect over the node's client listener whenever it has
// one, also when it requires TLS: then with the node's own certificate
// (mutual TLS, as for any client) and only to this node (servers the
// cluster announces are ignored). Without a listener it is Connect.
//
// The owners' log writes take it (core.Start). The in-process pipe hands
// each flush straight to the goroutine on the other side, so a log
// write's acknowledgement is back as soon as its fsync is done, ahead of
// every goroutine waiting on the network; with the CPU saturated an owner
// then writes batches of 7–13 decisions where over a socket (as in
// plaintext) they are 23–49, and each decision pays a larger share of a
// synced write and its relay. Secured, through the edge's HTTPS API
// (ticketing bench holds --via-http, runs alternated): 94 against 70 µs of
// system CPU a hold, 0.65 against 0.97 of the same run's plaintext holds
// a second; over NATS 0.92 against 1.04.
func (n *Node) ConnectSocket(name string, extra ...nats.Option) (*nats.Conn, error) {
	if n.Server.Addr() == nil {
		return n.Connect(name, extra...)
	}
	opts, err := n.connectOptions(name, extra)
	if err != nil {
		return nil, err
	}
	u, err := url.Parse(n.Server.ClientURL())
	if err != nil {
		return nil, fmt.Errorf("node: client URL: %w", err)
	}
	host, port, _ := net.SplitHostPort(u.Host)
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
		if ip.To4() == nil {
			host = "::1"
		}
		u.Host = net.JoinHostPort(host, port)
	}
	opts = append(opts, nats.IgnoreDiscoveredServers())
	if !n.cfg.TLS.IsZero() {
		c, err := tlsconf.Client(n.cfg.TLS)
		if err != nil {
			return nil, fmt.Errorf("node: %w", err)
		}
		c.ServerName = selfServerName(c.Certificates[0].Leaf, host)
		opts = append(opts, nats.Secure(c))
	}
	return nats.Connect(u.String(), opts...)
}

// selfServerName is the name to check the node's own certificate for when
// it dials its listener at host: host when the certificate is valid for
// it, else the certificate's first name (a deployment's certificate need
// not name the loopback address).
func selfServerName(leaf *x509.Certificate, host string) string {
	switch {
	case leaf == nil || leaf.VerifyHostname(host) == nil:
		return host
	case len(leaf.DNSNames) > 0:
		return leaf.DNSNames[0]
	case len(leaf.IPAddresses) > 0:
		return leaf.IPAddresses[0].String()
	}
	return host
}

func (n *Node) connectOptions(name string, extra []nats.Option) ([]nats.Option, error) {
	auth := nats.UserInfo(n.CoreCredentials())
	if n.cfg.CoreSeed != "" {
		var err error
		if auth, err = leafnodes.NKeyAuth(n.cfg.CoreSeed); err != nil {
			return nil, err
		}
	}
	return append([]nats.Option{nats.Name(name), auth, nats.MaxReconnects(-1)}, extra...), nil
}

// CoreCredentials are the user and password core processes connect with
// when user core has no nkey (the password is empty when it has one).
func (n *Node) CoreCredentials() (string, string) {
	for _, u := range n.opts.Users {
		if u.Username == leafnodes.CoreUser {
			return u.Username, u.Password
		}
	}
	return leafnodes.CoreUser, ""
}

// ClientURL is the client listener's URL, or "" when it does not listen.
func (n *Node) ClientURL() string {
	if n.opts.DontListen {
		return ""
	}
	return n.Server.ClientURL()
}

// LeafURL is the URL edges dial, e.g. "nats-leaf://127.0.0.1:7422".
func (n *Node) LeafURL() string {
	// NewServer keeps our options and writes a random port back into them
	// before the server reports ready.
	if n.opts.LeafNode.Port == 0 {
		return ""
	}
	return fmt.Sprintf("nats-leaf://%s", net.JoinHostPort(n.opts.LeafNode.Host, strconv.Itoa(n.opts.LeafNode.Port)))
}

// Shutdown stops the server, waiting at most until ctx is done.
func (n *Node) Shutdown(ctx context.Context) { natsembed.Shutdown(ctx, n.Server) }
