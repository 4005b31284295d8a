package wizard

import (
	"strings"
	"testing"
	"time"

	"github.com/gatecheck/gatecheck/probes"
)

// TestEscalationSummary: the hand-off carries the case link, what the
// probes found (not always "502 Bad Gateway"), the requester, the time in
// the operator's time zone, and the contact only as set: an e-mail address
// is told apart from a phone number or a web page, and without one nobody
// is named.
func TestEscalationSummary(t *testing.T) {
	london, err := time.LoadLocation("Europe/London")
	if err != nil {
		t.Skip("no time zone data:", err)
	}
	now := time.Date(2026, 7, 1, 13, 32, 0, 0, time.UTC)
	report := func(code probes.Code, summary string) *probes.Report {
		return &probes.Report{URL: "https://shop.example/", Host: "shop.example",
			Verdict: probes.Verdict{Code: code, Layer: probes.LayerOf(code), Summary: summary, Explanation: probes.Explanation(code)}}
	}
	for _, tc := range []struct {
		name, node, contact, email string
		rep                        *probes.Report
		found                      string
	}{
		{"forbidden", "escalate-support", "help@example.com", "help@example.com",
			report(probes.AccessBlocked, "shop.example answered 403 Forbidden"), "shop.example answered 403 Forbidden"},
		{"expired certificate", "escalate-cert", "CloudOps <ops@example.com>", "ops@example.com",
			report(probes.TLSExpired, "The certificate of shop.example expired on 2026-06-30"), "The certificate of shop.example expired on 2026-06-30"},
		{"phone", "escalate-host", "+44 20 7946 0000", "", report(probes.Gateway502, "nginx answered 502 Bad Gateway"), "nginx answered 502 Bad Gateway"},
		{"web page", "escalate-host", "https://help.example/new", "", report(probes.Gateway502, "nginx answered 502 Bad Gateway"), "nginx answered 502 Bad Gateway"},
		{"no contact", "escalate-host", "", "", report(probes.Gateway502, "nginx answered 502 Bad Gateway"), "nginx answered 502 Bad Gateway"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := Settings{Team: "CloudOps", TeamContact: tc.contact, SupportContact: tc.contact, Location: london}
			f := Facts{Report: tc.rep, RequesterIP: "203.0.113.7", URL: "https://shop.example/", Now: now, Link: "https://gatecheck.example/c/abc"}
			st, err := Default().StepAt(s, f, tc.node)
			if err != nil {
				t.Fatal(err)
			}
			e := st.Escalation
			if e == nil {
				t.Fatalf("%s has no escalation", tc.node)
			}
			if e.Address != tc.contact || e.Email != tc.email {
				t.Errorf("address %q, email %q; want %q, %q", e.Address, e.Email, tc.contact, tc.email)
			}
			if e.Subject != "shop.example: "+tc.found {
				t.Errorf("subject %q", e.Subject)
			}
			for _, want := range []string{"What gatecheck found: " + tc.found, "Case: https://gatecheck.example/c/abc",
				"Requester's IP address (as the server sees it): 203.0.113.7", "Time: 2026-07-01 14:32 BST (UTC+01:00)"} {
				if !strings.Contains(e.Body, want) {
					t.Errorf("the body lacks %q:\n%s", want, e.Body)
				}
			}
			if tc.contact == "" {
				if strings.Contains(e.Summary, "To:") || strings.Contains(e.Summary, "your helpdesk") {
					t.Errorf("a recipient without a contact:\n%s", e.Summary)
				}
			} else if !strings.HasPrefix(e.Summary, "To: ") || !strings.Contains(strings.SplitN(e.Summary, "\n", 2)[0], tc.contact) {
				t.Errorf("summary's first line: %q", strings.SplitN(e.Summary, "\n", 2)[0])
			}
			if !strings.Contains(e.Summary, "Subject: "+e.Subject+"\n\n"+e.Body) {
				t.Errorf("the summary is not the subject and the body:\n%s", e.Summary)
			}
			if tc.rep.Verdict.Code != probes.Gateway502 && strings.Contains(e.Subject, "502") {
				t.Errorf("a 502 in the subject of a %s: %q", tc.rep.Verdict.Code, e.Subject)
			}
			if len(st.Choices) != 1 || st.Choices[0].Label != "I have sent it myself" {
				t.Errorf("choices %+v", st.Choices)
			}
		})
	}
}

func TestEmailAddress(t *testing.T) {
	for in, want := range map[string]string{
		"ops@example.com": "ops@example.com", " CloudOps <ops@example.com> ": "ops@example.com", "mailto:ops@example.com": "ops@example.com",
		"+44 20 7946 0000": "", "https://help.example/": "", "the hosting team": "", "": "", "ops@example.com, evil@example.net": "",
		"ops@example.com?cc=evil@example.net": "",
	} {
		if got := EmailAddress(in); got != want {
			t.Errorf("EmailAddress(%q) = %q, want %q", in, got, want)
		}
	}
}
