package web

// Fuzz targets for the parsing of every form, query and body the web layer
// reads. Each target builds one application when it starts (a real SQLite
// file in a temporary folder) and drives the real router through ServeHTTP
// with no network. The probe workers are never started, so a case's probes
// stay queued and a fuzzed URL is never dialled; the reports the wizard
// walks on come from probing loopback servers once, before fuzzing.
//
// The targets check properties, not only the absence of panics: never a
// 5xx, a stack trace or bytes that are not UTF-8; a 4xx always says why;
// what is accepted is stored as sent (after the documented cleaning); what
// is refused changes nothing and the form keeps what was typed.
//
// Run one for a while with, for instance,
//
//	go test ./web -run '^$' -fuzz '^FuzzAnswer$' -fuzztime 60s

import (
	"context"
	"encoding/json"
	"html"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/crypto/bcrypt"

	"github.com/gatecheck/gatecheck/probes"
	"github.com/gatecheck/gatecheck/wizard"
	"github.com/gatecheck/gatecheck/wizard/sqlite"
)

const (
	fuzzStaff    = "ann"
	fuzzPassword = "correct horse battery"
	// fuzzReporter is the secret of the browser that reported every
	// fuzzed case.
	fuzzReporter = "the reporter's browser"
)

// fuzzApp is the application one fuzz target drives.
type fuzzApp struct {
	cfg       Config
	db        *sqlite.DB
	store     *recordingStore
	srv       *Server
	dummyHash []byte
	session   string // the session token of fuzzStaff
	// urls are case URLs, one per report; a case made with an index past
	// the end has no finished probe run yet.
	urls    []string
	reports []*probes.Report
}

// recordingStore is the real store, remembering the last filter the case
// list asked for, so that the list's parsing can be checked directly.
type recordingStore struct {
	*sqlite.DB
	mu   sync.Mutex
	last wizard.CaseFilter
}

func (s *recordingStore) FindCases(ctx context.Context, f wizard.CaseFilter) ([]*wizard.Case, int, error) {
	s.mu.Lock()
	s.last = f
	s.mu.Unlock()
	return s.DB.FindCases(ctx, f)
}

func (s *recordingStore) lastFilter() wizard.CaseFilter {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last
}

func newFuzzApp(f *testing.F) *fuzzApp {
	f.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(f.TempDir(), "fuzz.db"))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { db.Close() })
	probed, err := fuzzReports()
	if err != nil {
		f.Fatal(err)
	}
	a := &fuzzApp{db: db, store: &recordingStore{DB: db}, reports: probed.reports, urls: probed.urls}
	a.cfg = Config{
		Store: a.store, Tree: wizard.Default(), TreeSource: wizard.DefaultSource(),
		// Never used (the workers do not start), and loopback only all the same.
		Prober:   probes.New(probes.Config{AllowNets: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}),
		Settings: wizard.Settings{Org: "Acme", Team: "CloudOps"},
		Logger:   discardLog(),
		// The fuzzed sites are on loopback; browsers may be asked to try them.
		BrowserAllowNets: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
		// No limit may refuse a fuzz input; see begin for the queue.
		ProbesPerMinute: 1e9, ProbeBurst: 1 << 30, LoginsPerMinute: 1e9, AccountFailuresPerMinute: 1e9, ProbeQueue: 1000,
	}
	// bcrypt at its lowest cost, so that a sign-in takes a millisecond.
	hash, err := bcrypt.GenerateFromPassword([]byte(fuzzPassword), bcrypt.MinCost)
	if err != nil {
		f.Fatal(err)
	}
	a.dummyHash, _ = bcrypt.GenerateFromPassword([]byte("no such user"), bcrypt.MinCost)
	u, err := db.CreateUser(ctx, fuzzStaff, string(hash), wizard.RoleAgent)
	if err != nil {
		f.Fatal(err)
	}
	if a.session, err = db.CreateSession(ctx, u.ID, 24*time.Hour); err != nil {
		f.Fatal(err)
	}
	a.srv = a.newServer()
	f.Cleanup(func() { a.srv.Close(context.Background()) })
	return a
}

func (a *fuzzApp) newServer() *Server {
	s := New(a.cfg)
	s.dummyHash = a.dummyHash
	return s
}

