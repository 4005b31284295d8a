package wizard

import (
	"fmt"
	"io"
	"strconv"
	"strings"
)

// WriteOutline prints the tree as an indented outline, for people who would
// rather read it than its file. A node reached a second time is shown as a
// reference ("→ see id") instead of again in full.
func (t *Tree) WriteOutline(w io.Writer) error {
	fmt.Fprintf(w, "%s (version %s)\n", or(t.Title, "Troubleshooting tree"), t.ID())
	shown := map[string]bool{}
	var write func(id, via string, depth int) error
	write = func(id, via string, depth int) error {
		n := t.nodes[id]
		indent := strings.Repeat("  ", depth)
		prefix := indent
		if via != "" {
			prefix += "[" + via + "] "
		}
		if shown[id] {
			_, err := fmt.Fprintf(w, "%s→ see %s\n", prefix, id)
			return err
		}
		shown[id] = true
		head := fmt.Sprintf("%s%s %s", prefix, kindMark(n), id)
		if n.Title != "" {
			head += ": " + n.Title
		}
		switch n.Kind {
		case KindCheck:
			head += " (checks " + n.Field + ")"
		case KindEnd:
			head += " (" + string(n.Outcome) + ")"
		case KindEscalate:
			head += " (to " + n.Team + ")"
		}
		if len(n.Assumes) > 0 {
			var as []string
			for _, f := range sortedKeys(n.Assumes) {
				as = append(as, f+": "+strings.Join(n.Assumes[f], ", "))
			}
			head += " (assumes " + strings.Join(as, "; ") + ")"
		}
		if _, err := fmt.Fprintln(w, head); err != nil {
			return err
		}
		for _, c := range t.edgesLabelled(n) {
			if err := write(c.next, c.label, depth+1); err != nil {
				return err
			}
		}
		return nil
	}
	return write(t.Start, "", 0)
}

type labelledEdge struct{ label, next string }

func (t *Tree) edgesLabelled(n *Node) []labelledEdge {
	var out []labelledEdge
	switch n.Kind {
	case KindQuestion, KindCheck:
		for _, c := range n.Choices {
			label := c.Label
			if len(c.When) > 0 {
				label = strings.Join(c.When, ", ")
			} else if n.Kind == KindCheck && c.ID == n.Default {
				label = "otherwise"
			}
			out = append(out, labelledEdge{label, c.Next})
		}
	case KindFix:
		out = append(out, labelledEdge{"fixed", n.Fixed}, labelledEdge{"still broken", n.Broken})
	case KindEscalate:
		out = append(out, labelledEdge{"sent", n.Next})
	}
	return out
}

func kindMark(n *Node) string {
	return map[Kind]string{KindQuestion: "?", KindCheck: "◇", KindFix: "✎", KindEscalate: "↗", KindEnd: "■"}[n.Kind]
}

// WriteDot prints the tree in Graphviz's dot language.
func (t *Tree) WriteDot(w io.Writer) error {
	q := strconv.Quote
	var b strings.Builder
	fmt.Fprintf(&b, "digraph %s {\n  rankdir=LR;\n  node [fontname=\"sans-serif\" fontsize=10];\n  edge [fontname=\"sans-serif\" fontsize=9];\n", q(or(t.Title, "tree")))
	shapes := map[Kind]string{KindQuestion: "box", KindCheck: "diamond", KindFix: "note", KindEscalate: "cds", KindEnd: "doubleoctagon"}
	for _, n := range t.Nodes {
		label := n.ID
		if n.Title != "" {
			label += "\\n" + strings.ReplaceAll(n.Title, `"`, `'`)
		}
		fmt.Fprintf(&b, "  %s [shape=%s label=\"%s\"];\n", q(n.ID), shapes[n.Kind], label)
	}
	for _, n := range t.Nodes {
		for _, e := range t.edgesLabelled(n) {
			fmt.Fprintf(&b, "  %s -> %s [label=%s];\n", q(n.ID), q(e.next), q(e.label))
		}
	}
	b.WriteString("}\n")
	_, err := io.WriteString(w, b.String())
	return err
}
