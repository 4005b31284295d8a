package wizard

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/gatecheck/gatecheck/probes"
)

// Settings are the operator's: they fill the placeholders in the tree's
// text and answer the setting.* checks.
type Settings struct {
	Org            string // the organisation running gatecheck
	Team           string // the team escalations go to (the hosting runbook's "CloudOps")
	TeamContact    string // how to reach that team
	SupportContact string // the helpdesk, for visitors
	StatusPage     string // the service's status page
	// HostedAllowlist says the application is hosted with an IP allowlist,
	// which makes the allowlist the first suspect of a 502.
	HostedAllowlist bool
	// Location is the time zone of escalation summaries (nil: UTC).
	Location *time.Location
}

// Facts are what the engine knows without asking: the probe report (nil
// while the probes run, or when they could not), the other points of view
// on the URL (the visitor's browser), the requester's address as the
// server sees it, and the case's own details.
type Facts struct {
	Report *probes.Report
	// Vantages are the views besides the server's, oldest first; the
	// latest of each source counts.
	Vantages    []Vantage
	RequesterIP string
	URL         string
	Ticket      string
	// Now is when the summary is written (the engine reads no clock).
	Now time.Time
	// Link is the case's absolute link, for the summary (empty: none).
	Link string
}

// Answer is one thing the person chose. For a check node it overrides the
// automatic answer (the person disagreed, or answered because the probes
// could not).
type Answer struct {
	Node   string    `json:"node"`
	Choice string    `json:"choice"`
	At     time.Time `json:"at"`
}

// PathEntry is one node passed on the way to the current step.
type PathEntry struct {
	Node        string `json:"node"`
	Kind        Kind   `json:"kind"`
	Title       string `json:"title"`
	Choice      string `json:"choice"`
	ChoiceLabel string `json:"choice_label"`
	// Auto marks an answer taken from the report; Reason says why.
	Auto   bool   `json:"auto"`
	Reason string `json:"reason,omitempty"`
	// Found is what the report said at a check, even when the person
	// overrode it; Disagreed marks that override. Words says the same as
	// Reason or Found for the person on the visitor's pages: no verdict
	// codes, error strings or settings names.
	Found     string    `json:"found,omitempty"`
	Words     string    `json:"words,omitempty"`
	Disagreed bool      `json:"disagreed,omitempty"`
	At        time.Time `json:"at,omitzero"`
	// Answer is the index of the answer taken here, -1 when automatic.
	Answer int `json:"answer"`
}

// StepChoice is a button on the current step.
type StepChoice struct {
	ID    string `json:"id"`
	Label string `json:"label"`
	// Suggested marks the choice the report points to, on a check the
	// person is asked to confirm.
	Suggested bool `json:"suggested,omitempty"`
}

// Escalation is the hand-off of an escalate node.
type Escalation struct {
	Team    string `json:"team"`
	Contact string `json:"contact"`
	// Address is the contact as the operator set it, empty when this
	// gatecheck has none: then nobody is named, and the person is told so.
	Address string `json:"address,omitempty"`
	// Email is Address when it is an e-mail address (for mailto: links
	// and mail sent by gatecheck), else empty.
	Email   string `json:"email,omitempty"`
	Request string `json:"request"`
	// Subject and Body are the hand-off as an e-mail: what gatecheck
	// found, the case link, the requester, the time and the steps tried.
	Subject string `json:"subject"`
	Body    string `json:"body"`
	// Summary is ready to paste into an e-mail or ticket: the recipient
	// (when there is one), the subject and the body.
	Summary string `json:"summary"`
}

