package source

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"time"

	"github.com/chromedp/chromedp"
)

// ErrNoChromium is wrapped when a page needs JavaScript and no browser is installed.
var ErrNoChromium = errors.New("headless browser not found: install the Debian package `chromium` (apt-get install chromium) or set Env.Chromium")

// Bounds of a headless render.
const (
	renderTimeout = 60 * time.Second
	settlePoll    = 250 * time.Millisecond
	settleMax     = 5 * time.Second
)

// ChromiumPath returns the browser a render would use, or an error wrapping ErrNoChromium.
func ChromiumPath(env *Env) (string, error) {
	name := "chromium"
	if env != nil && env.Chromium != "" {
		name = env.Chromium
	}
	p, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("%w (%v)", ErrNoChromium, err)
	}
	return p, nil
}

// RenderChromium loads pageURL in a fresh headless Chromium (its own temporary
// profile, no background traffic) and returns the DOM once scripts have run
// and the number of links has stopped changing.
func RenderChromium(ctx context.Context, env *Env, pageURL string) ([]byte, error) {
	exe, err := ChromiumPath(env)
	if err != nil {
		return nil, err
	}
	profile, err := os.MkdirTemp("", "imgdataset-chromium-*")
	if err != nil {
		return nil, fmt.Errorf("chromium profile: %w", err)
	}
	defer os.RemoveAll(profile)

	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(exe),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(profile),
	}
	tctx, cancelT := context.WithTimeout(ctx, renderTimeout)
	defer cancelT()
	actx, cancelA := chromedp.NewExecAllocator(tctx, opts...)
	defer cancelA()
	bctx, cancelB := chromedp.NewContext(actx)
	defer cancelB()

	if err := chromedp.Do(bctx, chromedp.Navigate(pageURL), chromedp.WaitReady(chromedp.CSS("body"))); err != nil {
		return nil, fmt.Errorf("chromium %s: load %s: %w", exe, pageURL, err)
	}
	// Scripts may add links after the load event: wait until the count settles.
	last := -1
	for waited := time.Duration(0); waited < settleMax; waited += settlePoll {
		n, err := chromedp.Run(bctx, chromedp.Evaluate[int](`document.querySelectorAll("a[href]").length`))
		if err != nil {
			return nil, fmt.Errorf("chromium %s: %s: %w", exe, pageURL, err)
		}
		if n > 0 && n == last {
			break
		}
		last = n
		select {
		case <-bctx.Done():
			return nil, bctx.Err()
		case <-time.After(settlePoll):
		}
	}
	dom, err := chromedp.Run(bctx, chromedp.OuterHTML(chromedp.CSS("html")))
	if err != nil {
		return nil, fmt.Errorf("chromium %s: read DOM of %s: %w", exe, pageURL, err)
	}
	if len(dom) > maxPageBytes {
		return nil, fmt.Errorf("chromium: DOM of %s exceeds %d bytes", pageURL, maxPageBytes)
	}
	return []byte(dom), nil
}
