package dashboard

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// Browser tests load every page in headless Chromium from Debian (the
// chromium package, installed by scripts/test-deps.sh) against a real
// broker with a generator pipeline, and fail on any JavaScript exception
// or console error. With CREEK_SCREENSHOTS=DIR they save a screenshot of
// each page there (docs/images holds the committed ones).

// chromiumPath finds Debian's Chromium.
func chromiumPath() string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// browser is a headless Chromium tab that records JavaScript errors.
type browser struct {
	ctx    context.Context
	mu     sync.Mutex
	errors []string
}

func newBrowser(t testing.TB) *browser {
	t.Helper()
	path := chromiumPath()
	if path == "" {
		t.Skip("browser tests skipped: no Chromium found (Debian: apt-get install chromium; make test-deps installs it)")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path), chromedp.NoSandbox, chromedp.DisableGPU, chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-component-update", true), chromedp.WindowSize(1400, 900), chromedp.Flag("lang", "en-US"))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	b := &browser{ctx: ctx}
	listenErr := chromedp.Listen(ctx, func(ev any) {
		var msg string
		switch ev := ev.(type) {
		case *runtime.EventExceptionThrown:
			d := ev.ExceptionDetails
			msg = fmt.Sprintf("exception: %s at %s:%d:%d", d.Text, d.URL, d.LineNumber+1, d.ColumnNumber+1)
			if d.Exception != nil {
				msg += " " + d.Exception.Description
			}
		case *runtime.EventConsoleAPICalled:
			if ev.Type == runtime.ConsoleAPICalledTypeError {
				var parts []string
				for _, a := range ev.Args {
					parts = append(parts, string(a.Value)+a.Description)
				}
				msg = "console.error: " + strings.Join(parts, " ")
			}
		case *cdplog.EventEntryAdded:
			if ev.Entry.Level == cdplog.EntryLevelError {
				msg = "log: " + ev.Entry.Text + " " + ev.Entry.URL
			}
		}
		if msg != "" {
			b.mu.Lock()
			b.errors = append(b.errors, msg)
			b.mu.Unlock()
		}
	})
	if listenErr != nil {
		t.Fatalf("start Chromium (%s): %v", path, listenErr)
	}
	if err := chromedp.Do(ctx); err != nil { // starts Chromium; chromedp enables the Runtime and Log events
		t.Fatalf("start Chromium (%s): %v", path, err)
	}
	return b
}

func (b *browser) jsErrors() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.errors...)
}

// waitJS polls a JavaScript expression until it is true.
func (b *browser) waitJS(t testing.TB, what, expr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](expr, chromedp.WithPollingInterval(100*time.Millisecond))); err != nil {
		html, _ := chromedp.Run(b.ctx, chromedp.Evaluate[string](`document.getElementById("page").innerText.slice(0, 2000)`))
		t.Fatalf("%s: %v (%s)\npage shows:\n%s", what, err, expr, html)
	}
}

