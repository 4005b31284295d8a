package web

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatecheck/gatecheck/wizard"
)

// countingStore counts the reads of step logs, one per page built.
type countingStore struct {
	wizard.CaseStore
	steps atomic.Int64
}

func (c *countingStore) Steps(ctx context.Context, caseID int64) ([]wizard.StepRecord, error) {
	c.steps.Add(1)
	return c.CaseStore.Steps(ctx, caseID)
}

func TestStepPageCache(t *testing.T) {
	var counter *countingStore
	var mu sync.Mutex
	now := time.Date(2026, 11, 21, 10, 15, 30, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	a := newApp(t, func(c *Config) {
		counter = &countingStore{CaseStore: c.Store}
		c.Store = counter
		c.Now = clock
	})
	gw := brokenGateway(t)
	token := a.createCase(gw.URL, "INC-9")
	a.waitProbed(token)

	get := func() string {
		t.Helper()
		resp, page := a.do("GET", "/c/"+token, nil)
		if resp.StatusCode != 200 || resp.Header.Get("Content-Security-Policy") == "" || resp.Header.Get("Cache-Control") != "no-store" {
			t.Fatalf("GET: %d %v", resp.StatusCode, resp.Header)
		}
		return page
	}
	first := get()
	built := counter.steps.Load()
	if second := get(); second != first {
		t.Error("the same case gave two different pages with nothing written between")
	}
	if n := counter.steps.Load(); n != built {
		t.Errorf("the second view read the store again (%d reads, want %d)", n, built)
	}
	// Another address for the same server gets its own case link.
	req, _ := http.NewRequest("GET", a.ts.URL+"/c/"+token, nil)
	req.Host = "gatecheck.example"
	resp, err := a.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if other := string(body); resp.StatusCode != 200 || !strings.Contains(other, "http://gatecheck.example/c/"+token) {
		t.Errorf("the page under another host name shows another host's link")
	}

	// An answer changes the page at once.
	a.answer(token, "role-gateway", "user")
	if page := get(); !strings.Contains(page, "Wait a few minutes, then try again") {
		t.Errorf("after an answer the page still shows the old step")
	}
	// So do Back, a staff status change and a re-run of the probes.
	a.do("POST", "/c/"+token+"/back", url.Values{})
	if page := get(); !strings.Contains(page, "Who are you in this?") {
		t.Errorf("after Back the page still shows the old step")
	}
	before := counter.steps.Load()
	get()
	if counter.steps.Load() != before {
		t.Error("the page after Back was not kept")
	}
	if err := a.srv.cfg.Store.SetStatus(context.Background(), a.caseID(token), wizard.StatusEscalated, "ann"); err != nil {
		t.Fatal(err)
	}
	get()
	if counter.steps.Load() == before {
		t.Error("a status change did not drop the kept page")
	}

	// Pages lapse with the minute: an escalation summary shows the time.
	a.answer(token, "role-gateway", "owner")
	a.answer(token, "owner-backup", "done")
	a.answer(token, "owner-logs", "broken")
	get()
	kept := counter.steps.Load()
	get()
	if counter.steps.Load() != kept {
		t.Error("a page was built again within its minute")
	}
	mu.Lock()
	now = now.Add(time.Minute)
	mu.Unlock()
	get()
	if counter.steps.Load() != kept+1 {
		t.Errorf("a page outlived its minute (%d reads, want %d)", counter.steps.Load(), kept+1)
	}
}

// TestPageCacheRefusesPagesReadBeforeAWrite is the rule the cache rests
// on: a page read before a write to its case finished is neither kept nor
// served, while pages of other cases are.
func TestPageCacheRefusesPagesReadBeforeAWrite(t *testing.T) {
	at := time.Date(2026, 11, 21, 10, 15, 0, 0, time.UTC)
	pc := newPageCache(func() time.Time { return at }, 1<<20)
	from := pc.begin()
	pc.written(7) // lands while case 7's page renders
	pc.put("seven", 7, 0, from, at.Add(time.Minute), []byte("old"), "")
	if _, ok := pc.get("seven"); ok {
		t.Error("a page read before a write to its case was kept")
	}
	pc.put("eight", 8, 0, from, at.Add(time.Minute), []byte("fine"), "")
	if _, ok := pc.get("eight"); !ok {
		t.Error("a write to another case dropped this one's page")
	}
	from = pc.begin()
	pc.put("seven", 7, 0, from, at.Add(time.Minute), []byte("new"), "")
	if p, ok := pc.get("seven"); !ok || string(p.body) != "new" {
		t.Errorf("a page read after the write: %v", ok)
	}
	pc.written(7) // a later write makes the kept page stale
	if _, ok := pc.get("seven"); ok {
		t.Error("a kept page outlived a write to its case")
	}
	pc.put("nine", 9, 0, pc.begin(), at.Add(time.Minute), []byte("x"), "")
	pc.written(0) // a write to every case
	if _, ok := pc.get("nine"); ok {
		t.Error("a page outlived a write to every case")
	}
	// Bounded: pages beyond maxBytes push older ones out.
	small := newPageCache(func() time.Time { return at }, 800)
	for i := range 20 {
		small.put(fmt.Sprint(i), int64(i), 0, small.begin(), at.Add(time.Minute), make([]byte, 100), "")
	}
	if small.bytes > 800 || len(small.pages) > 8 {
		t.Errorf("cache holds %d bytes in %d pages, over its 800", small.bytes, len(small.pages))
	}
}

// caseID looks a case's ID up by its token.
func (a *testApp) caseID(token string) int64 {
	a.t.Helper()
	c, err := a.db.Case(context.Background(), token)
	if err != nil {
		a.t.Fatal(err)
	}
	return c.ID
}

// TestStepPageCacheUnderWrites reads and writes one case from many
// goroutines; when the writes stop, the page must show the last answer.
func TestStepPageCacheUnderWrites(t *testing.T) {
	a := newApp(t)
	gw := brokenGateway(t)
	token := a.createCase(gw.URL, "")
	a.waitProbed(token)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if resp, err := http.Get(a.ts.URL + "/c/" + token); err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			}
		}()
	}
	choices := []string{"owner", "user", "monitor"}
	for i := range 60 {
		a.do("POST", "/c/"+token+"/answer", url.Values{"node": {"role-gateway"}, "choice": {choices[i%3]}})
	}
	close(stop)
	wg.Wait()
	// The last answer was choices[59%3] = "monitor".
	_, page := a.do("GET", "/c/"+token, nil)
	if !strings.Contains(page, "Work with the monitoring service") {
		t.Errorf("after the writes the page does not show the last answer's step")
	}
}

