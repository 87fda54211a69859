package testservers

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// EnvPromtool names the promtool binary the tests of conf/prometheus run
// (`compose/devstack env` prints it once `compose/devstack tools promtool`
// has installed one).
const EnvPromtool = "TICKETING_PROMTOOL"

// DevstackPromtool is where `compose/devstack tools promtool` puts promtool,
// relative to the devstack's directory (TICKETING_DEVSTACK_DIR, by default
// .devstack at the repository's root).
const DevstackPromtool = "tools/bin/promtool"

// Promtool returns the promtool to run: $TICKETING_PROMTOOL; else the one
// `compose/devstack tools promtool` installed under
// $TICKETING_DEVSTACK_DIR (default <repo>/.devstack); else promtool on
// PATH. A TICKETING_PROMTOOL that is not executable fails the test. When
// none is found the test is skipped, or fails when CI or
// TICKETING_REQUIRE_SERVERS is set, like a missing server.
func Promtool(t testing.TB) string {
	t.Helper()
	if p := strings.TrimSpace(os.Getenv(EnvPromtool)); p != "" {
		if _, err := exec.LookPath(p); err != nil {
			t.Fatalf("%s=%s: %v", EnvPromtool, p, err)
		}
		return p
	}
	var tried []string
	if dir := devstackDir(); dir != "" {
		p := filepath.Join(dir, DevstackPromtool)
		if _, err := exec.LookPath(p); err == nil {
			return p
		}
		tried = append(tried, p)
	}
	if p, err := exec.LookPath("promtool"); err == nil {
		return p
	}
	tried = append(tried, "promtool on PATH")
	missing(t, fmt.Sprintf("no promtool (%s not set; tried %s): install it with "+
		"`compose/devstack tools promtool` (Debian's prometheus package), or set %s; "+
		"`make test` installs it", EnvPromtool, strings.Join(tried, ", "), EnvPromtool))
	return ""
}

// devstackDir is $TICKETING_DEVSTACK_DIR, or .devstack in the repository
// that holds the working directory (found by its go.mod); "" when neither.
func devstackDir() string {
	if d := os.Getenv("TICKETING_DEVSTACK_DIR"); d != "" {
		return d
	}
	dir, err := os.Getwd()
	if err != nil {
		return ""
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, ".devstack")
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}