// begin starts one fuzz input: the application is replaced by a fresh one
// over the same store when its probe queue is half full (nothing ever
// takes jobs off it), so that no input meets a full queue.
func (a *fuzzApp) begin() {
	if waiting, _ := a.srv.runner.Stats(); waiting >= a.cfg.ProbeQueue/2 {
		a.srv.Close(context.Background())
		a.srv = a.newServer()
	}
}

// fuzzReports probes three loopback servers once per process: a gateway
// answering 502, a closed port and a healthy site.
var fuzzReports = sync.OnceValues(func() (probedSites, error) {
	gw := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Server", "nginx/1.24.0")
		w.WriteHeader(http.StatusBadGateway)
		io.WriteString(w, "<html><body><center><h1>502 Bad Gateway</h1></center><hr><center>nginx/1.24.0</center></body></html>")
	}))
	defer gw.Close()
	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello") }))
	defer ok.Close()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return probedSites{}, err
	}
	closed := "http://" + l.Addr().String() + "/"
	l.Close()
	p := probes.New(probes.Config{Timeout: 5 * time.Second, Samples: 1, SampleSpacing: time.Millisecond,
		AllowNets: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})
	ps := probedSites{urls: []string{gw.URL + "/", closed, ok.URL + "/"}}
	for _, u := range ps.urls {
		ps.reports = append(ps.reports, p.Run(context.Background(), u, nil))
	}
	return ps, nil
})

// probedSites are reports and the URLs they are of.
type probedSites struct {
	reports []*probes.Report
	urls    []string
}

// newCase stores a case whose probes found report number which (none, so
// still probing, past the last), and walks it: each byte of walk picks a
// choice at the current step, until the walk ends. It returns the case as
// the server sees it.
func (a *fuzzApp) newCase(t *testing.T, which uint8, walk []byte) *caseState {
	t.Helper()
	a.begin()
	ctx := context.Background()
	i := int(which) % (len(a.reports) + 1)
	u := a.urls[i%len(a.urls)]
	c := &wizard.Case{URL: u, Host: "127.0.0.1", Ticket: "INC-1", RequesterIP: "127.0.0.1", TreeVersion: a.cfg.Tree.ID(),
		ReporterHash: hashReporter(fuzzReporter)}
	if err := a.db.CreateCase(ctx, c, a.cfg.TreeSource); err != nil {
		t.Fatal(err)
	}
	if i < len(a.reports) {
		run, err := a.db.QueueProbe(ctx, c.ID, "")
		if err != nil {
			t.Fatal(err)
		}
		if err := a.db.FinishProbe(ctx, run.ID, a.reports[i]); err != nil {
			t.Fatal(err)
		}
	}
	st := a.load(t, c.Token)
	if st.probing() || len(walk) == 0 {
		return st
	}
	answers := st.answers
	step := st.step
	for _, b := range walk {
		if step.Done || len(step.Choices) == 0 {
			break
		}
		next := append(answers[:len(answers):len(answers)], wizard.Answer{Node: step.Node, Choice: step.Choices[int(b)%len(step.Choices)].ID, At: time.Now()})
		s, err := st.tree.Next(a.cfg.Settings, st.facts, next)
		if err != nil {
			t.Fatalf("a walk by the step's own choices failed: %v", err)
		}
		answers, step = next, s
	}
	if err := a.db.AppendSteps(ctx, c.ID, wizard.RecordsFor(nil, answers, "", time.Now())); err != nil {
		t.Fatal(err)
	}
	return a.load(t, c.Token)
}

// load returns a case as the server sees it.
func (a *fuzzApp) load(t *testing.T, token string) *caseState {
	t.Helper()
	st, err := a.srv.loadCase(context.Background(), token, true)
	if err != nil {
		t.Fatalf("loading case %s: %v", token, err)
	}
	if st.stale {
		t.Fatalf("case %s has answers that no longer fit", token)
	}
	return st
}

// target is a request target: an escaped path and a raw query. ok is false
// when no HTTP server would accept it (the request line cannot carry it).
func target(path, rawQuery string) (u *url.URL, ok bool) {
	s := path
	if rawQuery != "" {
		s += "?" + rawQuery
	}
	if strings.ContainsAny(s, " #") {
		return nil, false
	}
	u, err := url.ParseRequestURI(s)
	return u, err == nil
}

