package wizard

import (
	"errors"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatecheck/gatecheck/probes"
)

var now = time.Date(2026, 11, 21, 14, 30, 0, 0, time.UTC)

func settings() Settings {
	loc, _ := time.LoadLocation("Europe/London")
	return Settings{Org: "Acme", Team: "CloudOps", TeamContact: "cloudops@acme.example",
		SupportContact: "helpdesk@acme.example", Location: loc}
}

func report(code probes.Code) *probes.Report {
	return &probes.Report{
		URL: "https://shop.example.com/", Host: "shop.example.com",
		Verdict: probes.Verdict{Code: code, Layer: probes.LayerOf(code), Summary: "summary of " + string(code)},
	}
}

func facts(code probes.Code) Facts {
	f := Facts{RequesterIP: "203.0.113.7", URL: "https://shop.example.com/", Now: now}
	if code != "" {
		f.Report = report(code)
	}
	return f
}

// paths lists every path through the tree from the start, as answers.
func paths(tr *Tree) [][]Answer {
	var out [][]Answer
	var walk func(id string, so []Answer)
	walk = func(id string, so []Answer) {
		n := tr.Node(id)
		if n.Kind == KindEnd {
			out = append(out, slices.Clone(so))
			return
		}
		for _, c := range n.choiceIDs() {
			walk(n.next(c), append(so, Answer{Node: id, Choice: c, At: now}))
		}
	}
	walk(tr.Start, nil)
	return out
}

func TestEveryPathOfTheDefaultTreeEnds(t *testing.T) {
	tr := Default()
	all := paths(tr)
	if len(all) < 50 {
		t.Fatalf("only %d paths", len(all))
	}
	outcomes := map[Outcome]int{}
	for _, answers := range all {
		// Without a report every check is the person's to answer; with the
		// settings' allowlist check answered explicitly too.
		st, err := tr.Next(settings(), facts(""), answers)
		if err != nil {
			t.Fatalf("path %v: %v", answers, err)
		}
		if !st.Done || tr.Node(st.Node).Kind != KindEnd {
			t.Fatalf("path %v stops at %s (%s), not an end node", answers, st.Node, st.Kind)
		}
		if len(st.Path) != len(answers) {
			t.Fatalf("path %v: walked %d nodes", answers, len(st.Path))
		}
		outcomes[st.Outcome]++
	}
	t.Logf("%d paths: %v", len(all), outcomes)
	for _, o := range []Outcome{Resolved, Escalated, Unresolved} {
		if outcomes[o] == 0 {
			t.Errorf("no path ends %s", o)
		}
	}
}

func TestEntryPointForEachVerdict(t *testing.T) {
	want := map[probes.Code]string{
		probes.Healthy:             "ask-browser-works", // no browser view in these facts
		probes.Intermittent:        "role-intermittent",
		probes.AccessBlocked:       "role-blocked", // no allowlist in these settings
		probes.HTTPSUnavailable:    "role-https",
		probes.TLSHandshakeFailed:  "role-https",
		probes.TLSExpired:          "role-cert",
		probes.TLSHostnameMismatch: "role-cert",
		probes.TLSUntrusted:        "role-cert",
		probes.DNSNXDomain:         "role-dns",
		probes.DNSFailure:          "role-dns",
		probes.DNSSECFailure:       "role-dnssec",
		probes.DNSLameDelegation:   "role-delegation",
		probes.DNSMismatch:         "role-dns-mismatch",
		probes.TCPRefused:          "ask-browser-down",
		probes.TCPTimeout:          "ask-browser-down",
		probes.Gateway502:          "role-gateway",
		probes.ProtocolError:       "role-gateway",
		probes.ServerError:         "role-gateway",
		probes.GatewayTimeout:      "role-overload",
		probes.ServiceUnavailable:  "role-overload",
		probes.RedirectLoop:        "fix-cookies-loop",
		probes.BlockedTarget:       "end-internal",
		probes.InvalidURL:          "end-bad-url",
	}
	tr := Default()
	for _, code := range probes.Codes {
		w, ok := want[code]
		if !ok {
			t.Errorf("no expected entry point for %s", code)
			continue
		}
		st, err := tr.Next(settings(), facts(code), nil)
		if err != nil {
			t.Fatalf("%s: %v", code, err)
		}
		if st.Node != w {
			t.Errorf("%s enters at %s, want %s", code, st.Node, w)
		}
		// The probe check was answered automatically, with its reason.
		if p := st.Path[0]; p.Node != "probe" || !p.Auto || !strings.Contains(p.Reason, string(code)) {
			t.Errorf("%s: first path entry %+v", code, p)
		}
	}
	// With the allowlist setting, access_blocked goes straight to it.
	s := settings()
	s.HostedAllowlist = true
	st, _ := tr.Next(s, facts(probes.AccessBlocked), nil)
	if st.Node != "allowlist-who" {
		t.Errorf("access_blocked with an allowlist enters at %s", st.Node)
	}
}

