// Package wizard is gatecheck's troubleshooting tree: the tree file format
// and its validation, the engine that picks the next step from the probe
// report and the answers so far, the default 502 tree, and the case domain
// types. It is pure: no network, no SQL, no HTML.
package wizard

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"

	"go.yaml.in/yaml/v3"
)

// Kind is what a node does.
type Kind string

// The node kinds.
const (
	// KindQuestion asks the person; each choice leads on.
	KindQuestion Kind = "question"
	// KindCheck is answered from the probe report (or the settings); the
	// person sees what was found and may disagree.
	KindCheck Kind = "check"
	// KindFix gives numbered steps; "this fixed it" and "still broken" lead on.
	KindFix Kind = "fix"
	// KindEscalate hands off to a named team with a ready-to-send summary.
	KindEscalate Kind = "escalate"
	// KindEnd closes the conversation with an outcome.
	KindEnd Kind = "end"
)

// Outcome is how a walk ended.
type Outcome string

// The outcomes of end nodes.
const (
	Resolved   Outcome = "resolved"
	Escalated  Outcome = "escalated"
	Unresolved Outcome = "unresolved"
)

// The choice ids of fix and escalate nodes.
const (
	ChoiceFixed  = "fixed"
	ChoiceBroken = "broken"
	ChoiceSent   = "sent"
)

// ConfirmProbe is the one value of a fix's confirm: gatecheck probes the
// site again before it records "this fixed it".
const ConfirmProbe = "probe"

// Tree is a parsed, validated troubleshooting tree.
type Tree struct {
	// Version is the tree author's version string.
	Version string  `yaml:"version"`
	Title   string  `yaml:"title"`
	Start   string  `yaml:"start"`
	Nodes   []*Node `yaml:"nodes"`

	// Hash is the SHA-256 of the file's bytes (hex, 12 characters): two
	// trees with the same hash are the same tree.
	Hash  string `yaml:"-"`
	nodes map[string]*Node
	file  string
	line  int
}

// ID is the tree's full version, "VERSION+HASH", which a case records so
// that old cases stay readable after the tree changes.
func (t *Tree) ID() string { return t.Version + "+" + t.Hash }

// Node returns the node with id, or nil.
func (t *Tree) Node(id string) *Node { return t.nodes[id] }

// Node is one step of the tree.
type Node struct {
	ID    string `yaml:"id"`
	Kind  Kind   `yaml:"kind"`
	Title string `yaml:"title"`
	// Text is what the person reads; placeholders such as {team} and
	// {requester_ip} are filled from the settings and the case.
	Text string `yaml:"text"`
	// Help is optional detail shown on request.
	Help string `yaml:"help"`

	// Question and check: the choices. For a check each choice lists the
	// values of Field it stands for (When); Default names the choice for a
	// value no choice lists.
	Choices []*Choice `yaml:"choices"`
	Field   string    `yaml:"field"`
	Default string    `yaml:"default"`
	// Quiet lists values of a check's Field for which the walk passes the
	// check without showing it in the path: a check that only matters
	// when there is evidence (an agent's view) stays out of the way of
	// cases without it.
	Quiet []string `yaml:"quiet"`

	// Fix: the steps, and where "this fixed it" and "still broken" lead.
	Steps  []string `yaml:"steps"`
	Fixed  string   `yaml:"fixed"`
	Broken string   `yaml:"broken"`
	// Confirm, on a fix, says how gatecheck can see whether the fix
	// worked: "probe" (a fresh check of the site from gatecheck's
	// server) for fixes made on the server side. Without it, "this fixed
	// it" is recorded as the person says, not confirmed by a check.
	Confirm string `yaml:"confirm"`

	// Escalate: the team, how to reach it, what to ask of it, and where
	// the walk goes once the summary is sent.
	Team    string `yaml:"team"`
	Contact string `yaml:"contact"`
	Request string `yaml:"request"`
	Next    string `yaml:"next"`

	// End: the outcome.
	Outcome Outcome `yaml:"outcome"`

	// Assumes names the facts under which the node's words are true: for
	// each field a check may read (verdict, vantage.browser,
	// setting.hosted_allowlist...), the values the words hold for. Absent,
	// the node assumes nothing, and its words must be true whatever the
	// probes found. The strict check (Parse) proves that no walk reaches
	// the node when a field has a value it does not assume.
	Assumes map[string][]string `yaml:"assumes"`

	// Covers lists the ids of the documented causes and fixes this node
	// deals with (see testdata/seeds_checklist.md); tests use it to prove
	// the default tree reaches all of them.
	Covers []string `yaml:"covers"`

	Line int `yaml:"-"`
}

