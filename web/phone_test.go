package web

// Issue 17 (items 6, 7, 8): limits and errors in plain words that keep
// what was typed; "Help" to the support contact; links that look right
// where they are pasted; times as <time> in UTC for browsers without
// JavaScript.

import (
	"context"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gatecheck/gatecheck/templates"
	"github.com/gatecheck/gatecheck/wizard"
)

func TestLimitPageKeepsWhatWasTyped(t *testing.T) {
	a := newApp(t, func(c *Config) { c.ProbesPerMinute, c.ProbeBurst = 1, 1 })
	gw := brokenGateway(t)
	a.createCase(gw.URL, "")
	typed := url.Values{"url": {gw.URL + "/shop?q=1&x=<b>"}, "ticket": {"INC-40 «urgent»"}, "email": {"ann@example.com"}}
	resp, page := a.do("POST", "/cases", typed)
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("second start within the limit: %d", resp.StatusCode)
	}
	secs, err := strconv.Atoi(resp.Header.Get("Retry-After"))
	if err != nil || secs < 1 || secs > 60 {
		t.Fatalf("Retry-After = %q, want the limiter's wait in seconds (1 a minute: up to 60)", resp.Header.Get("Retry-After"))
	}
	// The words say the same wait as the header, in seconds.
	if want := "You started several checks in a minute; you can start another in " + strconv.Itoa(secs) + " seconds."; !strings.Contains(page, want) {
		t.Errorf("the page does not say %q:\n%.3000s", want, page)
	}
	for _, field := range []string{"url", "ticket", "email"} {
		if !strings.Contains(page, attr("value", typed.Get(field))) {
			t.Errorf("the form lost the %s typed (%q):\n%.3000s", field, typed.Get(field), page)
		}
	}
	for _, jargon := range []string{"Too Many Requests", "Too many checks", "from your address"} {
		if strings.Contains(page, jargon) {
			t.Errorf("the limit page says %q", jargon)
		}
	}
}

func TestInWords(t *testing.T) {
	for _, tt := range []struct {
		secs int
		want string
	}{{1, "in a second"}, {2, "in 2 seconds"}, {40, "in 40 seconds"}, {119, "in 119 seconds"}, {120, "in 2 minutes"}, {121, "in 3 minutes"}} {
		if got := inWords(tt.secs); got != tt.want {
			t.Errorf("inWords(%d) = %q, want %q", tt.secs, got, tt.want)
		}
	}
	// Every limit the server applies has its own words.
	for _, what := range []string{limitChecks, limitSignIns} {
		if got := limitWords(what, 40); !strings.Contains(got, "in 40 seconds") || strings.HasPrefix(got, "There were several requests") {
			t.Errorf("limitWords(%q) = %q: no words of its own", what, got)
		}
	}
}

func TestSignInLimitKeepsTheName(t *testing.T) {
	a := newApp(t, func(c *Config) { c.LoginsPerMinute = 1 })
	var resp *http.Response
	var page string
	for range 10 {
		resp, page = a.do("POST", "/staff/login", url.Values{"name": {"ann"}, "password": {"wrong"}})
		if resp.StatusCode == http.StatusTooManyRequests {
			break
		}
	}
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("no limit on sign-ins: %d", resp.StatusCode)
	}
	secs := resp.Header.Get("Retry-After")
	if !strings.Contains(page, "you can try again in "+secs+" seconds") || !strings.Contains(page, attr("value", "ann")) {
		t.Errorf("the sign-in limit (Retry-After %s) is not said plainly with the name kept:\n%.3000s", secs, page)
	}
}

func TestAddressErrorsInPlainWords(t *testing.T) {
	a := newApp(t)
	for _, tt := range []struct{ typed, says string }{
		{"https://shop example.com/", "has a space in it"},
		{"https://shop.example.com/\x07", "invisible characters"},
		{"https://shop.example.com:99999/", "not a valid port"},
	} {
		resp, page := a.do("POST", "/cases", url.Values{"url": {tt.typed}})
		if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(html.UnescapeString(page), tt.says) {
			t.Errorf("%q: %d, want 422 saying %q:\n%.2000s", tt.typed, resp.StatusCode, tt.says, page)
		}
		if strings.Contains(page, "control characters") {
			t.Errorf("%q: the page speaks of control characters", tt.typed)
		}
	}
}

// helpHref is the visitor's "Help" link on a page, or "" without one.
var helpHref = regexp.MustCompile(`<a href="([^"]*)" data-testid="help">Help</a>`)

