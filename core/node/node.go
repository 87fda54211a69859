// Package node runs a core region's embedded nats-server: JetStream in the
// "core" domain with every write synced, the accounts of conf/nats/core.conf,
// the leaf-node listener edges attach to, and, when peers are given, a
// cluster with them (R3 streams).
package node

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

	"github.com/ticketing/ticketing/conf"
	"github.com/ticketing/ticketing/internal/jsnames"
	"github.com/ticketing/ticketing/internal/natsembed"
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
}

// Defaults fills empty fields for a single node in dataDir.
func (c *Config) Defaults() {
	if c.Name == "" {
		c.Name = "core-1"
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
	return nil
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
	return opts, nil
}

// Node is a running core server.
type Node struct {
	Server *server.Server
	cfg    Config
	opts   *server.Options
}

// Start starts the server and waits until JetStream is ready (in a cluster:
// until a meta leader is elected), or ctx is done.
func Start(ctx context.Context, c Config, log *slog.Logger) (*Node, error) {
	opts, err := c.Options()
	if err != nil {
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
	return &Node{Server: s, cfg: c, opts: opts}, nil
}

// Clustered reports whether the node runs in a cluster (streams use R3).
func (n *Node) Clustered() bool { return len(n.cfg.Routes) > 0 }

// Connect opens a client connection of this process as the core user:
// over the client listener when the node has one, in-process otherwise
// (natsembed.Connect).
func (n *Node) Connect(name string, extra ...nats.Option) (*nats.Conn, error) {
	user, pass := n.CoreCredentials()
	opts := append([]nats.Option{nats.Name(name), nats.UserInfo(user, pass), nats.MaxReconnects(-1)}, extra...)
	return natsembed.Connect(n.Server, opts...)
}

// CoreCredentials are the user and password core processes connect with.
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