func answers(pairs ...string) []Answer {
	var out []Answer
	for i := 0; i+1 < len(pairs); i += 2 {
		out = append(out, Answer{Node: pairs[i], Choice: pairs[i+1], At: now})
	}
	return out
}

func TestScenarios(t *testing.T) {
	allow := settings()
	allow.HostedAllowlist = true
	for _, tt := range []struct {
		name    string
		s       Settings
		code    probes.Code
		answers []Answer
		want    string
		check   func(t *testing.T, st *Step)
		views   []Vantage
	}{
		{"expired certificate, site owner", settings(), probes.TLSExpired,
			answers("role-cert", "owner"), "fix-cert", nil, nil},
		{"missing https binding, visitor escalates", settings(), probes.HTTPSUnavailable,
			answers("role-https", "user"), "escalate-https", func(t *testing.T, st *Step) {
				for _, want := range []string{"To: CloudOps (cloudops@acme.example)", "URL: https://shop.example.com/",
					"203.0.113.7", "https_unavailable", "2026-11-21 14:30 GMT (UTC+00:00)", "reinstate"} {
					if !strings.Contains(st.Escalation.Summary, want) {
						t.Errorf("summary lacks %q:\n%s", want, st.Escalation.Summary)
					}
				}
			}, nil},
		{"hosted app behind an allowlist", allow, probes.AccessBlocked,
			answers("allowlist-who", "some", "allowlist-verify", "broken"), "escalate-allowlist", func(t *testing.T, st *Step) {
				if st.Escalation.Team != "CloudOps" || !strings.Contains(st.Escalation.Request, "203.0.113.7") {
					t.Errorf("escalation = %+v", st.Escalation)
				}
				if !strings.Contains(st.Escalation.Summary, "Only some of us") {
					t.Errorf("summary does not say who is affected:\n%s", st.Escalation.Summary)
				}
			}, nil},
		{"works from here, everything fails for me", settings(), probes.Healthy,
			answers("ask-browser-works", "error-page", "fix-refresh", "broken", "fix-cache", "broken", "scope", "only-me", "other-sites", "many-fail"),
			"fix-own-connection", nil, nil},
		{"works from here, fails for everyone, allowlist", allow, probes.Healthy,
			answers("fix-refresh", "broken", "fix-cache", "broken", "scope", "everyone"), "allowlist-who", nil, browserSaw(true)},
		{"works from here, only this site fails, no allowlist", settings(), probes.Healthy,
			answers("ask-browser-works", "error-page", "fix-refresh", "broken", "fix-cache", "broken", "scope", "only-me", "other-sites", "others-fine"),
			"fix-visitor-network", nil, nil},
		{"works from here, your browser cannot connect, allowlist", allow, probes.Healthy,
			answers("other-sites", "others-fine"), "allowlist-who", nil, browserSaw(false)},
		{"works from here, loads for you now", settings(), probes.Healthy,
			answers("ask-browser-works", "loads"), "end-resolved", nil, nil},
		{"gatecheck cannot connect, your browser can, still broken", settings(), probes.TCPTimeout,
			answers("fix-reachable-from-you", "broken", "role-down", "user"), "fix-wait", nil, browserSaw(true)},
		{"down for both", settings(), probes.TCPRefused, answers("role-down", "owner"), "fix-server-down", nil, browserSaw(false)},
		{"gateway 502 after a plugin upgrade", settings(), probes.Gateway502,
			answers("role-gateway", "owner", "owner-backup", "done", "owner-logs", "broken", "owner-changes", "platform"),
			"fix-rollback-platform", nil, nil},
		{"overload, visitor waits", settings(), probes.GatewayTimeout,
			answers("role-overload", "user"), "fix-wait", nil, nil},
		{"refresh fixed it", settings(), probes.Healthy,
			answers("fix-refresh", "fixed"), "end-resolved", func(t *testing.T, st *Step) {
				if !st.Done || st.Outcome != Resolved {
					t.Errorf("step = %+v", st)
				}
			}, browserSaw(true)},
		{"DNS change, owner", settings(), probes.DNSNXDomain, answers("role-dns", "owner"), "fix-dns", nil, nil},
		{"redirect loop survives cookies", settings(), probes.RedirectLoop,
			answers("fix-cookies-loop", "broken", "role-loop", "owner"), "fix-redirect-owner", nil, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := facts(tt.code)
			f.Vantages = tt.views
			st, err := Default().Next(tt.s, f, tt.answers)
			if err != nil {
				t.Fatal(err)
			}
			if st.Node != tt.want {
				t.Fatalf("at %s, want %s", st.Node, tt.want)
			}
			if tt.check != nil {
				tt.check(t, st)
			}
		})
	}
}

