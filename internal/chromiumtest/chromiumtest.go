// Package chromiumtest starts a headless Chromium for tests that drive the
// edge's pages (github.com/chromedp/chromedp). The browser is Debian's
// chromium package, which `make test` installs (compose/devstack tools
// chromium); a test that needs it fails, never skips, when it is missing.
package chromiumtest

import (
	"context"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// Path is where the browser is looked for when TICKETING_CHROMIUM is not
// set: Debian's chromium package.
const Path = "/usr/bin/chromium"

// Flags are the command-line switches that run Chromium headless in a
// container or CI runner as root: no sandbox (it needs user namespaces),
// no GPU, and none of the background traffic to Google's services.
var Flags = []chromedp.ExecAllocatorOption{
	chromedp.Flag("headless", true),
	chromedp.Flag("no-sandbox", true),
	chromedp.Flag("disable-gpu", true),
	chromedp.Flag("disable-quic", true),
	chromedp.Flag("no-first-run", true),
	chromedp.Flag("no-default-browser-check", true),
	chromedp.Flag("disable-background-networking", true),
	chromedp.Flag("disable-component-update", true),
	chromedp.Flag("disable-sync", true),
	chromedp.Flag("disable-extensions", true),
	chromedp.Flag("disable-dev-shm-usage", true),
}

// ExecPath returns the Chromium to run: $TICKETING_CHROMIUM, else Path. It
// fails the test when there is none.
func ExecPath(t testing.TB) string {
	t.Helper()
	p := os.Getenv("TICKETING_CHROMIUM")
	if p == "" {
		p = Path
	}
	if _, err := exec.LookPath(p); err != nil {
		t.Fatalf("no Chromium at %s (%v): install Debian's chromium package (compose/devstack tools chromium) or set TICKETING_CHROMIUM", p, err)
	}
	return p
}

// New starts a headless Chromium with a fresh profile and returns a
// browser tab's context, cancelled (closing the browser) when the test
// ends or after timeout. Console messages and uncaught exceptions of the
// page are logged with t.Logf.
func New(t testing.TB, timeout time.Duration) context.Context {
	t.Helper()
	opts := append([]chromedp.ExecAllocatorOption{
		chromedp.ExecPath(ExecPath(t)),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1024, 768),
	}, Flags...)
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf), chromedp.WithListener(consoleLogger(t)))
	ctx, tcancel := context.WithTimeout(ctx, timeout)
	t.Cleanup(func() {
		tcancel()
		cancel()
		acancel()
	})
	// Start the browser now, so that a broken installation fails here
	// with its own error rather than in the test's first action.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting Chromium: %v", err)
	}
	return ctx
}