// Step is what to show next.
type Step struct {
	Node    string       `json:"node"`
	Kind    Kind         `json:"kind"`
	Title   string       `json:"title"`
	Text    string       `json:"text"`
	Help    string       `json:"help,omitempty"`
	Steps   []string     `json:"steps,omitempty"`
	Choices []StepChoice `json:"choices,omitempty"`
	// Found is, on a check the person must answer, what the report says
	// (empty when there is no report); FoundWords says it in words for
	// the person.
	Found      string      `json:"found,omitempty"`
	FoundWords string      `json:"found_words,omitempty"`
	Escalation *Escalation `json:"escalation,omitempty"`
	Outcome    Outcome     `json:"outcome,omitempty"`
	Done       bool        `json:"done"`
	Path       []PathEntry `json:"path"`
	// Confirm is set on a fix whose "this fixed it" gatecheck checks with
	// a fresh probe before recording it.
	Confirm bool `json:"confirm,omitempty"`
	// Confirmation, set by the reader of a case (not by the engine), says
	// whether gatecheck's own check confirmed a fix: on the end a fix led
	// to, and on a fix whose check found the site still failing.
	Confirmation *Confirmation `json:"confirmation,omitempty"`
}

// Confirmation is what gatecheck's check of a reported fix found, in words.
type Confirmation struct {
	// Confirmed is true when a fresh probe found the site answering
	// normally; false when the fix was recorded on the person's word.
	Confirmed bool `json:"confirmed"`
	// Checked is when gatecheck checked (zero: it did not).
	Checked time.Time `json:"checked,omitzero"`
	// Text says it for a person: "Solved: gatecheck checked … again at
	// 14:32 and it answers normally", or why it is not confirmed.
	Text string `json:"text"`
}

// ErrStale is wrapped by errors about answers that do not fit the path.
var ErrStale = errors.New("the answers do not fit the tree")

// AnswerError is an answer that cannot be replayed: for a node not on the
// path, or a choice the node does not have.
type AnswerError struct {
	Index  int    // position in the answers
	Node   string // the node the answer names
	Reason string
}

func (e *AnswerError) Error() string {
	return fmt.Sprintf("answer %d (node %q): %s", e.Index+1, e.Node, e.Reason)
}

func (e *AnswerError) Unwrap() error { return ErrStale }

// maxPath bounds a walk; validation forbids cycles, so it is never reached
// by a valid tree.
const maxPath = 1000

// Next replays the answers from the start and returns the step to show.
// It never panics on bad input: an answer that does not fit returns an
// *AnswerError, and the caller may keep answers[:Index] and call again.
func (t *Tree) Next(s Settings, f Facts, answers []Answer) (*Step, error) {
	r := renderer{s: s, f: f}
	var path []PathEntry
	i := 0
	cur := t.nodes[t.Start]
	for len(path) < maxPath {
		pending := func() (*Answer, bool) {
			if i < len(answers) && answers[i].Node == cur.ID {
				return &answers[i], true
			}
			return nil, false
		}
		var (
			choice string
			entry  = PathEntry{Node: cur.ID, Kind: cur.Kind, Title: r.fill(cur.Title), Answer: -1}
		)
		switch cur.Kind {
		case KindEnd:
			if i < len(answers) {
				return nil, &AnswerError{Index: i, Node: answers[i].Node, Reason: "the walk already ended at " + cur.ID}
			}
			return t.step(cur, r, path), nil
		case KindCheck:
			value, reason, known := t.value(cur.Field, f, s)
			auto := ""
			if known {
				auto = cur.pick(value, f)
				entry.Found, entry.Words = reason, t.said(cur.Field, value, f, s)
				// A value the tree predates (a verdict code added since
				// it was written) with no default: the person is asked.
				known = auto != ""
			}
			if a, ok := pending(); ok {
				if cur.Choice(a.Choice) == nil {
					return nil, &AnswerError{Index: i, Node: a.Node, Reason: fmt.Sprintf("%q is not one of its choices", a.Choice)}
				}
				choice, entry.At, entry.Answer = a.Choice, a.At, i
				entry.Disagreed = known && auto != a.Choice
				i++
			} else if known && slices.Contains(cur.Quiet, value) {
				// Nothing to show: pass on without a path entry.
				cur = t.nodes[cur.next(auto)]
				continue
			} else if known {
				choice, entry.Auto, entry.Reason = auto, true, reason
			} else {
				st := t.step(cur, r, path)
				return st, nil
			}
		case KindQuestion, KindFix, KindEscalate:
			a, ok := pending()
			if !ok {
				if i < len(answers) {
					return nil, &AnswerError{Index: i, Node: answers[i].Node, Reason: "that node is not the next on the path (the wizard is at " + cur.ID + ")"}
				}
				return t.step(cur, r, path), nil
			}
			if !slices.Contains(cur.choiceIDs(), a.Choice) {
				return nil, &AnswerError{Index: i, Node: a.Node, Reason: fmt.Sprintf("%q is not one of its choices (%s)", a.Choice, strings.Join(cur.choiceIDs(), ", "))}
			}
			choice, entry.At, entry.Answer = a.Choice, a.At, i
			i++
		}
		entry.Choice = choice
		entry.ChoiceLabel = r.fill(cur.choiceLabel(choice))
		path = append(path, entry)
		cur = t.nodes[cur.next(choice)]
	}
	return nil, errors.New("the walk is too long: the tree must have a cycle")
}

