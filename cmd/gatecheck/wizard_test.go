package main

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func runWith(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

func nginx502(t *testing.T) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Server", "nginx/1.24.0")
		w.WriteHeader(502)
		w.Write([]byte("<html><body><center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx/1.24.0</center></body></html>"))
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestWizardWalksToAFix(t *testing.T) {
	srv := nginx502(t)
	// owner → backup done → logs: this fixed it
	code, out, errs := runWith(t, "1\n1\n1\n", "wizard", "--allow-net", "127.0.0.0/8", "--samples", "1", srv.URL)
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out, errs)
	}
	for _, want := range []string{
		"gateway_502", "◇ What gatecheck found: The server behind the site's gateway fails",
		"── Who are you in this?", "── Back up before changing anything", "── Read the gateway's and the application's logs",
		"Outcome: resolved.",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestWizardEscalatesWithSettings(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(403) }))
	defer srv.Close()
	t.Setenv("GATECHECK_TEAM", "CloudOps")
	t.Setenv("GATECHECK_HOSTED_ALLOWLIST", "true")
	// allowlist-who: everyone → verify: still broken → escalate: sent
	code, out, _ := runWith(t, "2\n2\n1\n", "wizard", "--allow-net", "127.0.0.0/8", "--samples", "0",
		"--org", "Acme", "--team-contact", "cloudops@acme.example", "--time-zone", "Europe/Paris", srv.URL)
	if code != 1 {
		t.Errorf("exit %d, want 1 (escalated)", code)
	}
	for _, want := range []string{
		"Acme limits access to this application", "Send this to CloudOps (cloudops@acme.example):",
		"Please add these IP addresses to the allowlist", "access_blocked", "CET", "Everyone in our organisation",
		"Outcome: escalated.",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestWizardBackPathAndChange(t *testing.T) {
	srv := nginx502(t)
	// owner, then back, then monitor; p lists the path; c 2 changes "who"
	// back to owner; then backup; logs fixed it.
	input := "1\nb\n2\np\nc 2\n1\n1\n1\n"
	code, out, _ := runWith(t, input, "wizard", "--allow-net", "127.0.0.0/8", "--samples", "0", srv.URL)
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, out)
	}
	if !strings.Contains(out, "── Work with the monitoring service") {
		t.Errorf("back then choosing monitor did not reach its fix:\n%s", out)
	}
	if flat := strings.Join(strings.Fields(out), " "); !strings.Contains(flat, "2. Who are you in this?: I got a 502 alert from an uptime-monitoring service (you answered)") {
		t.Errorf("path listing missing:\n%s", out)
	}
	if strings.Count(out, "── Read the gateway's and the application's logs") != 1 || !strings.Contains(out, "Outcome: resolved.") {
		t.Errorf("changing the answer did not lead to the owner's path:\n%s", out)
	}
}

func TestWizardInputProblems(t *testing.T) {
	srv := nginx502(t)
	code, out, _ := runWith(t, "9\nx\nb\n", "wizard", "--allow-net", "127.0.0.0/8", "--samples", "0", srv.URL)
	if code != 1 || !strings.Contains(out, "Type a number from 1 to 3") || !strings.Contains(out, "Nothing to go back to") ||
		!strings.Contains(out, "Stopped before the end") {
		t.Errorf("exit %d:\n%s", code, out)
	}
	bad := filepath.Join(t.TempDir(), "t.yaml")
	os.WriteFile(bad, []byte("version: \"1\"\nstart: x\nnodes: []\n"), 0o644)
	if code, _, errs := runWith(t, "", "wizard", "--tree", bad, srv.URL); code != 2 || !strings.Contains(errs, "t.yaml:1: the tree has no nodes") {
		t.Errorf("bad tree: exit %d, %q", code, errs)
	}
	if code, _, errs := runWith(t, "", "wizard", "--time-zone", "Mars/Olympus", srv.URL); code != 2 || !strings.Contains(errs, "not a time zone") {
		t.Errorf("bad zone: exit %d, %q", code, errs)
	}
}
