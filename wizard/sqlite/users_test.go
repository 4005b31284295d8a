package sqlite

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatecheck/gatecheck/wizard"
)

func TestRoles(t *testing.T) { onEngines(t, testRoles) }

func testRoles(t *testing.T) {
	ctx := context.Background()
	db := MustOpenDB(t)
	ann, err := db.CreateUser(ctx, "ann", "hash1", wizard.RoleAdmin)
	if err != nil || !ann.IsAdmin() {
		t.Fatalf("create an admin: %+v %v", ann, err)
	}
	bob, err := db.CreateUser(ctx, "bob", "hash2", wizard.RoleAgent)
	if err != nil || bob.IsAdmin() {
		t.Fatalf("create an agent: %+v %v", bob, err)
	}
	for _, bad := range []struct {
		name string
		role wizard.Role
	}{{"carl", "root"}, {"carl", ""}, {"two words", wizard.RoleAgent}, {"", wizard.RoleAgent}, {strings.Repeat("x", 65), wizard.RoleAgent}} {
		if _, err := db.CreateUser(ctx, bad.name, "hash", bad.role); wizard.ErrorCode(err) != wizard.EINVALID {
			t.Errorf("create %q as %q: %v", bad.name, bad.role, err)
		}
	}
	users, err := db.Users(ctx)
	if err != nil || len(users) != 2 || users[0].Name != "ann" || users[0].Role != wizard.RoleAdmin || users[1].Role != wizard.RoleAgent {
		t.Fatalf("users: %+v %v", users, err)
	}
	// The role read with a session is the role now.
	tok, _ := db.CreateSession(ctx, bob.ID, time.Hour)
	if u, _ := db.SessionUser(ctx, tok); u.IsAdmin() {
		t.Error("bob's session says admin")
	}
	if u, _ := db.UserByName(ctx, "ANN"); !u.IsAdmin() {
		t.Error("ann by name is not an admin")
	}

	// The last admin can be neither demoted nor removed.
	if err := db.SetRole(ctx, "ann", wizard.RoleAgent); wizard.ErrorCode(err) != wizard.ECONFLICT || !strings.Contains(wizard.ErrorMessage(err), "last admin") {
		t.Errorf("demote the last admin: %v", err)
	}
	if err := db.DeleteUser(ctx, "ann"); wizard.ErrorCode(err) != wizard.ECONFLICT || !strings.Contains(wizard.ErrorMessage(err), "last admin") {
		t.Errorf("remove the last admin: %v", err)
	}
	if err := db.SetRole(ctx, "bob", wizard.RoleAdmin); err != nil {
		t.Fatal(err)
	}
	if u, _ := db.SessionUser(ctx, tok); !u.IsAdmin() {
		t.Error("bob's session does not see the new role")
	}
	if err := db.SetRole(ctx, "bob", wizard.RoleAdmin); err != nil {
		t.Errorf("setting the role a user has: %v", err)
	}
	if err := db.SetRole(ctx, "ann", wizard.RoleAgent); err != nil {
		t.Errorf("demote one of two admins: %v", err)
	}
	if err := db.DeleteUser(ctx, "bob"); wizard.ErrorCode(err) != wizard.ECONFLICT {
		t.Errorf("remove the last admin, bob: %v", err)
	}
	if err := db.SetRole(ctx, "bob", "root"); wizard.ErrorCode(err) != wizard.EINVALID {
		t.Errorf("an unknown role: %v", err)
	}
	for _, f := range []func() error{
		func() error { return db.SetRole(ctx, "nobody", wizard.RoleAdmin) },
		func() error { return db.DeleteUser(ctx, "nobody") },
	} {
		if err := f(); wizard.ErrorCode(err) != wizard.ENOTFOUND {
			t.Errorf("no such user: %v", err)
		}
	}
	// Removing an agent ends their sessions.
	annTok, _ := db.CreateSession(ctx, ann.ID, time.Hour)
	if err := db.DeleteUser(ctx, "ann"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.SessionUser(ctx, annTok); wizard.ErrorCode(err) != wizard.EUNAUTHORIZED {
		t.Errorf("a removed user's session: %v", err)
	}
	if users, _ := db.Users(ctx); len(users) != 1 || users[0].Name != "bob" {
		t.Errorf("users after removing ann: %+v", users)
	}
}

func TestAPIKeys(t *testing.T) { onEngines(t, testAPIKeys) }

func testAPIKeys(t *testing.T) {
	ctx := context.Background()
	db := MustOpenDB(t)
	k, token, err := db.CreateAPIKey(ctx, "servicedesk", "ann")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(token, "gck_") || len(token) < 30 {
		t.Errorf("token %q", token)
	}
	if _, _, err := db.CreateAPIKey(ctx, "ServiceDesk", "ann"); wizard.ErrorCode(err) != wizard.ECONFLICT {
		t.Errorf("a second key of the same name (case aside): %v", err)
	}
	if _, _, err := db.CreateAPIKey(ctx, "-bad name", "ann"); wizard.ErrorCode(err) != wizard.EINVALID {
		t.Errorf("a bad name: %v", err)
	}
	var stored string
	db.read.QueryRow(`SELECT token_hash FROM api_keys WHERE id = ?`, k.ID).Scan(&stored)
	if stored == token || stored != hashToken(token) {
		t.Errorf("stored %q for token %q", stored, token)
	}
	got, err := db.APIKeyByToken(ctx, token)
	if err != nil || got.Name != "servicedesk" || got.CreatedBy != "ann" || !got.LastUsed.IsZero() {
		t.Fatalf("by token: %+v %v", got, err)
	}
	for _, forged := range []string{token + "x", "gck_", "", strings.TrimPrefix(token, "gck_")} {
		if _, err := db.APIKeyByToken(ctx, forged); wizard.ErrorCode(err) != wizard.EUNAUTHORIZED {
			t.Errorf("forged token %q: %v", forged, err)
		}
	}
	at := time.Date(2026, 11, 21, 14, 32, 0, 0, time.UTC)
	db.Now = func() time.Time { return at }
	if err := db.APIKeyUsed(ctx, k.ID); err != nil {
		t.Fatal(err)
	}
	db.Now = time.Now
	if got, _ := db.APIKeyByToken(ctx, token); !got.LastUsed.Equal(at) {
		t.Errorf("last used %v, want %v", got.LastUsed, at)
	}
	db.CreateAPIKey(ctx, "alpha", "")
	keys, err := db.APIKeys(ctx)
	if err != nil || len(keys) != 2 || keys[0].Name != "alpha" || keys[1].Name != "servicedesk" || !keys[1].LastUsed.Equal(at) {
		t.Fatalf("keys: %+v %v", keys, err)
	}
	if err := db.RevokeAPIKey(ctx, "servicedesk"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.APIKeyByToken(ctx, token); wizard.ErrorCode(err) != wizard.EUNAUTHORIZED {
		t.Errorf("a revoked key: %v", err)
	}
	if err := db.RevokeAPIKey(ctx, "servicedesk"); wizard.ErrorCode(err) != wizard.ECONFLICT {
		t.Errorf("revoked twice: %v", err)
	}
	if err := db.RevokeAPIKey(ctx, "nothing"); wizard.ErrorCode(err) != wizard.ENOTFOUND {
		t.Errorf("revoke an unknown key: %v", err)
	}
	if keys, _ := db.APIKeys(ctx); keys[1].RevokedAt.IsZero() {
		t.Error("the list does not show the key revoked")
	}
}

// TestUpgradeMakesExistingUsersAdmins opens a database as gatecheck left it
// before roles, with accounts in it: after the upgrade they are all admins
// (they could do everything before), and new accounts are agents.
func TestUpgradeMakesExistingUsersAdmins(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "old.db")
	old, err := open(ctx, path, "0009")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"ann", "bob"} {
		if _, err := old.write.Exec(`INSERT INTO users (name, password_hash, created_at) VALUES (?, 'hash', 1)`, name); err != nil {
			t.Fatal(err)
		}
	}
	var n int
	old.read.QueryRow(`SELECT COUNT(*) FROM pragma_table_info('users') WHERE name = 'role'`).Scan(&n)
	if n != 0 {
		t.Fatal("the database before the upgrade has roles already")
	}
	old.Close()

	db, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	users, err := db.Users(ctx)
	if err != nil || len(users) != 2 {
		t.Fatalf("users after the upgrade: %+v %v", users, err)
	}
	for _, u := range users {
		if !u.IsAdmin() {
			t.Errorf("%s is %q after the upgrade, not an admin", u.Name, u.Role)
		}
	}
	if _, err := db.write.Exec(`INSERT INTO users (name, password_hash, created_at) VALUES ('carl', 'hash', 2)`); err != nil {
		t.Fatal(err)
	}
	if u, _ := db.UserByName(ctx, "carl"); u.Role != wizard.RoleAgent {
		t.Errorf("a user added after the upgrade is %q", u.Role)
	}
	if _, err := db.write.Exec(`UPDATE users SET role = 'root' WHERE name = 'carl'`); err == nil {
		t.Error("the database took an unknown role")
	}
}