// Rewind returns the answers given before the walk reached node: to change
// the answer at node, append a new one to them. It is how "back" to any
// earlier step, or disagreeing with an automatic check, works.
func (t *Tree) Rewind(s Settings, f Facts, answers []Answer, node string) ([]Answer, error) {
	st, err := t.Next(s, f, answers)
	if err != nil {
		return nil, err
	}
	at := slices.IndexFunc(st.Path, func(p PathEntry) bool { return p.Node == node })
	if at < 0 {
		if st.Node == node {
			return answers[:len(answers):len(answers)], nil
		}
		return nil, &AnswerError{Index: len(answers), Node: node, Reason: "that node is not on the path"}
	}
	// Keep the answers given before the walk got there: those of the path
	// entries before it (automatic entries took none).
	for _, e := range st.Path[at:] {
		if e.Answer >= 0 {
			return answers[:e.Answer:e.Answer], nil
		}
	}
	return answers[:len(answers):len(answers)], nil
}

// Back drops the last answer.
func Back(answers []Answer) []Answer {
	if len(answers) == 0 {
		return answers
	}
	return answers[: len(answers)-1 : len(answers)-1]
}

func (n *Node) choiceIDs() []string {
	switch n.Kind {
	case KindFix:
		return []string{ChoiceFixed, ChoiceBroken}
	case KindEscalate:
		return []string{ChoiceSent}
	}
	ids := make([]string, len(n.Choices))
	for i, c := range n.Choices {
		ids[i] = c.ID
	}
	return ids
}

func (n *Node) choiceLabel(id string) string {
	switch {
	case n.Kind == KindFix && id == ChoiceFixed:
		return "This fixed it"
	case n.Kind == KindFix && id == ChoiceBroken:
		return "Still broken"
	case n.Kind == KindEscalate:
		return "Sent to " + n.Team
	}
	if c := n.Choice(id); c != nil {
		return c.Label
	}
	return id
}

func (n *Node) next(choice string) string {
	switch n.Kind {
	case KindFix:
		if choice == ChoiceFixed {
			return n.Fixed
		}
		return n.Broken
	case KindEscalate:
		return n.Next
	}
	return n.Choice(choice).Next
}

// pick returns the choice of a check for a value.
func (n *Node) pick(value string, f Facts) string {
	if n.Field == "findings" {
		for _, c := range n.Choices {
			for _, w := range c.When {
				for _, fd := range f.Report.Findings {
					if string(fd.Code) == w {
						return c.ID
					}
				}
			}
		}
		return n.Default
	}
	for _, c := range n.Choices {
		if slices.Contains(c.When, value) {
			return c.ID
		}
	}
	return n.Default
}

