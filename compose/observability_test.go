package compose

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/ticketing/ticketing/internal/metricnames"
	"github.com/ticketing/ticketing/internal/testservers"
)

// prometheusConfig is the part of prometheus/prometheus.yml the tests read.
type prometheusConfig struct {
	RuleFiles     []string `yaml:"rule_files"`
	ScrapeConfigs []struct {
		JobName       string `yaml:"job_name"`
		MetricsPath   string `yaml:"metrics_path"`
		StaticConfigs []struct {
			Targets []string `yaml:"targets"`
		} `yaml:"static_configs"`
	} `yaml:"scrape_configs"`
}

func loadPrometheus(t *testing.T) *prometheusConfig {
	t.Helper()
	b, err := os.ReadFile("prometheus/prometheus.yml")
	if err != nil {
		t.Fatal(err)
	}
	var c prometheusConfig
	if err := yaml.Unmarshal(b, &c); err != nil {
		t.Fatalf("prometheus/prometheus.yml: %v", err)
	}
	return &c
}

// mountOf is where a service mounts the repository path src (relative to
// compose/), or "".
func mountOf(s *service, src string) string {
	for _, v := range s.Volumes {
		parts := strings.Split(v, ":")
		if len(parts) >= 2 && filepath.Clean(parts[0]) == filepath.Clean(src) {
			return parts[1]
		}
	}
	return ""
}

// metricsPort is the port a ticketing service serves /metrics on: a core,
// bridge or consumer on --ops, an edge on its HTTP API.
func metricsPort(t *testing.T, s *service) string {
	t.Helper()
	fl := s.flags(t)
	addr := fl["ops"]
	if s.subcommand() == "edge" {
		addr = fl["http"]
	}
	if addr == "" {
		return ""
	}
	_, port := splitHostPort(t, s.subcommand()+" metrics address", addr)
	return strconv.Itoa(port)
}

// TestPrometheusScrapesEveryService: every ticketing service is scraped on
// the port of its /metrics, in a job named after its subcommand (the rules
// use up{job="core"} and up{job="edge"}); every target is a service that
// exposes the port; Prometheus loads the rule files of conf/prometheus.
func TestPrometheusScrapesEveryService(t *testing.T) {
	f, c := load(t), loadPrometheus(t)
	prom := f.Services["prometheus"]
	if prom == nil {
		t.Fatal("no prometheus service")
	}
	if mountOf(prom, "prometheus/prometheus.yml") != "/etc/prometheus/prometheus.yml" {
		t.Errorf("prometheus does not mount prometheus/prometheus.yml at /etc/prometheus/prometheus.yml: %v", prom.Volumes)
	}
	scraped := map[string]string{} // service:port → job
	for _, sc := range c.ScrapeConfigs {
		if sc.MetricsPath != "" && sc.MetricsPath != "/metrics" {
			t.Errorf("job %s scrapes %s; every process serves /metrics", sc.JobName, sc.MetricsPath)
		}
		for _, st := range sc.StaticConfigs {
			for _, target := range st.Targets {
				host, port := splitHostPort(t, "job "+sc.JobName, target)
				if host == "localhost" {
					continue // Prometheus itself
				}
				s := f.Services[host]
				switch {
				case s == nil:
					t.Errorf("job %s scrapes %s: no such service", sc.JobName, target)
				case !slices.Contains(s.Expose, strconv.Itoa(port)):
					t.Errorf("job %s scrapes %s: %s exposes %v", sc.JobName, target, host, s.Expose)
				}
				scraped[target] = sc.JobName
			}
		}
	}
	for name, s := range f.Services {
		sub := s.subcommand()
		if sub == "" {
			continue
		}
		target := name + ":" + metricsPort(t, s)
		switch job, ok := scraped[target]; {
		case !ok:
			t.Errorf("%s (ticketing %s) serves /metrics on %s, which Prometheus does not scrape", name, sub, target)
		case job != sub:
			t.Errorf("%s is scraped in job %q; the rules expect job %q", target, job, sub)
		}
	}

	// The rules: conf/prometheus/rules mounted where rule_files looks, and
	// every rule file matched.
	dir := mountOf(prom, "../conf/prometheus/rules")
	if dir == "" {
		t.Fatalf("prometheus does not mount ../conf/prometheus/rules: %v", prom.Volumes)
	}
	rules, err := filepath.Glob("../conf/prometheus/rules/*")
	if err != nil || len(rules) == 0 {
		t.Fatalf("no rule files in conf/prometheus/rules (%v)", err)
	}
	for _, r := range rules {
		in := filepath.Join(dir, filepath.Base(r))
		loaded := false
		for _, pattern := range c.RuleFiles {
			ok, err := filepath.Match(pattern, in)
			if err != nil {
				t.Errorf("rule_files %q: %v", pattern, err)
			}
			loaded = loaded || ok
		}
		if !loaded {
			t.Errorf("%s (%s in the container) is not matched by rule_files %v", r, in, c.RuleFiles)
		}
	}
}

