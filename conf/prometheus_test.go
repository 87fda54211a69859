package conf

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/ticketing/ticketing/internal/metricnames"
	"github.com/ticketing/ticketing/internal/testservers"
)

// The Prometheus rules of prometheus/rules/*.yml and their promtool tests,
// prometheus/tests/<name>.test.yml for each <name>.rules.yml.
const (
	rulesDir = "prometheus/rules"
	testsDir = "prometheus/tests"
)

// pendingMetrics are metrics the rules read that no code exports yet, each
// with what will export it. The test fails once the code defines one, so
// that the entry goes.
var pendingMetrics = map[string]string{
	"ticketing_payment_requests_total": "the payment service, which the checkout issue builds",
}

// builtinMetrics are series Prometheus itself writes.
var builtinMetrics = []string{"up", "ALERTS", "ALERTS_FOR_STATE", "scrape_duration_seconds", "scrape_samples_scraped"}

type ruleFile struct {
	Groups []struct {
		Name     string `yaml:"name"`
		Interval string `yaml:"interval"`
		Rules    []rule `yaml:"rules"`
	} `yaml:"groups"`
}

type rule struct {
	Record      string            `yaml:"record"`
	Alert       string            `yaml:"alert"`
	Expr        string            `yaml:"expr"`
	For         string            `yaml:"for"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

type testFile struct {
	RuleFiles []string `yaml:"rule_files"`
	Tests     []struct {
		Name     string      `yaml:"name"`
		AlertRT  []alertTest `yaml:"alert_rule_test"`
		PromQLET []struct {
			Expr string `yaml:"expr"`
		} `yaml:"promql_expr_test"`
	} `yaml:"tests"`
}

type alertTest struct {
	Alertname string `yaml:"alertname"`
	ExpAlerts []any  `yaml:"exp_alerts"`
}

func files(t *testing.T, dir string) []string {
	t.Helper()
	fs, err := filepath.Glob(filepath.Join(dir, "*.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(fs) == 0 {
		t.Fatalf("no *.yml in %s", dir)
	}
	return fs
}

// decode reads a YAML file into v; strict: every field must be one of v's
// (rule files are modelled whole, test files only in part).
func decode(t *testing.T, path string, v any, strict bool) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(strict)
	if err := dec.Decode(v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func promtool(t *testing.T, args ...string) {
	t.Helper()
	bin := testservers.Promtool(t)
	cmd := exec.Command(bin, args...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", bin, strings.Join(args, " "), err, out)
	}
	t.Logf("%s %s:\n%s", filepath.Base(bin), strings.Join(args, " "), out)
}

// TestPromtoolCheckRules: promtool accepts every rule file.
func TestPromtoolCheckRules(t *testing.T) {
	promtool(t, append([]string{"check", "rules"}, files(t, rulesDir)...)...)
}

// TestPromtoolTestRules runs every promtool test file.
func TestPromtoolTestRules(t *testing.T) {
	for _, f := range files(t, testsDir) {
		t.Run(filepath.Base(f), func(t *testing.T) {
			t.Parallel()
			promtool(t, "test", "rules", f)
		})
	}
}

// TestRulesAreTested holds the rule files to their tests without running
// promtool: every rule file <name>.rules.yml has a test file
// <name>.test.yml that loads it; every alert is tested both firing and not
// firing, and has a severity, a summary, a description and a runbook; every
// recording rule is read by a promql_expr_test.
func TestRulesAreTested(t *testing.T) {
	rules := map[string]*ruleFile{} // by path
	for _, f := range files(t, rulesDir) {
		if !strings.HasSuffix(f, ".rules.yml") {
			t.Errorf("%s: rule files are named <name>.rules.yml", f)
		}
		var rf ruleFile
		decode(t, f, &rf, true)
		rules[filepath.Clean(f)] = &rf
	}
	tests := map[string]*testFile{}
	loads := map[string][]string{} // rule file → test files that load it
	for _, f := range files(t, testsDir) {
		var tf testFile
		decode(t, f, &tf, false)
		tests[f] = &tf
		for _, r := range tf.RuleFiles {
			p := filepath.Clean(filepath.Join(filepath.Dir(f), r))
			if rules[p] == nil {
				t.Errorf("%s loads %s, which is not a rule file of %s", f, r, rulesDir)
			}
			loads[p] = append(loads[p], f)
		}
	}
	for path, rf := range rules {
		name := strings.TrimSuffix(filepath.Base(path), ".rules.yml")
		own := filepath.Join(testsDir, name+".test.yml")
		if !slices.Contains(loads[path], own) {
			t.Errorf("%s has no test file: want %s, loading it", path, own)
			continue
		}
		firing, quiet := map[string]bool{}, map[string]bool{}
		var exprs []string
		for _, tf := range loads[path] {
			for _, tc := range tests[tf].Tests {
				for _, at := range tc.AlertRT {
					if len(at.ExpAlerts) > 0 {
						firing[at.Alertname] = true
					} else {
						quiet[at.Alertname] = true
					}
				}
				for _, pt := range tc.PromQLET {
					exprs = append(exprs, pt.Expr)
				}
			}
		}
		read := map[string]bool{}
		for _, e := range exprs {
			names, err := metricnames.Selectors(e)
			if err != nil {
				t.Errorf("%s: %v", path, err)
			}
			for _, n := range names {
				read[n] = true
			}
		}
		for _, g := range rf.Groups {
			for _, r := range g.Rules {
				switch {
				case r.Alert != "":
					if !firing[r.Alert] || !quiet[r.Alert] {
						t.Errorf("%s: alert %s is not tested both firing (%v) and not firing (%v)", path, r.Alert, firing[r.Alert], quiet[r.Alert])
					}
					if s := r.Labels["severity"]; !slices.Contains([]string{"critical", "warning", "info"}, s) {
						t.Errorf("%s: alert %s has severity %q, want critical, warning or info", path, r.Alert, s)
					}
					for _, a := range []string{"summary", "description", "runbook"} {
						if strings.TrimSpace(r.Annotations[a]) == "" {
							t.Errorf("%s: alert %s has no %s", path, r.Alert, a)
						}
					}
				case r.Record != "":
					if !read[r.Record] {
						t.Errorf("%s: recording rule %s is read by no promql_expr_test of %v", path, r.Record, loads[path])
					}
				}
			}
		}
	}
}

// TestRulesReadExportedMetrics: every metric a rule reads is one the code
// defines (internal/metricnames reads the Go sources), one a recording rule
// writes, one Prometheus writes, or one of pendingMetrics.
func TestRulesReadExportedMetrics(t *testing.T) {
	defined, err := metricnames.Defined("..")
	if err != nil {
		t.Fatal(err)
	}
	recorded := map[string]bool{}
	var all []rule
	for _, f := range files(t, rulesDir) {
		var rf ruleFile
		decode(t, f, &rf, true)
		for _, g := range rf.Groups {
			for _, r := range g.Rules {
				if r.Record != "" {
					recorded[r.Record] = true
				}
				all = append(all, r)
			}
		}
	}
	for name, by := range pendingMetrics {
		if defined[name] {
			t.Errorf("%s is defined by the code now (expected from %s): remove it from pendingMetrics", name, by)
		}
	}
	for _, r := range all {
		names, err := metricnames.Selectors(r.Expr)
		if err != nil {
			t.Error(err)
			continue
		}
		if len(names) == 0 {
			t.Errorf("rule %s%s reads no metric: %s", r.Record, r.Alert, r.Expr)
		}
		for _, n := range names {
			if !defined[n] && !recorded[n] && !slices.Contains(builtinMetrics, n) && pendingMetrics[n] == "" {
				t.Errorf("rule %s%s reads %s, which no code exports and no rule records", r.Record, r.Alert, n)
			}
		}
	}
	t.Logf("%d rules over %d defined metrics", len(all), len(defined))
}
