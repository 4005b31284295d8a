package wizard

import (
	"errors"
	"strings"
	"testing"
)

// base is a small valid tree the cases below break one rule at a time.
const base = `version: "1"
start: q
nodes:
  - id: q
    kind: question
    text: Which?
    choices:
      - id: a
        label: A
        next: c
      - id: b
        label: B
        next: done
  - id: c
    kind: check
    field: verdict
    default: other
    choices:
      - id: ok
        label: Fine
        when: [healthy]
        next: f
      - id: other
        label: Not fine
        next: e
  - id: f
    kind: fix
    steps: [Do it]
    fixed: done
    broken: e
  - id: e
    kind: escalate
    team: Ops
    next: done
  - id: done
    kind: end
    outcome: resolved
`

func TestValidTree(t *testing.T) {
	tr, err := Parse("t.yaml", []byte(base))
	if err != nil {
		t.Fatal(err)
	}
	if tr.Hash == "" || !strings.HasPrefix(tr.ID(), "1+") {
		t.Errorf("id = %q", tr.ID())
	}
	other, _ := Parse("t.yaml", []byte(base+"\n"))
	if other.Hash == tr.Hash {
		t.Error("different bytes, same hash")
	}
}

// TestBrowserViewField proves a check may read vantage.browser, with its
// three values each claimed.
func TestBrowserViewField(t *testing.T) {
	src := strings.Replace(base, "    field: verdict\n    default: other\n    choices:\n      - id: ok\n        label: Fine\n        when: [healthy]",
		"    field: vantage.browser\n    choices:\n      - id: unknown\n        label: Ask\n        when: [unknown]\n        next: q2\n      - id: ok\n        label: Fine\n        when: [reachable]", 1)
	src = strings.Replace(src, "        label: Not fine\n", "        label: Not fine\n        when: [unreachable]\n", 1)
	src += "  - id: q2\n    kind: question\n    text: Does it load?\n    choices:\n      - id: y\n        label: Yes\n        next: done\n      - id: n\n        label: No\n        next: e\n"
	if _, err := Parse("t.yaml", []byte(src)); err != nil {
		t.Fatalf("a check of vantage.browser: %v\n%s", err, src)
	}
	// Leave "unknown" out: the tree must say where it goes.
	bad := strings.Replace(src, "        when: [unknown]\n", "", 1)
	if _, err := Parse("t.yaml", []byte(bad)); err == nil || !strings.Contains(err.Error(), "no choice for unknown") {
		t.Errorf("a browser check without unknown: %v", err)
	}
}

func TestValidationRules(t *testing.T) {
	for _, tt := range []struct {
		rule     string
		old, new string
		line     int
		says     string
	}{
		{"unique ids", "  - id: e\n", "  - id: f\n", 31, `node id "f" is used twice (first on line 26)`},
		{"no dangling references", "next: c\n", "next: nowhere\n", 8, `leads to "nowhere", which does not exist`},
		{"no cycles", "    team: Ops\n    next: done", "    team: Ops\n    next: q", 4, "cycle: q → c → f → e → q"},
		{"every path ends in an end node", "    broken: e\n", "", 26, `"broken" ("still broken") leads nowhere`},
		{"an end node ends", "    outcome: resolved\n", "    outcome: resolved\n    next: q\n", 35, "an end node has no next"},
		{"checks name a known field", "field: verdict", "field: weather", 14, `unknown field "weather"`},
		{"checks name known verdict codes", "when: [healthy]", "when: [healthy, on_fire]", 19, `"on_fire" is not a known verdict code`},
		{"the browser's view has three values", "    field: verdict\n    default: other\n    choices:\n      - id: ok\n        label: Fine\n        when: [healthy]",
			"    field: vantage.browser\n    default: other\n    choices:\n      - id: ok\n        label: Fine\n        when: [reachable, loads]", 19, `"loads" is not a known value for vantage.browser`},
		{"no such vantage", "field: verdict", "field: vantage.satellite", 14, `unknown field "vantage.satellite"`},
		{"every choice leads somewhere", "        label: B\n        next: done\n", "        label: B\n", 11, `choice "b" leads nowhere`},
		{"choices have labels", "        label: B\n", "", 11, `choice "b" has no label`},
		{"checks cover every value", "    default: other\n", "", 14, "no choice for"},
		{"a question has two choices", "      - id: b\n        label: B\n        next: done\n", "", 4, "at least two choices"},
		{"known kinds", "kind: fix", "kind: repair", 26, `unknown kind "repair"`},
		{"known outcomes", "outcome: resolved", "outcome: shrug", 35, `outcome "shrug"`},
		{"known keys", "    steps: [Do it]\n", "    steps: [Do it]\n    colour: red\n", 29, `unknown key "colour"`},
		{"known placeholders", "text: Which?", "text: Which {flavour}?", 4, "unknown placeholder {flavour}"},
		{"every node is reachable", "  - id: done\n", "  - id: lonely\n    kind: end\n    outcome: resolved\n  - id: done\n", 35, `node "lonely" is never reached`},
		{"the start exists", "start: q", "start: z", 1, `start node "z" does not exist`},
		{"a version", `version: "1"`, `version: ""`, 1, "no version"},
		{"valid YAML", "    text: Which?\n", "    text: [Which?\n", 6, "did not find expected"},
	} {
		t.Run(tt.rule, func(t *testing.T) {
			src := strings.Replace(base, tt.old, tt.new, 1)
			if src == base {
				t.Fatalf("the case did not change the tree")
			}
			_, err := Parse("t.yaml", []byte(src))
			var errs Errors
			if !errors.As(err, &errs) {
				t.Fatalf("err = %v, want Errors", err)
			}
			for _, e := range errs {
				if strings.Contains(e.Msg, tt.says) {
					if e.Line != tt.line {
						t.Errorf("%q reported on line %d, want %d", e.Msg, e.Line, tt.line)
					}
					if !strings.HasPrefix(e.Error(), "t.yaml:") {
						t.Errorf("error %q does not name the file", e.Error())
					}
					return
				}
			}
			t.Errorf("errors %v do not say %q", errs, tt.says)
		})
	}
}
