package wizard

import (
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/gatecheck/gatecheck/probes"
)

// fieldValues are the fields a check node may read, and the values each
// can take. It is made anew for each validation: the verdict codes and
// gateways come from the probes, which only ever add to them.
func fieldValues() map[string][]string {
	return map[string][]string{
		// The primary verdict code, and whether a code is among the
		// findings.
		"verdict":  codes(),
		"findings": codes(),
		// The gateway the fingerprint named, or "none".
		"gateway": append(slices.Clone(probes.GatewayNames), "none"),
	}
}

// fixedFieldValues are the fields whose values do not come from the
// probes.
var fixedFieldValues = map[string][]string{
	// The status of one probe: ok, warn, fail, skip, or none when it did
	// not run. check.tcp is the worst over all addresses; check.dns the
	// worse of the lookup and of the name's own servers asked directly;
	// check.http the main request; check.twin the other scheme.
	"check.dns":     statuses,
	"check.tcp":     statuses,
	"check.tls":     statuses,
	"check.http":    statuses,
	"check.twin":    statuses,
	"check.samples": statuses,
	// What kind of address the requester came from.
	"requester_ip": {"public", "private", "unknown"},
	// Whether the visitor's browser got an answer from the site (a
	// no-cors fetch from the case page: an answer of any status, a 502
	// included, is "reachable"); unknown without a result.
	"vantage.browser": {"reachable", "unreachable", "unknown"},
	// What gatecheck's agents inside the customer's network found, from
	// their latest views: blocked (access_blocked, tcp_refused or
	// tcp_timeout: refused or cut off from there) if any agent was,
	// else failing (another problem), else healthy; none without a view.
	"vantage.agent": {"healthy", "blocked", "failing", "none"},
	// What the site's origin answered when gatecheck reached it directly
	// (staff gave its address, bypassing an edge or CDN): healthy, or
	// failing; none when nobody asked (or asked under another verdict).
	"vantage.origin": {"healthy", "failing", "none"},
	// The operator says whether the application is hosted behind an IP
	// allowlist.
	"setting.hosted_allowlist": {"yes", "no"},
}

var statuses = []string{"ok", "warn", "fail", "skip", "none"}

// valuesOf returns the values a field can take, and whether it is one.
func valuesOf(field string) ([]string, bool) {
	if v, ok := fixedFieldValues[field]; ok {
		return v, true
	}
	v, ok := fieldValues()[field]
	return v, ok
}

func codes() []string {
	out := make([]string, len(probes.Codes))
	for i, c := range probes.Codes {
		out[i] = string(c)
	}
	return out
}

// Fields returns the fields check nodes may read, sorted.
func Fields() []string {
	out := make([]string, 0, len(fixedFieldValues)+3)
	for f := range fixedFieldValues {
		out = append(out, f)
	}
	for f := range fieldValues() {
		out = append(out, f)
	}
	sort.Strings(out)
	return out
}