func TestPersonDisagreesWithACheck(t *testing.T) {
	tr := Default()
	// The probe says healthy; the person says access is refused.
	st, err := tr.Next(settings(), facts(probes.Healthy), answers("probe", "blocked"))
	if err != nil {
		t.Fatal(err)
	}
	if st.Node != "role-blocked" {
		t.Errorf("at %s, want role-blocked", st.Node)
	}
	p := st.Path[0]
	if p.Auto || !p.Disagreed || !strings.Contains(p.Found, "healthy") || p.Choice != "blocked" {
		t.Errorf("path entry %+v: want a recorded disagreement", p)
	}
}

func TestCheckAskedWithoutAReport(t *testing.T) {
	st, err := Default().Next(settings(), facts(""), nil)
	if err != nil {
		t.Fatal(err)
	}
	if st.Node != "probe" || st.Kind != KindCheck || len(st.Choices) < 10 || st.Found != "" {
		t.Errorf("step = %+v, want the probe check asked as a question", st)
	}
	// With a report, the check's suggested choice is marked when shown.
	tr := Default()
	back, err := tr.Rewind(settings(), facts(probes.TLSExpired), nil, "probe")
	if err != nil || len(back) != 0 {
		t.Fatalf("rewind to probe: %v %v", back, err)
	}
}

func TestStaleAndBadAnswers(t *testing.T) {
	tr := Default()
	for _, tt := range []struct {
		name    string
		answers []Answer
		index   int
		says    string
	}{
		{"answer for a node not on the path", answers("role-dns", "owner"), 0, "not the next on the path"},
		{"a choice that does not exist", answers("role-cert", "maybe"), 0, `"maybe" is not one of its choices`},
		{"a fix answered with a question's choice", answers("role-cert", "owner", "fix-cert", "owner"), 1, "not one of its choices"},
		{"answers after the end", answers("role-cert", "user", "escalate-cert", "sent", "end-escalated", "x"), 2, "already ended"},
		{"an empty answer", []Answer{{}}, 0, "not the next on the path"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tr.Next(settings(), facts(probes.TLSExpired), tt.answers)
			var ae *AnswerError
			if !errors.As(err, &ae) || !errors.Is(err, ErrStale) {
				t.Fatalf("err = %v, want an AnswerError", err)
			}
			if ae.Index != tt.index || !strings.Contains(err.Error(), tt.says) {
				t.Errorf("err = %v (index %d), want index %d saying %q", err, ae.Index, tt.index, tt.says)
			}
			// The answers before the bad one still replay.
			if _, err := tr.Next(settings(), facts(probes.TLSExpired), tt.answers[:ae.Index]); err != nil {
				t.Errorf("the good prefix does not replay: %v", err)
			}
		})
	}
}