func evalJS[T any](t testing.TB, b *browser, expr string) T {
	t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

func (b *browser) screenshot(t testing.TB, name string) {
	dir := os.Getenv("CREEK_SCREENSHOTS")
	if dir == "" {
		return
	}
	chromedp.Do(b.ctx, chromedp.Sleep(300*time.Millisecond))
	png, err := chromedp.Run(b.ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(dir, "dashboard-"+name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestPagesInChromium(t *testing.T) {
	if chromiumPath() == "" {
		newBrowser(t) // skips, saying why
	}
	s := startStack(t, stackOptions{rate: 30})
	b := newBrowser(t) // closed before the stack, whose server waits for the page's event stream
	waitFor(t, "tweets in the topic", func() bool { return get[overview](t, s.url+"/api/overview").Records > 30 })
	nav := func(hash string) {
		if err := chromedp.Do(b.ctx, chromedp.Navigate(s.url+"/"+hash)); err != nil {
			t.Fatalf("open %s: %v", hash, err)
		}
	}

	nav("#/")
	b.waitJS(t, "the overview's live tweets", `document.querySelectorAll("#tweets li .tweet .text").length >= 3`)
	b.waitJS(t, "the diagram with the topic and the group", `!!document.querySelector('svg.diagram g.node.topic') && !!document.querySelector('svg.diagram g.node[data-id="g:readers"]')`)
	before := evalJS[string](t, b, `document.getElementById("stat-records").textContent`)
	b.waitJS(t, "the record count to move", fmt.Sprintf(`document.getElementById("stat-records").textContent !== %q`, before))
	b.waitJS(t, "a moving flow", `!!document.querySelector("svg.diagram path.flow.moving")`)
	b.screenshot(t, "overview")

	nav("#/pipeline")
	b.waitJS(t, "the pipelines table", `document.querySelectorAll("#pipes tr").length === 3 && document.getElementById("pipes").innerText.includes("archive")`)
	b.screenshot(t, "pipeline")

	nav("#/topics")
	b.waitJS(t, "the topics table", `[...document.querySelectorAll("#list td a")].some(a => a.textContent === "tweets")`)
	b.screenshot(t, "topics")

	nav("#/topics/tweets")
	b.waitJS(t, "the topic's configs and partitions", `document.getElementById("configs").innerText.includes("retention.bytes") && document.querySelectorAll("#parts tr").length === 3 && !!document.querySelector("#parts .bar")`)
	b.screenshot(t, "topic")

	nav("#/groups")
	b.waitJS(t, "the groups table", `document.getElementById("list").innerText.includes("readers") && !!document.querySelector("#list svg.spark")`)
	b.screenshot(t, "groups")

	nav("#/groups/readers")
	b.waitJS(t, "the group's members and partitions", `document.querySelectorAll("#members tr").length === 2 && document.querySelectorAll("#parts tr").length === 3 && !!document.querySelector("canvas#lag")`)
	b.screenshot(t, "group")

	nav("#/live")
	b.waitJS(t, "live tweets", `document.querySelectorAll("#tweets li .tweet .text").length >= 5`)
	// Paused, the list stands still while records keep arriving.
	shown := evalJS[int](t, b, `document.getElementById("pause").click(); document.querySelectorAll("#tweets li").length`)
	b.waitJS(t, "records to wait while paused", `/paused, [1-9]/.test(document.getElementById("info").textContent)`)
	still := evalJS[int](t, b, `document.querySelectorAll("#tweets li").length`)
	if still != shown {
		t.Fatalf("the paused list changed from %d to %d", shown, still)
	}
	evalJS[int](t, b, `document.getElementById("pause").click(); 0`)
	b.waitJS(t, "a language to filter by", `document.getElementById("f-lang").options.length > 1`)
	evalJS[int](t, b, `{ const sel = document.getElementById("f-lang"); sel.value = sel.options[1].value; sel.dispatchEvent(new Event("change")); } 0`)
	b.waitJS(t, "only that language shown", `(() => { const l = document.getElementById("f-lang").value; const ls = [...document.querySelectorAll("#tweets .lang")].map(e => e.textContent); return ls.length > 0 && ls.every(x => x === l); })()`)
	evalJS[int](t, b, `{ const sel = document.getElementById("f-lang"); sel.value = ""; sel.dispatchEvent(new Event("change")); } 0`)
	b.screenshot(t, "live")

	nav("#/messages?topic=tweets")
	b.waitJS(t, "browsed records", `document.querySelectorAll("#m-list li .tweet").length >= 10 && /record\(s\) from offset/.test(document.getElementById("m-info").textContent)`)
	b.screenshot(t, "messages")

	nav("#/analytics")
	b.waitJS(t, "analytics counts", `parseInt((document.getElementById("a-total") || {textContent: "0"}).textContent.replace(/,/g, ""), 10) > 10 && document.querySelectorAll("#a-tags li").length > 1`)
	b.screenshot(t, "analytics")

	if errs := b.jsErrors(); len(errs) > 0 {
		t.Fatalf("JavaScript errors:\n%s", strings.Join(errs, "\n"))
	}
}
