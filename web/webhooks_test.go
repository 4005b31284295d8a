package web

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
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

// loopbackHooks lets admins' destinations reach loopback, where the
// tests' receivers listen (gatecheck serve --allow-webhook-net 127.0.0.0/8
// --allow-webhook-net ::1).
func loopbackHooks(c *Config) {
	c.WebhookAllowNets = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}
}

// staffHookApp is hookApp with admins' destinations allowed on loopback.
func staffHookApp(t *testing.T, clock *testClock) *testApp {
	return outageApp(t, func(c *Config) {
		c.Now, c.WebhookTick, c.WatchTick = clock.now, 10*time.Millisecond, 10*time.Millisecond
		c.BaseURL = "https://gatecheck.example"
		loopbackHooks(c)
	})
}

// signInAs makes an account of role and signs in with it.
func (a *testApp) signInAs(name string, role wizard.Role) {
	a.t.Helper()
	hash, _ := HashPassword("correct horse battery")
	if _, err := a.db.CreateUser(context.Background(), name, hash, role); err != nil {
		a.t.Fatal(err)
	}
	a.signIn(name, "correct horse battery")
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
	a := staffHookApp(t, clock)
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

// deliveriesOf returns the latest deliveries, failing the test on error.
func (a *testApp) deliveriesOf() []*wizard.Delivery {
	a.t.Helper()
	ds, err := a.db.Deliveries(context.Background(), 100)
	if err != nil {
		a.t.Fatal(err)
	}
	return ds
}

// TestWebhookAgentsSeeNoSecrets: a destination whose address is its
// secret (as Slack's are) answers with a secret in its body; an agent's
// webhooks page shows the destination by scheme and host only, and no
// answer text; an admin's shows both whole.
func TestWebhookAgentsSeeNoSecrets(t *testing.T) {
	leaky := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, `{"error": "invalid_auth", "token": "xoxb-0000-LEAKED"}`, http.StatusForbidden)
	}))
	t.Cleanup(leaky.Close)
	dest := leaky.URL + "/services/T0001/B0002/SlackPathSecret?key=QuerySecret"
	clock := &testClock{}
	a := staffHookApp(t, clock)
	a.signInAs("ann", wizard.RoleAdmin)
	if resp, page := a.do("POST", "/staff/webhooks", url.Values{"url": {dest}, "secret": {"s3cret"}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("add: %d %s", resp.StatusCode, excerpt(page, "alert"))
	}
	site := newGatedSite(t, "127.0.0.1")
	a.report(site.URL+"/", "198.51.100.1")
	waitFor(t, "the refused attempt", func() bool { ds := a.deliveriesOf(); return len(ds) == 1 && ds[0].Attempts == 1 })
	if d := a.deliveriesOf()[0]; !strings.Contains(d.LastError, "xoxb-0000-LEAKED") {
		t.Fatalf("the recorded answer: %+v", d)
	}
	secrets := []string{"SlackPathSecret", "QuerySecret", "T0001", "xoxb-0000-LEAKED", "invalid_auth", "s3cret"}

	_, page := a.do("GET", "/staff/webhooks", nil)
	for _, want := range []string{"SlackPathSecret?key=QuerySecret", "xoxb-0000-LEAKED"} {
		if !strings.Contains(page, want) {
			t.Errorf("the admin's page lacks %q", want)
		}
	}

	a.signInAs("dan", wizard.RoleAgent)
	resp, page := a.do("GET", "/staff/webhooks", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("the agent's page: %d", resp.StatusCode)
	}
	for _, secret := range secrets {
		if strings.Contains(page, secret) {
			t.Errorf("an agent sees %q: %s", secret, excerpt(page, secret))
		}
	}
	if n := strings.Count(page, leaky.URL+"/…"); n != 2 { // destinations and deliveries
		t.Errorf("the agent's page shows the destination %d times as %s/…: %s", n, leaky.URL, excerpt(page, "Destinations"))
	}
	if !strings.Contains(page, "403") || !strings.Contains(page, "(the details are for admins)") {
		t.Errorf("the agent's page lacks the answer's status: %s", excerpt(page, "deliveries"))
	}
}