func TestHelpGoesToTheSupportContact(t *testing.T) {
	for _, tt := range []struct {
		contact, href string
		page          bool // gatecheck's own page shows the contact
	}{
		{"", "", false},
		{"helpdesk@acme.example", "mailto:helpdesk@acme.example", false},
		{"mailto:helpdesk@acme.example", "mailto:helpdesk@acme.example", false},
		{"https://support.acme.example/new-ticket", "https://support.acme.example/new-ticket", false},
		{"the IT helpdesk, extension 4711", "/help", true},
		{"Acme Helpdesk <helpdesk@acme.example>", "/help", true},
	} {
		a := newApp(t, func(c *Config) { c.Settings.SupportContact = tt.contact })
		_, home := a.do("GET", "/", nil)
		got := ""
		if m := helpHref.FindStringSubmatch(home); m != nil {
			got = html.UnescapeString(m[1])
		}
		if got != tt.href {
			t.Errorf("contact %q: Help links to %q, want %q", tt.contact, got, tt.href)
		}
		if tt.href == "" && strings.Contains(home, ">Help<") {
			t.Errorf("no contact, but a Help link:\n%s", home)
		}
		resp, page := a.do("GET", "/help", nil)
		switch {
		case tt.contact == "" && resp.StatusCode != http.StatusNotFound:
			t.Errorf("no contact: /help answers %d", resp.StatusCode)
		case tt.page && (resp.StatusCode != http.StatusOK || !strings.Contains(page, html.EscapeString(tt.contact))):
			t.Errorf("contact %q: /help %d does not show it:\n%.2000s", tt.contact, resp.StatusCode, page)
		}
		// Staff sign in from a discreet footer link; the visitor's header
		// no longer leads there.
		if !strings.Contains(home, `<footer class="site"><a href="/staff/login" data-testid="staff-sign-in">Staff sign-in</a></footer>`) {
			t.Errorf("no staff sign-in in the footer")
		}
		if strings.Contains(home, `<a href="/staff">Helpdesk</a>`) {
			t.Errorf("the header still sends visitors to the staff pages")
		}
	}
	a := newApp(t)
	_, login := a.do("GET", "/staff/login", nil)
	if strings.Contains(login, "user add") || strings.Contains(login, "<code>") {
		t.Errorf("the sign-in page tells visitors to run a command:\n%s", login)
	}
}

// metaContent reads a <meta> tag's content by its property or name.
func metaContent(page, key string) (string, bool) {
	m := regexp.MustCompile(`<meta (?:property|name)="` + regexp.QuoteMeta(key) + `" content="([^"]*)"`).FindStringSubmatch(page)
	if m == nil {
		return "", false
	}
	return html.UnescapeString(m[1]), true
}

func TestCaseLinkPreview(t *testing.T) {
	a := newApp(t)
	gw := brokenGateway(t)
	token := a.createCase(gw.URL, "")
	a.waitProbed(token)
	doc := a.apiCase(token)
	words := wizard.VisitorWords(doc.Probe.Report, time.Now())
	if words.Headline == "" {
		t.Fatal("no finding to title the page with")
	}
	host := strings.TrimPrefix(strings.Split(strings.TrimPrefix(gw.URL, "http://"), ":")[0], "[")
	_, page := a.do("GET", "/c/"+token, nil)
	m := regexp.MustCompile(`<title>([^<]*)</title>`).FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no title:\n%.1000s", page)
	}
	title := html.UnescapeString(m[1])
	if want := templates.PageTitle(host, words.Headline); title != want+" · gatecheck" || !strings.HasPrefix(title, host+": ") {
		t.Errorf("title %q, want %q", title, want+" · gatecheck")
	}
	for key, want := range map[string]string{
		"og:title": strings.TrimSuffix(title, " · gatecheck"), "twitter:title": strings.TrimSuffix(title, " · gatecheck"),
		"og:description": words.Headline, "twitter:description": words.Headline, "description": words.Headline,
		"og:type": "website", "og:site_name": "gatecheck", "twitter:card": "summary",
	} {
		if got, ok := metaContent(page, key); !ok || got != want {
			t.Errorf("%s = %q (%v), want %q", key, got, ok, want)
		}
	}
	_, home := a.do("GET", "/", nil)
	if got, _ := metaContent(home, "og:description"); got != homeDescription {
		t.Errorf("the start page previews %q, want %q", got, homeDescription)
	}
	// Nothing more than the link's holder sees: no image.
	if _, ok := metaContent(page, "og:image"); ok {
		t.Errorf("an og:image")
	}
	// The staff pages give no preview.
	a.signInAs("ann", wizard.RoleAgent)
	if _, staff := a.do("GET", "/staff", nil); !strings.Contains(staff, "<h1>Cases</h1>") || strings.Contains(staff, `property="og:`) {
		t.Errorf("the staff case list is not shown, or has Open Graph tags:\n%.1000s", staff)
	}
}