var (
	idPattern          = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*$`)
	placeholderPattern = regexp.MustCompile(`\{([a-z_]+)\}`)
)

// validate checks every rule and returns all violations in line order.
// validate checks the tree; with lenient (a tree stored with a case), a
// check may leave values without a choice: values the tree predates, which
// the engine then asks the person about.
func (t *Tree) validate(lenient bool) Errors {
	var errs Errors
	add := func(line int, format string, a ...any) {
		errs = append(errs, FileError{File: t.file, LineError: LineError{Line: line, Msg: fmt.Sprintf(format, a...)}})
	}
	if strings.TrimSpace(t.Version) == "" {
		add(t.line, "the tree has no version")
	}
	if len(t.Nodes) == 0 {
		add(t.line, "the tree has no nodes")
		return errs
	}

	t.nodes = map[string]*Node{}
	for _, n := range t.Nodes {
		if n == nil {
			continue
		}
		switch {
		case n.ID == "":
			add(n.Line, "a node has no id")
			continue
		case !idPattern.MatchString(n.ID):
			add(n.Line, "node id %q: use lower-case letters, digits, - and _", n.ID)
		}
		if prev, dup := t.nodes[n.ID]; dup {
			add(n.Line, "node id %q is used twice (first on line %d)", n.ID, prev.Line)
			continue
		}
		t.nodes[n.ID] = n
	}
	if t.Start == "" {
		add(t.line, "the tree has no start node")
	} else if t.nodes[t.Start] == nil {
		add(t.line, "start node %q does not exist", t.Start)
	}

	for _, n := range t.Nodes {
		if n != nil && n.ID != "" {
			t.validateNode(n, lenient, add)
		}
	}
	if len(errs) == 0 && t.validateGraph(add) && !lenient {
		// A stored tree was proved when it was written, or predates
		// assumptions; a new verdict code reaching a node that does not
		// assume it is for the trees operators write now.
		t.proveAssumptions(add)
	}
	sort.SliceStable(errs, func(i, j int) bool { return errs[i].Line < errs[j].Line })
	return errs
}

func (t *Tree) validateNode(n *Node, lenient bool, add func(int, string, ...any)) {
	ref := func(line int, what, target string) {
		switch {
		case target == "":
			add(line, "node %q: %s leads nowhere", n.ID, what)
		case t.nodes[target] == nil:
			add(line, "node %q: %s leads to %q, which does not exist", n.ID, what, target)
		}
	}
	for _, text := range append([]string{n.Title, n.Text, n.Help, n.Team, n.Contact, n.Request}, n.Steps...) {
		for _, m := range placeholderPattern.FindAllStringSubmatch(text, -1) {
			if !knownPlaceholder(m[1]) {
				add(n.Line, "node %q: unknown placeholder {%s}", n.ID, m[1])
			}
		}
	}
	for _, c := range n.Choices {
		for _, m := range placeholderPattern.FindAllStringSubmatch(c.Label, -1) {
			if !knownPlaceholder(m[1]) {
				add(c.Line, "node %q: unknown placeholder {%s}", n.ID, m[1])
			}
		}
	}
	t.validateAssumes(n, add)
	mustEmpty := func(field string, set bool) {
		if set {
			article := "a"
			if strings.ContainsRune("aeiou", rune(n.Kind[0])) {
				article = "an"
			}
			add(n.Line, "node %q: %s %s node has no %s", n.ID, article, n.Kind, field)
		}
	}
	if n.Confirm != "" && n.Kind != KindFix {
		add(n.Line, "node %q: only a fix has \"confirm\" (gatecheck checks a fix, not a %s)", n.ID, n.Kind)
	}
	switch n.Kind {
	case KindQuestion, KindCheck:
		if n.Kind == KindQuestion && strings.TrimSpace(n.Text) == "" {
			add(n.Line, "node %q: a question needs text", n.ID)
		}
		if len(n.Choices) < 2 {
			add(n.Line, "node %q: a %s needs at least two choices", n.ID, n.Kind)
		}
		seen := map[string]bool{}
		for i, c := range n.Choices {
			what := fmt.Sprintf("choice %d", i+1)
			if c.ID == "" {
				add(c.Line, "node %q: choice %d has no id", n.ID, i+1)
			} else if seen[c.ID] {
				add(c.Line, "node %q: choice id %q is used twice", n.ID, c.ID)
			} else {
				what = fmt.Sprintf("choice %q", c.ID)
			}
			seen[c.ID] = true
			if strings.TrimSpace(c.Label) == "" {
				add(c.Line, "node %q: %s has no label", n.ID, what)
			}
			ref(c.Line, what, c.Next)
		}
		mustEmpty("steps", len(n.Steps) > 0)
		mustEmpty("fixed/broken", n.Fixed != "" || n.Broken != "")
		mustEmpty("next", n.Next != "")
		if n.Kind == KindCheck {
			t.validateCheck(n, seen, lenient, add)
		} else {
			mustEmpty("field", n.Field != "")
			mustEmpty("default", n.Default != "")
			mustEmpty("quiet", len(n.Quiet) > 0)
			for _, c := range n.Choices {
				if len(c.When) > 0 {
					add(c.Line, "node %q: only a check's choices have \"when\"", n.ID)
				}
			}
		}
	case KindFix:
		if len(n.Steps) == 0 {
			add(n.Line, "node %q: a fix needs steps", n.ID)
		}
		ref(n.Line, `"fixed" ("this fixed it")`, n.Fixed)
		ref(n.Line, `"broken" ("still broken")`, n.Broken)
		if n.Confirm != "" && n.Confirm != ConfirmProbe {
			add(n.Line, "node %q: confirm %q is not %q (the only way gatecheck checks a fix)", n.ID, n.Confirm, ConfirmProbe)
		}
		mustEmpty("choices", len(n.Choices) > 0)
		mustEmpty("next", n.Next != "")
	case KindEscalate:
		if strings.TrimSpace(n.Team) == "" {
			add(n.Line, "node %q: an escalation needs a team", n.ID)
		}
		ref(n.Line, "next", n.Next)
		mustEmpty("choices", len(n.Choices) > 0)
	case KindEnd:
		switch n.Outcome {
		case Resolved, Escalated, Unresolved:
		case "":
			add(n.Line, "node %q: an end node needs an outcome (resolved, escalated or unresolved)", n.ID)
		default:
			add(n.Line, "node %q: outcome %q is not resolved, escalated or unresolved", n.ID, n.Outcome)
		}
		mustEmpty("choices", len(n.Choices) > 0)
		mustEmpty("next", n.Next != "" || n.Fixed != "" || n.Broken != "")
	case "":
		add(n.Line, "node %q has no kind", n.ID)
	default:
		add(n.Line, "node %q: unknown kind %q (question, check, fix, escalate or end)", n.ID, n.Kind)
	}
}

func (t *Tree) validateCheck(n *Node, choiceIDs map[string]bool, lenient bool, add func(int, string, ...any)) {
	values, ok := valuesOf(n.Field)
	switch {
	case n.Field == "":
		add(n.Line, "node %q: a check needs a field (one of %s)", n.ID, strings.Join(Fields(), ", "))
		return
	case !ok:
		add(n.Line, "node %q: unknown field %q (one of %s)", n.ID, n.Field, strings.Join(Fields(), ", "))
		return
	}
	for _, v := range n.Quiet {
		if !slices.Contains(values, v) {
			add(n.Line, "node %q: quiet value %q is not a known value for %s", n.ID, v, n.Field)
		}
	}
	claimed := map[string]string{}
	for _, c := range n.Choices {
		for _, v := range c.When {
			if !slices.Contains(values, v) {
				what := "value"
				if n.Field == "verdict" || n.Field == "findings" {
					what = "verdict code"
				}
				add(c.Line, "node %q: %q is not a known %s for %s", n.ID, v, what, n.Field)
				continue
			}
			if other, dup := claimed[v]; dup && other != c.ID {
				add(c.Line, "node %q: value %q is claimed by choices %q and %q", n.ID, v, other, c.ID)
			}
			claimed[v] = c.ID
		}
	}
	if n.Default != "" && !choiceIDs[n.Default] {
		add(n.Line, "node %q: default %q is not one of its choices", n.ID, n.Default)
	}
	if !lenient && n.Default == "" && len(claimed) < len(values) && n.Field != "findings" {
		var missing []string
		for _, v := range values {
			if _, ok := claimed[v]; !ok {
				missing = append(missing, v)
			}
		}
		add(n.Line, "node %q: no choice for %s and no default", n.ID, strings.Join(missing, ", "))
	}
	if n.Field == "findings" && n.Default == "" {
		add(n.Line, "node %q: a findings check needs a default (for when no listed code is found)", n.ID)
	}
}

// validateGraph checks the shape: every node reachable from the start, no
// cycles, and every path ending at an end node (which follows from the
// first two once every non-end node leads somewhere). It reports whether
// the tree has no cycle, so that walks through it end.
func (t *Tree) validateGraph(add func(int, string, ...any)) bool {
	const (
		unseen = iota
		onPath
		done
	)
	state := map[string]int{}
	var stack []string
	var visit func(id string) bool
	visit = func(id string) bool {
		switch state[id] {
		case onPath:
			i := slices.Index(stack, id)
			cycle := append(slices.Clone(stack[i:]), id)
			add(t.nodes[id].Line, "cycle: %s", strings.Join(cycle, " → "))
			return false
		case done:
			return true
		}
		state[id] = onPath
		stack = append(stack, id)
		for _, next := range t.nodes[id].Edges() {
			if !visit(next) {
				return false
			}
		}
		stack = stack[:len(stack)-1]
		state[id] = done
		return true
	}
	if !visit(t.Start) {
		return false
	}
	for _, n := range t.Nodes {
		if state[n.ID] == unseen {
			add(n.Line, "node %q is never reached from the start", n.ID)
		}
	}
	return true
}

// placeholders are the names text may use in braces.
var placeholders = []string{
	"org", "team", "team_contact", "support_contact", "status_page",
	"url", "host", "requester_ip", "verdict", "verdict_summary", "gateway", "ticket",
	"agent_ip", "origin", "origin_summary",
}

func knownPlaceholder(name string) bool { return slices.Contains(placeholders, name) }
