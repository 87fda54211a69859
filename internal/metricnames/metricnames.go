// Package metricnames finds the Prometheus metric names the code defines,
// read from its Go sources, and the metric names a PromQL expression reads,
// so that tests can hold the rule files (conf/prometheus) and the
// dashboards (compose/grafana) to the metrics that exist.
//
// Both are read without running anything: Defined parses Go files and
// knows the client_golang idioms this repository uses (the *Opts literals
// and prometheus.NewDesc); Selectors is a small lexer over PromQL that is
// exact for the expressions written here, not a PromQL parser.
package metricnames

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Defined returns every metric name the non-test Go files under root
// define, with the series names a histogram (_bucket, _sum, _count) or a
// summary (_sum, _count) adds. It reads prometheus.CounterOpts, GaugeOpts,
// HistogramOpts and SummaryOpts literals (Namespace, Subsystem and Name as
// string literals or constants of the same file) and prometheus.NewDesc
// calls with a literal or constant name. Directories whose name starts with
// "." or is testdata or vendor are skipped.
func Defined(root string) (map[string]bool, error) {
	out := map[string]bool{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if n := d.Name(); path != root && (strings.HasPrefix(n, ".") || n == "testdata" || n == "vendor") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if !strings.Contains(string(src), "prometheus") {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, src, 0)
		if err != nil {
			return err
		}
		for _, n := range definedIn(f) {
			out[n] = true
		}
		return nil
	})
	return out, err
}

// definedIn reads the metric names one file defines.
func definedIn(f *ast.File) []string {
	consts := map[string]string{} // string constants of the file, at any level
	ast.Inspect(f, func(n ast.Node) bool {
		if vs, ok := n.(*ast.ValueSpec); ok {
			for i, name := range vs.Names {
				if i < len(vs.Values) {
					if lit, ok := vs.Values[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
						if s, err := strconv.Unquote(lit.Value); err == nil {
							consts[name.Name] = s
						}
					}
				}
			}
		}
		return true
	})
	str := func(e ast.Expr) (string, bool) {
		switch v := e.(type) {
		case *ast.BasicLit:
			if v.Kind == token.STRING {
				s, err := strconv.Unquote(v.Value)
				return s, err == nil
			}
		case *ast.Ident:
			s, ok := consts[v.Name]
			return s, ok
		}
		return "", false
	}
	var names []string
	ast.Inspect(f, func(n ast.Node) bool {
		switch v := n.(type) {
		case *ast.CompositeLit:
			sel, ok := v.Type.(*ast.SelectorExpr)
			if !ok || !isPkg(sel.X, "prometheus") {
				return true
			}
			var suffixes []string
			switch sel.Sel.Name {
			case "CounterOpts", "GaugeOpts":
				suffixes = []string{""}
			case "HistogramOpts":
				suffixes = []string{"_bucket", "_sum", "_count"}
			case "SummaryOpts":
				suffixes = []string{"", "_sum", "_count"}
			default:
				return true
			}
			var ns, sub, name string
			for _, el := range v.Elts {
				kv, ok := el.(*ast.KeyValueExpr)
				if !ok {
					continue
				}
				key, _ := kv.Key.(*ast.Ident)
				if key == nil {
					continue
				}
				s, ok := str(kv.Value)
				if !ok {
					continue
				}
				switch key.Name {
				case "Namespace":
					ns = s
				case "Subsystem":
					sub = s
				case "Name":
					name = s
				}
			}
			if name == "" {
				return true
			}
			full := fqName(ns, sub, name)
			for _, s := range suffixes {
				names = append(names, full+s)
			}
		case *ast.CallExpr:
			sel, ok := v.Fun.(*ast.SelectorExpr)
			if ok && isPkg(sel.X, "prometheus") && sel.Sel.Name == "NewDesc" && len(v.Args) > 0 {
				if s, ok := str(v.Args[0]); ok {
					names = append(names, s)
				}
			}
		}
		return true
	})
	return names
}

func isPkg(e ast.Expr, name string) bool {
	id, ok := e.(*ast.Ident)
	return ok && id.Name == name
}

// fqName joins the parts as prometheus.BuildFQName does.
func fqName(ns, sub, name string) string {
	var parts []string
	for _, p := range []string{ns, sub, name} {
		if p != "" {
			parts = append(parts, p)
		}
	}
	return strings.Join(parts, "_")
}

var (
	reComment    = regexp.MustCompile(`#[^\n]*`)
	reString     = regexp.MustCompile("\"(?:[^\"\\\\]|\\\\.)*\"|'(?:[^'\\\\]|\\\\.)*'|`[^`]*`")
	reVariable   = regexp.MustCompile(`\$\{[^}]*\}|\$\w+`)
	reMatchers   = regexp.MustCompile(`\{[^{}]*\}`)
	reRange      = regexp.MustCompile(`\[[^\[\]]*\]`)
	reLabelList  = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)`)
	reDuration   = regexp.MustCompile(`\b\d+(?:ms|s|m|h|d|w|y)\b`)
	reNumber     = regexp.MustCompile(`\b\d+(?:\.\d*)?(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?`)
	reIdentifier = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*`)
)

// keywords are identifiers of PromQL that are not metric names.
var keywords = []string{"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring",
	"group_left", "group_right", "inf", "nan", "Inf", "NaN", "atan2"}

// Selectors returns the metric names expr reads, sorted and without
// repeats: the names of its vector selectors. Grafana's variables ($var,
// ${var}) are ignored. It returns an error for an expression it cannot
// read (unbalanced brackets).
func Selectors(expr string) ([]string, error) {
	s := reString.ReplaceAllString(expr, `""`)
	s = reComment.ReplaceAllString(s, "")
	s = reVariable.ReplaceAllString(s, "")
	for _, re := range []*regexp.Regexp{reMatchers, reRange} {
		for {
			next := re.ReplaceAllString(s, " ")
			if next == s {
				break
			}
			s = next
		}
	}
	if strings.ContainsAny(s, "{}[]") {
		return nil, fmt.Errorf("metricnames: unbalanced brackets in %q", expr)
	}
	s = reLabelList.ReplaceAllString(s, " ")
	s = reDuration.ReplaceAllString(s, " ")
	s = reNumber.ReplaceAllString(s, " ")
	var names []string
	for _, loc := range reIdentifier.FindAllStringIndex(s, -1) {
		name := s[loc[0]:loc[1]]
		rest := strings.TrimLeft(s[loc[1]:], " \t\n")
		if strings.HasPrefix(rest, "(") || slices.Contains(keywords, name) {
			continue // a function, an aggregation (its label list is gone) or a keyword
		}
		if !slices.Contains(names, name) {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names, nil
}
