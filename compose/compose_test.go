// Package compose holds the Docker Compose stack (docker-compose.yml,
// Dockerfile, the Prometheus and Grafana configuration and dashboards) and
// compose/devstack. Its tests check the Compose file against the NATS
// configs in conf/, the flags of cmd/ticketing and itself, and Prometheus's
// scrape targets and Grafana's dashboards against the services and the
// metrics the code exports, without Docker: they parse, they do not start
// containers.
package compose

import (
	"bufio"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
	"gopkg.in/yaml.v3"
)

// composeFile is the part of the Compose specification the tests read.
type composeFile struct {
	Services map[string]*service `yaml:"services"`
	Volumes  map[string]any      `yaml:"volumes"`
}

type service struct {
	Image       string       `yaml:"image"`
	Build       *build       `yaml:"build"`
	Command     stringList   `yaml:"command"`
	Environment environment  `yaml:"environment"`
	Expose      []string     `yaml:"expose"`
	Ports       []string     `yaml:"ports"`
	DependsOn   dependsOn    `yaml:"depends_on"`
	Healthcheck *healthcheck `yaml:"healthcheck"`
	Volumes     []string     `yaml:"volumes"`
	Profiles    []string     `yaml:"profiles"`
	Restart     string       `yaml:"restart"`
}

type build struct {
	Context    string `yaml:"context"`
	Dockerfile string `yaml:"dockerfile"`
}

type healthcheck struct {
	Test    stringList `yaml:"test"`
	Disable bool       `yaml:"disable"`
}

// stringList is a Compose field that is a string or a list of strings.
type stringList []string

func (l *stringList) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		*l = strings.Fields(n.Value)
		return nil
	}
	var s []string
	err := n.Decode(&s)
	*l = s
	return err
}

// environment is a map or a list of KEY=VALUE.
type environment map[string]string

func (e *environment) UnmarshalYAML(n *yaml.Node) error {
	*e = environment{}
	if n.Kind == yaml.SequenceNode {
		var s []string
		if err := n.Decode(&s); err != nil {
			return err
		}
		for _, kv := range s {
			k, v, _ := strings.Cut(kv, "=")
			(*e)[k] = v
		}
		return nil
	}
	m := map[string]string{}
	err := n.Decode(&m)
	for k, v := range m {
		(*e)[k] = v
	}
	return err
}

// dependsOn is a list of names or a map of name to condition.
type dependsOn map[string]string

func (d *dependsOn) UnmarshalYAML(n *yaml.Node) error {
	*d = dependsOn{}
	if n.Kind == yaml.SequenceNode {
		var s []string
		if err := n.Decode(&s); err != nil {
			return err
		}
		for _, name := range s {
			(*d)[name] = "service_started"
		}
		return nil
	}
	m := map[string]struct {
		Condition string `yaml:"condition"`
	}{}
	err := n.Decode(&m)
	for name, c := range m {
		(*d)[name] = c.Condition
	}
	return err
}

func load(t *testing.T) *composeFile {
	t.Helper()
	b, err := os.ReadFile("docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	var f composeFile
	if err := yaml.Unmarshal(b, &f); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	if len(f.Services) == 0 {
		t.Fatal("docker-compose.yml has no services")
	}
	return &f
}

// natsPorts are the ports of conf/nats/*.conf.
type natsPorts struct {
	client, cluster, leaf int // core.conf
	edgeHubPort           int // the port of edge.conf's leaf remote
}

func loadNATS(t *testing.T) natsPorts {
	t.Helper()
	core, err := server.ProcessConfigFile("../conf/nats/core.conf")
	if err != nil {
		t.Fatal(err)
	}
	edge, err := server.ProcessConfigFile("../conf/nats/edge.conf")
	if err != nil {
		t.Fatal(err)
	}
	p := natsPorts{client: core.Port, cluster: core.Cluster.Port, leaf: core.LeafNode.Port}
	if p.client == 0 || p.cluster == 0 || p.leaf == 0 {
		t.Fatalf("core.conf: client %d, cluster %d, leaf nodes %d: a port is missing", p.client, p.cluster, p.leaf)
	}
	if len(edge.LeafNode.Remotes) == 0 || len(edge.LeafNode.Remotes[0].URLs) == 0 {
		t.Fatal("edge.conf has no leaf remote")
	}
	p.edgeHubPort, _ = strconv.Atoi(edge.LeafNode.Remotes[0].URLs[0].Port())
	return p
}

// ticketing reports whether a service runs the ticketing binary.
func (s *service) ticketing() bool { return s.Build != nil || strings.HasPrefix(s.Image, "ticketing") }

// oneShot reports whether a service is a job that runs once and exits
// (restart "no", such as `ticketing certs`): it serves nothing, so it has
// no health check and nothing to scrape.
func (s *service) oneShot() bool { return s.Restart == "no" }

// subcommand is the first argument of a ticketing service's command.
func (s *service) subcommand() string {
	if !s.ticketing() || len(s.Command) == 0 {
		return ""
	}
	return s.Command[0]
}

// flags returns a ticketing service's --name=value flags.
func (s *service) flags(t *testing.T) map[string]string {
	t.Helper()
	f := map[string]string{}
	args := s.Command[1:]
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") {
			t.Fatalf("command %v: %q is not a flag", s.Command, a)
		}
		name, v, ok := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !ok && i+1 < len(args) && !strings.HasPrefix(args[i+1], "-") {
			v = args[i+1]
			i++
		}
		f[name] = v
	}
	return f
}

