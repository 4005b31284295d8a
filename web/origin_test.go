package web

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatecheck/gatecheck/probes"
	"github.com/gatecheck/gatecheck/wizard"
	"github.com/gatecheck/gatecheck/wizard/sqlite"
)

const edgeOriginPair = "The edge answers 502 Bad Gateway; the origin answers 200 OK: the edge cannot reach the origin, or is configured with the wrong one."

// waitOrigin waits for the origin's view of a case to be stored and
// returns it as the API gives it to the caller with auth ("": the
// test's cookie, if any).
func (a *testApp) waitOrigin(token, auth string) apiVantage {
	a.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		var views []apiVantage
		if auth == "" {
			views = a.apiVantages(token)
		} else {
			_, body := a.keyDo("GET", "/api/cases/"+token, auth, "")
			views = vantagesOf(a.t, body)
		}
		for _, v := range views {
			if v.From == wizard.VantageOrigin {
				return v
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	a.t.Fatalf("the origin's view of %s was not stored", token)
	return apiVantage{}
}

func vantagesOf(t *testing.T, body string) []apiVantage {
	t.Helper()
	var doc struct{ Vantages []apiVantage }
	if err := json.Unmarshal([]byte(body), &doc); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	return doc.Vantages
}

// TestOriginCase: staff ask the origin of a case whose edge (nginx)
// answers 502, reached directly at the address of a server answering
// 200: the staff page puts the two side by side with the pair sentence,
// the comparison of runs names it, the API gives it to staff and keys,
// and anyone else with the link reads one plain line, without the
// address. Anonymous API callers may not ask it.
func TestOriginCase(t *testing.T) { testOriginCase(t, newApp(t)) }

// TestOriginCaseOnPostgres is TestOriginCase on a PostgreSQL store.
func TestOriginCaseOnPostgres(t *testing.T) { testOriginCase(t, newCluster(t, 1)[0]) }

func testOriginCase(t *testing.T, a *testApp) {
	edge := brokenGateway(t)
	origin := healthySite(t)
	addr := strings.TrimPrefix(origin.URL, "http://")
	token := a.createCase(edge.URL, "INC-77")
	a.waitProbed(token)
	visitor := *a // the visitor: no staff session

	a.signInAs("ann", wizard.RoleAgent)
	resp, page := a.do("POST", "/staff/c/"+token+"/origin", url.Values{"origin": {"origin.example.com"}})
	if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(page, "not a name") {
		t.Errorf("a name as origin: %d %s", resp.StatusCode, excerpt(page, "role=\"alert\""))
	}
	resp, _ = a.do("POST", "/staff/c/"+token+"/origin", url.Values{"origin": {addr}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("asking the origin: %d", resp.StatusCode)
	}
	view := a.waitOrigin(token, "")
	a.waitProbed(token)
	if view.Report == nil || view.Report.Verdict.Code != probes.Healthy || view.Report.Origin != addr || view.EvidenceWithheld {
		t.Errorf("the origin's view for staff: %+v", view)
	}
	_, page = a.do("GET", "/staff/c/"+token, nil)
	if !strings.Contains(unescape(page), edgeOriginPair) {
		t.Errorf("the staff page lacks the pair sentence: %s", excerpt(page, `data-testid="origin"`))
	}
	if !strings.Contains(page, "Origin reached directly at "+addr+": healthy") {
		t.Errorf("the comparison of runs does not name the origin: %s", excerpt(page, "Changed since"))
	}
	if !strings.Contains(page, "Seen from the origin, reached directly (for probe run") {
		t.Errorf("the timeline does not name the origin's view")
	}
	if !strings.Contains(page, `value="`+addr+`"`) {
		t.Errorf("the form does not keep the origin asked")
	}
	_, body := a.do("GET", "/api/cases/"+token, nil)
	if !strings.Contains(body, `"origin": "`+addr+`"`) {
		t.Errorf("the API does not give staff the origin asked: %.500s", body)
	}

	// The holder of the link: one plain line, no address, no evidence.
	_, body = visitor.do("GET", "/api/cases/"+token, nil)
	if strings.Contains(body, addr) {
		t.Errorf("the API shows the origin's address to anyone with the link: %.800s", body)
	}
	for _, v := range vantagesOf(t, body) {
		if v.From == wizard.VantageOrigin && (v.Report == nil || v.Report.Origin != "" || len(v.Report.Checks) > 0 || v.Report.Verdict.Code != probes.Healthy || !v.EvidenceWithheld) {
			t.Errorf("the origin's view without a key: %+v", v)
		}
	}
	_, page = visitor.do("GET", "/c/"+token, nil)
	if strings.Contains(page, addr) || strings.Count(page, `data-testid="origin-line"`) != 1 ||
		!strings.Contains(unescape(page), "The helpdesk also checked the site's own server directly, behind the service in front of it: it works.") {
		t.Errorf("the visitor's page: %s", excerpt(page, "origin-line"))
	}

	// The owner, on the case's page, is sent to the fix naming the split,
	// without the address.
	page = visitor.answer(token, "role-gateway", "owner")
	if title, _ := stepOf(t, page); title != "Point the edge at the origin that works" || strings.Contains(page, addr) {
		t.Errorf("the owner's next step: %q (address shown: %v)", title, strings.Contains(page, addr))
	}

	// The API: keys may ask the origin with the case; strangers may not.
	body = fmt.Sprintf(`{"url": %q, "origin": %q}`, edge.URL, addr)
	resp, text := a.keyDo("POST", "/api/cases", "", body)
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(text, "needs an API key") {
		t.Errorf("anonymous origin: %d %s", resp.StatusCode, text)
	}
	key := a.apiKey("helpdesk")
	if resp, text := a.keyDo("POST", "/api/cases", key, fmt.Sprintf(`{"url": %q, "origin": "shop.example.com"}`, edge.URL)); resp.StatusCode != http.StatusUnprocessableEntity {
		t.Errorf("a name as origin through the API: %d %s", resp.StatusCode, text)
	}
	keyed := a.apiCreate(key, body)
	if v := a.waitOrigin(keyed, key); v.Report == nil || v.Report.Verdict.Code != probes.Healthy {
		t.Errorf("the origin asked with an API key: %+v", v)
	}

	// A case already open: its own API route, for keys and staff only.
	ask := fmt.Sprintf(`{"origin": %q}`, addr)
	if resp, text := a.keyDo("POST", "/api/cases/"+keyed+"/origin", "", ask); resp.StatusCode != http.StatusForbidden || !strings.Contains(text, "needs an API key") {
		t.Errorf("anonymous origin of an open case: %d %s", resp.StatusCode, text)
	}
	if resp, text := a.keyDo("POST", "/api/cases/"+keyed+"/origin", key, `{"origin": "shop.example.com"}`); resp.StatusCode != http.StatusUnprocessableEntity {
		t.Errorf("a name as origin of an open case: %d %s", resp.StatusCode, text)
	}
	if resp, text := a.keyDo("POST", "/api/cases/nosuchcase/origin", key, ask); resp.StatusCode != http.StatusNotFound {
		t.Errorf("the origin of no case: %d %s", resp.StatusCode, text)
	}
	a.waitProbed(keyed)
	resp, text = a.keyDo("POST", "/api/cases/"+keyed+"/origin", key, ask)
	var asked struct {
		Run    int64
		Origin string
	}
	if resp.StatusCode != http.StatusAccepted || json.Unmarshal([]byte(text), &asked) != nil || asked.Run == 0 || asked.Origin != addr {
		t.Fatalf("asking the origin of an open case: %d %s", resp.StatusCode, text)
	}
	deadline := time.Now().Add(10 * time.Second)
	for v := a.waitOrigin(keyed, key); v.Run != asked.Run; v = a.waitOrigin(keyed, key) {
		if time.Now().After(deadline) {
			t.Fatalf("no origin view for run %d: %+v", asked.Run, v)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Reaching the origin is one more diagnosis of the host: it waits for
// the host's cap as a probe job does, and counts against it.
func TestOriginCountsAgainstTheHostCap(t *testing.T) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "gatecheck.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	origin := healthySite(t)
	c := &wizard.Case{URL: "http://shop.invalid/", Host: "shop.invalid", TreeVersion: wizard.Default().ID()}
	if err := db.CreateCase(ctx, c, wizard.DefaultSource()); err != nil {
		t.Fatal(err)
	}
	run, err := db.QueueProbe(ctx, c.ID, "")
	if err != nil {
		t.Fatal(err)
	}
	clock := &testClock{}
	r := NewRunner(probes.New(probes.Config{Samples: 1, AllowNets: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}), db,
		discardLog(), RunnerConfig{Workers: 1, Queue: 1, HostCap: 1, Now: clock.now})
	defer r.Close(ctx)
	addr, _ := probes.ParseOrigin(strings.TrimPrefix(origin.URL, "http://"))
	if err := r.Origin(c, run.ID, addr); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		views, _ := db.Vantages(ctx, c.ID)
		if o := wizard.Origin(views); o != nil {
			if o.Report == nil || o.Report.Verdict.Code != probes.Healthy || o.Report.Origin != addr.String() {
				t.Errorf("the origin's view: %+v", o)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the origin's view was not stored")
		}
		time.Sleep(5 * time.Millisecond)
	}
	r.mu.Lock()
	wait := r.hostWaitLocked("shop.invalid", clock.now())
	r.mu.Unlock()
	if wait <= 0 {
		t.Error("reaching the origin did not count against the host's cap")
	}
}