func TestRedactURL(t *testing.T) {
	for raw, want := range map[string]string{
		"https://hooks.slack.com/services/T0/B0/XXXX": "https://hooks.slack.com/…",
		"https://tickets.example/hook?token=x":        "https://tickets.example/…",
		"https://tickets.example:8443/?":              "https://tickets.example:8443/…",
		"https://tickets.example#frag":                "https://tickets.example/…",
		"http://user:pw@tickets.example/":             "http://tickets.example/…",
		"https://tickets.example/":                    "https://tickets.example/",
		"https://tickets.example":                     "https://tickets.example/",
		"http://[::1]:9/x":                            "http://[::1]:9/…",
		"not a url %zz":                               "(hidden)",
	} {
		if got := redactURL(raw); got != want {
			t.Errorf("redactURL(%q) = %q, want %q", raw, got, want)
		}
	}
}

// TestWebhookTemplateBounds: body templates that would make a huge body,
// run for ever or make huge texts in between are refused when added (422,
// the form kept), quickly; a template stored before these bounds, or one
// that breaks them only on a real event, fails its delivery for good with
// the reason recorded, and the destination gets nothing.
func TestWebhookTemplateBounds(t *testing.T) {
	rc := newReceiver(t, "")
	clock := &testClock{}
	a := staffHookApp(t, clock)
	a.signInAs("ann", wizard.RoleAdmin)
	doubling := `{{$x := printf "%01000d" 0}}` + strings.Repeat(`{{$x = print $x $x}}`, 12) + `{{len $x}}`
	for _, c := range []struct{ name, template, why string }{
		{"100 MB of body", `{{range 100000000}}xxxxxxxxxx{{end}}`, "range is not available"},
		{"an empty loop for ever", `{{range 1000000000}}{{range 1000000000}}{{end}}{{end}}`, "range is not available"},
		{"a loop over a time", `{{range .At.UnixNano}}{{end}}`, "range is not available"},
		{"recursion", `{{define "a"}}{{template "a" .}}{{template "a" .}}{{end}}{{template "a" .}}`, "not available"},
		{"a long body", strings.Repeat("{{.}}", 2000), "longer than 64 KiB"},
		{"text doubled in a variable", doubling, "more than 256 KiB"},
		{"doubling by escaping", `{{$x := "\\\\\\\\"}}` + strings.Repeat(`{{$x = js $x}}`, 40) + `{{len $x}}`, "more than 256 KiB"},
		{"a huge printf width", `{{printf "%0999999d" 0}}`, "widths and precisions up to 1000"},
		{"a printf width from an argument", `{{printf "%0*d" 999999 0}}`, "no widths from arguments"},
		{"a time format of a made layout", `{{.At.Format (print "2006" "01")}}`, "Format takes one quoted layout"},
		{"a time format of a piped layout", `{{"2006" | .At.Format}}`, "Format takes one quoted layout"},
		{"a method that makes text", `{{.At.AppendFormat .At.GoString "x"}}`, "not a field of the event"},
		{"call", `{{call .Event}}`, "call is not available"},
	} {
		start := time.Now()
		resp, page := a.do("POST", "/staff/webhooks", url.Values{"url": {rc.URL}, "template": {c.template}})
		if took := time.Since(start); took > 5*time.Second {
			t.Errorf("%s: refusing it took %s", c.name, took)
		}
		if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(page, "The body template does not work") ||
			!strings.Contains(page, html.EscapeString(c.why)) || !strings.Contains(page, `value="`+rc.URL) {
			t.Errorf("%s: %d %s", c.name, resp.StatusCode, excerpt(page, "alert"))
		}
	}
	if hooks, _ := a.db.Webhooks(context.Background()); len(hooks) != 0 {
		t.Fatalf("refused templates were stored: %+v", hooks[0])
	}
	// What a body template may do is still done.
	ok := `{"text": {{json (printf "%s is %s (%05d)" .Case.Host .Case.Status 42)}}, "at": {{json (.At.Format "2006-01-02")}}, ` +
		`"html": {{json (html "<b>")}}, "n": {{len .Case.URL}}{{with .Case.Ticket}}, "ticket": {{json .}}{{end}}}`
	if resp, page := a.do("POST", "/staff/webhooks", url.Values{"url": {rc.URL}, "template": {ok}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("a fair template: %d %s", resp.StatusCode, excerpt(page, "alert"))
	}
	site := newGatedSite(t, "127.0.0.1")
	a.report(site.URL+"/fair", "198.51.100.1")
	waitFor(t, "the fair template's event", func() bool { return len(rc.events()) == 1 })
	want := `{"text": "127.0.0.1 is open (00042)", "at": "` + clock.now().UTC().Format("2006-01-02") + `", "html": "\u0026lt;b\u0026gt;", "n": ` +
		strconv.Itoa(len(site.URL+"/fair")) + `}`
	if got := string(rc.last(wizard.EventCaseCreated).body); got != want {
		t.Errorf("the fair template made\n%s\nwant\n%s", got, want)
	}
	hooks, _ := a.db.Webhooks(context.Background())
	a.do("POST", "/staff/webhooks/"+strconv.FormatInt(hooks[0].ID, 10)+"/disable", nil)

	// A template stored before the bounds, and one that passes on the
	// example but not on a case whose address is long.
	ctx := context.Background()
	if err := a.db.AddWebhook(ctx, &wizard.Webhook{URL: rc.URL + "/old", Template: `{{range 100000000}}xxxxxxxxxx{{end}}`, CreatedBy: "ann"}); err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("{{.Case.URL}}", 25)
	if resp, page := a.do("POST", "/staff/webhooks", url.Values{"url": {rc.URL + "/long"}, "template": {long}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("the template of long bodies: %d %s", resp.StatusCode, excerpt(page, "alert"))
	}
	a.report(site.URL+"/"+strings.Repeat("a", 3000), "198.51.100.2")
	failed := func() map[string]*wizard.Delivery {
		out := map[string]*wizard.Delivery{}
		for _, d := range a.deliveriesOf() {
			if d.State == wizard.DeliveryFailed {
				out[d.Webhook.URL] = d
			}
		}
		return out
	}
	waitFor(t, "both deliveries to fail", func() bool { return len(failed()) == 2 })
	f := failed()
	if d := f[rc.URL+"/old"]; d.Attempts != 1 || !strings.Contains(d.LastError, "the body template: range is not available") {
		t.Errorf("the old template's delivery: %+v", d)
	}
	if d := f[rc.URL+"/long"]; d.Attempts != 1 || !strings.Contains(d.LastError, "the body template: the body would be longer than 64 KiB") {
		t.Errorf("the long template's delivery: %+v", d)
	}
	time.Sleep(100 * time.Millisecond)
	if n := len(rc.events()); n != 1 {
		t.Errorf("the receiver got %d events; want only the fair one", n)
	}
	if v := value(a.scrape(), "gatecheck_webhook_deliveries_total", "result", "failed"); v != 2 {
		t.Errorf("%v deliveries failed in the metrics, want 2", v)
	}
}

// TestWebhookGuardRefusesInternalDestinations: an admin cannot point a
// destination at loopback, the metadata service or another internal
// address, in any spelling, unless the operator allows its range.
func TestWebhookGuardRefusesInternalDestinations(t *testing.T) {
	rc := newReceiver(t, "")
	port := rc.Listener.Addr().(*net.TCPAddr).Port
	clock := &testClock{}
	a := hookApp(t, clock, "") // no --allow-webhook-net
	a.signInAs("ann", wizard.RoleAdmin)
	for _, dest := range []string{
		rc.URL + "/hook",
		fmt.Sprintf("http://[::1]:%d/hook", port),
		"http://169.254.169.254/latest/meta-data/iam/security-credentials/",
		fmt.Sprintf("http://127.1:%d/hook", port),
		fmt.Sprintf("http://0x7f000001:%d/hook", port),
		fmt.Sprintf("http://[::ffff:127.0.0.1]:%d/hook", port),
		fmt.Sprintf("http://localhost:%d/hook", port),
		"http://10.0.0.1/hook",
		"https://192.168.1.1/hook",
	} {
		resp, page := a.do("POST", "/staff/webhooks", url.Values{"url": {dest}})
		if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(page, "not on the public internet") ||
			!strings.Contains(page, "--allow-webhook-net") || !strings.Contains(page, `value="`+html.EscapeString(dest)) {
			t.Errorf("%s: %d %s", dest, resp.StatusCode, excerpt(page, "alert"))
		}
	}
	if hooks, _ := a.db.Webhooks(context.Background()); len(hooks) != 0 {
		t.Fatalf("refused destinations were stored: %+v", hooks[0])
	}
	// The refusal says which kind of address, and whether a name led there.
	for dest, want := range map[string]string{
		"http://169.254.169.254/latest/":           "169.254.169.254 is the cloud metadata service address",
		fmt.Sprintf("http://localhost:%d/", port):  "localhost resolves to a loopback address",
		fmt.Sprintf("http://[::1]:%d/", port):      "::1 is the IPv6 loopback address",
		fmt.Sprintf("http://0x7f000001:%d/", port): "127.0.0.1 is a loopback address",
	} {
		if resp, page := a.do("POST", "/staff/webhooks", url.Values{"url": {dest}}); resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(page, html.EscapeString(want)) {
			t.Errorf("%s: %d %s", dest, resp.StatusCode, excerpt(page, "alert"))
		}
	}
}

// TestWebhookGuardAtDialTime: a destination whose name resolved to a
// public address when it was added and resolves to loopback now (DNS
// rebinding) is refused when dialled, and its receiver gets nothing; the
// operator's --webhook destination on loopback, trusted as configuration,
// gets the same event.
func TestWebhookGuardAtDialTime(t *testing.T) {
	inside := newReceiver(t, "")
	operators := newReceiver(t, "")
	clock := &testClock{}
	a := outageApp(t, func(c *Config) { // no --allow-webhook-net
		c.Now, c.WebhookTick, c.WebhookURLs = clock.now, 10*time.Millisecond, []string{operators.URL + "/hooks"}
		// When the admin adds it, localhost "resolves" to a public
		// address (nothing is sent there: the add only looks it up).
		c.lookupHost = func(context.Context, string) ([]netip.Addr, error) {
			return []netip.Addr{netip.MustParseAddr("93.184.215.14")}, nil
		}
	})
	a.signInAs("ann", wizard.RoleAdmin)
	dest := fmt.Sprintf("http://localhost:%d/hook", inside.Listener.Addr().(*net.TCPAddr).Port)
	if resp, page := a.do("POST", "/staff/webhooks", url.Values{"url": {dest}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("add: %d %s", resp.StatusCode, excerpt(page, "alert"))
	}
	site := newGatedSite(t, "127.0.0.1")
	a.report(site.URL+"/", "198.51.100.1")
	waitFor(t, "the operator's delivery", func() bool { return slices.Contains(operators.events(), wizard.EventCaseCreated) })
	var refused *wizard.Delivery
	waitFor(t, "the refused attempt", func() bool {
		for _, d := range a.deliveriesOf() {
			if d.Webhook.URL == dest && d.Attempts == 1 {
				refused = d
				return true
			}
		}
		return false
	})
	if refused.State != wizard.DeliveryPending || refused.LastStatus != 0 ||
		!strings.Contains(refused.LastError, "refused to connect: the address is a loopback address") || !strings.Contains(refused.LastError, "--allow-webhook-net") {
		t.Errorf("the refused delivery: %+v", refused)
	}
	clock.advance(time.Minute) // past the first backoff: refused again
	waitFor(t, "the second refusal", func() bool {
		for _, d := range a.deliveriesOf() {
			if d.Webhook.URL == dest && d.Attempts == 2 {
				return true
			}
		}
		return false
	})
	inside.mu.Lock()
	defer inside.mu.Unlock()
	if n := len(inside.got) + len(inside.bad); n != 0 {
		t.Errorf("the inside receiver got %d requests", n)
	}
}