func TestPageTitle(t *testing.T) {
	for _, tt := range []struct{ host, finding, want string }{
		{"shop.example.com", "The site's server is down", "shop.example.com: the site's server is down"},
		{"shop.example.com", "DNS has no record of the site.", "shop.example.com: DNS has no record of the site"},
		{"shop.example.com", "", "shop.example.com"},
		{"", "The site works", "The site works"},
		{"ünï.example", "Échec", "ünï.example: échec"},
	} {
		if got := templates.PageTitle(tt.host, tt.finding); got != tt.want {
			t.Errorf("PageTitle(%q, %q) = %q, want %q", tt.host, tt.finding, got, tt.want)
		}
	}
}

func TestRepliesTimesAreUTCWithoutJavaScript(t *testing.T) {
	a := newApp(t)
	gw := brokenGateway(t)
	token := a.createCase(gw.URL, "")
	a.waitProbed(token)
	ctx := context.Background()
	c, err := a.db.Case(ctx, token)
	if err != nil {
		t.Fatal(err)
	}
	n, err := a.db.AddReply(ctx, c.ID, "ann", "We restarted it.")
	if err != nil {
		t.Fatal(err)
	}
	// Where the helpdesk put the case, and when, likewise.
	if err := a.db.SetStatus(ctx, c.ID, wizard.StatusResolved, "ann"); err != nil {
		t.Fatal(err)
	}
	changes, err := a.db.StatusChanges(ctx, c.ID)
	if err != nil || len(changes) == 0 {
		t.Fatalf("status changes: %v %v", changes, err)
	}
	at := changes[len(changes)-1].At
	_, page := a.do("GET", "/c/"+token, nil)
	want := `<time datetime="` + n.At.UTC().Format(time.RFC3339) + `" data-local>` + templates.Clock(n.At) + `</time>`
	if !strings.Contains(page, want) || !strings.HasSuffix(templates.Clock(n.At), "UTC") {
		t.Errorf("the reply's time is not %s:\n%.4000s", want, page)
	}
	want = `Resolved by the helpdesk at <time datetime="` + at.UTC().Format(time.RFC3339) + `" data-local>` + templates.Clock(at) + `</time>.`
	if !strings.Contains(page, want) {
		t.Errorf("the helpdesk's status is not said with %s:\n%.4000s", want, page)
	}
}

// Every status the server answers people with has a title in plain words:
// those of the error codes' table, and those the handlers answer directly.
func TestErrorTitlesInPlainWords(t *testing.T) {
	statuses := []int{http.StatusBadRequest, http.StatusForbidden, http.StatusMethodNotAllowed,
		http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType}
	for _, st := range codeStatus {
		statuses = append(statuses, st)
	}
	for _, st := range statuses {
		if got := statusTitle(st); got == http.StatusText(st) || got == "" {
			t.Errorf("status %d is titled %q, the protocol's name", st, got)
		}
	}
	a := newApp(t)
	resp, page := a.do("GET", "/c/no-such-case", nil)
	if resp.StatusCode != http.StatusNotFound || !strings.Contains(page, "<h1>There is nothing at this address</h1>") || strings.Contains(page, "Not Found") {
		t.Errorf("a case that does not exist: %d\n%.2000s", resp.StatusCode, page)
	}
}

// The times a watched case gives (the next check, the watch's end) are
// <time> elements too, with the words around them spaced.
func TestWatchTimesAreUTCWithoutJavaScript(t *testing.T) {
	a := newApp(t)
	gw := brokenGateway(t)
	token := a.createCase(gw.URL, "")
	a.waitProbed(token)
	if resp, _ := a.do("POST", "/c/"+token+"/watch", url.Values{}); resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("watch: %d", resp.StatusCode)
	}
	_, page := a.do("GET", "/c/"+token, nil)
	watching := regexp.MustCompile(`again at <time datetime="[0-9TZ:-]+" data-local>[0-9: A-Za-z]+UTC</time> and keeps checking until <time datetime="[0-9TZ:-]+" data-local>[0-9: A-Za-z]+UTC</time>; this page`)
	if !watching.MatchString(page) || strings.Contains(page, "@LocalTime") {
		t.Errorf("the watch's times are not <time> elements in words:\n%s", regexp.MustCompile(`(?s)data-testid="watching".{0,400}`).FindString(page))
	}
}