func (f *composeFile) byCommand(sub string) []string {
	var names []string
	for name, s := range f.Services {
		if s.subcommand() == sub {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}

func splitHostPort(t *testing.T, what, addr string) (string, int) {
	t.Helper()
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("%s: %q is not host:port: %v", what, addr, err)
	}
	port, err := strconv.Atoi(p)
	if err != nil {
		t.Fatalf("%s: port %q", what, p)
	}
	return h, port
}

// listen checks a listen flag: it binds 0.0.0.0 (127.0.0.1 in a container
// is unreachable from the other containers) on a port the service exposes.
func listen(t *testing.T, name string, s *service, flag, value string) int {
	t.Helper()
	host, port := splitHostPort(t, name+" --"+flag, value)
	if host != "0.0.0.0" {
		t.Errorf("%s --%s=%s: must bind 0.0.0.0 in a container", name, flag, value)
	}
	if !slices.Contains(s.Expose, strconv.Itoa(port)) {
		t.Errorf("%s listens on %d (--%s) but does not expose it (expose: %v)", name, port, flag, s.Expose)
	}
	return port
}

// probePort is the port of the http(s)://127.0.0.1:PORT/… URL in a health
// check.
func probePort(s *service) int {
	m := regexp.MustCompile(`https?://(?:127\.0\.0\.1|localhost):(\d+)/`).FindStringSubmatch(strings.Join(s.Healthcheck.Test, " "))
	if m == nil {
		return 0
	}
	p, _ := strconv.Atoi(m[1])
	return p
}

func TestCoreCluster(t *testing.T) {
	f, ports := load(t), loadNATS(t)
	cores := f.byCommand("core")
	if len(cores) != 3 {
		t.Fatalf("core services %v: want three (a JetStream cluster)", cores)
	}
	var wantRoutes []string
	for _, c := range cores {
		wantRoutes = append(wantRoutes, fmt.Sprintf("nats-route://%s:%d", c, ports.cluster))
	}
	names := map[string]bool{}
	for _, name := range cores {
		s := f.Services[name]
		fl := s.flags(t)
		if fl["name"] != name {
			t.Errorf("%s: --name=%q, want the service name (routes and hubs use it)", name, fl["name"])
		}
		if names[fl["name"]] {
			t.Errorf("%s: server name %q is used twice", name, fl["name"])
		}
		names[fl["name"]] = true
		if p := listen(t, name, s, "nats", fl["nats"]); p != ports.client {
			t.Errorf("%s: client port %d, core.conf says %d", name, p, ports.client)
		}
		if p := listen(t, name, s, "leaf", fl["leaf"]); p != ports.leaf {
			t.Errorf("%s: leaf-node port %d, core.conf says %d", name, p, ports.leaf)
		}
		if p := listen(t, name, s, "cluster", fl["cluster"]); p != ports.cluster {
			t.Errorf("%s: cluster port %d, core.conf says %d", name, p, ports.cluster)
		}
		ops := listen(t, name, s, "ops", fl["ops"])
		if s.Healthcheck != nil && probePort(s) != ops {
			t.Errorf("%s: the health check probes port %d, /readyz is on %d", name, probePort(s), ops)
		}
		routes := strings.Split(fl["routes"], ",")
		slices.Sort(routes)
		if !slices.Equal(routes, wantRoutes) {
			t.Errorf("%s: --routes=%s, want every core: %s", name, fl["routes"], strings.Join(wantRoutes, ","))
		}
		if fl["data"] == "" || !mounts(s, fl["data"]) {
			t.Errorf("%s: --data=%q is not a mounted volume (%v)", name, fl["data"], s.Volumes)
		}
		for dep := range s.DependsOn {
			if slices.Contains(cores, dep) {
				t.Errorf("%s depends on %s: a core is healthy only once a quorum runs, so cores must start together", name, dep)
			}
		}
	}
}

func TestEdges(t *testing.T) {
	f, ports := load(t), loadNATS(t)
	if ports.edgeHubPort != ports.leaf {
		t.Errorf("edge.conf dials leaf port %d, core.conf listens on %d", ports.edgeHubPort, ports.leaf)
	}
	cores := f.byCommand("core")
	edges := f.byCommand("edge")
	if len(edges) < 2 {
		t.Fatalf("edge services %v: want two, in two regions", edges)
	}
	names := map[string]bool{}
	for _, name := range edges {
		s := f.Services[name]
		fl := s.flags(t)
		if fl["name"] == "" || names[fl["name"]] {
			t.Errorf("%s: --name=%q must be set and unique among edges", name, fl["name"])
		}
		names[fl["name"]] = true
		http := listen(t, name, s, "http", fl["http"])
		if s.Healthcheck != nil && probePort(s) != http {
			t.Errorf("%s: the health check probes port %d, the API is on %d", name, probePort(s), http)
		}
		var hubs []string
		for _, h := range strings.Split(fl["hubs"], ",") {
			u, err := url.Parse(h)
			if err != nil || u.Scheme != "nats-leaf" {
				t.Errorf("%s: hub %q is not a nats-leaf:// URL", name, h)
				continue
			}
			if !slices.Contains(cores, u.Hostname()) {
				t.Errorf("%s: hub %s is not a core service (%v)", name, h, cores)
			}
			if u.Port() != strconv.Itoa(ports.leaf) {
				t.Errorf("%s: hub %s: the cores' leaf-node port is %d", name, h, ports.leaf)
			}
			if u.User != nil {
				t.Errorf("%s: hub %s carries credentials; edges sign in with user edge's nkey (--secrets)", name, h)
			}
			hubs = append(hubs, u.Hostname())
		}
		slices.Sort(hubs)
		if !slices.Equal(hubs, cores) {
			t.Errorf("%s: hubs %v, want every core %v so that it survives losing one", name, hubs, cores)
		}
		for _, c := range cores {
			if _, ok := s.DependsOn[c]; !ok {
				t.Errorf("%s does not depend on %s", name, c)
			}
		}
	}
}

func TestServicesExist(t *testing.T) {
	f := load(t)
	for _, want := range []string{"consume", "kafka", "scylla", "postgres", "redis", "opensearch", "prometheus", "grafana"} {
		if f.Services[want] == nil {
			t.Errorf("no service %q", want)
		}
	}
	// Two bridges: one mirrors, the other takes over when it dies.
	if len(f.byCommand("bridge")) != 2 {
		t.Errorf("bridge services %v: want two running `ticketing bridge`", f.byCommand("bridge"))
	}
}

// TestReferences: every host:port in a command, an environment value or a
// health check that names another service names one that exists and
// exposes that port.
func TestReferences(t *testing.T) {
	f := load(t)
	hostPort := regexp.MustCompile(`^(?:[a-z][a-z0-9+.-]*://)?(?:[^@/]*@)?([a-z][a-z0-9-]*):(\d+)(?:/.*)?$`)
	for name, s := range f.Services {
		var values []string
		values = append(values, s.Command...)
		for _, v := range s.Environment {
			values = append(values, v)
		}
		if s.Healthcheck != nil {
			values = append(values, s.Healthcheck.Test...)
		}
		for _, v := range values {
			for _, tok := range regexp.MustCompile(`[\s,="']+`).Split(v, -1) {
				m := hostPort.FindStringSubmatch(tok)
				if m == nil || m[1] == "localhost" {
					continue
				}
				target := f.Services[m[1]]
				if target == nil {
					t.Errorf("%s refers to %s: no such service", name, tok)
					continue
				}
				if !slices.Contains(target.Expose, m[2]) {
					t.Errorf("%s refers to %s: %s exposes %v", name, tok, m[1], target.Expose)
				}
			}
		}
	}
}

func TestDependsOn(t *testing.T) {
	f := load(t)
	for name, s := range f.Services {
		for dep, cond := range s.DependsOn {
			d := f.Services[dep]
			switch {
			case d == nil:
				t.Errorf("%s depends on %s: no such service", name, dep)
			case cond == "service_healthy" && d.Healthcheck == nil:
				t.Errorf("%s waits for %s to be healthy, which has no health check", name, dep)
			case len(d.Profiles) > 0 && !slices.Equal(d.Profiles, s.Profiles):
				t.Errorf("%s depends on %s, which runs only in profiles %v", name, dep, d.Profiles)
			}
		}
	}
}

func TestHealthChecks(t *testing.T) {
	f := load(t)
	for name, s := range f.Services {
		if s.oneShot() {
			continue
		}
		h := s.Healthcheck
		if h == nil || h.Disable || len(h.Test) < 2 || (h.Test[0] != "CMD" && h.Test[0] != "CMD-SHELL") {
			t.Errorf("%s: no health check (CMD or CMD-SHELL)", name)
			continue
		}
		if s.ticketing() && probePort(s) == 0 {
			t.Errorf("%s: the health check should GET /readyz on loopback: %v", name, h.Test)
		}
	}
}

// TestVolumes: state lives in named volumes; a bind mount is only for
// configuration from the repository (a relative path that exists), read-only.
func TestVolumes(t *testing.T) {
	f := load(t)
	used := map[string]bool{}
	for name, s := range f.Services {
		for _, v := range s.Volumes {
			src, _, _ := strings.Cut(v, ":")
			if strings.HasPrefix(src, "/") {
				t.Errorf("%s: bind mount %s: use a named volume, or a read-only file of the repository", name, v)
				continue
			}
			if strings.HasPrefix(src, ".") {
				if !strings.HasSuffix(v, ":ro") {
					t.Errorf("%s: bind mount %s: configuration from the repository is mounted read-only (:ro)", name, v)
				}
				if _, err := os.Stat(src); err != nil {
					t.Errorf("%s: bind mount %s: %v", name, v, err)
				}
				continue
			}
			if _, ok := f.Volumes[src]; !ok {
				t.Errorf("%s: volume %s is not declared under volumes:", name, src)
			}
			used[src] = true
		}
	}
	for v := range f.Volumes {
		if !used[v] {
			t.Errorf("volume %s is declared but not used", v)
		}
	}
	stateful := append(f.byCommand("core"), "kafka", "scylla", "postgres", "redis", "opensearch", "prometheus", "grafana")
	for _, name := range stateful {
		s := f.Services[name]
		if s == nil {
			continue
		}
		named := false
		for _, v := range s.Volumes {
			named = named || !strings.HasPrefix(v, ".")
		}
		if !named {
			t.Errorf("%s keeps state but has no named volume", name)
		}
	}
}

func mounts(s *service, dir string) bool {
	for _, v := range s.Volumes {
		if _, target, _ := strings.Cut(v, ":"); strings.TrimSuffix(target, ":ro") == dir {
			return true
		}
	}
	return false
}

// TestSecretKits: only `certs` mounts the whole secrets volume; every
// other ticketing service mounts at /secrets, read-only, the one kit
// volume of its kind (devpki.Kit), which `certs` exports into; Prometheus
// gets the CA's kit.
func TestSecretKits(t *testing.T) {
	f := load(t)
	kitOf := map[string]string{"core": "core", "edge": "edge", "bridge": "kafka", "consume": "kafka"}
	certs := f.Services["certs"]
	if certs == nil {
		t.Fatal("no service certs")
	}
	exported := map[string]string{} // kit -> directory in certs
	for _, e := range strings.Split(certs.flags(t)["export"], ",") {
		if kit, dir, ok := strings.Cut(e, "="); ok {
			exported[kit] = dir
		}
	}
	mountedAt := func(s *service, target string) []string {
		var srcs []string
		for _, v := range s.Volumes {
			src, rest, _ := strings.Cut(v, ":")
			if strings.TrimSuffix(rest, ":ro") == target {
				srcs = append(srcs, src)
			}
		}
		return srcs
	}
	for _, kit := range []string{"core", "edge", "kafka", "ca"} {
		dir, ok := exported[kit]
		if !ok {
			t.Errorf("certs does not export kit %s", kit)
			continue
		}
		if got := mountedAt(certs, dir); !slices.Equal(got, []string{"secrets-" + kit}) {
			t.Errorf("certs exports kit %s into %s, where %v is mounted, want volume secrets-%s", kit, dir, got, kit)
		}
	}
	for name, s := range f.Services {
		for _, v := range s.Volumes {
			if src, _, _ := strings.Cut(v, ":"); src == "secrets" && name != "certs" {
				t.Errorf("%s mounts the whole secrets volume (the CA key, every seed): give it its kit", name)
			}
		}
		sub := s.subcommand()
		kit, ok := kitOf[sub]
		if !ok {
			continue
		}
		want := "secrets-" + kit + ":/secrets:ro"
		if !slices.Contains(s.Volumes, want) {
			t.Errorf("%s (ticketing %s) mounts %v, want %s", name, sub, s.Volumes, want)
		}
	}
	if p := f.Services["prometheus"]; p != nil && !slices.Contains(mountedAt(p, "/etc/prometheus/secrets"), "secrets-ca") {
		t.Errorf("prometheus checks /metrics against the CA: mount secrets-ca, not %v", p.Volumes)
	}
}

// TestSecrets: passwords and tokens come from the environment of `docker
// compose`, required, never written into the file.
func TestSecrets(t *testing.T) {
	f := load(t)
	required := regexp.MustCompile(`^\$\{[A-Z0-9_]+:\?[^}]*\}$`)
	for name, s := range f.Services {
		for k, v := range s.Environment {
			if (strings.Contains(k, "PASSWORD") || strings.Contains(k, "TOKEN")) && !required.MatchString(v) {
				t.Errorf("%s: %s=%q: want ${VAR:?message}, a required variable without default", name, k, v)
			}
		}
	}
}

// TestFlagsExist: every flag and TICKETING_* variable given to a ticketing
// service is a flag of its subcommand in cmd/ticketing. A subcommand that
// does not exist yet (bridge) must keep its service out of a plain `up`.
func TestFlagsExist(t *testing.T) {
	f := load(t)
	flags := commandFlags(t)
	for name, s := range f.Services {
		sub := s.subcommand()
		if sub == "" {
			continue
		}
		known, ok := flags[sub]
		if !ok {
			if len(s.Profiles) == 0 {
				t.Errorf("%s runs `ticketing %s`, which does not exist yet: keep it in a profile", name, sub)
			} else {
				t.Logf("%s: `ticketing %s` does not exist yet; flags not checked", name, sub)
			}
			continue
		}
		for flag := range s.flags(t) {
			if !known[flag] {
				t.Errorf("%s: ticketing %s has no flag --%s", name, sub, flag)
			}
		}
		for k := range s.Environment {
			if flag, ok := strings.CutPrefix(k, "TICKETING_"); ok {
				flag = strings.ReplaceAll(strings.ToLower(flag), "_", "-")
				if !known[flag] {
					t.Errorf("%s: %s sets no flag of ticketing %s (there is no --%s)", name, k, sub, flag)
				}
			}
		}
	}
}

// commandFlags reads cmd/ticketing's sources: for each subcommand X (its
// function runX), the flags it defines with fs.String("name", …), fs.Var(…,
// "name", …) and the like, including those of helpers it passes fs to, in
// package main or package cli (cli.AddLogFlags(fs, …)).
func commandFlags(t *testing.T) map[string]map[string]bool {
	t.Helper()
	fset := token.NewFileSet()
	funcs := map[string]*ast.FuncDecl{} // main's by name, cli's as "cli.Name"
	for dir, prefix := range map[string]string{"../cmd/ticketing": "", "../cmd/ticketing/cli": "cli."} {
		paths, err := filepath.Glob(dir + "/*.go")
		if err != nil {
			t.Fatal(err)
		}
		for _, path := range paths {
			if strings.HasSuffix(path, "_test.go") {
				continue
			}
			file, err := parser.ParseFile(fset, path, nil, 0)
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range file.Decls {
				if fd, ok := d.(*ast.FuncDecl); ok && fd.Recv == nil {
					funcs[prefix+fd.Name.Name] = fd
				}
			}
		}
	}
	if len(funcs) == 0 {
		t.Fatal("no functions read in cmd/ticketing")
	}
	// defined are the flags fd defines; ns is fd's package's prefix in funcs
	// ("" or "cli."), for the helpers it calls unqualified.
	var defined func(fd *ast.FuncDecl, ns string, depth int) map[string]bool
	defined = func(fd *ast.FuncDecl, ns string, depth int) map[string]bool {
		out := map[string]bool{}
		ast.Inspect(fd, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			switch fn := call.Fun.(type) {
			case *ast.SelectorExpr: // fs.String("name", …), fs.Var(v, "name", …)
				if pkg, ok := fn.X.(*ast.Ident); ok && pkg.Name == "cli" { // cli.AddLogFlags(fs, …)
					if h := funcs["cli."+fn.Sel.Name]; h != nil && depth < 3 {
						for k := range defined(h, "cli.", depth+1) {
							out[k] = true
						}
					}
					return true
				}
				arg := 0
				if fn.Sel.Name == "Var" || strings.HasSuffix(fn.Sel.Name, "Var") {
					arg = 1
				}
				if len(call.Args) > arg {
					if lit, ok := call.Args[arg].(*ast.BasicLit); ok && lit.Kind == token.STRING {
						if s, err := strconv.Unquote(lit.Value); err == nil {
							if id, ok := fn.X.(*ast.Ident); ok && id.Name == "fs" {
								out[s] = true
							}
						}
					}
				}
			case *ast.Ident: // helpers such as addLogFlags(fs, …)
				if h := funcs[ns+fn.Name]; h != nil && depth < 3 && h != fd {
					for k := range defined(h, ns, depth+1) {
						out[k] = true
					}
				}
			}
			return true
		})
		return out
	}
	cmds := map[string]map[string]bool{}
	for name, fd := range funcs {
		if sub, ok := strings.CutPrefix(name, "run"); ok && sub != "" {
			cmds[strings.ToLower(sub)] = defined(fd, "", 0)
		}
	}
	if len(cmds["core"]) == 0 || len(cmds["edge"]) == 0 {
		t.Fatalf("found no flags of ticketing core or edge in cmd/ticketing (%v)", cmds)
	}
	return cmds
}