// formBody is a form with fields, then raw text as a browser would never
// send it (repeated fields, bad escapes, semicolons).
func formBody(raw string, kv ...string) string {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Set(kv[i], kv[i+1])
	}
	s := v.Encode()
	if raw != "" {
		s += "&" + raw
	}
	return s
}

// serve sends one request through the application. POSTs carry the
// headers of a form sent from gatecheck's own page.
func (a *fuzzApp) serve(method string, u *url.URL, body string, staff bool, hdr ...string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, "/", strings.NewReader(body))
	req.URL, req.RequestURI = u, u.RequestURI()
	if method == http.MethodPost {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Sec-Fetch-Site", "same-origin")
	}
	if staff {
		req.AddCookie(&http.Cookie{Name: sessionCookie, Value: a.session})
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	a.srv.ServeHTTP(rec, req)
	return rec
}

var stackTrace = regexp.MustCompile(`goroutine \d+ \[|\.go:\d+ \+0x[0-9a-f]`)

// checkResponse holds for every answer: no 5xx, no stack trace, UTF-8 as
// the Content-Type says, the security headers, and a 4xx says why.
// readForm is what a handler makes of a posted form body: too large is a
// 413, unreadable a 422; ok is false then (and the answer was checked).
func (a *fuzzApp) readForm(t *testing.T, body string, rec *httptest.ResponseRecorder) (form url.Values, ok bool) {
	t.Helper()
	form, err := url.ParseQuery(body)
	switch {
	case len(body) > int(a.srv.cfg.MaxBodyBytes):
		if rec.Code != http.StatusRequestEntityTooLarge {
			t.Fatalf("a %d-byte form: %d", len(body), rec.Code)
		}
		return nil, false
	case err != nil:
		if rec.Code != http.StatusUnprocessableEntity {
			t.Fatalf("form %q (%v): %d", body, err, rec.Code)
		}
		return nil, false
	}
	return form, true
}

func checkResponse(t *testing.T, what string, rec *httptest.ResponseRecorder) string {
	t.Helper()
	body := rec.Body.String()
	if rec.Code >= 500 {
		t.Fatalf("%s: %d %.500s", what, rec.Code, body)
	}
	if stackTrace.MatchString(body) {
		t.Fatalf("%s: the answer shows a stack trace: %.500s", what, body)
	}
	if !utf8.ValidString(body) {
		t.Fatalf("%s: the answer is not valid UTF-8: %q", what, clipAt(body, 500))
	}
	if rec.Header().Get("Content-Security-Policy") == "" {
		t.Fatalf("%s: no Content-Security-Policy", what)
	}
	if rec.Code >= 400 && !hasMessage(rec) {
		t.Fatalf("%s: %d without a message: %.500s", what, rec.Code, body)
	}
	return body
}

// hasMessage reports whether an error answer says what went wrong: an
// alert on a page, or {"error": "..."} from the API.
func hasMessage(rec *httptest.ResponseRecorder) bool {
	body := rec.Body.String()
	if strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json") {
		return jsonError(body) != ""
	}
	i := strings.Index(body, `role="alert"`)
	if i < 0 {
		return false
	}
	rest := body[i:]
	rest = strings.TrimPrefix(rest[strings.Index(rest, ">")+1:], "<p>")
	return rest != "" && !strings.HasPrefix(rest, "<")
}

// wantRedirect fails unless the answer is a 303 to location.
func wantRedirect(t *testing.T, what string, rec *httptest.ResponseRecorder, location string) {
	t.Helper()
	if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != location {
		t.Fatalf("%s: %d to %q, want 303 to %q: %.300s", what, rec.Code, rec.Header().Get("Location"), location, rec.Body.String())
	}
}

// attr is how a templ page writes a value into an attribute.
func attr(name, value string) string { return name + `="` + html.EscapeString(value) + `"` }

