package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ticketing/ticketing/cmd/ticketing/cli"
	"github.com/ticketing/ticketing/internal/devpki"
	"github.com/ticketing/ticketing/internal/tlsconf"
)

// runCerts is `ticketing certs`: the development secrets (a CA, the core,
// edge and client certificates, NATS nkeys, the JetStream key) in a
// directory, made or renewed (devpki.Ensure).
func runCerts(_ context.Context, args []string) error {
	fs := flag.NewFlagSet("certs", flag.ContinueOnError)
	dir := fs.String("dir", "data/secrets", "secrets directory (every process's --secrets)")
	var hosts cli.List
	fs.Var(&hosts, "hosts", "comma-separated DNS names and IP addresses the core and edge certificates must be valid for, besides localhost, 127.0.0.1 and ::1 (Compose: the service names)")
	var exports cli.List
	fs.Var(&exports, "export", "comma-separated kit=dir: also copy each kit (core, kafka, edge, client, ca) into a directory of its own, holding only what that kind of process needs (Compose mounts each service its kit, never the CA key or another user's seed)")
	if err := cli.Parse(fs, args); err != nil {
		return err
	}
	type export struct {
		kit devpki.Kit
		dir string
	}
	var kits []export
	for _, e := range exports {
		name, to, ok := strings.Cut(e, "=")
		kit, err := devpki.ParseKit(name)
		if err != nil || !ok || to == "" {
			return fmt.Errorf("certs: --export %q: want kit=dir with a kit of %v", e, devpki.Kits)
		}
		kits = append(kits, export{kit, to})
	}
	res, err := devpki.Ensure(devpki.Config{Dir: *dir, Hosts: hosts})
	if err != nil {
		return err
	}
	for _, k := range kits {
		written, err := devpki.Export(res.Layout, k.kit, k.dir)
		if err != nil {
			return err
		}
		res.Written = append(res.Written, written...)
	}
	for _, p := range res.Written {
		fmt.Println("wrote", p)
	}
	if len(res.Written) == 0 {
		fmt.Println("every file was current; nothing written")
	}
	l := res.Layout
	fmt.Printf(`
secrets in %s (private files 0600):
  CA:            %s   (clients: curl --cacert, nats --tlsca)
  core:          %s   (ticketing core, bridge, consume)
  edge:          %s   (ticketing edge)
  client:        %s   (nats CLI, load generators)
  NATS nkeys:    %s   (seeds *.nk, public keys *.pub)
  JetStream key: %s
Give each process only what it needs; see README.md, "Security".
`, *dir, l.CA(), l.TLS(devpki.Core).Cert, l.TLS(devpki.Edge).Cert, l.TLS(devpki.Client).Cert,
		filepath.Dir(l.Seed("core")), l.StoreKey())
	return nil
}

// runProbe is `ticketing probe`: GET a URL, trusting the given CA, and
// succeed on a 2xx answer. Compose's health checks use it on the HTTPS ops
// and API listeners (the image has no curl).
func runProbe(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("probe", flag.ContinueOnError)
	url := fs.String("url", "", "URL to GET, e.g. https://127.0.0.1:9090/readyz")
	ca := fs.String("ca", "", "CA certificate the server's must be signed by (default: the system's roots)")
	serverName := fs.String("server-name", "", "name the server's certificate must carry (default: the URL's host)")
	timeout := fs.Duration("timeout", 3*time.Second, "time allowed for the answer")
	if err := cli.Parse(fs, args); err != nil {
		return err
	}
	if *url == "" {
		return errors.New("--url is required")
	}
	tc := &tls.Config{MinVersion: tlsconf.MinVersion, ServerName: *serverName}
	if *ca != "" {
		c, err := tlsconf.Client(tlsconf.Files{CA: *ca})
		if err != nil {
			return err
		}
		c.ServerName = *serverName
		tc = c
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, *url, nil)
	if err != nil {
		return err
	}
	resp, err := (&http.Client{Transport: &http.Transport{TLSClientConfig: tc}}).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s: %s %s", *url, resp.Status, body)
	}
	_, _ = os.Stdout.Write(body)
	return nil
}