// Choice is one answer to a question or check.
type Choice struct {
	ID    string   `yaml:"id"`
	Label string   `yaml:"label"`
	When  []string `yaml:"when"`
	Next  string   `yaml:"next"`
	Line  int      `yaml:"-"`
}

// Choice returns the node's choice with id, or nil.
func (n *Node) Choice(id string) *Choice {
	for _, c := range n.Choices {
		if c.ID == id {
			return c
		}
	}
	return nil
}

// Edges returns every node id this node leads to, in order.
func (n *Node) Edges() []string {
	var out []string
	switch n.Kind {
	case KindQuestion, KindCheck:
		for _, c := range n.Choices {
			out = append(out, c.Next)
		}
	case KindFix:
		out = append(out, n.Fixed, n.Broken)
	case KindEscalate:
		out = append(out, n.Next)
	}
	return out
}

var nodeKeys = map[string]bool{
	"id": true, "kind": true, "title": true, "text": true, "help": true, "choices": true, "field": true,
	"default": true, "quiet": true, "steps": true, "fixed": true, "broken": true, "team": true, "contact": true,
	"request": true, "next": true, "outcome": true, "covers": true, "assumes": true, "confirm": true,
}

var choiceKeys = map[string]bool{"id": true, "label": true, "when": true, "next": true}

var treeKeys = map[string]bool{"version": true, "title": true, "start": true, "nodes": true}

// strictKeys reports the first key of a mapping that is not allowed.
func strictKeys(v *yaml.Node, allowed map[string]bool, what string) error {
	if v.Kind != yaml.MappingNode {
		return &LineError{Line: v.Line, Col: v.Column, Msg: what + " must be a mapping of keys to values"}
	}
	for i := 0; i+1 < len(v.Content); i += 2 {
		k := v.Content[i]
		if !allowed[k.Value] {
			return &LineError{Line: k.Line, Col: k.Column, Msg: fmt.Sprintf("unknown key %q in %s", k.Value, what)}
		}
	}
	return nil
}

// UnmarshalYAML decodes a node strictly and remembers its line.
func (n *Node) UnmarshalYAML(v *yaml.Node) error {
	if err := strictKeys(v, nodeKeys, "a node"); err != nil {
		return err
	}
	type plain Node
	if err := v.Decode((*plain)(n)); err != nil {
		return err
	}
	n.Line = v.Line
	for i, c := range n.Choices {
		if c == nil {
			return &LineError{Line: v.Line, Col: v.Column, Msg: fmt.Sprintf("node %q: choice %d is empty", n.ID, i+1)}
		}
	}
	return nil
}

// UnmarshalYAML decodes a choice strictly and remembers its line.
func (c *Choice) UnmarshalYAML(v *yaml.Node) error {
	if err := strictKeys(v, choiceKeys, "a choice"); err != nil {
		return err
	}
	type plain Choice
	if err := v.Decode((*plain)(c)); err != nil {
		return err
	}
	c.Line = v.Line
	return nil
}

//go:embed trees/502.yaml
var default502 []byte

// Default returns the built-in 502 Bad Gateway tree, parsed once (trees
// are not changed once parsed).
func Default() *Tree { return defaultTree() }

