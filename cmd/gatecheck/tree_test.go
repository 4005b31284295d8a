package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestTreeCommands(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("version: \"1\"\nstart: a\nnodes:\n  - id: a\n    kind: fix\n    steps: [x]\n    fixed: b\n    broken: nowhere\n  - id: b\n    kind: end\n    outcome: resolved\n"), 0o644)
	good, _ := os.ReadFile("../../wizard/trees/502.yaml")
	goodPath := filepath.Join(dir, "good.yaml")
	os.WriteFile(goodPath, good, 0o644)

	if code, out, errs := runCmd(t, "tree", "check", goodPath); code != 0 || !strings.Contains(out, "valid, 66 nodes") {
		t.Errorf("check good: %d %q %q", code, out, errs)
	}
	code, _, errs := runCmd(t, "tree", "check", bad)
	if code != 1 || !strings.Contains(errs, "bad.yaml:4: node \"a\": \"broken\" (\"still broken\") leads to \"nowhere\"") {
		t.Errorf("check bad: %d %q", code, errs)
	}
	if code, _, errs := runCmd(t, "tree", "check", filepath.Join(dir, "missing.yaml")); code != 1 || !strings.Contains(errs, "no such file") {
		t.Errorf("check missing: %d %q", code, errs)
	}
	code, out, _ := runCmd(t, "tree", "show")
	if code != 0 || !strings.Contains(out, "◇ probe: What gatecheck found (checks verdict)") || !strings.Contains(out, "[tls_expired, tls_hostname_mismatch, tls_untrusted] ? role-cert") ||
		!strings.Contains(out, "[healthy] ◇ office-works: Does the site answer inside your network? (checks vantage.agent)") ||
		!strings.Contains(out, "[healthy, failing, none] ◇ browser-works: Does your browser reach the site? (checks vantage.browser)") ||
		!strings.Contains(out, "escalate-allowlist-office: Ask {team} to allow your network's address (to {team}) (assumes vantage.agent: blocked; verdict: healthy)") {
		t.Errorf("show: %d\n%s", code, out)
	}
	code, out, _ = runCmd(t, "tree", "show", "--dot", goodPath)
	if code != 0 || !strings.HasPrefix(out, "digraph") || !strings.Contains(out, `"probe" -> "role-cert"`) {
		t.Errorf("show --dot: %d\n%s", code, out)
	}
	for _, args := range [][]string{{"tree"}, {"tree", "check"}, {"tree", "prune"}, {"tree", "show", "a", "b"}} {
		if code, _, _ := runCmd(t, args...); code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
	}
}
