package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gatecheck/gatecheck/wizard"
	"github.com/gatecheck/gatecheck/wizard/sqlite"
)

// TestUserRoles: accounts are agents unless added with --admin, roles
// change with user role, and the last admin can be neither demoted nor
// removed.
func TestUserRoles(t *testing.T) {
	db := filepath.Join(t.TempDir(), "gatecheck.db")
	const pw = "correct horse battery\n"
	if code, out, errs := runWith(t, pw, "user", "add", "--db", db, "--admin", "ann"); code != 0 || !strings.Contains(out, "Added ann, an admin") {
		t.Fatalf("add --admin ann: %d %q %q", code, out, errs)
	}
	if code, out, errs := runWith(t, pw, "user", "add", "--db", db, "bob"); code != 0 || !strings.Contains(out, "Added bob, an agent") {
		t.Fatalf("add bob: %d %q %q", code, out, errs)
	}
	code, out, _ := runCmd(t, "user", "list", "--db", db)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 3 || !strings.HasPrefix(lines[0], "NAME") ||
		strings.Fields(lines[1])[1] != "admin" || strings.Fields(lines[2])[1] != "agent" || !strings.Contains(lines[1], "UTC") {
		t.Errorf("list: %d\n%s", code, out)
	}
	for _, tt := range []struct {
		args []string
		code int
		says string
	}{
		{[]string{"role", "ann", "agent"}, exitProblem, "ann is the last admin"},
		{[]string{"remove", "ann"}, exitProblem, "ann is the last admin"},
		{[]string{"role", "bob", "root"}, exitUsage, "a role is admin or agent"},
		{[]string{"role", "bob"}, exitUsage, "expected 2 argument(s)"},
		{[]string{"role", "nobody", "admin"}, exitProblem, `no user called "nobody"`},
		{[]string{"passwd", "--admin", "bob"}, exitUsage, "--admin goes with add"},
		{[]string{"remove", "two words"}, exitUsage, "without spaces"},
		{[]string{"promote", "bob"}, exitUsage, "Usage"},
	} {
		code, out, errs := runWith(t, pw, append([]string{"user", tt.args[0], "--db", db}, tt.args[1:]...)...)
		if code != tt.code || !strings.Contains(out+errs, tt.says) {
			t.Errorf("user %v: %d %q %q, want %d and %q", tt.args, code, out, errs, tt.code, tt.says)
		}
	}
	if code, out, errs := runCmd(t, "user", "role", "--db", db, "bob", "admin"); code != 0 || !strings.Contains(out, "bob is now an admin") {
		t.Fatalf("role bob admin: %d %q %q", code, out, errs)
	}
	if code, out, errs := runCmd(t, "user", "role", "--db", db, "ann", "agent"); code != 0 || !strings.Contains(out, "ann is now an agent") {
		t.Fatalf("role ann agent: %d %q %q", code, out, errs)
	}
	if code, out, errs := runCmd(t, "user", "remove", "--db", db, "ann"); code != 0 || !strings.Contains(out, "Removed ann") {
		t.Fatalf("remove ann: %d %q %q", code, out, errs)
	}
	store, err := sqlite.Open(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	users, _ := store.Users(context.Background())
	if len(users) != 1 || users[0].Name != "bob" || users[0].Role != wizard.RoleAdmin {
		t.Errorf("users at the end: %+v", users)
	}
}

// TestAPIKeyCommands: add prints the key alone on standard output and the
// advice on standard error; list shows it without the key; revoke refuses
// it from then on.
func TestAPIKeyCommands(t *testing.T) {
	db := filepath.Join(t.TempDir(), "gatecheck.db")
	code, out, errs := runCmd(t, "apikey", "add", "--db", db, "servicedesk")
	token := strings.TrimSpace(out)
	if code != 0 || !strings.HasPrefix(token, "gck_") || strings.Contains(token, "\n") || !strings.Contains(errs, "shown once") {
		t.Fatalf("add: %d %q %q", code, out, errs)
	}
	if code, _, errs := runCmd(t, "apikey", "add", "--db", db, "ServiceDesk"); code != exitProblem || !strings.Contains(errs, "already an API key") {
		t.Errorf("add twice: %d %q", code, errs)
	}
	if code, _, errs := runCmd(t, "apikey", "add", "--db", db, "no spaces please"); code != exitUsage {
		t.Errorf("a bad name: %d %q", code, errs)
	}
	code, out, _ = runCmd(t, "apikey", "list", "--db", db)
	if code != 0 || !strings.Contains(out, "servicedesk") || !strings.Contains(out, "active") || !strings.Contains(out, "never") || strings.Contains(out, token) {
		t.Errorf("list: %d\n%s", code, out)
	}
	store, err := sqlite.Open(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if k, err := store.APIKeyByToken(context.Background(), token); err != nil || k.Name != "servicedesk" {
		t.Fatalf("the key printed is not the key stored: %+v %v", k, err)
	}
	if code, out, errs := runCmd(t, "apikey", "revoke", "--db", db, "servicedesk"); code != 0 || !strings.Contains(out, "Revoked") {
		t.Fatalf("revoke: %d %q %q", code, out, errs)
	}
	if _, err := store.APIKeyByToken(context.Background(), token); wizard.ErrorCode(err) != wizard.EUNAUTHORIZED {
		t.Errorf("a revoked key: %v", err)
	}
	if code, _, errs := runCmd(t, "apikey", "revoke", "--db", db, "servicedesk"); code != exitProblem || !strings.Contains(errs, "already revoked") {
		t.Errorf("revoke twice: %d %q", code, errs)
	}
	if code, out, _ := runCmd(t, "apikey", "list", "--db", db); code != 0 || !strings.Contains(out, "revoked 20") {
		t.Errorf("list after revoking: %d\n%s", code, out)
	}
}
