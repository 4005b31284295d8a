package wizard

import (
	"fmt"
	"slices"
	"sort"
	"strings"
)

// A node's words may state facts ("gatecheck reached the site without
// trouble"); a node reached under other facts contradicts the evidence the
// person is looking at. Assumes names the facts a node's words need, and
// proveAssumptions shows, over every walk the facts and answers allow, that
// no node is reached where its assumptions do not hold.

// assumableField reports whether a node may assume values of field: any
// field a check reads except findings, which is a set, not one value.
func assumableField(field string) bool {
	_, ok := valuesOf(field)
	return ok && field != "findings"
}

// validateAssumes checks the fields and values a node assumes are known.
func (t *Tree) validateAssumes(n *Node, add func(int, string, ...any)) {
	for _, field := range sortedKeys(n.Assumes) {
		values := n.Assumes[field]
		if !assumableField(field) {
			add(n.Line, "node %q: assumes %q, which is not a field a node may assume (one of %s)", n.ID, field, strings.Join(assumable(), ", "))
			continue
		}
		if len(values) == 0 {
			add(n.Line, "node %q: assumes no value of %s (leave %s out to assume nothing of it)", n.ID, field, field)
		}
		known, _ := valuesOf(field)
		for _, v := range values {
			if !slices.Contains(known, v) {
				what := "value"
				if field == "verdict" {
					what = "verdict code"
				}
				add(n.Line, "node %q: assumes %q, which is not a known %s for %s", n.ID, v, what, field)
			}
		}
	}
}

func assumable() []string {
	var out []string
	for _, f := range Fields() {
		if assumableField(f) {
			out = append(out, f)
		}
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// valueSets are what a walk has learnt of the fields checks read: for each
// field read so far, the values it may still have. A field not read yet
// may have any of its values.
type valueSets map[string][]string

func (f valueSets) possible(field string) []string {
	if v, ok := f[field]; ok {
		return v
	}
	v, _ := valuesOf(field)
	return v
}

func (f valueSets) with(field string, values []string) valueSets {
	out := make(valueSets, len(f)+1)
	for k, v := range f {
		out[k] = v
	}
	out[field] = values
	return out
}

// key identifies the value sets, so that a node reached twice under the
// same ones is explored once.
func (f valueSets) key() string {
	var b strings.Builder
	for _, k := range sortedKeys(f) {
		fmt.Fprintf(&b, "%s=%s;", k, strings.Join(f[k], ","))
	}
	return b.String()
}

// maxProofStates bounds the proof: the nodes reached under distinct facts.
// The built-in tree needs a few hundred. (A variable for the test that
// proves the bound holds.)
var maxProofStates = 100_000

// hop is one step of a walk, for the message naming it.
type hop struct{ node, choice string }

// contradiction is a node reached under values it does not assume.
type contradiction struct {
	node   *Node
	field  string
	values []string // the values not assumed, over every walk found
	path   []hop    // the first walk that reached it so
}

// proveAssumptions walks the tree from the start for every verdict code,
// taking every answer at questions, fixes and escalations and, at checks,
// every choice the facts so far allow (a field read once keeps the values
// its choice stood for), and reports each node reached under a value of a
// field it assumes something of but not that value, with a walk that
// reaches it so. The person may still disagree with a check: the walk then
// follows their word, which the path records; the proof is of the walks
// the evidence leads to.
func (t *Tree) proveAssumptions(add func(int, string, ...any)) (states int) {
	found := map[string]*contradiction{} // by node id, then field
	seen := map[string]bool{}
	// Only the fields a node assumes, or that two checks read, need
	// remembering: forgetting the others loses nothing, and keeps the
	// number of states from growing with every field a tree reads.
	track := map[string]bool{"verdict": true}
	reads := map[string]int{}
	for _, n := range t.Nodes {
		for f := range n.Assumes {
			track[f] = true
		}
		if n.Kind == KindCheck {
			if reads[n.Field]++; reads[n.Field] > 1 {
				track[n.Field] = true
			}
		}
	}
	tooMany := false
	var walk func(n *Node, f valueSets, path []hop)
	walk = func(n *Node, f valueSets, path []hop) {
		k := n.ID + "|" + f.key()
		if seen[k] {
			return
		}
		if len(seen) >= maxProofStates {
			tooMany = true
			return
		}
		seen[k] = true
		for _, field := range sortedKeys(n.Assumes) {
			var bad []string
			for _, v := range f.possible(field) {
				if !slices.Contains(n.Assumes[field], v) {
					bad = append(bad, v)
				}
			}
			if len(bad) == 0 {
				continue
			}
			c := found[n.ID+"|"+field]
			if c == nil {
				c = &contradiction{node: n, field: field, path: append(slices.Clone(path), hop{node: n.ID})}
				found[n.ID+"|"+field] = c
			}
			for _, v := range bad {
				if !slices.Contains(c.values, v) {
					c.values = append(c.values, v)
				}
			}
		}
		next := func(id, choice string, f valueSets) {
			walk(t.nodes[id], f, append(path[:len(path):len(path)], hop{node: n.ID, choice: choice}))
		}
		switch n.Kind {
		case KindCheck:
			if n.Field == "findings" {
				for _, c := range n.Choices {
					next(c.Next, c.ID, f)
				}
				return
			}
			possible := f.possible(n.Field)
			for _, c := range n.Choices {
				var vals []string
				for _, v := range possible {
					if n.pickValue(v) == c.ID {
						vals = append(vals, v)
					}
				}
				switch {
				case len(vals) == 0:
				case track[n.Field]:
					next(c.Next, c.ID, f.with(n.Field, vals))
				default:
					next(c.Next, c.ID, f)
				}
			}
		case KindQuestion:
			for _, c := range n.Choices {
				next(c.Next, c.ID, f)
			}
		case KindFix:
			next(n.Fixed, ChoiceFixed, f)
			next(n.Broken, ChoiceBroken, f)
		case KindEscalate:
			next(n.Next, ChoiceSent, f)
		}
	}
	for _, code := range codes() {
		walk(t.nodes[t.Start], valueSets{"verdict": {code}}, nil)
	}
	if tooMany {
		add(t.line, "the tree has too many ways through it to prove what its nodes assume (over %d)", maxProofStates)
		return len(seen)
	}
	for _, k := range sortedKeys(found) {
		c := found[k]
		add(c.node.Line, "node %q assumes %s is %s, but is reached when it is %s: %s", c.node.ID, c.field,
			strings.Join(c.node.Assumes[c.field], " or "), strings.Join(c.values, ", "), t.describePath(c.path, c.field))
	}
	return len(seen)
}

// describePath writes a walk as "probe [verdict gateway_502: gateway] →
// role-gateway [user] → fix-refresh".
func (t *Tree) describePath(path []hop, field string) string {
	parts := make([]string, len(path))
	read := false
	for i, h := range path {
		parts[i] = h.node
		if h.choice != "" {
			parts[i] += " [" + h.choice + "]"
		}
		read = read || t.nodes[h.node].Kind == KindCheck && t.nodes[h.node].Field == field
	}
	s := strings.Join(parts, " → ")
	if !read && field != "verdict" {
		s += " (no check on the way reads " + field + ")"
	}
	return s
}

// pickValue is the choice of a (single-valued) check for value.
func (n *Node) pickValue(value string) string {
	for _, c := range n.Choices {
		if slices.Contains(c.When, value) {
			return c.ID
		}
	}
	return n.Default
}
