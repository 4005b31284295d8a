package wizard

import (
	"fmt"
	"net/mail"
	"strings"
	"time"

	"github.com/gatecheck/gatecheck/probes"
)

// renderer fills placeholders from the settings and the facts.
type renderer struct {
	s Settings
	f Facts
	// bare leaves the contacts as the operator set them, empty when unset,
	// instead of the words that stand in for them.
	bare bool
	// tech fills {verdict} and {verdict_summary} with the probes' own
	// code and summary, for the technicians a hand-off goes to; without
	// it they are the visitor's words (VisitorWords).
	tech bool
}

func or(v, fallback string) string {
	if strings.TrimSpace(v) == "" {
		return fallback
	}
	return v
}

func (r renderer) value(name string) string {
	rep := r.f.Report
	switch name {
	case "org":
		return or(r.s.Org, "your organisation")
	case "team":
		return or(r.s.Team, "the hosting team")
	case "team_contact":
		if r.bare {
			return strings.TrimSpace(r.s.TeamContact)
		}
		return or(r.s.TeamContact, "your helpdesk, who know how to reach them")
	case "support_contact":
		if r.bare {
			return strings.TrimSpace(r.s.SupportContact)
		}
		return or(r.s.SupportContact, "your helpdesk")
	case "status_page":
		return or(r.s.StatusPage, "the service's status page (if it has one)")
	case "url":
		if rep != nil && rep.URL != "" {
			return rep.URL
		}
		return or(r.f.URL, "the address")
	case "host":
		if rep != nil && rep.Host != "" {
			return rep.Host
		}
		return or(hostOf(r.f.URL), "the site")
	case "requester_ip":
		return or(r.f.RequesterIP, "unknown")
	case "verdict":
		switch {
		case rep == nil:
			return "not checked yet"
		case r.tech:
			return string(rep.Verdict.Code)
		}
		return lowerFirst(VisitorWords(rep, r.f.Now).Headline)
	case "verdict_summary":
		switch {
		case rep == nil:
			return "gatecheck has not checked the site yet"
		case r.tech:
			return rep.Verdict.Summary
		}
		return lowerFirst(VisitorWords(rep, r.f.Now).Headline)
	case "gateway":
		if rep == nil || rep.Gateway.Name == "" {
			return "an unidentified gateway"
		}
		return probes.GatewayLabel(rep.Gateway.Name)
	case "ticket":
		return or(r.f.Ticket, "none")
	case "origin":
		// The address the origin was reached at: staff and keys see it;
		// anyone else's view of it is withheld.
		if _, _, v := originValue(r.f); v != nil && v.Report.Origin != "" {
			return v.Report.Origin
		}
		return "the origin server's address"
	case "origin_summary":
		_, _, v := originValue(r.f)
		switch {
		case v == nil:
			return "not reached directly yet"
		case r.tech:
			return string(v.Report.Verdict.Code) + ": " + v.Report.Verdict.Summary
		case originWorks(v.Report):
			return "it works"
		}
		return lowerFirst(VisitorWords(v.Report, r.f.Now).Headline)
	case "agent_ip":
		// The address gatecheck saw the deciding agent come from: the
		// public address of the customer's network.
		if _, _, v := agentValue(r.f); v != nil && v.Addr != "" {
			return v.Addr
		}
		return "unknown"
	}
	return "{" + name + "}"
}

func hostOf(u string) string {
	t, err := probes.Normalize(u, probes.DefaultPorts)
	if err != nil {
		return ""
	}
	return t.Host
}

// fill replaces {name} placeholders; validation has made sure every name
// is known.
func (r renderer) fill(s string) string {
	if !strings.Contains(s, "{") {
		return s
	}
	return placeholderPattern.ReplaceAllStringFunc(s, func(m string) string {
		return r.value(m[1 : len(m)-1])
	})
}

// evidenceHeaders are the response headers a team can trace a request by.
var evidenceHeaders = []string{"CF-RAY", "X-Amz-Cf-Id", "X-Azure-Ref", "X-Served-By", "X-Request-Id", "X-Varnish", "Server", "Via"}

// EmailAddress returns the e-mail address a contact is ("ops@example.com",
// "CloudOps <ops@example.com>", "mailto:ops@example.com"), or "" when it
// is something else (a phone number, a web address, a name).
func EmailAddress(contact string) string {
	c := strings.TrimSpace(contact)
	if len(c) > 6 && strings.EqualFold(c[:7], "mailto:") {
		c = c[7:]
	}
	a, err := mail.ParseAddress(c)
	if err != nil || strings.ContainsAny(a.Address, " \t\r\n,;?&") {
		return ""
	}
	return a.Address
}

// finding is what gatecheck found, in plain words.
func (r renderer) finding() string {
	rep := r.f.Report
	if rep == nil {
		return "gatecheck could not check the site"
	}
	return or(strings.TrimSpace(rep.Verdict.Summary), string(rep.Verdict.Code))
}

// subject is an escalation's subject line: the site and what was found,
// never a status the probes did not see.
func (r renderer) subject() string {
	f := oneLine(strings.TrimSuffix(r.finding(), "."))
	return r.value("host") + ": " + f
}

// summary is the ready-to-paste text: the recipient when there is one, the
// subject and the body.
func (r renderer) summary(e *Escalation) string {
	var b strings.Builder
	if e.Address != "" {
		fmt.Fprintf(&b, "To: %s (%s)\n", e.Team, e.Address)
	}
	fmt.Fprintf(&b, "Subject: %s\n\n%s", e.Subject, e.Body)
	return b.String()
}

