package wizard

import (
	"slices"

	"github.com/gatecheck/gatecheck/probes"
)

// NotRight is the step at node id as shown to a person who says its
// finding is not right. At the check of the verdict it offers only the
// answers that make sense beside the finding, each as the person would say
// it: the finding itself, first and marked (Suggested); what anyone may
// see instead of any finding (the site working, or failing only some of
// the time); and the answers for the other verdicts of the finding's layer
// in probes' verdict table (a certificate problem beside a broken https
// setup, a refused connection beside an internal address). Other checks
// offer their few answers as they are.
func (t *Tree) NotRight(s Settings, f Facts, id string) (*Step, error) {
	st, err := t.StepAt(s, f, id)
	if err != nil {
		return nil, err
	}
	n := t.nodes[id]
	if n.Kind != KindCheck || n.Field != "verdict" || f.Report == nil {
		return st, nil
	}
	layer := probes.LayerOf(f.Report.Verdict.Code)
	var found, others []StepChoice
	for i, c := range n.Choices {
		sc := st.Choices[i]
		if !sc.Suggested && !sensibleBeside(c.When, layer) {
			continue
		}
		if claim := Claim(probes.Code(c.When[0])); claim != "" {
			sc.Label = claim
		}
		if sc.Suggested {
			found = append(found, sc)
		} else {
			others = append(others, sc)
		}
	}
	st.Choices = append(found, others...)
	r := renderer{s: s, f: f}
	st.Text = "gatecheck checked " + r.value("url") + " from its server and found that " + lowerFirst(VisitorWords(f.Report, f.Now).Headline) +
		". If you see something else, choose what you see: the next steps follow your answer."
	st.FoundWords = ""
	return st, nil
}

// sensibleBeside reports whether an answer for the verdicts when makes
// sense to someone who disagrees with a finding of layer: anyone may see a
// site work or fail only some of the time, and a problem of the same
// layer is the one most easily taken for another. An address that is not
// one (the input layer) is never offered.
func sensibleBeside(when []string, layer probes.Layer) bool {
	return slices.ContainsFunc(when, func(w string) bool {
		c := probes.Code(w)
		l := probes.LayerOf(c)
		return c == probes.Healthy || c == probes.Intermittent || l == layer && l != probes.LayerInput
	})
}