func TestGoingBackAndChangingAnAnswer(t *testing.T) {
	tr := Default()
	f := facts(probes.Healthy)
	given := answers("ask-browser-works", "error-page", "fix-refresh", "broken", "fix-cache", "broken", "scope", "only-me", "other-sites", "many-fail")
	if st, _ := tr.Next(settings(), f, Back(given)); st.Node != "other-sites" {
		t.Errorf("back one step: at %s, want other-sites", st.Node)
	}
	kept, err := tr.Rewind(settings(), f, given, "scope")
	if err != nil {
		t.Fatal(err)
	}
	if len(kept) != 3 {
		t.Fatalf("rewind to scope kept %d answers, want 3", len(kept))
	}
	changed := append(kept, Answer{Node: "scope", Choice: "everyone", At: now})
	st, err := tr.Next(settings(), f, changed)
	if err != nil || st.Node != "fix-visitor-network" {
		t.Errorf("after changing the answer: %v at %v", err, st)
	}
	if given[3].Choice != "only-me" {
		t.Error("Rewind changed the caller's answers")
	}
	if _, err := tr.Rewind(settings(), f, given, "role-dns"); err == nil {
		t.Error("rewound to a node not on the path")
	}
}

func TestPlaceholdersAreFilled(t *testing.T) {
	s := settings()
	s.HostedAllowlist = true
	st, err := Default().Next(s, facts(probes.AccessBlocked), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Acme", "CloudOps", "203.0.113.7"} {
		if !strings.Contains(st.Text, want) {
			t.Errorf("text lacks %q: %s", want, st.Text)
		}
	}
	if strings.ContainsAny(st.Text, "{}") {
		t.Errorf("unfilled placeholder: %s", st.Text)
	}
	// Without settings, the defaults read naturally.
	st, _ = Default().Next(Settings{HostedAllowlist: true}, facts(probes.AccessBlocked), nil)
	if !strings.Contains(st.Text, "your organisation") || !strings.Contains(st.Text, "the hosting team") {
		t.Errorf("defaults not used: %s", st.Text)
	}
}

// TestSeedsAreCovered proves every cause and fix documented in the seed
// articles is reachable in the default tree.
func TestSeedsAreCovered(t *testing.T) {
	raw, err := os.ReadFile("testdata/seeds_checklist.md")
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{}
	for _, m := range regexp.MustCompile("(?m)^- `([a-z0-9-]+)`").FindAllStringSubmatch(string(raw), -1) {
		documented[m[1]] = true
	}
	if len(documented) < 60 {
		t.Fatalf("read only %d items from the checklist", len(documented))
	}
	tr := Default()
	reached := map[string]bool{}
	for _, p := range paths(tr) {
		for _, a := range p {
			reached[a.Node] = true
		}
	}
	covered := map[string]bool{}
	for _, n := range tr.Nodes {
		for _, c := range n.Covers {
			if !documented[c] {
				t.Errorf("node %s covers %q, which the checklist does not list", n.ID, c)
			}
			if reached[n.ID] || n.Kind == KindEnd {
				covered[c] = true
			}
		}
	}
	for id := range documented {
		if !covered[id] {
			t.Errorf("the tree does not reach %q", id)
		}
	}
}

// browserSaw is a browser view of the site: reachable, or not.
func browserSaw(reachable bool) []Vantage {
	detail := "could not connect"
	if reachable {
		detail = "a server answered in 40 ms"
	}
	return []Vantage{{RunID: 1, From: VantageBrowser, At: now.Add(-time.Minute), Reachable: &reachable, Detail: detail}}
}