// body writes the text of an escalation: everything the receiving team
// needs without a round trip.
func (r renderer) body(t *Tree, e *Escalation, path []PathEntry) string {
	var b strings.Builder
	line := func(format string, a ...any) { fmt.Fprintf(&b, format+"\n", a...) }
	loc := r.s.Location
	if loc == nil {
		loc = time.UTC
	}
	now := r.f.Now
	if now.IsZero() {
		now = time.Unix(0, 0)
	}
	if e.Request != "" {
		line("%s", e.Request)
		line("")
	}
	line("What gatecheck found: %s", r.finding())
	if rep := r.f.Report; rep != nil {
		w := VisitorWords(rep, now)
		line("In plain words: %s. %s", w.Headline, w.Explain)
		if rep.Verdict.Explanation != "" {
			line("%s", rep.Verdict.Explanation)
		}
	}
	line("")
	if r.f.Link != "" {
		line("Case: %s", r.f.Link)
	}
	line("URL: %s", r.value("url"))
	if r.f.Ticket != "" {
		line("Ticket: %s", r.f.Ticket)
	}
	line("Time: %s", now.In(loc).Format("2006-01-02 15:04 MST (UTC-07:00)"))
	line("Requester's IP address (as the server sees it): %s", r.value("requester_ip"))
	if rep := r.f.Report; rep != nil {
		line("Diagnosis: %s (%s layer): %s", rep.Verdict.Code, rep.Verdict.Layer, rep.Verdict.Summary)
		for _, fd := range rep.Findings {
			line("Also found: %s: %s", fd.Code, fd.Summary)
		}
		if g := rep.Gateway; g.Name != "" {
			line("Gateway: %s (%s confidence: %s)", probes.GatewayLabel(g.Name), g.Certainty, strings.Join(g.Signals, "; "))
		}
		if h := rep.HTTP.Final(); h != nil && h.Header != nil {
			var ev []string
			for _, k := range evidenceHeaders {
				if v := h.Header.Get(k); v != "" {
					ev = append(ev, k+": "+oneLine(v))
				}
			}
			if len(ev) > 0 {
				line("Response headers: %s", strings.Join(ev, "; "))
			}
		}
		if rep.DNS != nil && len(rep.DNS.Addresses) > 0 {
			line("DNS: %s → %s", rep.DNS.Name, strings.Join(rep.DNS.Addresses, ", "))
		}
		if a := authSaid(rep.DNS); a != "" {
			line("%s", a)
		}
		if tl := rep.TLS; tl != nil && len(tl.Chain) > 0 {
			c := tl.Chain[0]
			line("Certificate: %s, issued by %s, valid %s to %s", c.Subject, c.Issuer, c.NotBefore.Format("2006-01-02"), c.NotAfter.Format("2006-01-02"))
			if len(tl.Issues) > 0 {
				line("Certificate problems: %s", strings.Join(tl.Issues, "; "))
			}
		} else if tl != nil && tl.Error != "" {
			line("TLS: %s", tl.Error)
		}
		if n := rep.Counts; n.Total > 0 {
			line("Samples: %d requests, %d ok, %d gateway errors, %d other errors, %d without an answer", n.Total, n.OK, n.Gateway, n.Other, n.Errors)
		}
		line("Probed at: %s", rep.StartedAt.In(loc).Format("2006-01-02 15:04:05 MST"))
	}
	if v := Browser(r.f.Vantages); v != nil {
		line("Seen from the requester's browser (%s): %s", v.At.In(loc).Format("2006-01-02 15:04:05 MST"), oneLine(v.Detail))
	}
	for _, v := range AgentViews(r.f.Vantages) {
		seen := oneLine(v.Detail)
		if v.Report != nil {
			seen = string(v.Report.Verdict.Code) + ": " + oneLine(v.Report.Verdict.Summary)
		}
		line("Seen from gatecheck's agent %s at %s (its address as gatecheck saw it; %s): %s",
			strings.TrimPrefix(v.From, "agent:"), or(v.Addr, "an unknown address"), v.At.In(loc).Format("2006-01-02 15:04:05 MST"), seen)
	}
	var done []string
	for _, p := range path {
		if p.Kind == KindCheck && p.Auto {
			continue
		}
		done = append(done, fmt.Sprintf("- %s: %s", p.Title, p.ChoiceLabel))
	}
	if len(done) > 0 {
		line("")
		line("What was tried:")
		for _, d := range done {
			line("%s", d)
		}
	}
	line("")
	line("Troubleshooting tree: %s", t.ID())
	return b.String()
}

func oneLine(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	if len(s) > 120 {
		s = s[:120] + "…"
	}
	return s
}

// authSaid is, for the hand-off, what the name's own servers answered
// when asked directly: "The name's servers (shop.example): ns1.shop.example
// 192.0.2.5; ns2.shop.example refused", or "" when they were not asked.
func authSaid(d *probes.DNSResult) string {
	if d == nil || d.Authoritative == nil || len(d.Authoritative.Servers) == 0 {
		return ""
	}
	a := d.Authoritative
	var parts []string
	for _, s := range a.Servers {
		what := strings.ReplaceAll(s.Outcome, "_", " ")
		if s.Outcome == "answered" {
			what = "no address"
			if len(s.Addresses) > 0 {
				what = strings.Join(s.Addresses, ", ")
			}
		}
		parts = append(parts, oneLine(s.Name+" "+what))
	}
	return "The name's servers (" + oneLine(a.Zone) + "), asked directly: " + strings.Join(parts, "; ")
}
