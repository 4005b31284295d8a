package web

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatecheck/gatecheck/probes"
	"github.com/gatecheck/gatecheck/wizard"
	"github.com/gatecheck/gatecheck/wizard/sqlite"
)

// receiver is a ticket system's webhook endpoint on loopback: it checks
// each body's signature with the secret and keeps what it took; answers
// it is told to give come first.
type receiver struct {
	*httptest.Server
	secret string
	mu     sync.Mutex
	fail   []int // statuses to answer before taking deliveries
	got    []received
	bad    []string // what was wrong with refused requests
}

type received struct {
	event, delivery string
	body            []byte
	doc             map[string]any
}

// newReceiver starts a receiver, on ln if given.
func newReceiver(t *testing.T, secret string, ln ...net.Listener) *receiver {
	rc := &receiver{secret: secret}
	rc.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		defer rc.mu.Unlock()
		mac := hmac.New(sha256.New, []byte(rc.secret))
		mac.Write(body)
		if want := "sha256=" + hex.EncodeToString(mac.Sum(nil)); rc.secret != "" && !hmac.Equal([]byte(r.Header.Get("X-Gatecheck-Signature")), []byte(want)) {
			rc.bad = append(rc.bad, "signature "+r.Header.Get("X-Gatecheck-Signature"))
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		if len(rc.fail) > 0 {
			code := rc.fail[0]
			rc.fail = rc.fail[1:]
			http.Error(w, "not now", code)
			return
		}
		var doc map[string]any
		json.Unmarshal(body, &doc)
		rc.got = append(rc.got, received{event: r.Header.Get("X-Gatecheck-Event"), delivery: r.Header.Get("X-Gatecheck-Delivery"), body: body, doc: doc})
		w.WriteHeader(http.StatusNoContent)
	}))
	if len(ln) > 0 {
		rc.Listener.Close()
		rc.Listener = ln[0]
	}
	rc.Start()
	t.Cleanup(rc.Close)
	return rc
}

// events returns the events taken, in order.
func (rc *receiver) events() []string {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	var out []string
	for _, g := range rc.got {
		out = append(out, g.event)
	}
	return out
}

func (rc *receiver) last(event string) received {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	for i := len(rc.got) - 1; i >= 0; i-- {
		if rc.got[i].event == event {
			return rc.got[i]
		}
	}
	return received{}
}

// hookApp is an application posting events to urls, signed with secret,
// with a clock the test moves.
func hookApp(t *testing.T, clock *testClock, secret string, urls ...string) *testApp {
	return outageApp(t, func(c *Config) {
		c.Now, c.WebhookTick, c.WebhookURLs, c.WebhookSecret = clock.now, 10*time.Millisecond, urls, secret
		c.WatchTick = 10 * time.Millisecond
		c.BaseURL = "https://gatecheck.example"
	})
}

