package wizard

import (
	"net/http"
	"strconv"

	"github.com/gatecheck/gatecheck/probes"
)

// answerOf says in a few words what one point of view got: "answers 502
// Bad Gateway", "gives no answer (the server is not taking
// connections)".
func answerOf(r *probes.Report) string {
	if r.HTTP != nil && r.HTTP.Answered() {
		st := strconv.Itoa(r.HTTP.Status)
		if t := http.StatusText(r.HTTP.Status); t != "" {
			st += " " + t
		}
		return "answers " + st
	}
	w := VisitorWords(r, r.FinishedAt())
	return "gives no answer (" + lowerFirst(w.Headline) + ")"
}

// notReached is whether the origin's address was refused: nothing was
// asked there, so nothing is known of it.
func notReached(r *probes.Report) bool { return r.Verdict.Code == probes.BlockedTarget }

// originWorks is whether a point of view found the site working.
func originWorks(r *probes.Report) bool { return r.Verdict.Code == probes.Healthy }

// OriginPair says what the public view (the edge, where the name leads)
// and the origin reached directly answered, side by side, and what the
// pair means: the edge failing while the origin works is the edge's
// problem (it cannot reach the origin, or is configured with the wrong
// one); both failing is the origin's. It is "" unless both reports are
// there.
func OriginPair(public, origin *probes.Report) string {
	if public == nil || origin == nil {
		return ""
	}
	if notReached(origin) {
		return "The edge " + answerOf(public) + "; the origin was not checked: gatecheck may not reach that address (it is not on the public internet, and the operator has not opened its range)."
	}
	pair := "The edge " + answerOf(public) + "; the origin " + answerOf(origin)
	switch pw, ow := originWorks(public), originWorks(origin); {
	case !pw && ow:
		return pair + ": the edge cannot reach the origin, or is configured with the wrong one."
	case !pw && !ow:
		return pair + ": the origin fails too, so the fix is at the origin, not at the edge."
	case pw && !ow:
		return pair + ": the edge serves the site, perhaps from its cache, while the origin fails; it may fail at the edge too once the cache runs out."
	default:
		return pair + ": both work now."
	}
}

// originValue reads vantage.origin: what the origin answered when
// reached directly, from its latest view; "none" without one. v is that
// view.
func originValue(f Facts) (value, reason string, v *Vantage) {
	v = Origin(f.Vantages)
	if v == nil || v.Report == nil {
		return "none", "nobody has reached the site's origin server directly yet; gatecheck's staff can, from the case's page", nil
	}
	if notReached(v.Report) {
		return "none", "the origin's address was not checked: gatecheck may not reach it", nil
	}
	value = "failing"
	if originWorks(v.Report) {
		value = "healthy"
	}
	return value, "reached directly, the origin server found " + string(v.Report.Verdict.Code) + ": " + v.Report.Verdict.Summary, v
}

// originSaid is what the origin's check found, in the person's words.
func originSaid(f Facts) string {
	_, _, v := originValue(f)
	if v == nil {
		return "nobody has reached the site's own server directly yet, behind the service in front of it; gatecheck's staff can"
	}
	if originWorks(v.Report) {
		return "reached directly, behind the service in front of it, the site's own server works"
	}
	return "reached directly, behind the service in front of it, the site's own server fails too: " + lowerFirst(VisitorWords(v.Report, f.Now).Headline)
}

// OriginPlain is the origin's view in one plain line for whoever may not
// see its address or evidence: whether it answered.
func OriginPlain(origin *probes.Report) string {
	if origin == nil {
		return ""
	}
	if notReached(origin) {
		return ""
	}
	if originWorks(origin) {
		return "The helpdesk also checked the site's own server directly, behind the service in front of it: it works."
	}
	return "The helpdesk also checked the site's own server directly, behind the service in front of it: it fails too."
}