var defaultTree = sync.OnceValue(func() *Tree {
	t, err := Parse("502.yaml", default502)
	if err != nil {
		panic("wizard: the embedded 502 tree is invalid: " + err.Error())
	}
	return t
})

// Load reads and validates a tree file.
func Load(path string) (*Tree, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, data)
}

// Parse decodes and validates a tree. The error, when there is one, is an
// Errors listing every problem found with its line.
func Parse(name string, data []byte) (*Tree, error) { return parse(name, data, false) }

// ParseStored decodes and validates a tree stored with the cases that walk
// it. Verdict codes and gateways are only ever added, so a tree written
// before one was added has no choice for it: that is no error here (the
// engine asks the person instead), where it is for Parse, which checks the
// trees operators write now.
func ParseStored(name string, data []byte) (*Tree, error) { return parse(name, data, true) }

func parse(name string, data []byte, lenient bool) (*Tree, error) {
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		return nil, Errors{{File: name, LineError: yamlError(err)}}
	}
	if len(doc.Content) == 0 {
		return nil, Errors{{File: name, LineError: LineError{Line: 1, Msg: "the file is empty"}}}
	}
	root := doc.Content[0]
	if err := strictKeys(root, treeKeys, "the tree"); err != nil {
		return nil, Errors{{File: name, LineError: *err.(*LineError)}}
	}
	t := &Tree{file: name, line: root.Line}
	if err := root.Decode(t); err != nil {
		le, ok := err.(*LineError)
		if !ok {
			le = ptr(yamlError(err))
		}
		return nil, Errors{{File: name, LineError: *le}}
	}
	if i := slices.Index(t.Nodes, nil); i >= 0 {
		return nil, Errors{{File: name, LineError: LineError{Line: root.Line, Msg: fmt.Sprintf("node %d is empty", i+1)}}}
	}
	sum := sha256.Sum256(data)
	t.Hash = hex.EncodeToString(sum[:])[:12]
	if errs := t.validate(lenient); len(errs) > 0 {
		return nil, errs
	}
	return t, nil
}

func ptr[T any](v T) *T { return &v }

// yamlError turns the YAML library's message ("yaml: line 3: ...") into a
// LineError.
func yamlError(err error) LineError {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	var line int
	if _, scanErr := fmt.Sscanf(msg, "line %d:", &line); scanErr == nil {
		msg = strings.TrimSpace(msg[strings.Index(msg, ":")+1:])
		// The library adds one to the 0-based line of scanner errors but
		// not of parser errors, which are the "did not find expected" ones.
		if strings.HasPrefix(msg, "did not find expected") {
			line++
		}
	}
	if strings.HasPrefix(msg, "unmarshal errors:") {
		// "unmarshal errors:\n  line 7: cannot unmarshal ..."
		rest := strings.TrimSpace(strings.TrimPrefix(msg, "unmarshal errors:"))
		if _, scanErr := fmt.Sscanf(rest, "line %d:", &line); scanErr == nil {
			msg = strings.TrimSpace(rest[strings.Index(rest, ":")+1:])
		}
	}
	return LineError{Line: line, Msg: msg}
}

// LineError is one problem at a place in a tree file.
type LineError struct {
	Line, Col int
	Msg       string
}

func (e *LineError) Error() string {
	if e.Col > 0 {
		return fmt.Sprintf("%d:%d: %s", e.Line, e.Col, e.Msg)
	}
	return fmt.Sprintf("%d: %s", e.Line, e.Msg)
}

// FileError is a LineError in a named file.
type FileError struct {
	File string
	LineError
}

func (e FileError) Error() string { return e.File + ":" + e.LineError.Error() }

// Errors are all the problems found in a tree file, in line order.
type Errors []FileError

func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// DefaultSource returns the bytes of the built-in tree.
func DefaultSource() []byte { return append([]byte(nil), default502...) }