// TestWebhookEvents: each event reaches a real receiver, signed, with the
// case as it was: created, escalated, resolved, and an incident opened by
// the third report of a site.
func TestWebhookEvents(t *testing.T) {
	rc := newReceiver(t, "s3cret")
	clock := &testClock{}
	a := hookApp(t, clock, "s3cret", rc.URL+"/hooks")
	site := newGatedSite(t, "127.0.0.1")
	hash, _ := HashPassword("correct horse battery")
	a.db.CreateUser(context.Background(), "ann", hash, wizard.RoleAdmin)
	a.signIn("ann", "correct horse battery")

	tok := a.report(site.URL+"/shop", "198.51.100.1")
	a.waitProbed(tok)
	waitFor(t, "case.created", func() bool { return slices.Contains(rc.events(), wizard.EventCaseCreated) })
	got := rc.last(wizard.EventCaseCreated)
	c, _ := got.doc["case"].(map[string]any)
	if got.doc["event"] != "case.created" || c["token"] != tok || c["link"] != "https://gatecheck.example/c/"+tok ||
		c["url"] != site.URL+"/shop" || c["status"] != "open" || got.delivery == "" {
		t.Errorf("case.created: %s", got.body)
	}

	a.do("POST", "/staff/c/"+tok+"/status", url.Values{"status": {"escalated"}})
	a.do("POST", "/staff/c/"+tok+"/status", url.Values{"status": {"resolved"}})
	waitFor(t, "case.escalated and case.resolved", func() bool {
		ev := rc.events()
		return slices.Contains(ev, wizard.EventCaseEscalated) && slices.Contains(ev, wizard.EventCaseResolved)
	})
	if c, _ := rc.last(wizard.EventCaseEscalated).doc["case"].(map[string]any); c["status"] != "escalated" || c["verdict"] != "gateway_502" || c["gateway"] != "nginx" {
		t.Errorf("case.escalated: %s", rc.last(wizard.EventCaseEscalated).body)
	}

	// The first report is resolved: two more make two, then three make an
	// incident, once.
	for i := range 4 {
		a.waitProbed(a.report(site.URL+"/shop", fmt.Sprintf("198.51.100.%d", i+2)))
	}
	waitFor(t, "incident.opened", func() bool { return slices.Contains(rc.events(), wizard.EventIncidentOpened) })
	time.Sleep(50 * time.Millisecond)
	n := 0
	for _, e := range rc.events() {
		if e == wizard.EventIncidentOpened {
			n++
		}
	}
	inc, _ := rc.last(wizard.EventIncidentOpened).doc["incident"].(map[string]any)
	if n != 1 || inc["host"] != "127.0.0.1" || inc["verdict"] != "gateway_502" || inc["reports"] != float64(3) {
		t.Errorf("%d incident.opened: %s", n, rc.last(wizard.EventIncidentOpened).body)
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if len(rc.bad) > 0 {
		t.Errorf("refused: %v", rc.bad)
	}
}

// TestWebhookRetriesAndRecovery: a destination answering 500 gets the
// event again after the backoff; a watched case that works again sends
// case.recovered; the staff page shows each delivery's attempts.
func TestWebhookRetriesAndRecovery(t *testing.T) {
	rc := newReceiver(t, "s3cret")
	rc.fail = []int{http.StatusInternalServerError}
	clock := &testClock{}
	a := hookApp(t, clock, "s3cret", rc.URL)
	site := newSwitchSite(t)
	tok := a.watchedReport(site.URL+"/", "198.51.100.1")
	a.waitProbed(tok)
	deliveries := func() []*wizard.Delivery {
		ds, err := a.db.Deliveries(context.Background(), 10)
		if err != nil {
			t.Fatal(err)
		}
		return ds
	}
	waitFor(t, "the failed attempt", func() bool { ds := deliveries(); return len(ds) == 1 && ds[0].Attempts == 1 })
	if d := deliveries()[0]; d.State != wizard.DeliveryPending || d.LastStatus != 500 || !strings.Contains(d.LastError, "500") {
		t.Fatalf("after a 500: %+v", d)
	}
	if len(rc.events()) != 0 {
		t.Fatal("the refused delivery counted as taken")
	}
	clock.advance(6 * time.Second) // past the first backoff
	waitFor(t, "the retry", func() bool { return slices.Contains(rc.events(), wizard.EventCaseCreated) })
	if d := deliveries()[0]; d.State != wizard.DeliveryDelivered || d.Attempts != 2 {
		t.Errorf("after the retry: %+v", d)
	}

	site.fixed.Store(true)
	clock.advance(61 * time.Second) // the watch's first check
	waitFor(t, "case.recovered", func() bool { return slices.Contains(rc.events(), wizard.EventCaseRecovered) })
	if c, _ := rc.last(wizard.EventCaseRecovered).doc["case"].(map[string]any); c["recovered_at"] == nil || c["verdict"] != "healthy" {
		t.Errorf("case.recovered: %s", rc.last(wizard.EventCaseRecovered).body)
	}

	m := a.scrape()
	if r, d := value(m, "gatecheck_webhook_deliveries_total", "result", "retry"), value(m, "gatecheck_webhook_deliveries_total", "result", "delivered"); r != 1 || d != 2 {
		t.Errorf("webhook deliveries in the metrics: %v retried, %v delivered; want 1 and 2", r, d)
	}
	hash, _ := HashPassword("correct horse battery")
	a.db.CreateUser(context.Background(), "ann", hash, wizard.RoleAdmin)
	a.signIn("ann", "correct horse battery")
	_, page := a.do("GET", "/staff/webhooks", nil)
	if !strings.Contains(page, rc.URL) || !strings.Contains(page, `data-state="delivered"`) || !strings.Contains(page, "case.recovered") {
		t.Errorf("the webhooks page: %s", excerpt(page, "deliveries"))
	}
}

// TestWebhookDeliveryAfterRestart: an event whose destination was down
// when the server stopped is delivered by the next server on the same
// database.
func TestWebhookDeliveryAfterRestart(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "gatecheck.db")
	// A destination that is down: a port nothing listens on.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := "http://" + l.Addr().String() + "/hooks"
	l.Close()
	start := func(now func() time.Time, urls ...string) (*Server, *sqlite.DB) {
		db, err := sqlite.Open(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		srv := New(Config{Store: db, Webhooks: db, WebhookURLs: urls, Now: now, WebhookTick: 10 * time.Millisecond, Tree: wizard.Default(),
			TreeSource: wizard.DefaultSource(), Logger: discardLog(), Prober: probes.New(probes.Config{})})
		if err := srv.Start(ctx); err != nil {
			t.Fatal(err)
		}
		return srv, db
	}
	srv, db := start(time.Now, down)
	c := &wizard.Case{URL: "https://shop.example/", Host: "shop.example", TreeVersion: wizard.Default().ID()}
	if err := db.CreateCase(ctx, c, nil); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the failed attempt", func() bool { ds, _ := db.Deliveries(ctx, 1); return len(ds) == 1 && ds[0].Attempts == 1 })
	srv.Close(ctx)
	db.Close()

	// The same address, up now; the event is still due after its backoff.
	ln, err := net.Listen("tcp", strings.TrimPrefix(strings.TrimSuffix(down, "/hooks"), "http://"))
	if err != nil {
		t.Skipf("the port was taken meanwhile: %v", err)
	}
	rc := newReceiver(t, "", ln)
	// Past the first backoff.
	srv, db = start(func() time.Time { return time.Now().Add(webhookBackoff[0]) }, down)
	defer func() { srv.Close(ctx); db.Close() }()
	waitFor(t, "the delivery after the restart", func() bool { return slices.Contains(rc.events(), wizard.EventCaseCreated) })
}

// TestWebhookDestinations: staff add a destination with a body template
// (a bad address or template is refused, the form kept); it gets the next
// event in its own shape; disabled, it gets nothing more; a flag-set
// destination dropped from the flags is disabled at the next start.
func TestWebhookDestinations(t *testing.T) {
	rc := newReceiver(t, "")
	clock := &testClock{}
	a := hookApp(t, clock, "")
	hash, _ := HashPassword("correct horse battery")
	a.db.CreateUser(context.Background(), "ann", hash, wizard.RoleAdmin)
	a.signIn("ann", "correct horse battery")
	for _, bad := range []url.Values{
		{"url": {"ftp://tickets.example/"}},
		{"url": {"https://user:pw@tickets.example/"}},
		{"url": {rc.URL}, "template": {"{{.Nope"}},
		{"url": {rc.URL}, "template": {"{{.Case.Nope}}"}},
	} {
		resp, page := a.do("POST", "/staff/webhooks", bad)
		if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(page, `role="alert"`) || !strings.Contains(page, `value="`+bad.Get("url")) {
			t.Errorf("%v: %d %s", bad, resp.StatusCode, excerpt(page, "alert"))
		}
	}
	resp, _ := a.do("POST", "/staff/webhooks", url.Values{"url": {rc.URL}, "template": {`{"text": {{json .Event}}, "site": {{json .Case.URL}}}`}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("add: %d", resp.StatusCode)
	}
	site := newGatedSite(t, "127.0.0.1")
	a.report(site.URL+"/", "198.51.100.1")
	waitFor(t, "the templated event", func() bool { return len(rc.events()) == 1 })
	if got := rc.last(wizard.EventCaseCreated); string(got.body) != `{"text": "case.created", "site": "`+site.URL+`/"}` {
		t.Errorf("templated body: %s", got.body)
	}
	hooks, _ := a.db.Webhooks(context.Background())
	if resp, _ := a.do("POST", "/staff/webhooks/"+strconv.FormatInt(hooks[0].ID, 10)+"/disable", nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("disable: %d", resp.StatusCode)
	}
	a.report(site.URL+"/other", "198.51.100.2")
	time.Sleep(100 * time.Millisecond)
	if n := len(rc.events()); n != 1 {
		t.Errorf("a disabled destination got %d events", n)
	}
	if resp, _ := a.do("POST", "/staff/webhooks/999/disable", nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("disable no webhook: %d", resp.StatusCode)
	}

	// An agent sees the page but changes nothing.
	hash, _ = HashPassword("correct horse battery")
	a.db.CreateUser(context.Background(), "dan", hash, wizard.RoleAgent)
	a.signIn("dan", "correct horse battery")
	if resp, page := a.do("GET", "/staff/webhooks", nil); resp.StatusCode != http.StatusOK || !strings.Contains(page, "Only admins add or disable destinations") || strings.Contains(page, `id="webhook-url"`) {
		t.Errorf("the webhooks page for an agent: %d %s", resp.StatusCode, excerpt(page, "admins-only"))
	}
	if resp, _ := a.do("POST", "/staff/webhooks", url.Values{"url": {rc.URL}}); resp.StatusCode != http.StatusForbidden {
		t.Errorf("an agent adding a destination: %d", resp.StatusCode)
	}

	// Flags: given, then dropped.
	ctx := context.Background()
	if err := a.db.SyncFlagWebhooks(ctx, []string{"http://127.0.0.1:1/a", "http://127.0.0.1:1/b"}, "k"); err != nil {
		t.Fatal(err)
	}
	if err := a.db.SyncFlagWebhooks(ctx, []string{"http://127.0.0.1:1/b"}, "k"); err != nil {
		t.Fatal(err)
	}
	enabled := map[string]bool{}
	hooks, _ = a.db.Webhooks(ctx)
	for _, h := range hooks {
		if h.Source == "flag" && h.DisabledAt.IsZero() {
			enabled[h.URL] = true
		}
	}
	if len(enabled) != 1 || !enabled["http://127.0.0.1:1/b"] {
		t.Errorf("flag webhooks after dropping one: %v", enabled)
	}
}
