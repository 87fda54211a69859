package devpki

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Kit is what one kind of process needs from a secrets directory, and no
// more: a stack without a secret store (Compose) hands each service the
// kit of its kind (Export) instead of the whole directory, so that an edge
// cannot read the core user's seed (and act outside its leaf-node
// permissions), and only `ticketing certs` sees the CA's key.
type Kit string

// The kits. Every kit holds the CA certificate (tls/ca.pem).
const (
	// KitCore: core nodes. The core certificate, user core's seed, every
	// user's public key (the nodes' authorization) and the JetStream key.
	KitCore Kit = "core"
	// KitKafka: the Kafka side (bridge, consume). The core certificate and
	// user core's seed; neither the store key nor the other users' keys.
	KitKafka Kit = "kafka"
	// KitEdge: edges. The edge certificate and user edge's seed.
	KitEdge Kit = "edge"
	// KitClient: tools (the nats CLI, load generators) signing in as core
	// with the client certificate.
	KitClient Kit = "client"
	// KitCA: the CA certificate alone, for what only checks servers
	// (Prometheus scraping /metrics, probes).
	KitCA Kit = "ca"
)

// Kits lists every kit.
var Kits = []Kit{KitCore, KitKafka, KitEdge, KitClient, KitCA}

// ParseKit returns the kit named s.
func ParseKit(s string) (Kit, error) {
	if k := Kit(s); slices.Contains(Kits, k) {
		return k, nil
	}
	names := make([]string, len(Kits))
	for i, k := range Kits {
		names[i] = string(k)
	}
	return "", fmt.Errorf("devpki: no kit %q (kits: %s)", s, strings.Join(names, ", "))
}

// Files lists the files of kit k in l, the CA certificate first.
func (l Layout) Files(k Kit) []string {
	files := []string{l.CA()}
	role := func(r Role) { f := l.TLS(r); files = append(files, f.Cert, f.Key) }
	switch k {
	case KitCore:
		role(Core)
		files = append(files, l.Seed("core"))
		for _, u := range Users {
			files = append(files, l.PublicKey(u))
		}
		files = append(files, l.StoreKey())
	case KitKafka:
		role(Core)
		files = append(files, l.Seed("core"))
	case KitEdge:
		role(Edge)
		files = append(files, l.Seed("edge"))
	case KitClient:
		role(Client)
		files = append(files, l.Seed("core"))
	}
	return files
}

// Export copies kit k from src into the secrets directory dst, in the
// same layout and with the same permissions (secrets 0600 in folders
// 0700), and removes from dst every file of the layout that the kit does
// not hold, so that a kit cut down since a former export is cut down on
// disk too. It returns the paths it wrote.
func Export(src Layout, k Kit, dst string) ([]string, error) {
	if _, err := ParseKit(string(k)); err != nil {
		return nil, err
	}
	to := Layout{Dir: dst}
	if err := mkdirs(to); err != nil {
		return nil, err
	}
	keep := map[string]bool{}
	var written []string
	for _, from := range src.Files(k) {
		rel, err := filepath.Rel(src.Dir, from)
		if err != nil {
			return nil, fmt.Errorf("devpki: %w", err)
		}
		b, err := os.ReadFile(from)
		if err != nil {
			return nil, fmt.Errorf("devpki: kit %s: %w (make the secrets first: ticketing certs --dir %s)", k, err, src.Dir)
		}
		fi, err := os.Stat(from)
		if err != nil {
			return nil, fmt.Errorf("devpki: %w", err)
		}
		path := filepath.Join(dst, rel)
		keep[path] = true
		if cur, err := os.ReadFile(path); err == nil && string(cur) == string(b) {
			continue
		}
		if err := writeFile(path, b, fi.Mode().Perm()); err != nil {
			return nil, err
		}
		written = append(written, path)
	}
	// Whatever of the full layout the kit leaves out goes, CA key included.
	for _, f := range to.all() {
		if !keep[f] {
			if err := os.Remove(f); err != nil && !os.IsNotExist(err) {
				return nil, fmt.Errorf("devpki: %w", err)
			}
		}
	}
	return written, nil
}

// all lists every file of the full layout.
func (l Layout) all() []string {
	files := []string{l.CA(), l.CAKey(), l.StoreKey()}
	for _, r := range Roles {
		f := l.TLS(r)
		files = append(files, f.Cert, f.Key)
	}
	for _, u := range Users {
		files = append(files, l.Seed(u), l.PublicKey(u))
	}
	return files
}