// TestDockerfile: the build image follows go.mod's go version, the binary is
// static and runs as a non-root user, and every top-level folder with Go
// packages is copied into the build.
func TestDockerfile(t *testing.T) {
	f := load(t)
	for name, s := range f.Services {
		if s.Build != nil && (s.Build.Context != ".." || s.Build.Dockerfile != "compose/Dockerfile") {
			t.Errorf("%s builds from %+v, want context .. and compose/Dockerfile", name, s.Build)
		}
	}
	b, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	df := string(b)
	gomod, err := os.ReadFile("../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	goVersion := regexp.MustCompile(`(?m)^go (\S+)$`).FindSubmatch(gomod)
	if goVersion == nil {
		t.Fatal("go.mod has no go directive")
	}
	if !strings.Contains(df, "FROM golang:"+string(goVersion[1])+"-") && !strings.Contains(df, "FROM golang:"+string(goVersion[1])+" ") {
		t.Errorf("the Dockerfile does not build with golang:%s (go.mod's go directive)", goVersion[1])
	}
	if !strings.Contains(df, "CGO_ENABLED=0") {
		t.Error("the Dockerfile does not build a static binary (CGO_ENABLED=0)")
	}
	var froms []string
	var user string
	sc := bufio.NewScanner(strings.NewReader(df))
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 {
			continue
		}
		switch fields[0] {
		case "FROM":
			froms = append(froms, fields[1])
			user = ""
		case "USER":
			user = fields[1]
		}
	}
	if len(froms) < 2 || strings.HasPrefix(froms[len(froms)-1], "golang") {
		t.Errorf("stages %v: want a multi-stage build with a small runtime image", froms)
	}
	if u, _, _ := strings.Cut(user, ":"); u == "" || u == "0" || u == "root" {
		t.Errorf("the runtime stage runs as %q: want a non-root user", user)
	}
	entries, err := os.ReadDir("..")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") || e.Name() == "compose" || !hasGo(filepath.Join("..", e.Name())) {
			continue
		}
		if !regexp.MustCompile(`(?m)^COPY ` + regexp.QuoteMeta(e.Name()) + ` `).MatchString(df) {
			t.Errorf("the Dockerfile does not copy %s/, which holds Go packages", e.Name())
		}
	}
}

// hasGo reports whether dir holds a non-test Go file at any depth.
func hasGo(dir string) bool {
	found := false
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || found {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(p, ".go") && !strings.HasSuffix(p, "_test.go") {
			found = true
		}
		return nil
	})
	return found
}