// value reads a check's field from the facts. known is false when the
// facts cannot say (no report yet): then the person is asked.
func (t *Tree) value(field string, f Facts, s Settings) (value, reason string, known bool) {
	if strings.HasPrefix(field, "setting.") {
		v := "no"
		if s.HostedAllowlist {
			v = "yes"
		}
		return v, "the operator's settings say the application is hosted with an IP allowlist: " + v, true
	}
	if field == "requester_ip" {
		a, err := netip.ParseAddr(f.RequesterIP)
		switch {
		case err != nil:
			return "unknown", "the server could not tell your IP address", true
		case a.IsPrivate() || a.IsLoopback() || a.IsLinkLocalUnicast():
			return "private", "the server sees you at " + a.String() + ", a private address (you reach it from inside a network)", true
		}
		return "public", "the server sees you at " + a.String(), true
	}
	if field == "vantage.browser" {
		return browserValue(f)
	}
	if field == "vantage.agent" {
		value, reason, _ := agentValue(f)
		return value, reason, true
	}
	if field == "vantage.origin" {
		value, reason, _ := originValue(f)
		return value, reason, true
	}
	r := f.Report
	if r == nil {
		return "", "", false
	}
	switch field {
	case "verdict":
		return string(r.Verdict.Code), "the probe's verdict is " + string(r.Verdict.Code) + ": " + r.Verdict.Summary, true
	case "findings":
		var cs []string
		for _, fd := range r.Findings {
			cs = append(cs, string(fd.Code))
		}
		if len(cs) == 0 {
			return "", "the probe found nothing besides its verdict", true
		}
		return strings.Join(cs, ","), "the probe also found " + strings.Join(cs, ", "), true
	case "gateway":
		if r.Gateway.Name == "" {
			return "none", "the probe could not tell which gateway answered", true
		}
		return r.Gateway.Name, fmt.Sprintf("the answer came from %s (%s confidence)", probes.GatewayLabel(r.Gateway.Name), r.Gateway.Certainty), true
	}
	if name, ok := strings.CutPrefix(field, "check."); ok {
		st, detail := checkStatus(r, name)
		if detail == "" {
			return st, "the " + name + " check did not run", true
		}
		return st, "the " + name + " check: " + st + " (" + detail + ")", true
	}
	return "", "", false
}

// browserValue reads vantage.browser: whether the visitor's browser got an
// answer from the site. Without a view (no JavaScript, or not yet) it is
// "unknown", which trees send to a question asking the same thing.
func browserValue(f Facts) (value, reason string, known bool) {
	v := Browser(f.Vantages)
	switch {
	case v == nil:
		return "unknown", "your browser's own check of the site has no result (it needs JavaScript)", true
	case v.Reachable == nil:
		return "unknown", "your browser did not check the site: " + v.Detail, true
	case *v.Reachable:
		return "reachable", "your browser reached the site: " + v.Detail, true
	}
	return "unreachable", "your browser could not connect to the site: " + v.Detail, true
}

// agentValue reads vantage.agent: what the agents inside the customer's
// network found, from their latest views. One agent refused or cut off is
// "blocked", whatever the others found: that is the evidence an allowlist
// or firewall needs. Then "failing" (another problem), then "healthy";
// "none" without an agent's view. v is the view that decided.
func agentValue(f Facts) (value, reason string, v *Vantage) {
	views := AgentViews(f.Vantages)
	rank := func(c probes.Code) (string, int) {
		switch c {
		case probes.AccessBlocked, probes.TCPRefused, probes.TCPTimeout:
			return "blocked", 3
		case probes.Healthy:
			return "healthy", 1
		}
		return "failing", 2
	}
	best := 0
	for i := range views {
		if views[i].Report == nil {
			continue
		}
		if _, r := rank(views[i].Report.Verdict.Code); r > best {
			best, v = r, &views[i]
		}
	}
	if v == nil {
		return "none", "no agent inside your network has checked the site", nil
	}
	value, _ = rank(v.Report.Verdict.Code)
	from := "from " + strings.TrimPrefix(v.From, "agent:")
	if v.Addr != "" {
		from += " (" + v.Addr + ", as gatecheck saw it)"
	}
	return value, "gatecheck's agent " + from + " found " + string(v.Report.Verdict.Code) + ": " + v.Report.Verdict.Summary, v
}