// TestClusterStepPageNeverStale: a step page kept on instance A is not
// served once another instance, B, writes to its case (an answer, a reply
// to the visitor, a status, a notice of its host), although A hears
// nothing of it; while nothing is written, A keeps serving the page
// without building it again.
func TestClusterStepPageNeverStale(t *testing.T) {
	var counters []*countingStore
	apps := newCluster(t, 2, func(c *Config) {
		counter := &countingStore{CaseStore: c.Store}
		c.Store, counters = counter, append(counters, counter)
	})
	a, b := apps[0], apps[1]
	b.addStaff("ann", wizard.RoleAgent)
	b.signIn("ann", staffPassword)
	gw := brokenGateway(t)
	token := a.createCase(gw.URL, "INC-9")
	a.waitProbed(token)

	// page gets A's page twice: the second must come from A's memory.
	page := func(when string) string {
		t.Helper()
		resp, first := a.do("GET", "/c/"+token, nil)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: GET on A: %d", when, resp.StatusCode)
		}
		built := counters[0].steps.Load()
		if _, again := a.do("GET", "/c/"+token, nil); again != first || counters[0].steps.Load() != built {
			t.Errorf("%s: A built its page again with nothing written", when)
		}
		return first
	}
	if p := page("first"); !strings.Contains(p, "Who are you in this?") {
		t.Fatalf("the case does not stand on the first question")
	}
	staff := func(path string, form url.Values) {
		t.Helper()
		if resp, body := b.do("POST", "/staff/c/"+token+path, form); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("POST %s on B: %d %.300s", path, resp.StatusCode, body)
		}
	}
	for _, w := range []struct {
		what  string
		write func()
		shows string
	}{
		{"an answer on B", func() { b.answer(token, "role-gateway", "user") }, "Wait a few minutes, then try again"},
		{"a reply on B", func() {
			staff("/notes", url.Values{"body": {"We restarted the application server."}, "to": {"visitor"}})
		}, "We restarted the application server."},
		{"a status on B", func() { staff("/status", url.Values{"status": {"resolved"}}) }, "Resolved by the helpdesk at "},
		{"a notice on B", func() {
			host := strings.TrimPrefix(gw.URL, "http://")
			host = host[:strings.LastIndexByte(host, ':')]
			if err := b.srv.cfg.Store.PublishNotice(context.Background(), &wizard.Notice{Host: host, Body: "We know the shop is down.", Author: "ann"}); err != nil {
				t.Fatal(err)
			}
		}, "We know the shop is down."},
	} {
		w.write()
		if p := page("after " + w.what); !strings.Contains(p, w.shows) {
			t.Errorf("after %s, A's page does not show %q", w.what, w.shows)
		}
	}
}