func clipAt(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// FuzzClip: what clip returns is valid UTF-8, at most n bytes, and the
// longest such prefix of the input with its invalid bytes dropped.
func FuzzClip(f *testing.F) {
	for _, s := range []string{"", "abc", strings.Repeat("é", 60), strings.Repeat("a", 99) + "é", "\xff\xfe", "a\xffb", "日本語"} {
		f.Add(s, uint16(100))
	}
	f.Add(strings.Repeat("𝕦", 100), uint16(30))
	f.Add(strings.Repeat("x", 5000), uint16(4096))
	f.Fuzz(func(t *testing.T, s string, n uint16) {
		got := clip(s, int(n))
		valid := strings.ToValidUTF8(s, "")
		if !utf8.ValidString(got) || len(got) > int(n) || !strings.HasPrefix(valid, got) {
			t.Fatalf("clip(%q, %d) = %q", s, n, got)
		}
		if len(valid) <= int(n) && got != valid {
			t.Fatalf("clip(%q, %d) = %q, want it whole", s, n, got)
		}
		if len(got) < len(valid) && len(got) <= int(n)-utf8.UTFMax {
			t.Fatalf("clip(%q, %d) = %q: it cut more than one character", s, n, got)
		}
	})
}

// FuzzCleanTicket: a ticket is accepted exactly when, trimmed, it is valid
// UTF-8 of at most 100 characters without control characters, and it is stored
// trimmed; a refusal is an EINVALID error with a message.
func FuzzCleanTicket(f *testing.F) {
	for _, s := range []string{"INC-42", "  INC-42\t", "", strings.Repeat("x", 100), strings.Repeat("x", 101), "a\x00b", "\xff",
		"INC\r\nSet-Cookie: x=1", "'; DROP TABLE cases; --", "<script>alert(1)</script>", strings.Repeat("é", 51), "\u0085INC", "\u2028"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := cleanTicket(s)
		trimmed := strings.TrimSpace(s)
		fine := utf8.ValidString(trimmed) && utf8.RuneCountInString(trimmed) <= 100 && strings.IndexFunc(trimmed, unicode.IsControl) < 0
		if err != nil {
			if fine || wizard.ErrorCode(err) != wizard.EINVALID || wizard.ErrorMessage(err) == "" {
				t.Fatalf("cleanTicket(%q): %v (%s)", s, err, wizard.ErrorCode(err))
			}
			return
		}
		if !fine || got != trimmed {
			t.Fatalf("cleanTicket(%q) = %q", s, got)
		}
		if again, err := cleanTicket(got); err != nil || again != got {
			t.Fatalf("cleanTicket is not idempotent on %q: %q %v", got, again, err)
		}
	})
}

// FuzzSafeNext: where sign-in sends people next never leaves the site:
// the value is kept only when it is a path under /staff, and neither a
// browser (which drops tabs and newlines, and reads a backslash as a
// slash) nor http.Redirect's cleaning can turn it into another host.
func FuzzSafeNext(f *testing.F) {
	for _, s := range []string{"/staff", "/staff?status=open&q=x", "/staff/c/abc", "//evil.example", "/\\evil.example", "/staff\\..\\..\\evil",
		"https://evil.example/staff", "/staff/../..//evil.example", "/staff\t//evil", "/staff\r\nLocation: //evil", "/staff%2F%2Fevil",
		"javascript:alert(1)", "/staff\xff", "", " /staff", "/staff@evil.example", "/staff:80"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, next string) {
		got := safeNext(next)
		if got != next && got != "/staff" {
			t.Fatalf("safeNext(%q) = %q", next, got)
		}
		if !strings.HasPrefix(got, "/staff") || strings.Contains(got, `\`) || !utf8.ValidString(got) || strings.IndexFunc(got, unicode.IsControl) >= 0 {
			t.Fatalf("safeNext(%q) = %q", next, got)
		}
		// As a browser reads it, and as it leaves in the Location header.
		rec := httptest.NewRecorder()
		http.Redirect(rec, httptest.NewRequest("POST", "/staff/login", nil), got, http.StatusSeeOther)
		for _, ref := range []string{got, rec.Header().Get("Location")} {
			if leavesSite(ref) {
				t.Fatalf("safeNext(%q) = %q leads off the site (%q)", next, got, ref)
			}
		}
		// A path under /staff as gatecheck itself writes it is kept.
		if strings.HasPrefix(next, "/staff") && isPlainRequestURI(next) && got != next {
			t.Fatalf("safeNext(%q) = %q, dropping a good address", next, got)
		}
	})
}

// isPlainRequestURI: printable ASCII without a backslash, as
// url.URL.RequestURI writes it.
func isPlainRequestURI(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f || s[i] == '\\' {
			return false
		}
	}
	return true
}

// jsonError returns the "error" of a JSON error answer.
func jsonError(body string) string {
	var doc struct {
		Error string `json:"error"`
	}
	if err := json.Unmarshal([]byte(body), &doc); err != nil {
		return ""
	}
	return doc.Error
}