// checkStatus is the worst status of the report's checks of a kind (the
// tree's check.KIND fields name kinds), and its detail.
func checkStatus(r *probes.Report, name string) (status, detail string) {
	rank := map[probes.Status]int{probes.StatusSkip: 0, probes.StatusOK: 1, probes.StatusWarn: 2, probes.StatusFail: 3}
	found := false
	var worst probes.Check
	for _, c := range r.Checks {
		if c.Kind == probes.ProbeKind(name) && (!found || rank[c.Status] > rank[worst.Status]) {
			worst, found = c, true
		}
	}
	if !found {
		return "none", ""
	}
	return string(worst.Status), worst.Detail
}

// step builds the Step for node n.
func (t *Tree) step(n *Node, r renderer, path []PathEntry) *Step {
	st := &Step{
		Node: n.ID, Kind: n.Kind, Title: r.fill(n.Title), Text: r.fill(n.Text), Help: r.fill(n.Help),
		Path: path,
	}
	if st.Path == nil {
		st.Path = []PathEntry{}
	}
	for _, s := range n.Steps {
		st.Steps = append(st.Steps, r.fill(s))
	}
	switch n.Kind {
	case KindQuestion, KindCheck:
		suggested := ""
		if n.Kind == KindCheck {
			if v, reason, known := t.value(n.Field, r.f, r.s); known {
				suggested, st.Found, st.FoundWords = n.pick(v, r.f), reason, t.said(n.Field, v, r.f, r.s)
			}
		}
		for _, c := range n.Choices {
			st.Choices = append(st.Choices, StepChoice{ID: c.ID, Label: r.fill(c.Label), Suggested: c.ID == suggested})
		}
	case KindFix:
		st.Choices = []StepChoice{{ID: ChoiceFixed, Label: "This fixed it"}, {ID: ChoiceBroken, Label: "Still broken"}}
		st.Confirm = n.Confirm == ConfirmProbe
	case KindEscalate:
		// The request is for the technicians it goes to: the probes' own
		// words, status and error.
		tech := r
		tech.tech = true
		e := &Escalation{Team: r.fill(n.Team), Contact: r.fill(n.Contact), Request: tech.fill(n.Request)}
		bare := r
		bare.bare = true
		e.Address = strings.TrimSpace(bare.fill(n.Contact))
		e.Email = EmailAddress(e.Address)
		e.Subject, e.Body = r.subject(), r.body(t, e, path)
		e.Summary = r.summary(e)
		st.Escalation = e
		// The walk ends escalated only when the summary was sent: by
		// gatecheck (its own button) or, as the person confirms, by them.
		st.Choices = []StepChoice{{ID: ChoiceSent, Label: "I have sent it myself"}}
	case KindEnd:
		st.Done, st.Outcome = true, n.Outcome
	}
	return st
}

// StepAt renders the node id as a step to answer, without walking to it:
// it is how a person revisits a node on the path (to disagree with an
// automatic check, say). Path is left empty.
func (t *Tree) StepAt(s Settings, f Facts, id string) (*Step, error) {
	n := t.nodes[id]
	if n == nil {
		return nil, fmt.Errorf("no node %q in the tree", id)
	}
	return t.step(n, renderer{s: s, f: f}, nil), nil
}

// Revise returns the answers with the one at node replaced by choice, and
// everything after it dropped: going back to an earlier step and changing
// the answer.
func (t *Tree) Revise(s Settings, f Facts, answers []Answer, node, choice string, at time.Time) ([]Answer, error) {
	kept, err := t.Rewind(s, f, answers, node)
	if err != nil {
		return nil, err
	}
	n := t.nodes[node]
	if !slices.Contains(n.choiceIDs(), choice) {
		return nil, &AnswerError{Index: len(kept), Node: node, Reason: fmt.Sprintf("%q is not one of its choices", choice)}
	}
	return append(kept, Answer{Node: node, Choice: choice, At: at}), nil
}

// Describe returns a node's title and a choice's label, for histories; the
// ids themselves when the tree does not have them (an older case).
func (t *Tree) Describe(s Settings, f Facts, node, choice string) (title, label string) {
	n := t.nodes[node]
	if n == nil {
		return node, choice
	}
	r := renderer{s: s, f: f}
	return r.fill(n.Title), r.fill(n.choiceLabel(choice))
}