// dashboard is the part of a Grafana dashboard the tests read.
type dashboard struct {
	UID        string  `json:"uid"`
	Title      string  `json:"title"`
	Panels     []panel `json:"panels"`
	Templating struct {
		List []struct {
			Name       string          `json:"name"`
			Datasource *datasourceRef  `json:"datasource"`
			Query      json.RawMessage `json:"query"`
		} `json:"list"`
	} `json:"templating"`
}

type datasourceRef struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type panel struct {
	Type       string         `json:"type"`
	Title      string         `json:"title"`
	Datasource *datasourceRef `json:"datasource"`
	Targets    []struct {
		Expr       string         `json:"expr"`
		Datasource *datasourceRef `json:"datasource"`
	} `json:"targets"`
	Panels []panel `json:"panels"` // of a row
}

// builtinMetrics are series Prometheus writes itself.
var builtinMetrics = []string{"up", "ALERTS", "ALERTS_FOR_STATE", "scrape_duration_seconds", "scrape_samples_scraped"}

// recordedMetrics are the series the rules of conf/prometheus/rules record.
func recordedMetrics(t *testing.T) map[string]bool {
	t.Helper()
	files, err := filepath.Glob("../conf/prometheus/rules/*.yml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no rule files (%v)", err)
	}
	out := map[string]bool{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var rf struct {
			Groups []struct {
				Rules []struct {
					Record string `yaml:"record"`
				} `yaml:"rules"`
			} `yaml:"groups"`
		}
		if err := yaml.Unmarshal(b, &rf); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, g := range rf.Groups {
			for _, r := range g.Rules {
				if r.Record != "" {
					out[r.Record] = true
				}
			}
		}
	}
	return out
}

