package wizard

import (
	"errors"
	"fmt"
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
		{"assumes names a field", "    steps: [Do it]\n", "    steps: [Do it]\n    assumes: {weather: [sunny]}\n", 26, `assumes "weather", which is not a field`},
		{"assumes no findings", "    steps: [Do it]\n", "    steps: [Do it]\n    assumes: {findings: [healthy]}\n", 26, `assumes "findings", which is not a field`},
		{"assumes known verdict codes", "    steps: [Do it]\n", "    steps: [Do it]\n    assumes: {verdict: [healthy, on_fire]}\n", 26, `assumes "on_fire", which is not a known verdict code`},
		{"assumes known values", "    steps: [Do it]\n", "    steps: [Do it]\n    assumes: {vantage.browser: [maybe]}\n", 26, `assumes "maybe", which is not a known value for vantage.browser`},
		{"assumes some value", "    steps: [Do it]\n", "    steps: [Do it]\n    assumes: {verdict: []}\n", 26, "assumes no value of verdict"},
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

// TestAssumptionsAreProved: a node that assumes a verdict (or another fact)
// may only be reached when it holds, whichever answers lead there, and
// the error names the walk that breaks it. A stored tree is read leniently
// and is not held to it.
func TestAssumptionsAreProved(t *testing.T) {
	for _, tt := range []struct {
		name, old, new string
		says           string // "" when the tree is valid
		line           int
	}{
		{"the fix assumes what its check found", "    steps: [Do it]\n", "    steps: [Do it]\n    assumes: {verdict: [healthy]}\n", "", 0},
		// The question's answer b skips the check: "done" is reached
		// under every verdict.
		{"an end reached past the check", "    outcome: resolved\n", "    outcome: resolved\n    assumes: {verdict: [healthy]}\n",
			`node "done" assumes verdict is healthy, but is reached when it is dns_nxdomain`, 35},
		// The fix is reached from the check's healthy choice only; the
		// escalation from its default, and from the fix.
		{"an escalation reached from the fix's verdict", "    team: Ops\n", "    team: Ops\n    assumes: {verdict: [gateway_502]}\n",
			`node "e" assumes verdict is gateway_502, but is reached when it is healthy, `, 31},
		{"the walk that breaks it is named", "    team: Ops\n", "    team: Ops\n    assumes: {verdict: [gateway_502]}\n",
			"q [a] → c [ok] → f [broken] → e", 31},
		{"a fact no check reads", "    steps: [Do it]\n", "    steps: [Do it]\n    assumes: {vantage.browser: [reachable]}\n",
			`node "f" assumes vantage.browser is reachable, but is reached when it is unreachable, unknown: q [a] → c [ok] → f (no check on the way reads vantage.browser)`, 26},
		{"a setting", "    steps: [Do it]\n", "    steps: [Do it]\n    assumes: {setting.hosted_allowlist: [\"yes\"]}\n",
			`node "f" assumes setting.hosted_allowlist is yes, but is reached when it is no`, 26},
	} {
		t.Run(tt.name, func(t *testing.T) {
			src := strings.Replace(base, tt.old, tt.new, 1)
			if src == base {
				t.Fatal("the case did not change the tree")
			}
			_, err := Parse("t.yaml", []byte(src))
			if tt.says == "" {
				if err != nil {
					t.Fatalf("a tree whose assumptions hold: %v", err)
				}
				return
			}
			var errs Errors
			if !errors.As(err, &errs) {
				t.Fatalf("err = %v, want Errors", err)
			}
			found := false
			for _, e := range errs {
				if strings.Contains(e.Msg, tt.says) {
					found = true
					if e.Line != tt.line {
						t.Errorf("%q reported on line %d, want %d", e.Msg, e.Line, tt.line)
					}
				}
			}
			if !found {
				t.Errorf("errors %v do not say %q", errs, tt.says)
			}
			if _, err := ParseStored("t.yaml", []byte(src)); err != nil {
				t.Errorf("a stored tree is not held to its assumptions: %v", err)
			}
		})
	}
}

// TestTheBuiltInTreeStatesNoFalseFacts breaks the built-in tree the way
// issue 16 found it (an intermittent site's visitor sent to the node that
// says gatecheck reached the site without trouble; a refused visitor to
// the one that says the site works from gatecheck's server) and expects
// the strict check to refuse it, naming the node and the walk.
func TestTheBuiltInTreeStatesNoFalseFacts(t *testing.T) {
	src := string(DefaultSource())
	for _, tt := range []struct{ old, new, says string }{
		{"        next: fix-retry-intermittent\n", "        next: fix-refresh\n",
			`node "fix-refresh" assumes verdict is healthy, but is reached when it is intermittent: probe [intermittent] → role-intermittent [user] → fix-refresh`},
		{"        next: fix-visitor-blocked\n", "        next: fix-visitor-network\n",
			`node "fix-visitor-network" assumes verdict is healthy, but is reached when it is access_blocked: probe [blocked] → hosted-allowlist-blocked [no] → role-blocked [user] → fix-visitor-network`},
	} {
		broken := strings.Replace(src, tt.old, tt.new, 1)
		if broken == src {
			t.Fatalf("%q is not in the built-in tree", tt.old)
		}
		if _, err := Parse("502.yaml", []byte(broken)); err == nil || !strings.Contains(err.Error(), tt.says) {
			t.Errorf("the built-in tree with %s: %v\nwant it to say %s", strings.TrimSpace(tt.new), err, tt.says)
		}
	}
}

// TestProofIsBounded: the proof of the built-in tree stays far below the
// bound, and a tree past it is refused, not proved for ever.
func TestProofIsBounded(t *testing.T) {
	tr := Default()
	states := tr.proveAssumptions(func(line int, format string, a ...any) { t.Errorf(format, a...) })
	t.Logf("the built-in tree's proof visits %d states", states)
	if states == 0 || states > maxProofStates/10 {
		t.Errorf("the proof visits %d states (bound %d)", states, maxProofStates)
	}
	// Checks of six fields in a row, each remembered because a node
	// assumes it, each with every value its own choice: 5^6 walks for
	// each verdict, past a bound lowered for the test.
	defer func(n int) { maxProofStates = n }(maxProofStates)
	maxProofStates = 5000
	src := "version: \"1\"\nstart: c0\nnodes:\n"
	fields := []string{"check.dns", "check.tcp", "check.tls", "check.http", "check.twin", "check.samples"}
	for i, f := range fields {
		next := fmt.Sprintf("c%d", i+1)
		if i == len(fields)-1 {
			next = "done"
		}
		src += fmt.Sprintf("  - id: c%d\n    kind: check\n    field: %s\n    assumes: {%s: [ok, warn, fail, skip, none]}\n    choices:\n", i, f, f)
		for _, v := range statuses {
			src += fmt.Sprintf("      - id: %s\n        label: %s\n        when: [%s]\n        next: %s\n", v, v, v, next)
		}
	}
	src += "  - id: done\n    kind: end\n    outcome: resolved\n"
	if _, err := Parse("wide.yaml", []byte(src)); err == nil || !strings.Contains(err.Error(), "too many ways through it") {
		t.Errorf("a tree past the bound: %v", err)
	}
}

// TestConfirmOnFixesOnly: confirm marks a fix gatecheck can check, with
// the one way it checks (probe); anywhere else, or any other value, is an
// error naming the line.
func TestConfirmOnFixesOnly(t *testing.T) {
	fix := "    fixed: done\n    broken: e\n"
	tr, err := Parse("t.yaml", []byte(strings.Replace(base, fix, fix+"    confirm: probe\n", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if st, err := tr.StepAt(Settings{}, Facts{}, "f"); err != nil || !st.Confirm {
		t.Errorf("the fix's step does not say gatecheck checks it: %+v, %v", st, err)
	}
	for _, tt := range []struct{ name, src, want string }{
		{"other value", strings.Replace(base, fix, fix+"    confirm: ask\n", 1), `t.yaml:26: node "f": confirm "ask" is not "probe"`},
		{"on a question", strings.Replace(base, "    text: Which?\n", "    text: Which?\n    confirm: probe\n", 1), `t.yaml:4: node "q": only a fix has "confirm"`},
		{"on an end", base + "    confirm: probe\n", `node "done": only a fix has "confirm"`},
	} {
		if _, err := Parse("t.yaml", []byte(tt.src)); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v; want %q", tt.name, err, tt.want)
		}
	}
}

// TestDefaultTreeChecksServerSideFixes: in the built-in tree, the fixes
// made on the server side are checked by a probe, and those only the
// visitor can see are not.
func TestDefaultTreeChecksServerSideFixes(t *testing.T) {
	checked := map[string]bool{"fix-https-binding": true, "fix-cert": true, "fix-dns": true, "fix-dnssec": true, "fix-delegation": true, "fix-dns-mismatch": true,
		"fix-wait": true, "fix-server-down": true, "owner-logs": true, "fix-rollback-code": true, "fix-rollback-platform": true, "fix-proxy-config": true,
		"fix-overload": true, "fix-redirect-owner": true, "fix-edge-origin": true}
	tr := Default()
	for _, n := range tr.Nodes {
		if n.Kind != KindFix {
			continue
		}
		if got := n.Confirm == ConfirmProbe; got != checked[n.ID] {
			t.Errorf("fix %s: confirmed by a probe %v, want %v", n.ID, got, checked[n.ID])
		}
		delete(checked, n.ID)
	}
	for id := range checked {
		t.Errorf("no fix %s in the built-in tree", id)
	}
}
