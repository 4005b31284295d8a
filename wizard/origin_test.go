package wizard

import (
	"strings"
	"testing"

	"github.com/gatecheck/gatecheck/probes"
)

// originSaw is a view of the origin, reached directly at addr, whose
// report says code (and, when status is set, that it answered it).
func originSaw(addr string, code probes.Code, status int) []Vantage {
	r := report(code)
	r.Origin = addr
	if status != 0 {
		r.HTTP = &probes.HTTPResult{Status: status, Hops: []probes.Hop{{Status: status}}}
	}
	return []Vantage{{RunID: 1, From: VantageOrigin, At: now, Reachable: new(status != 0), Report: r}}
}

func answered(code probes.Code, status int) *probes.Report {
	r := report(code)
	if status != 0 {
		r.HTTP = &probes.HTTPResult{Status: status, Hops: []probes.Hop{{Status: status}}}
	}
	return r
}

// The pair sentence for each combination of the edge and the origin.
func TestOriginPair(t *testing.T) {
	for _, c := range []struct {
		name           string
		public, origin *probes.Report
		want           string
	}{
		{"edge fails, origin works", answered(probes.Gateway502, 502), answered(probes.Healthy, 200),
			"The edge answers 502 Bad Gateway; the origin answers 200 OK: the edge cannot reach the origin, or is configured with the wrong one."},
		{"both fail", answered(probes.Gateway502, 502), answered(probes.TCPRefused, 0),
			"The edge answers 502 Bad Gateway; the origin gives no answer (the site's server is not taking connections): the origin fails too, so the fix is at the origin, not at the edge."},
		{"origin fails only", answered(probes.Healthy, 200), answered(probes.ServerError, 500),
			"The edge answers 200 OK; the origin answers 500 Internal Server Error: the edge serves the site, perhaps from its cache, while the origin fails"},
		{"both work", answered(probes.Healthy, 200), answered(probes.Healthy, 200),
			"The edge answers 200 OK; the origin answers 200 OK: both work now."},
		{"no origin yet", answered(probes.Gateway502, 502), nil, ""},
		{"origin refused by the guard", answered(probes.Gateway502, 502), answered(probes.BlockedTarget, 0),
			"The edge answers 502 Bad Gateway; the origin was not checked: gatecheck may not reach that address"},
	} {
		if got := OriginPair(c.public, c.origin); !strings.HasPrefix(got, c.want) || (c.want == "") != (got == "") {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
}

// An owner whose edge answers 502 while the origin, reached directly,
// works is sent to the fix naming the split, with the address and what
// the origin answered; an origin that fails too, or none reached, goes
// on to the owner's own checks, the missing view shown on the path.
func TestOriginInTheWalk(t *testing.T) {
	walk := func(views []Vantage) *Step {
		t.Helper()
		f := facts(probes.Gateway502)
		f.Vantages = views
		st, err := Default().Next(settings(), f, answers("role-gateway", "owner"))
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	st := walk(originSaw("203.0.113.7:8443", probes.Healthy, 200))
	if st.Node != "fix-edge-origin" {
		t.Fatalf("origin works: at %s, want fix-edge-origin", st.Node)
	}
	if !strings.Contains(st.Text, "Reached directly at 203.0.113.7:8443, the site's own server answers: it works.") ||
		!strings.Contains(strings.Join(st.Steps, " "), "(203.0.113.7:8443)") {
		t.Errorf("the fix does not name the split: %q %q", st.Text, st.Steps)
	}
	for name, views := range map[string][]Vantage{
		"origin fails too": originSaw("203.0.113.7", probes.TCPRefused, 0),
		"not reached":      nil,
		"refused":          originSaw("10.0.0.7", probes.BlockedTarget, 0),
	} {
		st := walk(views)
		if st.Node != "owner-backup" {
			t.Errorf("%s: at %s, want owner-backup", name, st.Node)
		}
		var seen bool
		for _, p := range st.Path {
			if p.Node == "origin-compare" {
				seen = p.Auto && p.Words != ""
			}
		}
		if !seen {
			t.Errorf("%s: the path does not show the comparison with the origin: %+v", name, st.Path)
		}
	}
}