// TestDashboards: Grafana is provisioned with the Prometheus data source
// and the dashboards of grafana/dashboards; every dashboard parses, has its
// own uid and title, uses that data source, and queries only metrics the
// code exports (internal/metricnames reads the Go sources), the rules
// record, or Prometheus writes.
func TestDashboards(t *testing.T) {
	f := load(t)
	g := f.Services["grafana"]
	if g == nil {
		t.Fatal("no grafana service")
	}
	if dep, ok := g.DependsOn["prometheus"]; !ok || dep != "service_healthy" {
		t.Errorf("grafana should wait for prometheus to be healthy (depends_on: %v)", g.DependsOn)
	}
	// Provisioning: the data source's uid and URL, the dashboards' path.
	var ds struct {
		Datasources []struct {
			UID, Type, URL string
		} `yaml:"datasources"`
	}
	readYAML(t, "grafana/provisioning/datasources/prometheus.yml", &ds)
	if len(ds.Datasources) != 1 || ds.Datasources[0].Type != "prometheus" {
		t.Fatalf("want one prometheus data source, got %+v", ds.Datasources)
	}
	uid := ds.Datasources[0].UID
	m := regexp.MustCompile(`^http://([a-z0-9-]+):(\d+)$`).FindStringSubmatch(ds.Datasources[0].URL)
	if m == nil || m[1] != "prometheus" || !slices.Contains(f.Services["prometheus"].Expose, m[2]) {
		t.Errorf("data source URL %q: want http://prometheus:<an exposed port>", ds.Datasources[0].URL)
	}
	var prov struct {
		Providers []struct {
			Options struct {
				Path string `yaml:"path"`
			} `yaml:"options"`
		} `yaml:"providers"`
	}
	readYAML(t, "grafana/provisioning/dashboards/ticketing.yml", &prov)
	mounted := mountOf(g, "grafana/dashboards")
	if len(prov.Providers) != 1 || prov.Providers[0].Options.Path != mounted || mounted == "" {
		t.Errorf("the dashboard provider reads %+v; grafana/dashboards is mounted at %q", prov.Providers, mounted)
	}
	if mountOf(g, "grafana/provisioning") != "/etc/grafana/provisioning" {
		t.Errorf("grafana does not mount grafana/provisioning at /etc/grafana/provisioning: %v", g.Volumes)
	}
	if home := g.Environment["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]; home != "" {
		if rel, ok := strings.CutPrefix(home, mounted+"/"); !ok {
			t.Errorf("home dashboard %s is not under %s", home, mounted)
		} else if _, err := os.Stat(filepath.Join("grafana/dashboards", rel)); err != nil {
			t.Errorf("home dashboard: %v", err)
		}
	}

	defined, err := metricnames.Defined("..")
	if err != nil {
		t.Fatal(err)
	}
	recorded := recordedMetrics(t)
	files, err := filepath.Glob("grafana/dashboards/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no dashboards (%v)", err)
	}
	uids, titles := map[string]string{}, map[string]string{}
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var d dashboard
		if err := json.Unmarshal(b, &d); err != nil {
			t.Errorf("%s: %v", file, err)
			continue
		}
		if d.UID == "" || d.Title == "" {
			t.Errorf("%s: uid %q, title %q: both are required", file, d.UID, d.Title)
		}
		if prev, ok := uids[d.UID]; ok {
			t.Errorf("%s and %s have the same uid %s", prev, file, d.UID)
		}
		if prev, ok := titles[d.Title]; ok {
			t.Errorf("%s and %s have the same title %q", prev, file, d.Title)
		}
		uids[d.UID], titles[d.Title] = file, file
		check := func(where, expr string) {
			names, err := metricnames.Selectors(expr)
			if err != nil {
				t.Errorf("%s: %s: %v", file, where, err)
				return
			}
			if len(names) == 0 {
				t.Errorf("%s: %s: %q reads no metric", file, where, expr)
			}
			for _, n := range names {
				if !defined[n] && !recorded[n] && !slices.Contains(builtinMetrics, n) {
					t.Errorf("%s: %s reads %s, which no code exports and no rule records", file, where, n)
				}
			}
		}
		for _, v := range d.Templating.List {
			if v.Datasource == nil || v.Datasource.UID != uid {
				t.Errorf("%s: variable %s does not use the data source %q", file, v.Name, uid)
			}
			var q struct {
				Query string `json:"query"`
			}
			if err := json.Unmarshal(v.Query, &q); err != nil {
				_ = json.Unmarshal(v.Query, &q.Query) // a plain string
			}
			if mm := regexp.MustCompile(`^label_values\(([a-zA-Z_:][a-zA-Z0-9_:]*)`).FindStringSubmatch(q.Query); mm != nil {
				check("variable "+v.Name, mm[1])
			}
		}
		var walk func([]panel)
		panels := 0
		walk = func(ps []panel) {
			for _, p := range ps {
				walk(p.Panels)
				if p.Type == "row" {
					continue
				}
				panels++
				if p.Datasource == nil || p.Datasource.UID != uid {
					t.Errorf("%s: panel %q does not use the data source %q", file, p.Title, uid)
				}
				if len(p.Targets) == 0 {
					t.Errorf("%s: panel %q has no query", file, p.Title)
				}
				for _, tg := range p.Targets {
					if tg.Datasource != nil && tg.Datasource.UID != uid {
						t.Errorf("%s: panel %q queries data source %q", file, p.Title, tg.Datasource.UID)
					}
					check("panel "+strconv.Quote(p.Title), tg.Expr)
				}
			}
		}
		walk(d.Panels)
		if panels == 0 {
			t.Errorf("%s has no panels", file)
		}
	}
}

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// TestPrometheusConfigValid: promtool accepts prometheus/prometheus.yml,
// with its rule_files pointed at conf/prometheus/rules as the container
// mounts them.
func TestPrometheusConfigValid(t *testing.T) {
	bin := testservers.Promtool(t)
	f, c := load(t), loadPrometheus(t)
	dir := mountOf(f.Services["prometheus"], "../conf/prometheus/rules")
	rules, err := filepath.Abs("../conf/prometheus/rules")
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile("prometheus/prometheus.yml")
	if err != nil {
		t.Fatal(err)
	}
	conf := string(b)
	for _, pattern := range c.RuleFiles {
		local, ok := strings.CutPrefix(pattern, dir+"/")
		if !ok {
			t.Fatalf("rule_files %q is not under the rules' mount %s", pattern, dir)
		}
		conf = strings.ReplaceAll(conf, pattern, filepath.Join(rules, local))
	}
	path := filepath.Join(t.TempDir(), "prometheus.yml")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "check", "config", path).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool check config: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "rule files found") {
		t.Errorf("promtool found no rule files:\n%s", out)
	}
	t.Logf("%s", out)
}
