package web

import (
	"html"
	"regexp"
	"testing"

	"github.com/gatecheck/gatecheck/probes"
)

// serverViewCell is what the case page says gatecheck's server saw.
var serverViewCell = regexp.MustCompile(`data-testid="server-view">([^<]*)<`)

// oneAnswer is a server's view that tells of one answer, and answeredFine
// one that reads as the site answering well.
var oneAnswer, answeredFine = regexp.MustCompile(`^Answered \d{3}`), regexp.MustCompile(`^Answered 2\d\d`)

// TestServerViewAgreesWithTheVerdict: the case page's "From gatecheck's
// server" never reads as a good answer when the verdict is a problem, and
// for a site that fails some of the time never as one answer, good or bad:
// an intermittent site (3 of 7 requests failed, in the browser journeys)
// was shown as "Answered 200 OK from nginx" under the headline saying it
// fails, or as "Answered 502", by which request came first. Every verdict
// the loopback zoo gives, through the real handlers.
func TestServerViewAgreesWithTheVerdict(t *testing.T) {
	a := truthApp(t)
	for _, code := range probes.Codes {
		site := zooSite(t, code)
		if site == "" {
			continue
		}
		token := a.createCase(site, "")
		a.waitProbed(token)
		if got := a.apiCase(token).Probe.Report; got == nil || got.Verdict.Code != code {
			t.Fatalf("the zoo site for %s gives %+v", code, got)
		}
		_, page := a.do("GET", "/c/"+token, nil)
		m := serverViewCell.FindStringSubmatch(page)
		if m == nil {
			t.Fatalf("%s: no server view on the case page", code)
		}
		seen := html.UnescapeString(m[1])
		if fine := answeredFine.MatchString(seen); fine != (code == probes.Healthy) {
			t.Errorf("%s: the server's view reads %q", code, seen)
		}
		if code == probes.Intermittent && oneAnswer.MatchString(seen) {
			t.Errorf("%s: the server's view tells of one answer: %q", code, seen)
		}
	}
}