func TestBrowserView(t *testing.T) {
	skipped := []Vantage{{RunID: 1, From: VantageBrowser, At: now, Detail: "not tried: mixed content"}}
	// An older view then a newer one: the newer counts.
	changed := append(browserSaw(false), browserSaw(true)...)
	agentOnly := []Vantage{{RunID: 1, From: "agent:paris", At: now, Reachable: new(true), Detail: "answered"}}
	for _, tt := range []struct {
		name   string
		code   probes.Code
		views  []Vantage
		at     string
		value  string // the reason shown for the automatic answer
		choice string
	}{
		{"works from here and from your browser", probes.Healthy, browserSaw(true), "fix-refresh", "your browser reached the site: a server answered in 40 ms", "reachable"},
		{"works from here, not from your browser", probes.Healthy, browserSaw(false), "other-sites", "your browser could not connect to the site: could not connect", "unreachable"},
		{"works from here, no browser view", probes.Healthy, nil, "ask-browser-works", "has no result", "unknown"},
		{"works from here, the browser skipped", probes.Healthy, skipped, "ask-browser-works", "did not check the site: not tried: mixed content", "unknown"},
		{"only an agent's view", probes.Healthy, agentOnly, "ask-browser-works", "has no result", "unknown"},
		{"the latest browser view counts", probes.Healthy, changed, "fix-refresh", "a server answered", "reachable"},
		{"refused from here, your browser gets an answer", probes.TCPRefused, browserSaw(true), "fix-reachable-from-you", "reached the site", "reachable"},
		{"timeout from here and from your browser", probes.TCPTimeout, browserSaw(false), "role-down", "could not connect", "unreachable"},
		{"refused from here, no browser view", probes.TCPRefused, nil, "ask-browser-down", "has no result", "unknown"},
		// A 502 is an answer to a browser: the view cannot tell it from a
		// working site, so the gateway branch does not ask it.
		{"gateway 502, browser reached", probes.Gateway502, browserSaw(true), "role-gateway", "", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := facts(tt.code)
			f.Vantages = tt.views
			st, err := Default().Next(settings(), f, nil)
			if err != nil {
				t.Fatal(err)
			}
			if st.Node != tt.at {
				t.Fatalf("at %s, want %s", st.Node, tt.at)
			}
			if tt.choice == "" {
				for _, p := range st.Path {
					if Default().Node(p.Node).Field == "vantage.browser" {
						t.Errorf("the path checks the browser's view at %s", p.Node)
					}
				}
				return
			}
			p := st.Path[1]
			if Default().Node(p.Node).Field != "vantage.browser" || !p.Auto || p.Choice != tt.choice || !strings.Contains(p.Reason, tt.value) {
				t.Errorf("second path entry %+v, want the browser check answered %s (%q)", p, tt.choice, tt.value)
			}
		})
	}

	// The person may disagree with the browser's view: "it does not load
	// here" overrides "a server answered".
	st, err := Default().Next(settings(), Facts{Report: report(probes.Healthy), Vantages: browserSaw(true), Now: now},
		answers("browser-works", "unreachable"))
	if err != nil {
		t.Fatal(err)
	}
	if st.Node != "other-sites" || !st.Path[1].Disagreed || !strings.Contains(st.Path[1].Found, "reached the site") {
		t.Errorf("disagreeing with the browser: at %s, path %+v", st.Node, st.Path)
	}
}

func TestSummaryShowsTheBrowsersView(t *testing.T) {
	f := facts(probes.TCPRefused)
	f.Vantages = browserSaw(true)
	st, err := Default().Next(settings(), f, answers("fix-reachable-from-you", "broken", "role-down", "user", "fix-wait", "broken"))
	if err != nil {
		t.Fatal(err)
	}
	if st.Escalation == nil {
		t.Fatalf("at %s, want an escalation", st.Node)
	}
	for _, want := range []string{"Diagnosis: tcp_refused", "Seen from the requester's browser (2026-11-21 14:29:00 GMT): a server answered in 40 ms"} {
		if !strings.Contains(st.Escalation.Summary, want) {
			t.Errorf("summary lacks %q:\n%s", want, st.Escalation.Summary)
		}
	}
	// Without a view the summary says nothing of the browser.
	st, _ = Default().Next(settings(), facts(probes.TCPRefused), answers("ask-browser-down", "cannot-connect", "role-down", "user", "fix-wait", "broken"))
	if st.Escalation == nil || strings.Contains(st.Escalation.Summary, "browser (") {
		t.Errorf("summary without a browser view:\n%+v", st.Escalation)
	}
}
